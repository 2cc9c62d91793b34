"""Text-size estimation and normalisation.

The original SRGAN-on-RVL-CDIP notes found that a model works on text of the pixel height it was
trained on. So, with normalisation on, each page is resampled until its x-height matches the
weights' trained text height, upscaled, and the result resampled to exactly ``scale`` x the input
size. Every page's estimate is recorded either way.

The estimator (:func:`estimate_text_height`) measures the x-height of the page's body text from
connected components of ink, keeping only those that sit in text lines:

1. ink = pixels darker than the midpoint between paper and ink levels (:func:`ink_levels`: a
   blurred or shrunk page keeps its letters' true extent; white-on-black pages are inverted);
2. letter-like components: at least ``MIN_TEXT_PX`` high, not rules, not boxes, not blobs;
3. text-line test, per component, on its 12 nearest neighbours: a *twin* beside it on the same
   line (same top and bottom within 10%: two x-height letters such as "ne"), no similar-sized
   component stacked closely above or below it (halftone dots, speckle, pictures have those),
   and most of its neighbours passing the same test (two rounds of voting);
4. orientation: the test is run on the page as it is and transposed; when text lines run
   top-to-bottom (page turned 90 or 270 degrees) the x-height is the components' width. A page
   upside down needs nothing: tops and bottoms are both accepted as the line's edge;
5. the most frequent height in log space (so 4 px and 40 px text get the same relative
   resolution); a lower peak at 1/1.8..1/1.2 of it with at least 40% of its weight is taken
   instead (the x-height, when ascenders and capitals outnumber it); the mean of the heights
   within 10% of the peak is the estimate. Heights are sub-pixel: each component's height plus
   the ink coverage of the pixel rows just above and below it (shrunk pages have letters whose
   edges fall inside a row; without this 4.75 px text measured 6 px).

Handwriting rarely has twins; when too few are found, step 3 falls back to components with any
line mate (aligned top or bottom), as long as they are a fair share of the page's letter-like
components and their x-height is at least ``LOOSE_MIN_PX`` (so a picture's dots never pass as text).

Text too small to measure (x-height under ~2.5 px): its letters merge into word blobs (2-7 px tall,
2.5-40 times as wide) or, where a dark picture sets the ink level, break into grey specks. The steps
above then measure whatever is left: a headline (feyn shrunk to 2-3 px: 8.8-12.9 px), or word blobs
stacked at a column's left edge, read as text turned by 90 degrees (linn at 2 px: 10.4-10.7 px).
So (:func:`_too_small`) word blobs are counted: blobs with a twin beside them (same top and bottom)
and another blob stacked close above or below (the next line of a paragraph), at the ink threshold
and, when the estimate rests on fewer than ``GREY_PASS_LETTERS`` letters and specks (under
``MIN_TEXT_PX`` across) outnumber them, at a lighter one (a quarter of the way from paper to ink:
text this small is grey). With at least ``MIN_COMPONENTS`` blobs, more than the letters the estimate
rests on (blobs taken for letters not counted), the text is too small to measure: px None, reason
"text too small to measure (...)". On 39 real scans at native size the most blobs were 180 (against
4,186 letters) and no estimate changed; on six scans shrunk to 3-6 px (8071_093.3B, linn, phototest,
feyn, patent, typewriter) the blobs stayed under half the letters; shrunk to 1.4-2.5 px none of them
kept an estimate above 4.2 px (before: up to 12.9 px). Rendered pages (300 seeds of
tests/test_textsize_accuracy.py) measure as before. Of 120 synthetic office pages
(srgan.training.synth; bicubic and RVL-like bitonal degradation; body 2-6 px) 17 lost their estimate,
all with a body x-height of 2-4 px (bold text merged by a bitonal scan at 4 px among them).

Small print (since 2026-12-05, :func:`_blob_estimate`): a page found too small to measure is measured on
its word blobs instead. Each blob's row profile (mean ink coverage over its columns) has a core where all
its letters are inked, the x-height band; ascenders and descenders ink few columns and stay under half the
peak. The blob's height is the core rows plus the rows beside them, each counted as coverage / peak (sub-
pixel); the page's estimate is the median (``word_blobs`` True). Blobs of text under ~2.3 px saturate at
2-2.7 px, so when their lower quartile is under ``BLOB_MIN_PX`` the page stays too small to measure. Ten
real scans shrunk (bicubic) and halved as the sweep does, LR x-height 2.5 / 3 / 3.5 px: the letters gave no
estimate on 8 / 5 / 2 of them, the blobs leave 1 / 1 / 1 (phototest, 140 px wide there: too few letters);
the blob estimates read 2.71-3.19 at 2.5 px, 3.11-3.19 at 3 px (docs/measurements.md). At 2 px 9 of 10
stay too small (one reads 3.4 px by its letters, as before).

Accuracy (tests/test_textsize_accuracy.py): rendered pages of 6-30 pt at 72-200 dpi, 299 of 300 within
10% of the true x-height; 16 real scans, all within 8% of a hand measurement. The estimate is the mean
of flat and round letters (o, e, s overshoot), so it reads 3-9% above the flat x-height, the same
at every size: it scales with the page, which is what normalisation needs.

Policy (:func:`normalisation_factor`, the ``upscale.normalise*`` keys): off by default. When on,
factor = trained height / estimate, left at 1 within the tolerance band (15%), clamped to
[min_factor, max_factor] = [1, 4]: pages are only ever enlarged, with Lanczos (:func:`resize`).
Measured with ``python -m srgan.fidelity.textsize_study`` on 16 real scans: with the shipped srgan_x2 weights
any resampling loses 2.4-6 dB at every ratio from 0.3x to 3x the trained height (hence off; table in
docs/fidelity.md); a small development model gained 0.2 dB from enlarging text at 0.5x.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from srgan.config import UpscaleConfig

log = logging.getLogger(__name__)

MIN_COMPONENTS = 15  # fewer text-line components than this: no reliable estimate
MIN_TEXT_PX = 3  # smallest x-height the estimator reports (2 px "letters" are dots)
NEIGHBOURS = 12  # nearest components each component is compared with
LOOSE_MIN_SHARE = 0.1  # handwriting fallback: share of letter-like components that must pass
LOOSE_MIN_PX = 6.0  # handwriting fallback: smallest x-height it may report
BLOB_MAX_PX = 7  # word blobs of text under MIN_TEXT_PX: at most this tall (ascenders and descenders merged in)
BLOB_MIN_PX = 2.45  # small print is measured on word blobs when their lower quartile is at least this (_blob_estimate)
GREY_INK = 0.25  # the grey pass counts pixels at least this far from paper to ink as ink
GREY_PASS_LETTERS = 500  # the grey pass is for estimates resting on fewer letters (it costs one more labelling)
TOO_SMALL = "text too small to measure"  # the reason's start
MAX_PIXELS = 16_000_000  # larger pages are measured on a reduced copy (time and memory)
NORMALISE_RESAMPLE = Image.Resampling.LANCZOS  # filter of the text-size resample before the model
_FAR = 1 << 30


@dataclass(frozen=True)
class TextHeight:
    """Estimated x-height of a page's body text in pixels, or None with the reason.

    ``components``: how many text-line components the estimate rests on; ``vertical``: the text
    lines run top-to-bottom (page turned 90/270 degrees), so the x-height was measured across them.
    """

    px: float | None
    reason: str | None = None
    components: int = 0
    vertical: bool = False
    word_blobs: bool = False  # small print: measured on word blobs (:func:`_blob_estimate`), not letters


def otsu_threshold(image: np.ndarray) -> int:
    """Grey level that best separates ink from paper (Otsu 1979)."""
    return _otsu(np.bincount(image.ravel(), minlength=256).astype(np.float64))[0]


def _otsu(hist: np.ndarray) -> tuple[int, float, float]:
    """(threshold, mean of the dark class, mean of the light class) of a 256-bin histogram."""
    levels = np.arange(256)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    total, mean_all = w0[-1], m0[-1]
    w1 = total - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean_all * w0 - m0 * total) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = 0
    t = int(np.argmax(between))
    return t, m0[t] / max(w0[t], 1.0), (mean_all - m0[t]) / max(w1[t], 1.0)


@dataclass(frozen=True)
class InkLevels:
    """Grey levels of a page: ink at or below ``threshold``; typical ``ink`` and ``paper`` levels."""

    threshold: int
    ink: float
    paper: float


def ink_levels(image: np.ndarray) -> InkLevels | None:
    """Ink and paper grey levels of a page, or None for a flat page (no contrast).

    Otsu's threshold splits the histogram; paper is the light class's mean, ink the darkest tenth
    of the dark class (on shrunk or soft pages most dark pixels are grey letter edges, which would
    pull a mean towards the paper), and ink is what lies below the midpoint: a blurred edge is cut
    half-way, so letters keep their true height.
    """
    sub = image[::2, ::2] if image.size > 1_000_000 else image  # the histogram barely changes
    # Pillow counts uint8 levels ~10x faster than np.bincount (which widens every pixel to int64)
    hist = np.asarray(Image.fromarray(np.ascontiguousarray(sub)).histogram(), dtype=np.float64)
    cum = np.cumsum(hist) / max(hist.sum(), 1.0)
    lo, hi = int(np.searchsorted(cum, 0.001)), int(np.searchsorted(cum, 0.999))
    if hi - lo < 32:
        return None
    t, _, paper = _otsu(hist)
    dark = np.cumsum(hist[: t + 1])
    ink = float(np.searchsorted(dark, 0.1 * dark[-1]))
    return InkLevels(int((ink + paper) / 2), ink, float(paper))


def ink_threshold(image: np.ndarray) -> int | None:
    """Grey level at or below which a pixel is ink (see ink_levels), or None for a flat page."""
    levels = ink_levels(image)
    return None if levels is None else levels.threshold


def ink_mask(image: np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of dark pixels (ink); all False on a flat page."""
    thr = ink_threshold(image)
    if thr is None:
        return np.zeros(image.shape, dtype=bool)
    return image <= thr


