"""HR crop -> LR input: plain bicubic, or a random scan-like chain (numpy/PIL only).

The scan chain (``training.degradation: scan``) imitates what a flatbed scanner and an office
workflow do to a page: ink spreading or thinning, optical blur, downsampling, sensor noise,
bitonal thresholding and JPEG re-encoding; each step is applied with some probability and random
strength. Ground truth stays the clean HR crop, so the model learns to undo them.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter


def bicubic_down(hr: np.ndarray, scale: int) -> np.ndarray:
    """(H, W) uint8 -> (H // scale, W // scale) uint8 by PIL bicubic (antialiased when reducing)."""
    h, w = hr.shape
    return np.asarray(Image.fromarray(hr).resize((w // scale, h // scale), Image.Resampling.BICUBIC))


def ink_spread(img: np.ndarray, grow: bool) -> np.ndarray:
    """Dark ink grows (min filter) or thins (max filter) by one pixel."""
    filt = ImageFilter.MinFilter(3) if grow else ImageFilter.MaxFilter(3)
    return np.asarray(Image.fromarray(img).filter(filt))


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius=sigma)))


def add_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = img.astype(np.float32) + rng.normal(0.0, sigma, size=img.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def binarise(img: np.ndarray, threshold: int) -> np.ndarray:
    return np.where(img < threshold, 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("L"))


_RESAMPLERS = (Image.Resampling.BICUBIC, Image.Resampling.BILINEAR, Image.Resampling.BOX)


def scan_degrade(hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W) uint8 HR crop -> (H // scale, W // scale) uint8 LR crop through a random scan chain."""
    h, w = hr.shape
    x = hr
    if rng.random() < 0.3:  # toner / ink bleed or a light print, at HR resolution
        x = ink_spread(x, grow=bool(rng.random() < 0.6))
    if rng.random() < 0.7:  # optics and paper: blur of up to about one LR pixel
        x = blur(x, float(rng.uniform(0.2, 0.6 * scale)))
    resample = _RESAMPLERS[int(rng.integers(len(_RESAMPLERS)))]
    x = np.asarray(Image.fromarray(x).resize((w // scale, h // scale), resample))
    if rng.random() < 0.5:  # sensor noise
        x = add_noise(x, float(rng.uniform(1.0, 8.0)), rng)
    if rng.random() < 0.1:  # bitonal (fax-like) scans
        x = binarise(x, int(rng.integers(100, 180)))
    if rng.random() < 0.5:  # JPEG re-encoding by the scanner or the archive
        x = jpeg(x, int(rng.integers(40, 96)))
    return np.ascontiguousarray(x, dtype=np.uint8)


def degrade(hr: np.ndarray, scale: int, mode: str, rng: np.random.Generator) -> np.ndarray:
    """LR for an HR crop: ``mode`` is ``training.degradation`` (``bicubic`` or ``scan``)."""
    if mode == "bicubic":
        return bicubic_down(hr, scale)
    if mode == "scan":
        return scan_degrade(hr, scale, rng)
    raise ValueError(f"training.degradation: must be bicubic or scan, got {mode!r}")
