"""PDFs as structures (pikepdf): what each page draws (placement), how it is read (plan), its scan image's
own pixels (image), the upscaled PDF rebuilt around them (rebuild), and an optional OCR text layer (textlayer)."""
