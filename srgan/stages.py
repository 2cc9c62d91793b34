"""Per-page steps shared by the Prefect flow, the evaluation and the benchmark.

A page moves as a small, picklable :class:`PageWork` record; its pixels live in ``.npy`` files
under the run's work folder, so only paths travel between tasks.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.config import PipelineConfig, UpscaleConfig, output_config_hash
from srgan.engine import Engine, EngineInfo
from srgan.metrics import bicubic_upscale, consistency_psnr
from srgan.readers import DocumentRef, Page, printable
from srgan.readers.refs import container_path
from srgan.textsize import TextHeight, estimate_text_height, normalisation_factor, resize, resize_to
from srgan.atomic import atomic_write_bytes

log = logging.getLogger(__name__)


@dataclass
class PageWork:
    """One page on its way through the pipeline: identity, sizes, paths and timings."""

    doc: DocumentRef
    page_index: int
    page_count: int
    error: str | None = None
    input_width: int = 0
    input_height: int = 0
    dpi: float | None = None
    text_height_px: float | None = None
    text_height_note: str | None = None
    factor: float = 1.0
    input_npy: str = ""  # the decoded page
    norm_npy: str = ""  # the page after text-size normalisation
    sr_npy: str = ""  # the model's output for norm_npy
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return page_key(self.doc, self.page_index)

    @property
    def stem(self) -> str:
        """Output name stem: rel_path, plus _p0001... for documents of several pages."""
        if self.page_count > 1:
            return f"{self.doc.rel_path}_p{self.page_index + 1:04d}"
        return self.doc.rel_path


def page_key(doc: DocumentRef, page_index: int) -> str:
    return f"{doc.source}|{doc.member}|{page_index}"


def normalise_image(image: np.ndarray, text_height: float | None, ucfg: UpscaleConfig) -> tuple[
    np.ndarray, TextHeight, float
]:
    """Estimate the page's text height and resample it to the weights' trained height."""
    estimate = estimate_text_height(image)
    factor = normalisation_factor(estimate, text_height or 0.0, ucfg)
    return resize(image, factor), estimate, factor


def upscale_images(
    engine: Engine, images: Sequence[np.ndarray], text_height: float | None, ucfg: UpscaleConfig
) -> list[tuple[np.ndarray, TextHeight, float]]:
    """In-memory path: normalise, upscale in shared batches, resample to exactly scale x input."""
    prepared = [normalise_image(img, text_height, ucfg) for img in images]
    outs = engine.upscale([p[0] for p in prepared])
    s = engine.scale
    return [
        (resize_to(out, (img.shape[1] * s, img.shape[0] * s)), est, factor)
        for img, out, (_, est, factor) in zip(images, outs, prepared, strict=True)
    ]


def prepare_page(page: Page, work_dir: Path, text_height: float | None, ucfg: UpscaleConfig) -> PageWork:
    """Decoded page -> normalised page on disk (.npy); errors become PageWork.error."""
    work = PageWork(doc=page.doc, page_index=page.page_index, page_count=page.page_count, error=page.error)
    work.seconds["decode"] = getattr(page, "seconds", 0.0) or 0.0
    if page.error or page.image is None:
        work.error = work.error or "page could not be decoded"
        return work
    img = page.image
    work.input_height, work.input_width = img.shape[:2]
    work.dpi = page.dpi
    t0 = time.perf_counter()
    norm, estimate, factor = normalise_image(img, text_height, ucfg)
    work.seconds["normalise"] = time.perf_counter() - t0
    work.text_height_px, work.text_height_note, work.factor = estimate.px, estimate.reason, factor
    work_dir.mkdir(parents=True, exist_ok=True)
    # rel_path is unique within a run (unlike member: two archives may hold the same member name)
    base = work_dir / _safe_name(f"{page.doc.container}|{page.doc.rel_path}|{page.page_index}")
    work.input_npy = str(base) + ".in.npy"
    np.save(work.input_npy, img)
    if factor != 1.0:
        work.norm_npy = str(base) + ".norm.npy"
        np.save(work.norm_npy, norm)
    else:
        work.norm_npy = work.input_npy
    return work


def infer_pages(engine: Engine, works: Sequence[PageWork]) -> list[PageWork]:
    """Run the model over the normalised pages of many PageWorks in shared tile batches."""
    todo = [w for w in works if not w.error]
    if not todo:
        return list(works)
    t0 = time.perf_counter()
    try:
        outs = engine.upscale([np.load(w.norm_npy) for w in todo])
    except Exception as exc:  # noqa: BLE001 - one failing batch must not stop the run
        for w in todo:
            w.error = f"inference failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return list(works)
    share = (time.perf_counter() - t0) / len(todo)
    for w, out in zip(todo, outs, strict=True):
        w.sr_npy = w.norm_npy.replace(".norm.npy", ".sr.npy").replace(".in.npy", ".sr.npy")
        np.save(w.sr_npy, out)
        w.seconds["infer"] = share
    return list(works)


def encode_image(image: np.ndarray, fmt: str, dpi: float | None, compress_level: int = 6) -> bytes:
    buf = io.BytesIO()
    kwargs: dict = {"dpi": (dpi, dpi)} if dpi else {}
    if fmt == "png":
        kwargs["compress_level"] = compress_level
    Image.fromarray(image).save(buf, format="PNG" if fmt == "png" else "TIFF", **kwargs)
    return buf.getvalue()


def compare_picture(inp: np.ndarray, bicubic: np.ndarray, model: np.ndarray, scale: int, crop: int) -> np.ndarray:
    """input (nearest-enlarged) | bicubic | model, for the crop of the input with the most ink."""
    h, w = inp.shape
    c = min(crop, h, w)
    step = max(c // 2, 1)
    best, by, bx = -1.0, 0, 0
    for y in range(0, h - c + 1, step):
        for x in range(0, w - c + 1, step):
            ink = float((inp[y : y + c, x : x + c] < 128).mean())
            if ink > best:
                best, by, bx = ink, y, x
    s = scale
    a = np.asarray(Image.fromarray(inp[by : by + c, bx : bx + c]).resize((c * s, c * s), Image.Resampling.NEAREST))
    b = bicubic[by * s : (by + c) * s, bx * s : (bx + c) * s]
    m = model[by * s : (by + c) * s, bx * s : (bx + c) * s]
    gap = np.full((c * s, 8), 128, dtype=np.uint8)  # grey bars: the panels sit on white paper
    return np.concatenate([a, gap, b, gap, m], axis=1)


@dataclass
class RunContext:
    """What every row of a run shares."""

    run_id: str
    started_at: object  # datetime
    out_dir: str
    scale: int
    weights_name: str
    weights_sha256: str
    device: str
    precision: str
    config_hash: str
    output_format: str = "png"
    compare_crop: int = 256
    png_compress_level: int = 1


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second plus six hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def make_run_context(cfg: PipelineConfig, out_dir: Path, engine_info: EngineInfo, weights_name: str,
                     weights_sha256: str) -> RunContext:
    """The one place a run's shared row fields are gathered (plain runner and Prefect flow alike)."""
    return RunContext(run_id=new_run_id(), started_at=datetime.now(UTC), out_dir=str(out_dir),
                      scale=cfg.upscale.scale, weights_name=weights_name, weights_sha256=weights_sha256,
                      device=engine_info.device, precision=engine_info.precision,
                      config_hash=output_config_hash(cfg), output_format=cfg.upscale.output_format,
                      compare_crop=cfg.upscale.compare_crop, png_compress_level=cfg.upscale.png_compress_level)


