"""Text-size estimation and normalisation.

The original SRGAN-on-RVL-CDIP notes found that a model works on text of the pixel height it was
trained on. So each page is resampled until its x-height matches the weights' trained text height,
upscaled, and the result resampled to exactly ``scale`` x the input size.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from srgan.config import UpscaleConfig

log = logging.getLogger(__name__)

MIN_COMPONENTS = 15  # fewer letter-like components than this: no reliable estimate


@dataclass(frozen=True)
class TextHeight:
    """Estimated x-height of a page's body text in pixels, or None with the reason."""

    px: float | None
    reason: str | None = None
    components: int = 0


def otsu_threshold(image: np.ndarray) -> int:
    """Grey level that best separates ink from paper (Otsu 1979)."""
    hist = np.bincount(image.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    levels = np.arange(256)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    w1 = total - w0
    mean_all = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean_all * w0 - m0 * total) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = 0
    return int(np.argmax(between))


def ink_mask(image: np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of dark pixels (ink), by Otsu's threshold capped to dark-ish levels."""
    if image.max() - image.min() < 32:  # flat page: no contrast, no ink
        return np.zeros(image.shape, dtype=bool)
    thr = min(otsu_threshold(image), 200)
    return image <= thr


def estimate_text_height(image: np.ndarray) -> TextHeight:
    """Estimate the x-height (px) of the body text of an (H, W) uint8 grey page.

    Ink is found by Otsu's threshold; connected components that look like letters (not specks,
    rules or pictures) are kept, and the most frequent component height is taken: lower-case
    letters without ascenders (a c e m n o r s u v w x z) are the largest group of body text.
    """
    from scipy import ndimage  # scipy is a dependency; imported here to keep import time low

    ink = ink_mask(image)
    frac = float(ink.mean()) if ink.size else 0.0
    if frac < 0.0005:
        return TextHeight(None, "blank page: no ink found")
    if frac > 0.6:
        return TextHeight(None, f"page is mostly ink ({frac:.0%}): no text found")
    labels, count = ndimage.label(ink)
    if count == 0:
        return TextHeight(None, "blank page: no ink found")
    slices = ndimage.find_objects(labels)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    heights = np.array([s[0].stop - s[0].start for s in slices])
    widths = np.array([s[1].stop - s[1].start for s in slices])
    fill = sizes / np.maximum(heights * widths, 1)
    page_h = image.shape[0]
    letter = (
        (heights >= 3)
        & (heights <= max(3, page_h // 8))
        & (widths <= heights * 3)
        & (widths * 8 >= heights)
        & (fill > 0.08)
        & (fill < 0.95)
    )
    h = heights[letter]
    if h.size < MIN_COMPONENTS:
        return TextHeight(None, f"too few letter-like components ({h.size})", int(h.size))
    hist = np.bincount(h).astype(np.float64)
    smooth = np.convolve(hist, [0.25, 0.5, 0.25], mode="same")
    peak = int(np.argmax(smooth))
    # refine to a sub-pixel mean over the peak's neighbourhood
    lo, hi = max(peak - 1, 0), min(peak + 2, hist.size)
    weights = hist[lo:hi]
    px = float((np.arange(lo, hi) * weights).sum() / max(weights.sum(), 1))
    return TextHeight(px, None, int(h.size))


def normalisation_factor(estimate: TextHeight, target_px: float, cfg: UpscaleConfig) -> float:
    """Resampling factor that brings the estimated text height to target_px (1.0 when off or unknown)."""
    if not cfg.normalise or estimate.px is None or target_px <= 0:
        return 1.0
    factor = target_px / estimate.px
    if abs(math.log(factor)) < math.log1p(cfg.normalise_tolerance):
        return 1.0
    return float(min(max(factor, cfg.normalise_min_factor), cfg.normalise_max_factor))


def resize_to(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic resample of an (H, W) uint8 image to size=(W, H) (Pillow's bicubic, antialiased)."""
    w, h = size
    if image.shape[1] == w and image.shape[0] == h:
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.Resampling.BICUBIC))


def resize(image: np.ndarray, factor: float) -> np.ndarray:
    """Bicubic resample of an (H, W) uint8 image by factor (sizes rounded, at least 1 px)."""
    if factor == 1.0:
        return image
    h, w = image.shape[:2]
    return resize_to(image, (max(1, round(w * factor)), max(1, round(h * factor))))
