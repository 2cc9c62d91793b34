"""PDF pages rendered one at a time by poppler (through pdf2image), each checked against the limits."""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..config import LimitsConfig, PdfConfig
from .decode import to_grey, to_pixels
from .refs import DocumentRef, Page, error_page, one_line, where

logger = logging.getLogger(__name__)

_SIZE = re.compile(r"([0-9.]+)\s*x\s*([0-9.]+)\s*pts")
_PAGE_SIZE_KEY = re.compile(r"Page\s+(\d+)\s+size")
_PAGE_ROT_KEY = re.compile(r"Page\s+(\d+)\s+rot")
# document metadata pdfinfo reports that a PDF's Info dictionary holds (dates raw: D:YYYYMMDDHHmmSS...)
INFO_KEYS = ("Title", "Author", "Subject", "Keywords", "Creator", "Producer", "CreationDate", "ModDate")


def read_pdf(doc: DocumentRef, src: Path | bytes, pdf: PdfConfig, limits: LimitsConfig,
             color: str = "grey") -> Iterator[Page]:
    """Yield one Page per PDF page; pages over limits.max_pixels are error Pages.

    Each Page records its size in points as displayed (rotation applied) and the document's
    metadata, which the output document carries over. color "auto" renders in colour and keeps
    pages that have colour as RGB.

    Pages past pdf.max_pages become one error Page (at index max_pages) for the whole rest, so a
    PDF claiming millions of pages costs one row, not millions.
    """
    if isinstance(src, bytes):
        if not src:
            yield error_page(doc, f"empty file: {where(doc)}")
            return
        # poppler needs a file: one private temporary copy for the whole document
        with tempfile.TemporaryDirectory(prefix="srgan-pdf-") as tmp:
            path = Path(tmp) / "doc.pdf"
            path.write_bytes(src)
            yield from _read_path(doc, path, pdf, limits, color)
        return
    if src.stat().st_size == 0:
        yield error_page(doc, f"empty file: {where(doc)}")
        return
    yield from _read_path(doc, src, pdf, limits, color)


def _read_path(doc: DocumentRef, path: Path, pdf: PdfConfig, limits: LimitsConfig,
               color: str = "grey") -> Iterator[Page]:
    from pdf2image import convert_from_path, pdfinfo_from_path
    from PIL import Image

    # pdf2image decodes poppler's output with Pillow: the same limit as image files (see decode.py)
    Image.MAX_IMAGE_PIXELS = limits.max_pixels

    try:
        info = pdfinfo_from_path(str(path), timeout=pdf.render_timeout_s, rawdates=True)
        count = int(info["Pages"])
        last = min(count, pdf.max_pages)
        per_page = pdfinfo_from_path(str(path), timeout=pdf.render_timeout_s, first_page=1,
                                     last_page=last) if last else {}
        sizes = _page_sizes(per_page)
    except Exception as exc:  # noqa: BLE001 - a PDF poppler cannot read is a bad input
        yield error_page(doc, f"cannot read PDF: {one_line(exc)} ({where(doc)})")
        return
    if count < 1:
        yield error_page(doc, f"PDF has no pages ({where(doc)})")
        return
    default = _parse_size(str(info.get("Page size", "")))
    metadata = {k: str(info[k]).strip() for k in INFO_KEYS if str(info.get(k, "")).strip()}
    for index in range(last):
        page_no = index + 1
        if index in doc.skip_pages:
            continue
        size_pt = sizes.get(page_no, default)
        if size_pt is not None:
            width, height = (round(v * pdf.dpi / 72) for v in size_pt)
            if width * height > limits.max_pixels:
                yield error_page(doc, f"PDF page too large: {width}x{height} pixels at {pdf.dpi} dpi > "
                                 f"limits.max_pixels={limits.max_pixels} ({where(doc, index)})", index, count)
                continue
        try:
            images = convert_from_path(str(path), dpi=pdf.dpi, first_page=page_no, last_page=page_no,
                                       grayscale=color != "auto", timeout=pdf.render_timeout_s)
            if not images:
                raise ValueError("poppler rendered nothing")
            image = images[0]
            if image.width * image.height > limits.max_pixels:
                raise ValueError(f"rendered {image.width}x{image.height} > limits.max_pixels")
            pixels = to_pixels(image, color) if color == "auto" else to_grey(image)
        except Exception as exc:  # noqa: BLE001
            reason = (f"render took longer than pdf.render_timeout_s={pdf.render_timeout_s}"
                      if type(exc).__name__ == "PDFPopplerTimeoutError" else one_line(exc))
            yield error_page(doc, f"cannot render PDF page: {reason} ({where(doc, index)})", index, count)
            continue
        yield Page(doc=doc, page_index=index, page_count=count, image=pixels, dpi=float(pdf.dpi), format="PDF",
                   size_pt=size_pt, info=metadata)
    if count > last and last not in doc.skip_pages:
        pages = f"page {last + 1}" if count == last + 1 else f"pages {last + 1}-{count}"
        yield error_page(doc, f"PDF has {count} pages: {pages} beyond pdf.max_pages={pdf.max_pages} not rendered "
                         f"({where(doc)})", last, count)


def _page_sizes(info: dict) -> dict[int, tuple[float, float]]:
    """pdfinfo -f/-l output: {page number: (width_pt, height_pt)} as displayed (a 90/270 rotation swaps them)."""
    sizes, turned = {}, set()
    for key, value in info.items():
        rot = _PAGE_ROT_KEY.fullmatch(key.strip())
        if rot and str(value).strip() in ("90", "270"):
            turned.add(int(rot.group(1)))
        match = _PAGE_SIZE_KEY.fullmatch(key.strip())
        size = _parse_size(str(value)) if match else None
        if match and size:
            sizes[int(match.group(1))] = size
    return {n: (h, w) if n in turned else (w, h) for n, (w, h) in sizes.items()}


def _parse_size(text: str) -> tuple[float, float] | None:
    match = _SIZE.search(text)
    return (float(match.group(1)), float(match.group(2))) if match else None