def finish_page(work: PageWork, ctx: RunContext, compare: bool = False) -> dict:
    """Resample to exactly scale x input, measure, write page (+ compare picture), return its row."""
    row = base_row(work, ctx)
    if work.error:
        row.update(status="error", error=work.error)
        return row
    try:
        t0 = time.perf_counter()
        inp = np.load(work.input_npy)
        s = ctx.scale
        size = (work.input_width * s, work.input_height * s)
        out = resize_to(np.load(work.sr_npy), size)
        bic = bicubic_upscale(inp, size)
        t1 = time.perf_counter()
        row["psnr_consistency"] = consistency_psnr(out, inp)
        row["psnr_consistency_bicubic"] = consistency_psnr(bic, inp)
        t2 = time.perf_counter()
        ext = "png" if ctx.output_format == "png" else "tif"
        out_path = Path(ctx.out_dir) / "pages" / f"{work.stem}.{ext}"
        out_dpi = work.dpi * s if work.dpi else None
        atomic_write_bytes(out_path, encode_image(out, ctx.output_format, out_dpi, ctx.png_compress_level))
        if compare:
            pic = compare_picture(inp, bic, out, s, ctx.compare_crop)
            atomic_write_bytes(Path(ctx.out_dir) / "compare" / f"{work.stem}.png", encode_image(pic, "png", None))
        t3 = time.perf_counter()
        row.update(
            output_path=str(out_path),
            output_width=size[0],
            output_height=size[1],
            output_dpi=out_dpi,
            seconds_metrics=t2 - t1,
            seconds_write=(t1 - t0) + (t3 - t2),
            status="ok",
        )
    except Exception as exc:  # noqa: BLE001 - a page that cannot be written becomes an error row
        row.update(status="error", error=f"write failed: {type(exc).__name__}: {exc}".splitlines()[0])
    return row


def base_row(work: PageWork, ctx: RunContext) -> dict:
    d = work.doc
    return {
        "run_id": ctx.run_id,
        "started_at": ctx.started_at,
        "source": printable(d.source),  # non-UTF-8 file names as \xNN: Parquet strings are UTF-8
        "member": printable(d.member),
        "container": printable(container_path(d)),  # which archive/document file under source
        "content_sha256": d.content_sha256 or None,
        "page_index": work.page_index,
        "page_count": work.page_count,
        "label": d.label,
        "split": d.split,
        "input_width": work.input_width or None,
        "input_height": work.input_height or None,
        "input_dpi": work.dpi,
        "text_height_px": work.text_height_px,
        "text_height_note": work.text_height_note,
        "normalise_factor": work.factor,
        "scale": ctx.scale,
        "weights_name": ctx.weights_name,
        "weights_sha256": ctx.weights_sha256,
        "device": ctx.device,
        "precision": ctx.precision,
        "seconds_decode": work.seconds.get("decode"),
        "seconds_normalise": work.seconds.get("normalise"),
        "seconds_infer": work.seconds.get("infer"),
        "config_hash": ctx.config_hash,
    }


def cleanup(work: PageWork) -> None:
    """Remove the page's work files once it is written."""
    for p in {work.input_npy, work.norm_npy, work.sr_npy}:
        if p:
            Path(p).unlink(missing_ok=True)


def _safe_name(key: str) -> str:
    import hashlib

    return hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:20]