def _components(ink: np.ndarray) -> np.ndarray:
    """(N, 5) int64 rows of top, bottom, left, right (exclusive) and area of 8-connected components.

    The boxes are the extremes of each label's ink pixels, reduced with numpy: the same boxes as
    ``ndimage.find_objects``, which makes a Python slice object per component (thousands per page)
    and so triggers the interpreter's garbage collection, 130 ms spikes in a process holding torch.
    """
    from scipy import ndimage  # scipy is a dependency; imported here to keep import time low

    labels, count = ndimage.label(ink, structure=np.ones((3, 3), dtype=bool))
    if count == 0:
        return np.zeros((0, 5), dtype=np.int64)
    h, w = labels.shape
    flat = np.flatnonzero(ink)  # ink pixels only: background is label 0
    lab = labels.ravel()[flat] - 1
    rows = flat // w
    cols = flat - rows * w
    top = np.full(count, h, np.int64)
    np.minimum.at(top, lab, rows)
    bottom = np.zeros(count, np.int64)
    np.maximum.at(bottom, lab, rows)
    left = np.full(count, w, np.int64)
    np.minimum.at(left, lab, cols)
    right = np.zeros(count, np.int64)
    np.maximum.at(right, lab, cols)
    area = np.bincount(lab, minlength=count)
    return np.column_stack([top, bottom + 1, left, right + 1, area])


