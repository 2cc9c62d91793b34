"""A hidden text layer for a scanned page without one (``upscale.ocr_layer: add``): tesseract reads the
upscaled page and its own PDF renderer writes the words as invisible text (``textonly_pdf``: the
GlyphLessFont, rendering mode 3, no image), a one-page PDF the size of the page (the PNG's dpi) that
srgan.pdf.rebuild lays over the output page. docs/formats.md compares it with OCRmyPDF's renderer."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from srgan.atomic import atomic_write_bytes
from srgan.storage.files import Location, local_copy, with_suffix

TIMEOUT_S = 600  # one page at 2x-8x; tesseract is killed past it


def text_pdf_path(page_file: Location) -> Location:
    """Where a page's text layer is kept: beside its page file, ``<stem>.text.pdf`` (a URL stays a URL)."""
    return with_suffix(page_file, ".text.pdf")


def write_text_layer(page_file: Location, language: str = "eng", timeout_s: float = TIMEOUT_S) -> Location:
    """tesseract's text-only PDF of the page image, written atomically beside it; raises with one line."""
    if shutil.which("tesseract") is None:
        raise RuntimeError("tesseract is not installed (upscale.ocr_layer: add needs it)")
    target = text_pdf_path(page_file)
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # tesseract's threads would fight the model's for the cores
    with tempfile.TemporaryDirectory(prefix="srgan-ocr-") as tmp, local_copy(page_file) as page:
        base = Path(tmp) / "page"
        done = subprocess.run(["tesseract", str(page), str(base), "-l", language, "-c", "textonly_pdf=1",
                               "pdf"], capture_output=True, text=True, timeout=timeout_s, env=env, check=False,
                              stdin=subprocess.DEVNULL)
        made = base.with_suffix(".pdf")
        if done.returncode != 0 or not made.is_file():
            lines = [line for line in (done.stderr or "").splitlines() if line.strip()]
            raise RuntimeError(f"tesseract failed ({done.returncode}): {lines[-1] if lines else 'no output'}")
        atomic_write_bytes(target, made.read_bytes())
    return target
