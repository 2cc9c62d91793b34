"""The upscaled PDF: the input PDF itself with new pixels, everything else as it was.

The input is opened with pikepdf and saved under the new name after two kinds of change:

- an ``in_place`` page (its raster was its scan image's own pixels): the upscaled page, turned back into
  the image's own grid, replaces that image XObject's data (scale x its width and height, in the page file's
  encoding: ``upscale.encoding``, srgan.pdf.image). The content stream that places it is untouched, so the image
  covers the same rectangle of the page (skewed or slightly rotated as it was) and the old pixels are gone.
- a ``rasterised`` page (rendered by poppler): its upscaled picture is painted over the page's crop box,
  upright as the page is shown; the page's own content stays underneath, hidden by the picture.

Either way the pages keep their content streams (an invisible OCR text layer, vector graphics, text),
annotations and links, and the document its outline, page labels, metadata and structure. A page
with a text layer file from srgan.pdf.textlayer gets it laid over it, fitted to what its page file shows: the
scan image as placed (in place), or the displayed page (rasterised).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from pikepdf import Name

from srgan.atomic import atomic_target
from srgan.encoding.codecs import decode
from srgan.pdf.image import like, picture_form, read_pixels, replace_image
from srgan.pdf.placement import Matrix, apply, page_layout
from srgan.pdf.plan import Box, Orientation, colour_family, displayed_size, page_box, scan_image

log = logging.getLogger(__name__)


class NotRebuildable(ValueError):
    """pikepdf cannot open the input PDF: the caller falls back to a PDF of pictures."""


@dataclass(frozen=True)
class PageOut:
    """One page of the output: how it was read and its upscaled files."""

    path: str  # in_place | rasterised (the records' pdf_path)
    page_file: str  # the upscaled page as displayed (PNG or JPEG 2000: upscale.encoding)
    text_pdf: str | None = None  # a text layer to lay over it (srgan.pdf.textlayer)


def rebuild_pdf(source: bytes, pages: list[PageOut], target: Path, producer: str = "srgan-docs") -> None:
    """Write the upscaled PDF to target (atomically): source with the pages' new pixels (module docstring)."""
    try:
        pdf = pikepdf.open(io.BytesIO(source))
    except pikepdf.PdfError as exc:
        raise NotRebuildable(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    with pdf:
        if len(pdf.pages) != len(pages):
            raise ValueError(f"the PDF has {len(pdf.pages)} pages, {len(pages)} upscaled")
        scans = {i: _scan_of(page, i) for i, (page, out) in enumerate(zip(pdf.pages, pages, strict=True))
                 if out.path == "in_place"}  # all read before any image changes
        replaced: set[tuple[int, int]] = set()
        for i, (page, out) in enumerate(zip(pdf.pages, pages, strict=True)):
            if out.path != "in_place" or out.text_pdf:
                _wrap(page)
            if out.path == "in_place":
                scan = scans[i]
                if scan.objgen not in replaced:  # an image shared by several pages is written once
                    _replace(pdf, scan.objgen, scan.orientation, out.page_file, i)
                    replaced.add(scan.objgen)
            else:
                _paint_over(pdf, page, out.page_file)
            if out.text_pdf:
                _lay_text(pdf, page, out.text_pdf, scans.get(i))
        _set_producer(pdf, producer)
        with atomic_target(target) as tmp:
            pdf.save(tmp, object_stream_mode=pikepdf.ObjectStreamMode.preserve)


@dataclass(frozen=True)
class InPlace:
    """An in_place page's scan image: the XObject, how its page file shows its grid, where it is placed."""

    objgen: tuple[int, int]
    orientation: Orientation
    ctm: Matrix


def _scan_of(page: pikepdf.Page, index: int) -> InPlace:
    box, rotate = page_box(page)
    scan = scan_image(page_layout(page), box, rotate)
    if scan is None or scan.draw.objgen is None or scan.placed is None:
        raise ValueError(f"page {index + 1}: no scan image to replace in place")
    return InPlace(scan.draw.objgen, scan.placed, scan.draw.ctm)


def _replace(pdf: pikepdf.Pdf, objgen: tuple[int, int], orientation: Orientation, page_file: str, index: int) -> None:
    xobj = pdf.get_object(objgen)
    width, height = int(xobj.Width), int(xobj.Height)
    pixels, decoded = read_pixels(page_file)
    if not orientation.upright:  # the page file is as displayed: back into the image's own grid
        if decoded is None:
            decoded = decode(Path(page_file).read_bytes())
        pixels = like(orientation.from_display(decoded), pixels)
    if pixels.width % width or pixels.height % height or pixels.width // width != pixels.height // height:
        raise ValueError(f"page {index + 1}: upscaled {pixels.width}x{pixels.height} is not a multiple of the "
                         f"scan image's {width}x{height}")
    replace_image(pdf, objgen, pixels, colour_family(xobj.get("/ColorSpace")))


def display_matrix(box: Box, rotate: int, width: float, height: float, origin: tuple[float, float] = (0, 0)
                   ) -> Matrix:
    """The matrix that lays a width x height form (its own y up, lower-left at origin) over the displayed page:
    upright as the page is shown after /Rotate, stretched to the crop box."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    dw, dh = displayed_size(box, rotate)

    def user(fx: float, fy: float) -> tuple[float, float]:
        dx, dy = (fx - origin[0]) * dw / width, dh - (fy - origin[1]) * dh / height  # displayed, y down
        ux, uy = {0: (dx, dy), 90: (dy, h - dx), 180: (w - dx, h - dy), 270: (w - dy, dx)}[rotate]  # unturned
        return x0 + ux, y1 - uy

    (ox, oy), (e0, f0) = origin, user(*origin)
    (px, py), (qx, qy) = user(ox + 1, oy), user(ox, oy + 1)
    a, b, c, d = px - e0, py - f0, qx - e0, qy - f0  # the images of the form's unit steps
    return a, b, c, d, e0 - a * ox - c * oy, f0 - b * ox - d * oy


def _wrap(page: pikepdf.Page) -> None:
    """The page's own content in q/Q, so that what is painted after it starts from a clean graphics state."""
    page.contents_add(b"q\n", prepend=True)
    page.contents_add(b"\nQ\n")


def _draw(page: pikepdf.Page, form: pikepdf.Object, matrix: Matrix) -> None:
    """Paint a form XObject on top of the page's (wrapped) content."""
    name = page.add_resource(form, Name.XObject, prefix="Srgan")
    cm = " ".join(f"{v:.6f}" for v in matrix)
    page.contents_add(f"q {cm} cm {name} Do Q\n".encode())


def _paint_over(pdf: pikepdf.Pdf, page: pikepdf.Page, page_file: str) -> None:
    box, rotate = page_box(page)
    size = displayed_size(box, rotate)
    pixels, _ = read_pixels(page_file)
    form = picture_form(pdf, pixels, size)
    _draw(page, form, display_matrix(box, rotate, *size))


def image_matrix(scan: InPlace, width: float, height: float, origin: tuple[float, float] = (0, 0)) -> Matrix:
    """The matrix that lays a width x height form (its own y up, lower-left at origin) showing the page file of an
    in_place page (the image's grid turned as ``scan.orientation``) over the image where the page places it."""

    def user(fx: float, fy: float) -> tuple[float, float]:
        x, y = (fx - origin[0]) / width, 1 - (fy - origin[1]) / height  # page file, 0..1, y down
        o = scan.orientation  # back to the image's own grid (Orientation.from_display, on coordinates)
        x = 1 - x if o.flip_cols else x
        y = 1 - y if o.flip_rows else y
        x, y = (y, x) if o.transpose else (x, y)
        return apply(scan.ctm, x, 1 - y)  # the image's unit square: row 0 at its top (v = 1)

    (ox, oy), (e0, f0) = origin, user(*origin)
    (px, py), (qx, qy) = user(ox + 1, oy), user(ox, oy + 1)
    a, b, c, d = px - e0, py - f0, qx - e0, qy - f0
    return a, b, c, d, e0 - a * ox - c * oy, f0 - b * ox - d * oy


def _lay_text(pdf: pikepdf.Pdf, page: pikepdf.Page, text_pdf: str, scan: InPlace | None = None) -> None:
    """The text layer's one page as a form XObject (it is invisible text), fitted to what the page file showed:
    the scan image where it is placed (in_place), else the displayed page."""
    box, rotate = page_box(page)
    with pikepdf.open(text_pdf) as layer:
        form = pdf.copy_foreign(layer.pages[0].as_form_xobject())
    bx0, by0, bx1, by1 = (float(v) for v in form.BBox)
    size, origin = (bx1 - bx0, by1 - by0), (bx0, by0)
    matrix = display_matrix(box, rotate, *size, origin) if scan is None else image_matrix(scan, *size, origin)
    _draw(page, form, matrix)


def _set_producer(pdf: pikepdf.Pdf, producer: str) -> None:
    pdf.docinfo[Name.Producer] = producer
    if "/Metadata" not in pdf.Root:
        return
    try:
        with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=False) as meta:
            meta["pdf:Producer"] = producer
    except Exception as exc:  # noqa: BLE001 - unreadable XMP stays as it was
        log.debug("XMP metadata not updated: %s", exc)