def _letter_like(top, bot, left, right, area) -> np.ndarray:
    """Components shaped like letters or short words: not rules, boxes, blobs or specks."""
    h, w = bot - top, right - left
    fill = area / (h * w)
    return (
        (h >= MIN_TEXT_PX)
        & (w <= 8 * h)  # a few merged letters at most; rules are longer
        & (h <= 5 * w + 2)  # vertical rules and table lines are thinner
        & ((h < 8) | ((fill > 0.1) & (fill < 0.9)))  # frames and solid boxes (small text is blobby)
    )


def _neighbour_gaps(top, bot, left, right, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(nb, gap_x, gap_y): each component's k nearest others by centre, (n, k) indices, and the gaps to
    them edge to edge along each axis (negative: the two overlap along that axis). Needs n >= 2."""
    from scipy.spatial import cKDTree

    centres = np.column_stack([(left + right) / 2, (top + bot) / 2])
    _, nb = cKDTree(centres).query(centres, k=min(k + 1, top.size))
    nb = nb[:, 1:]  # the component itself dropped
    gap_x = np.maximum(left[nb] - right[:, None], left[:, None] - right[nb])
    gap_y = np.maximum(top[nb] - bot[:, None], top[:, None] - bot[nb])
    return nb, gap_x, gap_y


def _text_line_members(top, bot, left, right) -> tuple[np.ndarray, np.ndarray]:
    """Two boolean masks over the given components: strict (print) and loose (handwriting) members.

    Each component is compared with its NEIGHBOURS nearest (by centre). Gaps are edge to edge;
    a negative gap means the two overlap along that axis.
    """
    n = top.size
    if n < 3:
        return np.zeros(n, bool), np.zeros(n, bool)
    h = bot - top
    nb, gap_x, gap_y = _neighbour_gaps(top, bot, left, right, NEIGHBOURS)
    hi, hj = h[:, None], h[nb]
    sized = (2 * hj >= hi) & (hj <= 2 * hi)
    beside = (gap_y < 0) & (gap_x >= 0) & (gap_x <= hi)  # on the same line, at most a letter away
    d_top, d_bot = np.abs(top[nb] - top[:, None]), np.abs(bot[nb] - bot[:, None])
    tol = np.maximum(1, 0.15 * hi)
    mate = sized & beside & ((d_bot <= tol) | (d_top <= tol))
    tight = np.maximum(1, 0.1 * hi)
    twin = beside & (d_bot <= tight) & (d_top <= tight)
    # text lines have a clear gap above and below; halftone dots and speckle are packed in 2-D
    near_x = np.where(sized & (gap_y < 0) & (gap_x >= 0), gap_x, _FAR).min(1)
    near_y = np.where(sized & (gap_x < 0) & (gap_y >= 0), gap_y, _FAR).min(1)
    isolated = (near_y >= 1.5 * near_x + 1) & (10 * near_y >= 3 * h)
    strict = isolated & twin.any(1)
    for _ in range(2):  # a text letter's neighbours are mostly text letters too
        strict &= strict[nb].mean(1) >= 0.5
    loose = isolated & mate.any(1)
    return strict, loose


def _edge_coverage(image: np.ndarray, levels: InkLevels, rows: np.ndarray, left: np.ndarray,
                   right: np.ndarray) -> np.ndarray:
    """Ink coverage (0..1) of the darkest pixel of each row segment [left, right) (0 off the page)."""
    inside = (rows >= 0) & (rows < image.shape[0])
    widths = np.where(inside, right - left, 1)
    starts = np.cumsum(widths) - widths
    first = np.where(inside, rows * image.shape[1] + left, 0)  # off the page: any pixel, masked below
    flat_index = np.repeat(first - starts, widths) + np.arange(int(widths.sum()))
    darkest = np.minimum.reduceat(image.ravel()[flat_index], starts).astype(np.float64)
    coverage = (levels.paper - darkest) / max(levels.paper - levels.ink, 1.0)
    return np.where(inside, np.clip(coverage, 0.0, 1.0), 0.0)


def _soft_heights(image: np.ndarray, levels: InkLevels, boxes: np.ndarray, vertical: bool) -> np.ndarray:
    """Component heights plus the coverage of the row just above and just below each (sub-pixel).

    A letter whose edge falls inside a pixel row leaves that row partly inked, under the threshold
    or over it; adding the coverage of the neighbouring rows recovers the fraction. On bitonal scans
    those rows are paper and the heights stay whole pixels.
    """
    if vertical:  # measure across lines running top to bottom: columns play the rows' part
        image, boxes = image.T, boxes[:, [2, 3, 0, 1]]
    top, bot, left, right = boxes.T
    above = _edge_coverage(image, levels, top - 1, left, right)
    below = _edge_coverage(image, levels, bot, left, right)
    return (bot - top) + above + below


def typical_height(heights: np.ndarray) -> float:
    """Body-text x-height from the heights of text-line components (see the module docstring)."""
    log_h = np.log(heights.astype(np.float64))
    step, origin = 0.01, math.log(MIN_TEXT_PX) - 0.2
    hist = np.bincount(((log_h - origin) / step).astype(np.int64))
    kernel = np.exp(-0.5 * (np.arange(-15, 16) / 5.0) ** 2)  # Gaussian, sigma 0.05 in log units
    density = np.convolve(hist, kernel, mode="same")
    peak = int(np.argmax(density))
    maxima = np.flatnonzero((density[1:-1] > density[:-2]) & (density[1:-1] >= density[2:])) + 1
    lower = maxima[(maxima < peak - math.log(1.2) / step) & (maxima > peak - math.log(1.8) / step)
                   & (density[maxima] >= 0.4 * density[peak])]
    if lower.size:  # x-height letters outnumbered by ascenders, capitals and digits
        peak = int(lower[np.argmax(density[lower])])
    centre = math.exp(origin + peak * step)
    near = heights[np.abs(log_h - math.log(centre)) <= 0.1]
    return float(near.mean()) if near.size else centre


_NO_BOXES = np.zeros((0, 4), dtype=np.int64)


def _measure(image: np.ndarray, levels: InkLevels, ink: np.ndarray) -> tuple[TextHeight, np.ndarray]:
    """Estimate from a page's ink mask, and the (N, 4) top/bottom/left/right boxes it rests on.

    px is None (with the reason) when no text lines are found or the text is too small to measure.
    """
    boxes = _components(ink)
    if boxes.shape[0] == 0:
        return TextHeight(None, "blank page: no ink found"), _NO_BOXES
    estimate, members = _measure_lines(image, levels, boxes)
    too_small = _too_small(image, levels, boxes, members)
    if too_small:
        small = _blob_estimate(image, levels, boxes)
        if small is not None:
            return small
        return TextHeight(None, too_small, 0, estimate.vertical), _NO_BOXES
    if estimate.px is None:
        return estimate, _NO_BOXES
    return estimate, boxes[members, :4]


def _measure_lines(image: np.ndarray, levels: InkLevels, boxes: np.ndarray) -> tuple[TextHeight, np.ndarray]:
    """Steps 2-5 of the module docstring on the page's components: the estimate and the indices (into
    boxes) of the text-line components it rests on (none when px is None)."""
    top, bot, left, right, area = boxes.T
    found = []
    for vertical in (False, True):
        if vertical:  # measure across the lines of a page turned by 90 or 270 degrees
            top, bot, left, right = left, right, top, bot
        keep = np.flatnonzero(_letter_like(top, bot, left, right, area))
        strict, loose = _text_line_members(top[keep], bot[keep], left[keep], right[keep])
        found.append((vertical, keep, (bot - top)[keep], strict, loose))
    upright, turned = found
    vertical, keep, heights, members, loose = turned if turned[3].sum() > 1.2 * upright[3].sum() else upright
    none = np.zeros(0, np.int64)
    if members.sum() < MIN_COMPONENTS:  # too few printed text letters: try handwriting
        vertical, keep, heights, _, members = max(found, key=lambda f: f[4].sum())
        count = int(members.sum())
        if count < MIN_COMPONENTS or count < LOOSE_MIN_SHARE * heights.size:
            return TextHeight(None, f"no text lines found ({boxes.shape[0]} ink components)", count, vertical), none
        if typical_height(heights[members]) < LOOSE_MIN_PX:  # a picture's dots line up by chance
            return TextHeight(None, f"no text lines found ({boxes.shape[0]} ink components; "
                                    f"{typical_height(heights[members]):.1f} px dots only)", count, vertical), none
    index = keep[members]
    px = typical_height(_soft_heights(image, levels, boxes[index, :4], vertical))
    return TextHeight(px, None, int(index.size), vertical), index


def _word_blobs(top: np.ndarray, bot: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Boolean mask over the components: word blobs of text too small to measure, in paragraph lines.

    A word blob is 2..BLOB_MAX_PX tall and 2.5-40 times as wide (merged letters: wider than the few
    letters _letter_like lets through, not as long as a rule), with a twin among its nearest blobs
    (beside it on the line, at most two heights away, top and bottom within 1 px) and a blob stacked
    above or below it at most two heights away (the next line of a paragraph: ruled paper, table rules
    and underlines have no such neighbour).
    """
    h, w = bot - top, right - left
    mask = np.zeros(top.size, bool)
    idx = np.flatnonzero((h >= 2) & (h <= BLOB_MAX_PX) & (w >= 2.5 * h) & (w <= 40 * h))
    if idx.size < 3:
        return mask
    t, b, le, r = top[idx], bot[idx], left[idx], right[idx]
    hb = (b - t)[:, None]
    nb, gap_x, gap_y = _neighbour_gaps(t, b, le, r, 8)
    twin = (gap_y < 0) & (gap_x >= 0) & (gap_x <= 2 * hb) & (np.abs(t[nb] - t[:, None]) <= 1) & (
        np.abs(b[nb] - b[:, None]) <= 1)
    stacked = (gap_x < 0) & (gap_y >= 0) & (gap_y <= 2 * hb)
    mask[idx[twin.any(1) & stacked.any(1)]] = True
    return mask


