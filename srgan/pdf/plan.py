"""How each PDF page is read: its own scan image's pixels (``in_place``) or a poppler rendering
(``rasterised``), and at which resolution (``pdf.dpi``: ``native`` or a number).

Under ``native`` a page whose largest image covers at least half of it (``SCAN_COVER``) is a scan
page, read at that image's resolution as placed on the page (pixels per inch of page). When the
image can be replaced where it is (one dominant image, an XObject, a grey or RGB family colour space,
at most 8 bits, placed upright or turned by a multiple of 90 degrees, mostly on the page, within
``limits.max_pixels``), the page is ``in_place``: its raster is the image's own pixels turned as the
page shows them, and the output PDF gets the upscaled image in that same XObject. Other pages are
``rasterised`` by poppler: a scan page at its image's ppi (rounded), a page without a scan image at
``pdf.fallback_dpi``, both lowered to fit ``limits.max_pixels`` (``capped``). A number for ``pdf.dpi``
renders every page at it (``forced``; a page over the limit is an error, as before native existed).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass

import numpy as np
import pikepdf

from srgan.config import PdfConfig
from srgan.pdf.placement import MAX_OPERATORS, ImageDraw, PageLayout, page_layout

SCAN_COVER = 0.5  # the largest image covers at least this share of the page: a scan page, read at its ppi
OTHERS_MAX = 0.1  # in place: the page's other images cover at most this share of it together
VISIBLE_MIN = 0.8  # in place: at least this share of the image lies on the page (not mostly clipped off)
SKEW = 1e-3  # an image axis counts as upright when its off-axis part is under this share
MIN_DPI = 10
_FILTERS = {"/FlateDecode", "/LZWDecode", "/RunLengthDecode", "/ASCIIHexDecode", "/ASCII85Decode", "/DCTDecode",
            "/CCITTFaxDecode", "/JBIG2Decode"}
_GREY = {"/DeviceGray", "/CalGray"}
_RGB = {"/DeviceRGB", "/CalRGB"}

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in user space


@dataclass(frozen=True)
class Orientation:
    """How an image's pixel grid lies on the displayed page: transposed, then rows and columns flipped."""

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False

    def to_display(self, pixels: np.ndarray) -> np.ndarray:
        """Image grid (rows, cols[, channels]) -> as the page shows it."""
        out = pixels.swapaxes(0, 1) if self.transpose else pixels
        out = out[::-1] if self.flip_rows else out
        out = out[:, ::-1] if self.flip_cols else out
        return np.ascontiguousarray(out)

    def from_display(self, pixels: np.ndarray) -> np.ndarray:
        """As the page shows it -> the image's own grid (the inverse of to_display)."""
        out = pixels[:, ::-1] if self.flip_cols else pixels
        out = out[::-1] if self.flip_rows else out
        out = out.swapaxes(0, 1) if self.transpose else out
        return np.ascontiguousarray(out)

    @property
    def upright(self) -> bool:
        return not (self.transpose or self.flip_rows or self.flip_cols)


@dataclass(frozen=True)
class PagePlan:
    """How one page is read. ``dpi``: the page raster's pixels per inch across the displayed page."""

    path: str  # in_place | rasterised
    dpi: float
    dpi_reason: str  # native | fallback | forced | capped
    size_pt: tuple[float, float]  # (width, height) of the crop box as displayed (rotation applied)
    has_text: bool  # the page shows text (any text operator, invisible OCR text included)
    note: str | None = None  # why a page under native dpi is rasterised
    image: tuple[int, int] | None = None  # in_place: the scan image XObject (object, generation)
    orientation: Orientation | None = None  # in_place: how its grid lies on the displayed page


@dataclass(frozen=True)
class ScanImage:
    """The page's largest image and how it sits on the page."""

    draw: ImageDraw
    cover: float  # share of the page it covers
    visible: float  # share of it on the page
    others: float  # share of the page the other images cover together
    orientation: Orientation | None  # None: rotated by another angle or skewed
    ppi: tuple[float, float]  # (across the displayed page, down it); for a skewed image (along u, along v)
    nearest: Orientation | None = None  # the multiple of 90 degrees nearest its placement (None: sheared past 45)
    alone: bool = False  # the page shows nothing else: no text, no vector graphics, no other image

    @property
    def placed(self) -> Orientation | None:
        """How the image is read and written in place: its exact orientation, or for a skewed (or slightly
        rotated) image that is all the page shows, the nearest multiple of 90 degrees."""
        return self.orientation or (self.nearest if self.alone else None)


def page_box(page: pikepdf.Page) -> tuple[Box, int]:
    """The crop box (what viewers and poppler show) and the page's /Rotate (0, 90, 180, 270)."""
    x0, y0, x1, y1 = (float(v) for v in page.cropbox)
    rotate = int(_inherited(page.obj, "/Rotate") or 0) % 360
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), rotate if rotate % 90 == 0 else 0


