"""PDF pages read one at a time, each checked against the limits: a scan page as its scan image's own
pixels (pikepdf; ``pdf.dpi: native``), any other page rendered by poppler (through pdf2image) at the
resolution srgan.pdf.plan decides (the scan's, ``pdf.fallback_dpi``, or a forced ``pdf.dpi``)."""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pikepdf

from ..config import LimitsConfig, PdfConfig
from ..pdf.image import scan_pixels
from ..pdf.plan import PagePlan, plan_page, rasterised_after_all, rendered
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
    from pdf2image import pdfinfo_from_path
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
    with _Structure(path) as structure:
        for index in range(last):
            if index in doc.skip_pages:
                continue
            plan = _plan(structure, index, pdf, limits, sizes.get(index + 1, default))
            if plan.path == "in_place":
                try:
                    pixels = _scan(structure, plan, color, limits)
                except Exception as exc:  # noqa: BLE001 - an image pikepdf cannot decode: poppler renders the page
                    logger.debug("%s: scan image not decoded (%s); page rendered", where(doc, index), one_line(exc))
                    plan = rasterised_after_all(plan, f"scan image not decoded: {one_line(exc, 120)}",
                                                limits.max_pixels)
                else:
                    yield _page(doc, index, count, pixels, plan, metadata)
                    continue
            yield _rendered(doc, path, index, count, plan, metadata, pdf, limits, color)
    if count > last and last not in doc.skip_pages:
        pages = f"page {last + 1}" if count == last + 1 else f"pages {last + 1}-{count}"
        yield error_page(doc, f"PDF has {count} pages: {pages} beyond pdf.max_pages={pdf.max_pages} not rendered "
                         f"({where(doc)})", last, count)


class _Structure:
    """The document opened by pikepdf for the plans and the scan images (None when pikepdf cannot open it:
    its pages are then rendered, as a forced or fallback dpi says)."""

    def __init__(self, path: Path) -> None:
        self.path, self.pdf, self.why = path, None, None

    def __enter__(self) -> _Structure:
        try:
            self.pdf = pikepdf.open(self.path)
        except Exception as exc:  # noqa: BLE001 - poppler may still render what pikepdf refuses
            self.why = f"not read by pikepdf: {one_line(exc, 120)}"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pdf is not None:
            self.pdf.close()


def _plan(structure: _Structure, index: int, pdf: PdfConfig, limits: LimitsConfig,
          size_pt: tuple[float, float] | None) -> PagePlan:
    """plan_page, or when the page cannot be inspected, a rendering at the forced or fallback dpi."""
    why = structure.why
    if structure.pdf is not None:
        try:
            return plan_page(structure.pdf, structure.pdf.pages[index], pdf, limits.max_pixels)
        except Exception as exc:  # noqa: BLE001 - a page pikepdf cannot walk is rendered
            why = f"page not inspected: {one_line(exc, 120)}"
    if not pdf.native:
        return PagePlan("rasterised", float(pdf.dpi), "forced", size_pt or (0.0, 0.0), False)
    return rendered(pdf.fallback_dpi, "fallback", size_pt or (0.0, 0.0), False, why, limits.max_pixels)


def _scan(structure: _Structure, plan: PagePlan, color: str, limits: LimitsConfig) -> np.ndarray:
    """The scan image's own pixels, turned as the page shows them; grey, or RGB with colour (color auto)."""
    from PIL import Image

    assert structure.pdf is not None and plan.image is not None and plan.orientation is not None
    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    image = scan_pixels(structure.pdf, plan.image)
    pixels = to_pixels(image, color) if color == "auto" else to_grey(image)
    return plan.orientation.to_display(pixels)


def _page(doc: DocumentRef, index: int, count: int, pixels: np.ndarray, plan: PagePlan, metadata: dict) -> Page:
    return Page(doc=doc, page_index=index, page_count=count, image=pixels, dpi=plan.dpi, format="PDF",
                size_pt=plan.size_pt, info=metadata, pdf_path=plan.path, dpi_reason=plan.dpi_reason,
                pdf_note=plan.note, has_text=plan.has_text)


def _rendered(doc: DocumentRef, path: Path, index: int, count: int, plan: PagePlan, metadata: dict,
              pdf: PdfConfig, limits: LimitsConfig, color: str) -> Page:
    """The page rendered by poppler (its crop box, as viewers show it) at the plan's dpi."""
    from pdf2image import convert_from_path

    width, height = (round(v * plan.dpi / 72) for v in plan.size_pt)
    if width * height > limits.max_pixels:
        return error_page(doc, f"PDF page too large: {width}x{height} pixels at {plan.dpi:g} dpi > "
                          f"limits.max_pixels={limits.max_pixels} ({where(doc, index)})", index, count)
    try:
        images = convert_from_path(str(path), dpi=plan.dpi, first_page=index + 1, last_page=index + 1,
                                   grayscale=color != "auto", use_cropbox=True, timeout=pdf.render_timeout_s)
        if not images:
            raise ValueError("poppler rendered nothing")
        image = images[0]
        if image.width * image.height > limits.max_pixels:
            raise ValueError(f"rendered {image.width}x{image.height} > limits.max_pixels")
        pixels = to_pixels(image, color) if color == "auto" else to_grey(image)
    except Exception as exc:  # noqa: BLE001
        reason = (f"render took longer than pdf.render_timeout_s={pdf.render_timeout_s}"
                  if type(exc).__name__ == "PDFPopplerTimeoutError" else one_line(exc))
        return error_page(doc, f"cannot render PDF page: {reason} ({where(doc, index)})", index, count)
    return _page(doc, index, count, pixels, plan, metadata)


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
