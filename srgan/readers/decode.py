"""Image files (TIFF, PNG, JPEG) -> 8-bit grey pages (colour pages kept as RGB with ``color="auto"``),
with the pixel limit checked before decoding."""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..imaging.colour import has_colour
from .refs import DocumentRef, Page, error_page, one_line, where

logger = logging.getLogger(__name__)

_ALPHA_MODES = {"LA", "La", "PA", "RGBA", "RGBa"}
_U16_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
_MIN_DPI = 10.0


def read_image(doc: DocumentRef, src: Path | bytes, max_pixels: int, color: str = "grey") -> Iterator[Page]:
    """Yield one Page per frame (TIFF) or one Page; every failure becomes an error Page.

    color: "grey" turns every page grey; "auto" keeps pages that have colour as RGB (see to_pixels).
    """
    # Pillow refuses images over 2x this at open time; our own check below refuses 1x.
    Image.MAX_IMAGE_PIXELS = max_pixels
    size = len(src) if isinstance(src, bytes) else src.stat().st_size
    if size == 0:
        yield error_page(doc, f"empty file: {where(doc)}")
        return
    fh = io.BytesIO(src) if isinstance(src, bytes) else src.open("rb")
    with fh:
        try:
            im = Image.open(fh)
            fmt = im.format or "image"
            count = int(getattr(im, "n_frames", 1)) if fmt == "TIFF" else 1
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad input
            yield error_page(doc, f"{_what(exc, _ext_format(doc))}: {_reason(exc, max_pixels)} ({where(doc)})")
            return
        with im:
            for index in range(count):
                if index not in doc.skip_pages:
                    yield _frame(doc, im, fmt, index, count, max_pixels, color)


def _frame(doc: DocumentRef, im: Image.Image, fmt: str, index: int, count: int,
           max_pixels: int, color: str = "grey") -> Page:
    try:
        if index:
            im.seek(index)
        width, height = im.size
        if width * height > max_pixels:
            return error_page(doc, f"{fmt} page too large: {width}x{height} pixels > limits.max_pixels="
                              f"{max_pixels} ({where(doc, index)})", index, count)
        pixels = to_pixels(im, color)
        return Page(doc=doc, page_index=index, page_count=count, image=pixels, dpi=dpi_of(im), format=fmt)
    except Exception as exc:  # noqa: BLE001
        return error_page(doc, f"{_what(exc, fmt)}: {one_line(exc)} ({where(doc, index)})", index, count)


def _reason(exc: Exception, max_pixels: int) -> str:
    if isinstance(exc, UnidentifiedImageError):
        return "cannot identify image file"
    claimed = re.search(r"\((\d+) pixels\)", str(exc))
    if isinstance(exc, Image.DecompressionBombError) and claimed:
        return f"header claims {claimed.group(1)} pixels > limits.max_pixels={max_pixels}"
    return one_line(exc)


def _what(exc: Exception, fmt: str) -> str:
    if isinstance(exc, Image.DecompressionBombError):
        return f"{fmt} too large"
    if isinstance(exc, UnidentifiedImageError):
        return f"not a readable {fmt}"
    return f"truncated {fmt}" if "truncated" in str(exc).lower() else f"cannot decode {fmt}"


def _ext_format(doc: DocumentRef) -> str:
    ext = doc.member.rsplit(".", 1)[-1].lower() if "." in doc.member else "image"
    return {"tif": "TIFF", "tiff": "TIFF", "jpg": "JPEG", "jpeg": "JPEG"}.get(ext, ext.upper())


def dpi_of(im: Image.Image) -> float | None:
    """Horizontal dpi from the file, or None when missing or nonsensical."""
    dpi = im.info.get("dpi")
    try:
        value = float(dpi[0] if isinstance(dpi, (tuple, list)) else dpi)
    except (TypeError, ValueError, IndexError, ZeroDivisionError):
        return None
    # writers that know nothing store 1 (Pillow's TIFF default): treat tiny values as unknown.
    # PNG stores pixels per metre: 11811 reads back as 299.9994, so round to 0.01 dpi.
    return round(value, 2) if math.isfinite(value) and value >= _MIN_DPI else None


_GREY_MODES = {"L", "1", "I", "F", "LA", "La", *_U16_MODES}


def to_pixels(im: Image.Image, color: str) -> np.ndarray:
    """The page's pixels: (H, W) grey, or with color="auto" (H, W, 3) RGB when the page has colour.

    Grey modes take the grey path unchanged; a colour-mode page whose content is grey (has_colour)
    is converted exactly as to_grey would.
    """
    if color != "auto" or im.mode in _GREY_MODES:
        return to_grey(im)
    rgb = to_rgb_image(im)
    return np.ascontiguousarray(np.asarray(rgb)) if has_colour(rgb) else to_grey(im)


def to_rgb_image(im: Image.Image) -> Image.Image:
    """Any colour Pillow mode -> an RGB image; alpha is composited on white."""
    if im.mode in _ALPHA_MODES or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def to_grey(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> (H, W) uint8 grey, C-contiguous; alpha is composited on white."""
    mode = im.mode
    if mode == "L":
        arr = np.asarray(im)
    elif mode == "1":
        arr = np.asarray(im.convert("L"))
    elif mode in _U16_MODES:
        arr = _scale_uint16(np.asarray(im))
    elif mode == "I":
        arr = _scale_int(np.asarray(im))
    elif mode == "F":
        arr = _scale_float(np.asarray(im))
    elif mode in _ALPHA_MODES or (mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        arr = np.asarray(Image.alpha_composite(white, rgba).convert("L"))
    elif mode == "P":
        arr = np.asarray(im.convert("L"))
    else:  # RGB, CMYK, YCbCr, LAB, HSV, ...
        arr = np.asarray(im.convert("RGB").convert("L"))
    if arr.ndim != 2 or arr.dtype != np.uint8:
        raise ValueError(f"unsupported pixel layout {arr.dtype}{arr.shape} from mode {mode}")
    return np.ascontiguousarray(arr)


def _scale_uint16(a: np.ndarray) -> np.ndarray:
    return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _scale_int(a: np.ndarray) -> np.ndarray:
    """32-bit ints: 16-bit data (the usual case) by 1/257, anything else stretched min..max."""
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    if lo >= 0 and hi <= 65535:
        return _scale_uint16(a)
    return _stretch(a.astype(np.float64), lo, hi)


def _scale_float(a: np.ndarray) -> np.ndarray:
    """Floats: [0, 1] -> 0-255, [0, 255] as is, anything else stretched min..max."""
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo >= 0 and hi <= 1:
        return np.clip(np.rint(a * 255), 0, 255).astype(np.uint8)
    if lo >= 0 and hi <= 255:
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    return _stretch(a, lo, hi)


def _stretch(a: np.ndarray, lo: float, hi: float) -> np.ndarray:
    if hi <= lo:
        return np.zeros(a.shape, np.uint8)
    return np.clip(np.rint((a - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)