def _blob_count(boxes: np.ndarray) -> tuple[int, np.ndarray]:
    """(word blobs in the orientation with more of them, mask of the blobs of either orientation)."""
    top, bot, left, right = boxes[:, :4].T
    upright, turned = _word_blobs(top, bot, left, right), _word_blobs(left, right, top, bot)
    return int(max(upright.sum(), turned.sum())), upright | turned


def _too_small(image: np.ndarray, levels: InkLevels, boxes: np.ndarray, members: np.ndarray) -> str | None:
    """The reason when the page's text is too small to measure (see the module docstring), else None.

    members: indices into boxes of the letters the estimate rests on (empty without an estimate).
    """
    blobs, is_blob = _blob_count(boxes)
    letters = int((~is_blob[members]).sum())  # word blobs taken for letters (a column edge read as turned text)
    if blobs < MIN_COMPONENTS or blobs <= letters:
        # grey pass: text this small is grey; under the ink level of a dark picture it breaks into specks
        # (under MIN_TEXT_PX across). Only where specks outnumber the letters: it costs one more labelling
        specks = np.count_nonzero(np.minimum(boxes[:, 1] - boxes[:, 0], boxes[:, 3] - boxes[:, 2]) < MIN_TEXT_PX)
        if letters >= GREY_PASS_LETTERS or specks <= max(letters, MIN_COMPONENTS):
            return None
        grey = image <= levels.paper - GREY_INK * (levels.paper - levels.ink)
        blobs = max(blobs, _blob_count(_components(grey))[0])
        if blobs < MIN_COMPONENTS or blobs <= letters:
            return None
    return (f"{TOO_SMALL} (letters merged into word blobs, as under ~{MIN_TEXT_PX} px x-height: {blobs} word "
            f"blobs in text lines, {letters} letters)")


