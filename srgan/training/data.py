"""Training pages and (lq, gt) crops.

Pages come from anything the upscale path reads (folders, archives, PDFs, via ``srgan.readers``)
plus synthetic office documents (``srgan.training.synth``) in the training type families, their
body x-heights spread log-evenly over ``training.x_height_min..x_height_max`` LR px. Pages keep
their text size by default (``training.normalise: false``), as upscale sees them; with
normalisation on, every HR page is resampled by ``text_height * scale / estimated_px`` (the same
estimator as inference) so that its LR version has ``training.text_height`` px x-height.
``training.held_out_family_pages`` adds synthetic documents in the held-out families
(``srgan.training.fonts``) to the evaluation pages; they are never trained on.

Decoded pages are written once as ``.npy`` files under a work folder and memory-mapped by the
data-loader workers, so only paths travel to the workers and memory stays flat on large sets.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from srgan.config import PipelineConfig, TrainingConfig
from srgan.training.degrade import MIX, degrade

log = logging.getLogger(__name__)

NORMALISE_SKIP = (0.9, 1.1)  # factors inside this band are treated as 1 (no resampling)
NORMALISE_CLAMP = (0.25, 1.5)  # never blow an HR page up by more than 1.5x: targets would be soft
INK_LEVEL = 128  # a pixel darker than this is ink
MIN_INK = 0.01  # a crop needs at least this fraction of ink pixels
CROP_TRIES = 10  # the first third uniform, the rest around known ink pixels
INK_POINTS = 4096  # ink pixel positions kept per page to aim crops at text

T = TypeVar("T")


# --------------------------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class TrainPage:
    """One prepared page: ``hr`` is the normalised HR page (.npy); ``original`` the page as read."""

    name: str  # stable key: '<rel_path>' or '<rel_path>_p0003', 'synthetic/0007'
    hr: Path
    original: Path | None  # kept for held-out pages only (evaluation runs on the page as read)
    factor: float  # resampling factor applied to the page read -> hr
    text_px: float | None  # estimated (or, for synthetic pages, true) x-height of the page read
    synthetic: bool = False
    shape: tuple[int, int] = (0, 0)  # hr (H, W)
    ink: Path | None = None  # (N, 2) int32 (y, x) of up to INK_POINTS ink pixels of hr
    families: tuple[str, ...] = ()  # type families drawn on a synthetic page
    layout: str | None = None  # RVL-CDIP class of a synthetic page


@dataclass
class PageSets:
    train: list[TrainPage] = field(default_factory=list)
    eval: list[TrainPage] = field(default_factory=list)

    def eval_originals(self) -> list[tuple[str, np.ndarray]]:
        """Held-out pages as (name, (H, W) uint8 page as read): what ``evaluate_images`` takes."""
        return [(p.name, np.load(p.original if p.original else p.hr)) for p in self.eval]


def normalise_factor(text_px: float | None, text_height: float, scale: int) -> float:
    """HR resampling factor that gives the LR page ``text_height`` px x-height (1.0 when unknown/near)."""
    if text_px is None or text_px <= 0:
        return 1.0
    factor = text_height * scale / text_px
    if NORMALISE_SKIP[0] <= factor <= NORMALISE_SKIP[1]:
        return 1.0
    return float(min(max(factor, NORMALISE_CLAMP[0]), NORMALISE_CLAMP[1]))


def to_grey(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, C) any-depth image -> (H, W) uint8 grey."""
    if image.ndim == 3:
        from PIL import Image

        if image.shape[2] == 1:
            image = image[:, :, 0]
        else:
            image = np.asarray(Image.fromarray(image[:, :, :3].astype(np.uint8)).convert("L"))
    if image.dtype != np.uint8:
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        elif image.dtype == bool:
            image = np.where(image, 255, 0).astype(np.uint8)
        else:
            image = np.clip(image, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


def split_pages(items: Sequence[T], eval_fraction: float, seed: int,
                key: Callable[[T], Hashable] = str) -> tuple[list[T], list[T]]:
    """Deterministic (train, eval) split of paths, pages or names.

    Items are sorted by ``key`` and shuffled by ``seed``, so the split does not depend on the order
    they were found in. With ``eval_fraction > 0`` and at least two items, at least one item is held
    out and at least one is kept for training.
    """
    ordered = sorted(items, key=lambda it: str(key(it)))
    n = len(ordered)
    if eval_fraction <= 0 or n < 2:
        return list(ordered), []
    n_eval = min(max(1, round(n * eval_fraction)), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    held = set(perm[:n_eval].tolist())
    train = [it for i, it in enumerate(ordered) if i not in held]
    evals = [it for i, it in enumerate(ordered) if i in held]
    return train, evals


def _read_real_pages(inputs: Sequence[str], cfg: PipelineConfig) -> list[tuple[str, str, np.ndarray]]:
    """(document key, page name, grey page) for every readable page; bad pages are logged and skipped."""
    from srgan.readers import discover, read_pages

    out = []
    for page in read_pages(discover(list(inputs), cfg.limits), cfg.pdf, cfg.limits):
        if page.error or page.image is None:
            log.warning("training data: skipping %s page %d: %s", page.doc.rel_path, page.page_index + 1, page.error)
            continue
        doc_key = f"{page.doc.source}|{page.doc.container}|{page.doc.member}"
        name = page.doc.rel_path + (f"_p{page.page_index + 1:04d}" if page.page_count > 1 else "")
        out.append((doc_key, name, to_grey(page.image)))
    return out


def _store(name: str, image: np.ndarray, text_px: float | None, tcfg: TrainingConfig, work_dir: Path,
           index: int, keep_original: bool, synthetic: bool, families: tuple[str, ...] = (),
           layout: str | None = None) -> TrainPage:
    from srgan.imaging.textsize import resize

    factor = normalise_factor(text_px, tcfg.text_height, tcfg.scale) if tcfg.normalise else 1.0
    hr = resize(image, factor) if factor != 1.0 else image
    stem = f"{index:06d}"
    hr_path = work_dir / f"{stem}_hr.npy"
    np.save(hr_path, np.ascontiguousarray(hr))
    ink_path = work_dir / f"{stem}_ink.npy"
    np.save(ink_path, ink_points(hr, seed=index))
    original = None
    if keep_original:
        original = work_dir / f"{stem}_orig.npy"
        np.save(original, np.ascontiguousarray(image))
    return TrainPage(name=name, hr=hr_path, original=original, factor=factor, text_px=text_px,
                     synthetic=synthetic, shape=(int(hr.shape[0]), int(hr.shape[1])), ink=ink_path,
                     families=families, layout=layout)


def prepare_pages(data: Sequence[str], cfg: PipelineConfig, work_dir: Path,
                  eval_data: Sequence[str] | None = None) -> PageSets:
    """Read, split, normalise and store the training and held-out pages.

    Held-out pages: ``eval_data`` when given (then every ``data`` page not also in ``eval_data`` is
    trained on), else a ``training.eval_fraction`` split of the ``data`` documents (of their pages
    when there is only one document), else, when no real page is held out, a split of the
    synthetic pages.
    Held-out pages are never trained on.
    """
    from srgan.imaging.textsize import estimate_text_height

    tcfg = cfg.training
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    real = _read_real_pages(data, cfg) if data else []
    sets = PageSets()
    index = 0

    def add(target: list[TrainPage], name: str, image: np.ndarray, text_px: float | None,
            keep_original: bool, synthetic: bool = False, families: tuple[str, ...] = (),
            layout: str | None = None) -> None:
        nonlocal index
        target.append(_store(name, image, text_px, tcfg, work_dir, index, keep_original, synthetic, families, layout))
        index += 1

    def real_px(image: np.ndarray, name: str) -> float | None:
        est = estimate_text_height(image)
        if est.px is None:
            log.info("training data: %s: no text height (%s); page used as read", name, est.reason)
        return est.px

    if eval_data:
        held = _read_real_pages(eval_data, cfg)
        held_docs = {doc for doc, _, _ in held}
        dropped = [name for doc, name, _ in real if doc in held_docs]
        if dropped:
            log.warning("training data: %d page(s) are also in eval_data and are not trained on", len(dropped))
        train_real = [r for r in real if r[0] not in held_docs]
    else:
        docs = sorted({doc for doc, _, _ in real})
        if len(docs) >= 2:
            train_docs, eval_docs = split_pages(docs, tcfg.eval_fraction, tcfg.seed)
            eval_set = set(eval_docs)
            held = [r for r in real if r[0] in eval_set]
            train_real = [r for r in real if r[0] not in eval_set]
        else:
            train_real, held = split_pages(real, tcfg.eval_fraction, tcfg.seed, key=lambda r: r[1])
    for _, name, image in train_real:
        add(sets.train, name, image, real_px(image, name), keep_original=False)
    for _, name, image in held:
        add(sets.eval, name, image, real_px(image, name), keep_original=True)

    synthetic = _synthetic_pages(tcfg)
    if not sets.eval:  # no real page held out: hold out synthetic pages instead
        synth_train, synth_eval = split_pages(synthetic, tcfg.eval_fraction, tcfg.seed, key=lambda s: s[0])
    else:
        synth_train, synth_eval = synthetic, []
    for name, image, px, fams, layout in synth_train:
        add(sets.train, name, image, px, keep_original=False, synthetic=True, families=fams, layout=layout)
    for name, image, px, fams, layout in [*synth_eval, *_synthetic_pages(tcfg, held_out=True)]:
        add(sets.eval, name, image, px, keep_original=True, synthetic=True, families=fams, layout=layout)

    if not sets.train:
        raise ValueError("training: no training pages (no readable data and training.synthetic_pages is 0)")
    log.info("training data: %d training page(s) (%d synthetic), %d held-out page(s)",
             len(sets.train), sum(p.synthetic for p in sets.train), len(sets.eval))
    return sets


def spread_x_heights(count: int, low: float, high: float, seed: int) -> list[float]:
    """``count`` x-heights spread log-evenly over [low, high]: one drawn in each of ``count`` equal
    log-width bins, then shuffled (so every part of the range is covered, whatever the count)."""
    if count <= 0:
        return []
    rng = np.random.default_rng([seed, 7919])
    edges = np.linspace(math.log(low), math.log(high), count + 1)
    values = np.exp(edges[:-1] + rng.random(count) * (edges[1:] - edges[:-1]))
    return [float(v) for v in rng.permutation(values)]


def _synthetic_pages(tcfg: TrainingConfig, held_out: bool = False
                     ) -> list[tuple[str, np.ndarray, float, tuple[str, ...], str]]:
    """(name, page, true HR x-height, families, layout) of the synthetic documents: training families,
    or with ``held_out`` the held-out families (``training.held_out_family_pages`` of them)."""
    from srgan.training.fonts import held_out_families, training_families
    from srgan.training.synth import RVL_CLASSES, synth_document

    count = tcfg.held_out_family_pages if held_out else tcfg.synthetic_pages
    if count <= 0:
        return []
    families = held_out_families() if held_out else training_families()
    if not families:
        log.warning("training data: no %s type families installed; no synthetic documents",
                    "held-out" if held_out else "training")
        return []
    base = tcfg.seed * 100_003 + (50_000 if held_out else 0)
    heights = spread_x_heights(count, tcfg.x_height_min * tcfg.scale, tcfg.x_height_max * tcfg.scale, base)
    prefix = "held_out_family" if held_out else "synthetic"
    pages = []
    for i, x_height in enumerate(heights):
        doc = synth_document(base + i, x_height, families, max_side=tcfg.synthetic_max_side)
        pages.append((f"{prefix}/{i:04d}", doc.image, doc.x_height, tuple(doc.families), RVL_CLASSES[doc.label]))
    return pages


def describe_training_data(pages: PageSets, tcfg: TrainingConfig) -> dict:
    """What the manifest records of the data: families, text sizes (LR x-height) and degradations."""
    from srgan.training.fonts import held_out_families

    def lr_heights(ps: Sequence[TrainPage]) -> list[float]:
        return sorted(round(p.text_px * p.factor / tcfg.scale, 2) for p in ps if p.text_px)

    synth = [p for p in pages.train if p.synthetic]
    real = [p for p in pages.train if not p.synthetic]
    heights = lr_heights(pages.train)
    return {
        "families": sorted({f for p in synth for f in p.families}),
        "held_out_families": [f.name for f in held_out_families()],
        "evaluation_families": sorted({f for p in pages.eval for f in p.families}),
        "layouts": sorted({p.layout for p in synth if p.layout}),
        "real_pages": [p.name for p in real],
        "normalised": tcfg.normalise,
        "x_height_lr": {"min": heights[0] if heights else None, "max": heights[-1] if heights else None,
                        "synthetic_range": [tcfg.x_height_min, tcfg.x_height_max], "pages": heights},
        "degradations": ({k: round(v, 4) for k, v in tcfg.mix.pairs()} if tcfg.degradation == "mix"
                         else {tcfg.degradation: 1.0}),
    }


# --------------------------------------------------------------------------------------------- crops


def ink_fraction(crop: np.ndarray) -> float:
    return float((crop < INK_LEVEL).mean()) if crop.size else 0.0


def ink_points(page: np.ndarray, seed: int = 0, limit: int = INK_POINTS) -> np.ndarray:
    """(N, 2) int32 (y, x) positions of up to ``limit`` ink pixels of a page, drawn at random."""
    ys, xs = np.nonzero(page < INK_LEVEL)
    if len(ys) > limit:
        keep = np.random.default_rng(seed).choice(len(ys), size=limit, replace=False)
        ys, xs = ys[keep], xs[keep]
    return np.stack([ys, xs], axis=1).astype(np.int32)


def random_crop(page: np.ndarray, crop: int, rng: np.random.Generator, points: np.ndarray | None = None,
                tries: int = CROP_TRIES) -> np.ndarray:
    """A crop x crop window of an (H, W) page with at least MIN_INK ink (else the inkiest tried).

    The first third of the tries are uniform over the page; the rest are windows around one of
    ``points`` (known ink pixels), so sparse pages still give text crops. Pages smaller than the
    crop are padded with white paper.
    """
    h, w = page.shape
    if h < crop or w < crop:
        padded = np.full((max(h, crop), max(w, crop)), 255, dtype=np.uint8)
        padded[:h, :w] = page
        page, (h, w) = padded, padded.shape
    best, best_ink = None, -1.0
    for t in range(max(1, tries)):
        if points is not None and len(points) and t >= tries // 3:
            py, px = points[int(rng.integers(len(points)))]
            y = int(np.clip(py - rng.integers(0, crop), 0, h - crop))
            x = int(np.clip(px - rng.integers(0, crop), 0, w - crop))
        else:
            y = int(rng.integers(0, h - crop + 1))
            x = int(rng.integers(0, w - crop + 1))
        window = np.array(page[y : y + crop, x : x + crop])  # copies out of the memory map
        ink = ink_fraction(window)
        if ink >= MIN_INK:
            return window
        if ink > best_ink:
            best, best_ink = window, ink
    assert best is not None
    return best


def to_tensor(img: np.ndarray, channels: int = 1) -> torch.Tensor:
    """(H, W) uint8 -> (C, H, W) float32 in [0, 1]."""
    t = torch.from_numpy(np.array(img, dtype=np.uint8)).float().div_(255.0).unsqueeze(0)  # (1, H, W), a copy
    return t.expand(channels, -1, -1).contiguous() if channels > 1 else t


def make_pair(hr_page: np.ndarray, crop: int, scale: int, degradation: str, rng: np.random.Generator,
              channels: int = 1, points: np.ndarray | None = None, mix: Sequence[tuple[str, float]] = MIX
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """(lq, gt): (C, crop/scale, crop/scale) and (C, crop, crop) float tensors in [0, 1]."""
    gt = random_crop(hr_page, crop, rng, points)
    lq = degrade(gt, scale, degradation, rng, mix)
    return to_tensor(lq, channels), to_tensor(gt, channels)


class CropDataset(IterableDataset):
    """An endless stream of (lq, gt) crops from prepared pages.

    Pages are drawn with probability proportional to sqrt(area), so big scans count for more
    than small ones without drowning them. Each worker draws from its own seeded stream.

    Args:
        pages: prepared training pages (their ``hr`` .npy files are memory-mapped).
        crop: HR crop side. Default 96.
        scale: LR = HR / scale. Default 2.
        degradation: ``bicubic`` or ``scan``. Default ``bicubic``.
        seed: base seed. Default 0.
        offset: added to the seed, e.g. the step a resumed run starts at. Default 0.
        channels: 1 (grey) or 3 (grey repeated). Default 1.
        mix: (chain, weight) pairs ``mix`` draws from. Default ``MIX``.
    """

    def __init__(self, pages: Sequence[TrainPage], crop: int = 96, scale: int = 2, degradation: str = "bicubic",
                 seed: int = 0, offset: int = 0, channels: int = 1, mix: Sequence[tuple[str, float]] = MIX) -> None:
        super().__init__()
        if not pages:
            raise ValueError("CropDataset: no pages")
        if crop % scale:
            raise ValueError(f"CropDataset: crop {crop} is not divisible by scale {scale}")
        self.paths = [str(p.hr) for p in pages]
        self.inks = [str(p.ink) if p.ink else None for p in pages]
        areas = np.array([max(1, p.shape[0] * p.shape[1]) for p in pages], dtype=np.float64)
        self.probs = np.sqrt(areas) / np.sqrt(areas).sum()
        self.crop, self.scale, self.degradation = crop, scale, degradation
        self.seed, self.offset, self.channels, self.mix = seed, offset, channels, tuple(mix)

    def __iter__(self):
        info = get_worker_info()
        worker = info.id if info is not None else 0
        rng = np.random.default_rng([self.seed, self.offset, worker])
        while True:
            i = int(rng.choice(len(self.paths), p=self.probs))
            page = np.load(self.paths[i], mmap_mode="r")
            points = np.load(self.inks[i]) if self.inks[i] else None
            yield make_pair(page, self.crop, self.scale, self.degradation, rng, self.channels, points, self.mix)


def make_loader(dataset: CropDataset, batch_size: int, workers: int, pin_memory: bool) -> DataLoader:
    """Batches of (lq, gt): (N, C, crop/scale, crop/scale), (N, C, crop, crop)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
    )


def fixed_crops(pages: Sequence[TrainPage], count: int, crop: int, scale: int, degradation: str, seed: int,
                channels: int = 1, mix: Sequence[tuple[str, float]] = MIX) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A fixed validation batch of ``count`` crops from held-out pages (the same on every call)."""
    if not pages or count <= 0:
        return None
    rng = np.random.default_rng([seed, 99991])
    lqs, gts = [], []
    for k in range(count):
        p = pages[k % len(pages)]
        page = np.load(p.hr, mmap_mode="r")
        lq, gt = make_pair(page, crop, scale, degradation, rng, channels, np.load(p.ink) if p.ink else None, mix)
        lqs.append(lq)
        gts.append(gt)
    return torch.stack(lqs), torch.stack(gts)


def batch_psnr(sr: torch.Tensor, gt: torch.Tensor) -> float:
    """Mean PSNR (dB, peak 1) over a batch of [0, 1] images, the prediction clamped and quantised to 8 bits."""
    sr = sr.float().clamp(0, 1).mul(255).round().div(255)
    mse = ((sr - gt.float()) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1.0 / mse)).mean())


def steps_per_epoch_hint(pages: Sequence[TrainPage], crop: int, batch_size: int) -> int:
    """Rough count of batches that cover the training pixels once (for log lines only)."""
    pixels = sum(p.shape[0] * p.shape[1] for p in pages)
    return max(1, math.ceil(pixels / (crop * crop * batch_size)))
