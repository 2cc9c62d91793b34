"""Scanned PDFs as archives hold them, made in code: text pages rendered at a scan's resolution (the sample
renderer), each an image on its page, an invisible OCR layer from tesseract's own PDF renderer, a link,
a bookmark, a title; and a born-digital page of vector text. Used by tests/test_pdf.py."""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pikepdf
from pikepdf import Name
from PIL import Image

from srgan.sample import find_fonts, render_text_page

TEXTS = (
    "# Annual report of the water board\n"
    "The board met four times during the year and reviewed the plans for the new reservoir. "
    "The engineers reported that the northern pipeline was finished in March and that the pumping "
    "station will be ready before the winter. Costs stayed within the budget approved last spring.\n\n"
    "Members asked for a survey of the older wells in the valley. The survey will begin in May and "
    "the results will be published in the next report together with the accounts of the board.",
    "# Minutes of the spring meeting\n"
    "The chairman opened the meeting and thanked the staff for their work on the flood defences. "
    "The treasurer presented the accounts and answered questions about the cost of repairs. "
    "A motion to replace the old gates at the mill was carried without objection.\n\n"
    "The next meeting will be held in the town hall on the first Monday of October.",
)
# (width, height) in inches of the two pages: at 100 ppi, 853x1100 and 754x1000 pixels
PAGE_INCHES = ((8.53, 11.0), (7.54, 10.0))
LINK = "https://example.org/water-board"


def words(text: str) -> list[str]:
    """Lower-case words of a text, punctuation stripped (how the tests compare pdftotext's output)."""
    out = []
    for raw in text.replace("#", " ").split():
        word = "".join(ch for ch in raw.lower() if ch.isalnum())
        if word:
            out.append(word)
    return out


def page_image(index: int, ppi: int = 100) -> np.ndarray:
    """The scanned page (H, W) uint8: the text rendered at ppi with the machine's first font."""
    fonts = find_fonts()
    width_in, height_in = PAGE_INCHES[index]
    image, _ = render_text_page(TEXTS[index], fonts[0] if fonts else "", 12, ppi, width_in, height_in, 0.8)
    return image


def image_page(pdf: pikepdf.Pdf, pixels: np.ndarray, ppi: float, rotate: int = 0) -> pikepdf.Page:
    """A page that is one grey image at ppi, drawn upright in user space (the page's /Rotate turns it)."""
    h, w = pixels.shape
    wpt, hpt = w * 72 / ppi, h * 72 / ppi
    image = pikepdf.Stream(pdf, pixels.tobytes())  # stored uncompressed; pikepdf compresses it on save
    image.Type, image.Subtype = Name.XObject, Name.Image
    image.Width, image.Height, image.BitsPerComponent, image.ColorSpace = w, h, 8, Name.DeviceGray
    page = pikepdf.Dictionary(Type=Name.Page, MediaBox=[0, 0, wpt, hpt],
                              Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
                              Contents=pikepdf.Stream(pdf, f"q {wpt:.4f} 0 0 {hpt:.4f} 0 0 cm /Im0 Do Q".encode()))
    if rotate:
        page.Rotate = rotate
    pdf.pages.append(pikepdf.Page(page))
    return pdf.pages[-1]


def ocr_layer(page: pikepdf.Page, pixels: np.ndarray, ppi: float) -> None:
    """tesseract's invisible text (textonly_pdf) laid over the page, as OCR tools leave it."""
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "page.png"
        Image.fromarray(pixels).save(png, dpi=(ppi, ppi))
        subprocess.run(["tesseract", str(png), str(Path(tmp) / "text"), "-l", "eng", "-c", "textonly_pdf=1", "pdf"],
                       check=True, capture_output=True, stdin=subprocess.DEVNULL,
                       env={"OMP_THREAD_LIMIT": "1", "PATH": "/usr/bin:/bin"})
        with pikepdf.open(Path(tmp) / "text.pdf") as layer:
            page.add_overlay(layer.pages[0])


def add_link(pdf: pikepdf.Pdf, page: pikepdf.Page, uri: str = LINK) -> None:
    link = pdf.make_indirect(pikepdf.Dictionary(
        Type=Name.Annot, Subtype=Name.Link, Rect=[60, 700, 300, 730], Border=[0, 0, 0],
        A=pikepdf.Dictionary(S=Name.URI, URI=pikepdf.String(uri))))
    page.obj.Annots = pdf.make_indirect(pikepdf.Array([link]))


def add_bookmarks(pdf: pikepdf.Pdf, titles: list[tuple[str, int]]) -> None:
    with pdf.open_outline() as outline:
        for title, page in titles:
            outline.root.append(pikepdf.OutlineItem(title, page))


def scanned_pdf(path: Path, ocr: bool = True, ppi: int = 100) -> Path:
    """The two-page scan at ppi: OCR layer (when ocr), a link on page 1, a bookmark to page 2, a title,
    page labels."""
    pdf = pikepdf.new()
    for index in range(2):
        pixels = page_image(index, ppi)
        page = image_page(pdf, pixels, ppi)
        if ocr:
            ocr_layer(page, pixels, ppi)
    add_link(pdf, pdf.pages[0])
    add_bookmarks(pdf, [("Annual report", 0), ("Minutes", 1)])
    pdf.Root.PageLabels = pikepdf.Dictionary(Nums=[0, pikepdf.Dictionary(S=Name.r)])
    pdf.docinfo[Name.Title] = "Water board papers"
    pdf.docinfo[Name.Author] = "The clerk"
    pdf.save(path)
    return path


BORN_DIGITAL_TEXT = "Born digital page with vector text only"


def born_digital_page(pdf: pikepdf.Pdf, text: str = BORN_DIGITAL_TEXT) -> pikepdf.Page:
    """A Letter page of Helvetica text (no image): a page from a word processor."""
    font = pdf.make_indirect(pikepdf.Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica))
    content = f"BT /F1 18 Tf 72 700 Td ({text}) Tj ET 72 650 m 540 650 l S".encode()
    page = pikepdf.Dictionary(Type=Name.Page, MediaBox=[0, 0, 612, 792], Contents=pikepdf.Stream(pdf, content),
                              Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)))
    pdf.pages.append(pikepdf.Page(page))
    return pdf.pages[-1]


def pdftotext(path: Path, page: int | None = None) -> str:
    args = ["pdftotext", "-layout"] + (["-f", str(page), "-l", str(page)] if page else []) + [str(path), "-"]
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def pdfimages_list(path: Path) -> list[dict]:
    """poppler's ``pdfimages -list``: one dict per image (page, width, height, enc, x_ppi, y_ppi)."""
    out = subprocess.run(["pdfimages", "-list", str(path)], check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines()[2:]:
        f = line.split()
        rows.append({"page": int(f[0]), "type": f[2], "width": int(f[3]), "height": int(f[4]), "color": f[5],
                     "bpc": int(f[7]), "enc": f[8], "x_ppi": int(f[12]), "y_ppi": int(f[13])})
    return rows


def render(path: Path, page: int, dpi: int = 30) -> np.ndarray:
    """poppler's rendering of one page (grey), to compare how pages look."""
    out = subprocess.run(["pdftoppm", "-r", str(dpi), "-f", str(page), "-l", str(page), "-gray", "-png",
                          str(path)], check=True, capture_output=True).stdout
    return np.asarray(Image.open(io.BytesIO(out)).convert("L"))
