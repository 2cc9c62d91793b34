"""HR crop -> LR input: plain bicubic, a random scan-like chain, an RVL-CDIP-like chain, or a mix.

The scan chain (``training.degradation: scan``) imitates what a flatbed scanner and an office
workflow do to a page: ink spreading or thinning, optical blur, downsampling, sensor noise,
bitonal thresholding and JPEG re-encoding; each step is applied with some probability and random
strength. Ground truth stays the clean HR crop, so the model learns to undo them.

The RVL-CDIP chain (``rvl``) imitates how RVL-CDIP pages were made: IIT-CDIP office documents
scanned bitonal at about 300 dpi (a threshold or a dither of a slightly blurred page), with
speckle and, for faxed pages, streaks and dropped rows, then shrunk by area averaging so the
longest side is 1000 px (about 100 dpi grey), sometimes with noise and JPEG on top.
``mix`` (the default) draws one chain per crop with the weights of ``training.mix`` (default ``MIX``), so clean
bicubic input is learnt as well.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageFilter

from srgan.config import DegradationMix

INK = 128  # pixels darker than this are ink (speckle drops ink to white, dots paper to black)


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


def area_down(img: np.ndarray, scale: int) -> np.ndarray:
    """(H, W) -> (H // scale, W // scale) by averaging scale x scale blocks (what shrinking a bitonal
    scan to ~100 dpi grey does)."""
    h, w = (img.shape[0] // scale) * scale, (img.shape[1] // scale) * scale
    blocks = img[:h, :w].astype(np.float32).reshape(h // scale, scale, w // scale, scale)
    return np.clip(np.rint(blocks.mean(axis=(1, 3))), 0, 255).astype(np.uint8)


def binary_scan(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A bitonal scan of an HR crop: light optical blur, then a random threshold (70%) or a
    Floyd-Steinberg dither (30%). Output holds only 0 and 255."""
    x = blur(img, float(rng.uniform(0.3, 1.2))) if rng.random() < 0.8 else img
    if rng.random() < 0.7:
        return binarise(x, int(rng.integers(90, 200)))
    return np.asarray(Image.fromarray(x).convert("1", dither=Image.Dither.FLOYDSTEINBERG).convert("L"))


def speckle(img: np.ndarray, rng: np.random.Generator, density: float) -> np.ndarray:
    """Scanner dirt: isolated black dots on paper and white drop-outs in ink, ``density`` of pixels each."""
    out = img.copy()
    dots = rng.random(img.shape) < density
    out[dots & (img >= INK)] = 0
    drops = rng.random(img.shape) < density
    out[drops & (img < INK)] = 255
    return out


def fax_streaks(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fax-like defects: a few dropped (white) or smeared (repeated) rows and thin dark vertical streaks."""
    out = img.copy()
    h, w = img.shape
    for _ in range(int(rng.integers(1, 4))):
        y = int(rng.integers(0, h))
        n = int(rng.integers(1, max(2, h // 40)))
        if rng.random() < 0.5:
            out[y : y + n] = 255  # dropped scan lines
        elif y > 0:
            out[y : y + n] = out[y - 1]  # a repeated line
    if rng.random() < 0.5:
        x = int(rng.integers(0, w))
        cols = slice(x, x + int(rng.integers(1, 3)))
        out[:, cols] = np.minimum(out[:, cols], int(rng.integers(0, 120)))
    return out


def rvl_degrade(hr: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W) uint8 HR crop -> (H // scale, W // scale) LR crop as RVL-CDIP pages were made:
    bitonal scan, speckle, fax streaks, area downsampling, then noise and JPEG."""
    x = hr
    if rng.random() < 0.3:  # toner bleed or a light print
        x = ink_spread(x, grow=bool(rng.random() < 0.6))
    x = binary_scan(x, rng)
    if rng.random() < 0.4:
        x = speckle(x, rng, float(rng.uniform(1e-4, 2e-3)))
    if rng.random() < 0.15:
        x = fax_streaks(x, rng)
    x = area_down(x, scale)
    if rng.random() < 0.3:
        x = blur(x, float(rng.uniform(0.2, 0.6)))
    if rng.random() < 0.4:
        x = add_noise(x, float(rng.uniform(1.0, 6.0)), rng)
    if rng.random() < 0.4:
        x = jpeg(x, int(rng.integers(50, 96)))
    return np.ascontiguousarray(x, dtype=np.uint8)


MODES = ("bicubic", "scan", "rvl", "mix")
MIX = DegradationMix().pairs()  # training.mix's defaults: (chain, probability)


def degrade(hr: np.ndarray, scale: int, mode: str, rng: np.random.Generator,
            mix: Sequence[tuple[str, float]] = MIX) -> np.ndarray:
    """LR for an HR crop: ``mode`` is ``training.degradation`` (``MODES``); ``mix`` the (chain, weight) pairs
    ``mix`` draws from (``DegradationMix.pairs``)."""
    if mode == "mix":
        names, probs = zip(*mix, strict=True)
        mode = names[int(rng.choice(len(names), p=np.array(probs) / sum(probs)))]
    if mode == "bicubic":
        return bicubic_down(hr, scale)
    if mode == "scan":
        return scan_degrade(hr, scale, rng)
    if mode == "rvl":
        return rvl_degrade(hr, scale, rng)
    raise ValueError(f"training.degradation: must be one of {', '.join(MODES)}, got {mode!r}")
