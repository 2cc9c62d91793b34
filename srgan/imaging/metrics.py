"""Image quality on 8-bit grey levels: PSNR and SSIM (Wang et al. 2004, 11x11 Gaussian, sigma 1.5).

Also the consistency PSNR of a run's pages and of the bicubic baseline; the baseline's is computed
at the input size (:func:`bicubic_box_mean`), bit for bit what Pillow's upscale and reduce give.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageChops

from srgan.imaging.textsize import resize_to

PSNR_CAP = 100.0  # identical images: report this instead of infinity so figures stay finite


def _as_tensor(img: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(img, torch.Tensor):
        return img.to(torch.float64)
    return torch.tensor(np.asarray(img), dtype=torch.float64)


def psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """PSNR in dB between two uint8 images of the same shape (peak 255), capped at PSNR_CAP."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"psnr: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype == np.uint8 and a.ndim == 2 \
            and a.size:
        # |a - b| counted per level by Pillow: an exact integer sum of squares, 2x faster than numpy
        hist = ImageChops.difference(Image.fromarray(np.ascontiguousarray(a)),
                                     Image.fromarray(np.ascontiguousarray(b))).histogram()
        mse = sum(count * level * level for level, count in enumerate(hist) if count) / a.size
    elif isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype == np.uint8:
        diff = (a.astype(np.float64) - b).ravel()  # integer-valued: the dot product is an exact sum
        mse = float(np.dot(diff, diff)) / max(diff.size, 1)  # of squares, several times faster than torch
    else:
        mse = float(torch.mean((_as_tensor(a) - _as_tensor(b)) ** 2))
    if mse == 0:
        return PSNR_CAP
    return min(PSNR_CAP, 10.0 * math.log10(255.0**2 / mse))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Mean SSIM between two (H, W) uint8 images (valid region of the Gaussian window)."""
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"ssim: shapes differ {tuple(a.shape)} vs {tuple(b.shape)}")
    x = _as_tensor(a).reshape(1, 1, *a.shape[-2:])
    y = _as_tensor(b).reshape(1, 1, *b.shape[-2:])
    if min(x.shape[-2:]) < 11:
        return 1.0 if torch.equal(x, y) else float("nan")
    g = _gaussian_window().to(x.device)
    gh, gw = g.view(1, 1, 1, -1), g.view(1, 1, -1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, gh), gw)  # separable 11x11 Gaussian, valid region

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float((num / den).mean())


def bicubic_upscale(lr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The baseline the model must beat: Pillow bicubic to size=(W, H)."""
    return resize_to(lr, size)