def displayed_size(box: Box, rotate: int) -> tuple[float, float]:
    w, h = box[2] - box[0], box[3] - box[1]
    return (h, w) if rotate in (90, 270) else (w, h)


def _inherited(obj: pikepdf.Object, key: str) -> object:
    for _ in range(32):  # /Parent chains are short; a loop in a damaged file is not followed forever
        if key in obj:
            return obj[key]
        obj = obj.get("/Parent")
        if not isinstance(obj, pikepdf.Dictionary):
            return None
    return None


def _visible_area(draw: ImageDraw, box: Box) -> float:
    xs, ys = zip(*draw.corners(), strict=True)
    w = min(max(xs), box[2]) - max(min(xs), box[0])
    h = min(max(ys), box[3]) - max(min(ys), box[1])
    return max(w, 0.0) * max(h, 0.0) if draw.area() > 0 else 0.0


def _display_vector(x: float, y: float, rotate: int) -> tuple[float, float]:
    """A user-space direction as the displayed page shows it (x right, y down; /Rotate turns clockwise)."""
    x, y = x, -y
    return {0: (x, y), 90: (-y, x), 180: (-x, -y), 270: (y, -x)}[rotate]


def orientation_of(draw: ImageDraw, rotate: int) -> Orientation | None:
    """How the image's grid lies on the displayed page; None when it is not a multiple of 90 degrees."""
    a, b, c, d, _, _ = draw.ctm
    du = _display_vector(a, b, rotate)  # along the columns (u grows: the unit square's x)
    dv = _display_vector(-c, -d, rotate)  # down the rows (v grows: the unit square's y falls)

    def along(vec: tuple[float, float], axis: int) -> bool:
        return abs(vec[1 - axis]) <= SKEW * abs(vec[axis]) and vec[axis] != 0

    if along(du, 0) and along(dv, 1):
        return Orientation(False, dv[1] < 0, du[0] < 0)
    if along(du, 1) and along(dv, 0):
        return Orientation(True, du[1] < 0, dv[0] < 0)
    return None


def nearest_orientation(draw: ImageDraw, rotate: int) -> Orientation | None:
    """The multiple of 90 degrees nearest to how the image's grid lies on the displayed page (a skewed or slightly
    rotated scan: its own grid turned that way is nearest to upright); None when both of its axes lie nearer the
    same page axis (sheared or turned by about 45 degrees) or it has no area."""
    a, b, c, d, _, _ = draw.ctm
    du = _display_vector(a, b, rotate)
    dv = _display_vector(-c, -d, rotate)
    u_axis = 0 if abs(du[0]) > abs(du[1]) else 1 if abs(du[1]) > abs(du[0]) else None
    v_axis = 0 if abs(dv[0]) > abs(dv[1]) else 1 if abs(dv[1]) > abs(dv[0]) else None
    if u_axis is None or v_axis is None or u_axis == v_axis:
        return None
    if u_axis == 0:
        return Orientation(False, dv[1] < 0, du[0] < 0)
    return Orientation(True, du[1] < 0, dv[0] < 0)


def scan_image(layout: PageLayout, box: Box, rotate: int) -> ScanImage | None:
    """The page's largest picture (stencil masks aside) and how it sits; None without one."""
    page_area = (box[2] - box[0]) * (box[3] - box[1])
    pictures = [(_visible_area(d, box), d) for d in layout.draws if not d.stencil and d.width and d.height]
    if not pictures or page_area <= 0:
        return None
    best_area, best = max(pictures, key=lambda p: p[0])
    others = sum(area for area, d in pictures if d is not best and (d.objgen is None or d.objgen != best.objgen))
    orient = orientation_of(best, rotate)
    a, b, c, d, _, _ = best.ctm
    ppi_u = 72 * best.width / math.hypot(a, b) if math.hypot(a, b) else 0.0
    ppi_v = 72 * best.height / math.hypot(c, d) if math.hypot(c, d) else 0.0
    nearest = orient or nearest_orientation(best, rotate)
    ppi = (ppi_v, ppi_u) if nearest is not None and nearest.transpose else (ppi_u, ppi_v)
    alone = len(pictures) == 1 and not layout.text_ops and not layout.paint_ops
    return ScanImage(best, best_area / page_area, best_area / best.area() if best.area() else 0.0,
                     others / page_area, orient, ppi, nearest, alone)


def in_place_obstacle(pdf: pikepdf.Pdf, scan: ScanImage, max_pixels: int) -> str | None:
    """Why the scan image cannot be replaced where it is; None when it can."""
    draw = scan.draw
    if draw.objgen is None:
        return "the scan is an inline image"
    if scan.others > OTHERS_MAX:
        return f"other images cover {scan.others:.0%} of the page"
    if scan.placed is None:
        return ("the scan image is rotated by an angle that is not a multiple of 90 degrees, or skewed"
                + ("" if scan.alone else ", and the page shows more than the image"))
    if scan.visible < VISIBLE_MIN:
        return f"only {scan.visible:.0%} of the scan image lies on the page"
    if draw.width * draw.height > max_pixels:
        return f"the scan image's {draw.width}x{draw.height} pixels are over limits.max_pixels={max_pixels}"
    return image_obstacle(pdf.get_object(draw.objgen))


