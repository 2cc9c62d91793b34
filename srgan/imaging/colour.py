"""Colour pages: tell colour from grey, split a page into luminance and chroma, and put it back.

The model is trained on grey pages, so a colour page is upscaled as luminance (Y of JPEG's
full-range YCbCr, ITU-R BT.601 weights: the same luma Pillow's grey conversion uses) through the
model, and its chroma (Cb, Cr) with a resampling filter; then the three are recombined.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageChops

# A pixel is coloured when |Cb - 128| or |Cr - 128| exceeds this (of 128). Yellow highlighter is ~36-78,
# a blue ballpoint ~30-60; JPEG noise on a grey scan stays within a few levels.
CHROMA_THRESHOLD = 16
# A page has colour when at least this share of its pixels (and COLOUR_MIN_PIXELS) is coloured.
COLOUR_MIN_SHARE = 2e-4
COLOUR_MIN_PIXELS = 16
# ... or when the paper itself is tinted: this share of pixels beyond TINT_THRESHOLD (cream or yellowed
# paper is ~8-13 levels off grey; a grey JPEG scan's chroma noise stays below it on all but ~0.3%).
TINT_THRESHOLD = 8
TINT_MIN_SHARE = 0.05
# Chroma is upscaled with Lanczos: on the coloured pixels of the six real colour scans its mean
# |dCb|,|dCr| error was 1.22 levels against 1.30 with bicubic (docs/measurements.md;
# python -m srgan.fidelity.colour_study).
CHROMA_RESAMPLE = Image.Resampling.LANCZOS


def to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W, 3) uint8 YCbCr (full range, rounded: see split_luma)."""
    y, cbcr = split_luma(rgb)
    return np.concatenate([y[..., None], cbcr], axis=-1)


_OFF_GREY_LUT = [abs(v - 128) for v in range(256)]  # |Cb - 128| per level


def has_colour(rgb: np.ndarray | Image.Image) -> bool:
    """Whether an RGB page (array or Pillow image) is a colour page: coloured marks on it, or tinted paper.

    Measured on the shared scans: the grey JPEGs (brothers.150.jpg, ocropy-testpage.png) are grey;
    every page of colour/ (incl. cream and yellowed paper) and the yellowed cat.*.jpg pages are colour.
    All in Pillow (a histogram of max(|Cb-128|, |Cr-128|)): ~0.25 s for a 300 dpi Letter page.
    """
    im = rgb if isinstance(rgb, Image.Image) else Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    _, cb, cr = (im if im.mode == "RGB" else im.convert("RGB")).convert("YCbCr").split()
    hist = ImageChops.lighter(cb.point(_OFF_GREY_LUT), cr.point(_OFF_GREY_LUT)).histogram()
    pixels = im.width * im.height
    if sum(hist[CHROMA_THRESHOLD + 1 :]) >= max(COLOUR_MIN_PIXELS, COLOUR_MIN_SHARE * pixels):
        return True  # coloured marks: letterhead, stamp, ink, highlighter
    return sum(hist[TINT_THRESHOLD + 1 :]) >= TINT_MIN_SHARE * pixels


# JPEG's full-range YCbCr as Pillow conversion matrices (Pillow rounds them; its own "YCbCr" mode truncates,
# which measured -0.41 levels on Y and Cb and, after a round trip, -1.4 on R and -1.7 on B)
_TO_YCBCR = (0.299, 0.587, 0.114, 0.0, -0.168736, -0.331264, 0.5, 128.0, 0.5, -0.418688, -0.081312, 128.0)
_TO_RGB = (1.0, 0.0, 1.402, -1.402 * 128, 1.0, -0.344136, -0.714136, (0.344136 + 0.714136) * 128,
           1.0, 1.772, 0.0, -1.772 * 128)


def split_luma(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) RGB -> (Y (H, W), CbCr (H, W, 2)), both uint8 and C-contiguous.

    Y is Pillow's grey conversion (BT.601 luma, rounded): exactly what a grey page would be.
    """
    im = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    y = np.asarray(im.convert("L"))
    cbcr = np.asarray(im.convert("RGB", _TO_YCBCR))[..., 1:]
    return np.ascontiguousarray(y), np.ascontiguousarray(cbcr)


def upscale_chroma(cbcr: np.ndarray, size: tuple[int, int],
                   resample: Image.Resampling = CHROMA_RESAMPLE) -> np.ndarray:
    """(h, w, 2) chroma -> (H, W, 2) at size=(W, H) with the chroma filter."""
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(cbcr[..., k])).resize(size, resample))
                     for k in (0, 1)], axis=-1)


def merge_luma(y: np.ndarray, cbcr: np.ndarray) -> np.ndarray:
    """Y (H, W) + CbCr (H, W, 2) -> (H, W, 3) uint8 RGB (JPEG's inverse, rounded, clipped to 0-255)."""
    ycc = np.ascontiguousarray(np.concatenate([y[..., None], cbcr], axis=-1))
    return np.asarray(Image.fromarray(ycc, "RGB").convert("RGB", _TO_RGB))


def recombine(y: np.ndarray, cbcr: np.ndarray, resample: Image.Resampling = CHROMA_RESAMPLE) -> np.ndarray:
    """The model's Y (H, W) + the input's chroma (h, w, 2), upscaled to Y's size -> (H, W, 3) RGB.

    The same as merge_luma(y, upscale_chroma(cbcr, size)), in Pillow planes (no array stacking)."""
    size = (y.shape[1], y.shape[0])
    planes = [Image.fromarray(np.ascontiguousarray(y))] + [
        Image.fromarray(np.ascontiguousarray(cbcr[..., k])).resize(size, resample) for k in (0, 1)]
    return np.asarray(Image.merge("RGB", planes).convert("RGB", _TO_RGB))


def luminance(image: np.ndarray) -> np.ndarray:
    """Y of an RGB page, or the grey page itself."""
    return image if image.ndim == 2 else split_luma(image)[0]


def chroma_error(output_rgb: np.ndarray, reference_rgb: np.ndarray) -> tuple[float, float, float]:
    """(mean |dCb|+|dCr| / 2, mean signed dCb, mean signed dCr) in YCbCr levels, over all pixels."""
    a = to_ycbcr(output_rgb)[..., 1:].astype(np.float64)
    b = to_ycbcr(reference_rgb)[..., 1:].astype(np.float64)
    diff = a - b
    return float(np.abs(diff).mean()), float(diff[..., 0].mean()), float(diff[..., 1].mean())