def consistency_psnr(output: np.ndarray, original_input: np.ndarray) -> float:
    """PSNR of the output downscaled back to the input size against the input.

    An output exactly s times the input (every page of a run) is reduced by s x s box means
    (Pillow's ``Image.reduce``: 1 ms of one core for a 2000x1536 page, against 12 ms for the
    antialiased bicubic downscale used before 2026-12-02; docs/performance.md); any other size is
    resampled with bicubic. The model and the bicubic baseline are measured the same way, so their
    difference (the run's consistency gain) compares like with like.
    """
    h, w = original_input.shape[:2]
    oh, ow = output.shape[:2]
    if oh % h == 0 and ow % w == 0 and oh // h == ow // w and oh > h and output.dtype == np.uint8 \
            and output.ndim == 2:
        back = np.asarray(Image.fromarray(output).reduce(oh // h))
    else:
        back = resize_to(output, (w, h))
    return psnr(back, original_input)


# Pillow's bicubic resampling of 8-bit images (libImaging/Resample.c), emulated by bicubic_box_mean
_PILLOW_BITS = 22  # fixed-point precision of its weights (PRECISION_BITS = 32 - 8 - 2)
_PILLOW_SUPPORT = 2.0  # bicubic support in input pixels when enlarging
_MIN_SIDE = 8  # smaller pages take the plain path: border rows and columns would overlap


def _pillow_cubic(x: float) -> float:
    """Pillow's bicubic kernel (a = -0.5), in its arithmetic order."""
    a = -0.5
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _pillow_weights(n: int, scale: int, out: int) -> tuple[int, tuple[int, ...]]:
    """(first input pixel, fixed-point weights) of output sample `out` of Pillow's bicubic n -> n*scale.

    Pillow truncates the kernel at the image edges and renormalises what is left.
    """
    center = (out + 0.5) * (n / (n * scale))
    first = max(int(center - _PILLOW_SUPPORT + 0.5), 0)
    count = min(int(center + _PILLOW_SUPPORT + 0.5), n) - first
    w = [_pillow_cubic(x + first - center + 0.5) for x in range(count)]
    total = 0.0
    for v in w:
        total += v
    w = [v / total for v in w] if total != 0.0 else w
    one = 1 << _PILLOW_BITS
    return first, tuple(int(-0.5 + v * one) if v < 0 else int(0.5 + v * one) for v in w)


@lru_cache(maxsize=8)
def _phases(scale: int) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """Away from the edges, sub-sample k of input pixel i is sum_t w[k][t] * x[i + first_k + t] (4 taps):
    (first_k, w[k]) for k in 0..scale-1, the same for every i."""
    n, i = 16, 8  # any pixel at least two from both edges: the weights do not depend on which
    return tuple((first - i, w) for first, w in (_pillow_weights(n, scale, i * scale + k) for k in range(scale)))


@lru_cache(maxsize=32)
def _edge_matrix(n: int, scale: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sub-samples of the two pixels at each end of an axis of n >= _MIN_SIDE pixels.

    Returns (sources, outputs, m): m[k] is a (4, 8) int64 matrix taking the input pixels `sources`
    (the four at each end) to phase k of the output pixels `outputs` (0, 1, n-2, n-1).
    """
    sources = np.array([0, 1, 2, 3, n - 4, n - 3, n - 2, n - 1])
    outputs = np.array([0, 1, n - 2, n - 1])
    m = np.zeros((scale, 4, 8), np.int64)
    for row, i in enumerate(outputs):
        for k in range(scale):
            first, w = _pillow_weights(n, scale, int(i) * scale + k)
            for t, v in enumerate(w):
                m[k, row, np.flatnonzero(sources == first + t)[0]] = v
    return sources, outputs, m


def _to_8bit(acc: np.ndarray) -> np.ndarray:
    """Pillow's rounding of a fixed-point sum to an 8-bit sample, in place: + half, shift, clip."""
    acc += 1 << (_PILLOW_BITS - 1)
    acc >>= _PILLOW_BITS
    return np.clip(acc, 0, 255, out=acc)


def _taps(src: np.ndarray, offsets: range, weights: tuple[int, ...], out: np.ndarray, tmp: np.ndarray) -> None:
    """out = 8-bit sum_t weights[t] * src[offsets[t]:][:len(out)], all 1-D and contiguous (fast)."""
    n = out.size
    for o, w in zip(offsets, weights, strict=True):
        if o == offsets[0]:
            np.multiply(src[o:o + n], w, out=out)
        else:
            np.multiply(src[o:o + n], w, out=tmp[:n])
            out += tmp[:n]
    _to_8bit(out)


def bicubic_box_mean(image: np.ndarray, scale: int, band_rows: int = 128) -> np.ndarray:
    """Pillow's bicubic upscale of an (H, W) uint8 image by ``scale``, box-reduced back by ``scale``.

    Bit for bit ``Image.reduce(scale)`` of ``bicubic_upscale(image, scale x size)`` (what
    consistency_psnr measures of the baseline), computed at the input size: for each input pixel,
    its scale horizontal sub-samples (4-tap sums, rounded and clipped to 8 bits, as Pillow's first
    pass does) and the scale x scale vertical sub-samples of those (rounded and clipped again) are
    summed and box-averaged with Pillow's rounding. The clipping is why no single linear kernel
    will do: the averaged kernel, (-3, 20, 222, 20, -3) / 256 at 2x, reads 0.5-1.1 dB high on
    synthetic pages and up to 4 dB on bitonal ones, whose paper and ink overshoot past 255 and 0.
    Pixels within two of an edge get Pillow's truncated, renormalised weights. The page is done in
    bands of about ``band_rows`` rows (small buffers that stay in cache). Scales that are not powers
    of two, other dtypes and pages under 8 px take the plain path.
    """
    h, w = image.shape[:2]
    if scale < 2 or scale & (scale - 1) or image.ndim != 2 or image.dtype != np.uint8 or min(h, w) < _MIN_SIDE:
        return np.asarray(Image.fromarray(bicubic_upscale(image, (w * scale, h * scale))).reduce(scale))
    phases = _phases(scale)
    col_src, col_out, col_m = _edge_matrix(w, scale)
    row_src, row_out, row_m = _edge_matrix(h, scale)
    p = w + 4  # rows padded by two pixels each side, so that every shift below is a contiguous 1-D slice;
    padded = np.pad(image, 2, mode="edge")  # the pad only feeds samples within two of an edge, which are
    result = np.empty((h, w), np.uint8)  # then redone with Pillow's edge weights (col_m, row_m)
    bands = np.linspace(0, h, -(-h // max(band_rows, _MIN_SIDE)) + 1).round().astype(int)  # >= 4 rows each
    rows = int(np.diff(bands).max())
    a = np.zeros((rows + 4, p), np.int32)  # horizontal phase k of the band's rows and two more each side
    v = np.empty((rows, p), np.int32)  # vertical phase m of that
    tmp, total = np.empty(a.size, np.int32), np.empty((rows, p), np.int32)
    for r0, r1 in zip(bands[:-1], bands[1:], strict=True):
        n = r1 - r0
        src = padded[r0:r1 + 4].astype(np.int32)  # image rows r0-2 .. r1+1
        edge_cols = src[:, 2 + col_src].astype(np.int64)
        at_edge = (row_out >= r0) & (row_out < r1)  # the page's first or last two rows are in this band
        near = (row_src >= r0 - 2) & (row_src < r1 + 2)  # and the rows they are made of
        a_n, v_n, total_n = a[:n + 4], v[:n], total[:n]
        total_n.fill(scale * scale // 2)  # Pillow's reduce rounds half up
        for k, (first_k, w_k) in enumerate(phases):
            _taps(src.ravel(), range(2 + first_k, 6 + first_k), w_k, a_n.ravel()[2:-2], tmp)
            a_n[:, 2 + col_out] = _to_8bit(edge_cols @ col_m[k].T)
            edge_rows = a_n[row_src[near] - r0 + 2].astype(np.int64) if at_edge.any() else None
            for m, (first_m, w_m) in enumerate(phases):
                _taps(a_n.ravel(), range((2 + first_m) * p, (6 + first_m) * p, p), w_m, v_n.ravel(), tmp)
                if edge_rows is not None:
                    v_n[row_out[at_edge] - r0] = _to_8bit(row_m[m][at_edge][:, near] @ edge_rows)
                total_n += v_n
        total_n >>= 2 * (scale.bit_length() - 1)  # / scale**2
        result[r0:r1] = total_n[:, 2:w + 2]
    return result


def bicubic_consistency_psnr(image: np.ndarray, scale: int) -> float:
    """consistency_psnr of the bicubic baseline, ``bicubic_upscale(image, scale x size)``, without making it.

    The same figure to the bit (bicubic_box_mean), without the scale**2 x page in memory and in a third
    of the CPU time: 1000x768 pages at 2x / 4x / 8x, 11 / 42 / 133 ms of one core against 29 / 133 /
    417 ms (median, 2-core AMD EPYC shared with other jobs, 2026-12-04).
    """
    return psnr(bicubic_box_mean(image, scale), image)


def lanczos_upscale(lr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The second baseline of the fidelity gate (and the out-of-range fallback): Pillow Lanczos to size=(W, H)."""
    return resize_to(lr, size, Image.Resampling.LANCZOS)