def image_obstacle(xobj: pikepdf.Object) -> str | None:
    """Why an image XObject's pixels cannot be decoded here and written back; None when they can."""
    if xobj.get("/ImageMask", False):
        return "the scan image is a stencil mask"
    for key in ("/SMask", "/Mask"):
        if key in xobj:
            return f"the scan image has a {key[1:]}"
    bpc = int(xobj.get("/BitsPerComponent", 0))
    if bpc not in (1, 2, 4, 8):
        return f"the scan image has {bpc} bits per component"
    filters = xobj.get("/Filter")
    names = [str(f) for f in filters] if isinstance(filters, pikepdf.Array) else [str(filters)] if filters else []
    for name in names:
        if name not in _FILTERS:
            return f"the scan image is {name[1:]}-encoded"
        if name == "/JBIG2Decode" and shutil.which("jbig2dec") is None:
            return "the scan image is JBIG2-encoded and jbig2dec is not installed"
    family = colour_family(xobj.get("/ColorSpace"))
    if family is None:
        return f"the scan image's colour space {_short(xobj.get('/ColorSpace'))} is not grey or RGB"
    return None


def colour_family(cs: object, depth: int = 0) -> str | None:
    """'grey' or 'rgb' for the colour spaces whose pixels are written back as they are; None otherwise."""
    if isinstance(cs, pikepdf.Name):
        return "grey" if str(cs) in _GREY else "rgb" if str(cs) in _RGB else None
    if not isinstance(cs, pikepdf.Array) or len(cs) < 2 or depth > 2:
        return None
    kind = str(cs[0])
    if kind in _GREY | _RGB:
        return colour_family(cs[0])
    if kind == "/ICCBased":
        n = int(cs[1].get("/N", 0)) if isinstance(cs[1], pikepdf.Stream) else 0
        return {1: "grey", 3: "rgb"}.get(n)
    if kind == "/Indexed" and len(cs) == 4:
        return "rgb" if colour_family(cs[1], depth + 1) else None
    return None


def _short(obj: object) -> str:
    text = str(obj[0]) if isinstance(obj, pikepdf.Array) and len(obj) else str(obj)
    return text.lstrip("/")[:40]


def plan_page(pdf: pikepdf.Pdf, page: pikepdf.Page, cfg: PdfConfig, max_pixels: int) -> PagePlan:
    """How to read one page (see the module's docstring)."""
    box, rotate = page_box(page)
    size = displayed_size(box, rotate)
    try:
        layout = page_layout(page)
    except pikepdf.PdfError as exc:
        layout, unread = PageLayout(), f"page content not read: {str(exc).splitlines()[0] if str(exc) else exc}"
    else:
        unread = None
    if not cfg.native:
        return PagePlan("rasterised", float(cfg.dpi), "forced", size, layout.has_text)
    if layout.truncated:
        unread = f"page content not read to its end: over {MAX_OPERATORS:,} operators"
        return rendered(cfg.fallback_dpi, "fallback", size, layout.has_text, unread, max_pixels)
    scan = scan_image(layout, box, rotate)
    if scan is None or scan.cover < SCAN_COVER:
        note = unread or ("no images" if scan is None else f"largest image covers {scan.cover:.0%} of the page")
        return rendered(cfg.fallback_dpi, "fallback", size, layout.has_text, note, max_pixels)
    obstacle = in_place_obstacle(pdf, scan, max_pixels)
    if obstacle is None:
        return PagePlan("in_place", round(scan.ppi[0], 2), "native", size, layout.has_text, None,
                        scan.draw.objgen, scan.placed)
    return rendered(max(MIN_DPI, round(max(scan.ppi))), "native", size, layout.has_text, obstacle, max_pixels)


def rendered(dpi: int, reason: str, size: tuple[float, float], has_text: bool, note: str | None,
                max_pixels: int) -> PagePlan:
    """A rendered page at dpi, lowered until it fits max_pixels (reason ``capped``)."""
    w, h = size
    if w > 0 and h > 0 and round(w * dpi / 72) * round(h * dpi / 72) > max_pixels:
        dpi = max(1, math.floor(72 * math.sqrt(max_pixels / (w * h))))
        while dpi > 1 and round(w * dpi / 72) * round(h * dpi / 72) > max_pixels:
            dpi -= 1
        reason = "capped"
    return PagePlan("rasterised", float(dpi), reason, size, has_text, note)


def rasterised_after_all(plan: PagePlan, why: str, max_pixels: int) -> PagePlan:
    """The plan of an in_place page whose image could not be decoded: rendered at its ppi instead."""
    return rendered(max(MIN_DPI, round(plan.dpi)), "native", plan.size_pt, plan.has_text, why, max_pixels)