def _blob_heights(cover: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Sub-pixel x-height of each word blob from its row profile (mean ink coverage over its columns): the
    rows at or above half the profile's peak, and the rows just beside them, each counted as its coverage /
    the peak. Ascenders and descenders cover few of a word's columns, so they stay under half the peak."""
    out = np.empty(boxes.shape[0])
    for i, (t, b, le, r) in enumerate(boxes[:, :4]):
        p = cover[max(t - 2, 0) : b + 2, le:r].mean(1)
        core = np.flatnonzero(p >= p.max() / 2)
        out[i] = np.minimum(p[max(core[0] - 1, 0) : core[-1] + 2] / p.max(), 1.0).sum()
    return out


def _blob_estimate(image: np.ndarray, levels: InkLevels, boxes: np.ndarray) -> tuple[TextHeight, np.ndarray] | None:
    """Small print (letters merged into word blobs): the median of the word blobs' profile heights
    (:func:`_blob_heights`), at the ink threshold or the grey one (a quarter of the way from paper to ink),
    whichever finds more blobs. None when fewer than MIN_COMPONENTS blobs are found or when their lower
    quartile is under BLOB_MIN_PX: blobs of text under ~2.3 px saturate at 2-2.7 px (rows cannot get
    thinner), so such a page stays too small to measure."""
    grey = image <= levels.paper - GREY_INK * (levels.paper - levels.ink)
    best = None
    for cand in (boxes, _components(grey)):
        top, bot, left, right = cand[:, :4].T
        upright, turned = _word_blobs(top, bot, left, right), _word_blobs(left, right, top, bot)
        vertical = bool(turned.sum() > upright.sum())
        mask = turned if vertical else upright
        if best is None or mask.sum() > best[1].sum():
            best = (cand, mask, vertical)
    cand, mask, vertical = best
    if mask.sum() < MIN_COMPONENTS:
        return None
    img, blobs = (image.T, cand[mask][:, [2, 3, 0, 1]]) if vertical else (image, cand[mask][:, :4])
    cover = np.clip((levels.paper - img.astype(np.float64)) / max(levels.paper - levels.ink, 1.0), 0.0, 1.0)
    heights = _blob_heights(cover, blobs)
    if np.percentile(heights, 25) < BLOB_MIN_PX:
        return None
    found = cand[mask][:, :4]
    return TextHeight(float(np.median(heights)), None, int(mask.sum()), vertical, word_blobs=True), found


def _analyse(image: np.ndarray) -> tuple[TextHeight, np.ndarray]:
    """estimate_text_height and the boxes of the text-line components it rests on."""
    if image.ndim == 3:
        image = image.mean(axis=2)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.size == 0:
        return TextHeight(None, "empty image"), _NO_BOXES
    if image.size > MAX_PIXELS:  # e.g. 1200-2400 dpi scans: measure a reduced copy, scale the result back
        k = math.sqrt(MAX_PIXELS / image.size)
        h, w = int(image.shape[0] * k), int(image.shape[1] * k)  # rounded down: under MAX_PIXELS
        est, boxes = _analyse(resize_to(image, (w, h)))  # bicubic: antialiased, no ringing
        if est.px is None:
            if est.reason and est.reason.startswith(TOO_SMALL):  # its px limit is the reduced copy's
                est = dataclasses.replace(est, reason=f"{est.reason}; measured on a copy reduced to {k:.2f}x")
            return est, boxes
        return dataclasses.replace(est, px=est.px / k), np.round(boxes / k).astype(np.int64)
    levels = ink_levels(image)
    if levels is None:
        return TextHeight(None, "blank page: no contrast"), _NO_BOXES
    ink = image <= levels.threshold
    frac = float(ink.mean())
    if frac < 0.0005:
        return TextHeight(None, "blank page: no ink found"), _NO_BOXES
    if frac > 0.5:  # light text on a dark page (a negative), or mostly picture
        inverted = _measure(255 - image, InkLevels(255 - levels.threshold, 255 - levels.paper, 255 - levels.ink),
                            ~ink)
        if inverted[0].px is not None:
            return inverted
    return _measure(image, levels, ink)


def estimate_text_height(image: np.ndarray) -> TextHeight:
    """Estimate the x-height (px) of the body text of an (H, W) uint8 grey page.

    Returns px=None with a one-line reason for blank pages, pages of pictures only and pages
    whose letters are too small to measure (under MIN_TEXT_PX); the page is then processed at
    factor 1. 0.15-0.3 s (one core) for a 2550x3300 page.
    """
    return _analyse(image)[0]


def text_line_boxes(image: np.ndarray) -> np.ndarray:
    """(N, 4) int64 top, bottom, left, right (exclusive) of the letters the estimate rests on."""
    return _analyse(image)[1]


def normalisation_factor(estimate: TextHeight, target_px: float, cfg: UpscaleConfig) -> float:
    """Resampling factor that brings the estimated text height to target_px (1.0 when off or unknown)."""
    if not cfg.normalise or estimate.px is None or target_px <= 0:
        return 1.0
    factor = target_px / estimate.px
    if abs(math.log(factor)) < math.log1p(cfg.normalise_tolerance):
        return 1.0
    return float(min(max(factor, cfg.normalise_min_factor), cfg.normalise_max_factor))


def resize_to(image: np.ndarray, size: tuple[int, int],
              resample: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    """Resample an (H, W) uint8 image to size=(W, H); Pillow's bicubic (antialiased) by default.

    Bicubic is the baseline the model is compared with and the evaluation's degradation.
    """
    w, h = size
    if image.shape[1] == w and image.shape[0] == h:
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), resample))


def resize(image: np.ndarray, factor: float, resample: Image.Resampling = NORMALISE_RESAMPLE) -> np.ndarray:
    """Resample an (H, W) uint8 image by factor (sizes rounded, at least 1 px): the normalisation step.

    Lanczos by default: on six real page crops at 0.5x and 0.75x the trained text height, pages
    enlarged with Lanczos before the model came out 0.55-1.4 dB (PSNR) better than pages enlarged
    with bicubic, and with bicubic normalising lost to not normalising (small CPU-trained x2 model,
    2026-11-26).
    """
    if factor == 1.0:
        return image
    h, w = image.shape[:2]
    return resize_to(image, (max(1, round(w * factor)), max(1, round(h * factor))), resample)
