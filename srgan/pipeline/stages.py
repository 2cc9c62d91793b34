"""Per-page steps shared by the Prefect flow, the evaluation and the benchmark.

A page moves as a small, picklable :class:`PageWork` record; its pixels live in ``.npy`` files
under the run's work folder, so only paths travel between tasks.
"""

from __future__ import annotations

import io
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.atomic import atomic_write_bytes
from srgan.config import PipelineConfig, UpscaleConfig, output_config_hash
from srgan.encoding import codecs
from srgan.imaging.colour import merge_luma, recombine, split_luma
from srgan.imaging.metrics import bicubic_consistency_psnr, bicubic_upscale, consistency_psnr, lanczos_upscale
from srgan.imaging.textsize import (
    TOO_SMALL,
    TextHeight,
    estimate_text_height,
    normalisation_factor,
    resize,
    resize_to,
)
from srgan.inference.engine import Engine, EngineInfo
from srgan.pdf.textlayer import write_text_layer
from srgan.pipeline.captions import side_by_side
from srgan.pipeline.documents import page_format
from srgan.pipeline.work import PageWork, RunContext
from srgan.readers import Page, printable
from srgan.readers.refs import container_path, one_line, where
from srgan.storage.fence import FencedError
from srgan.storage.files import Location, join

log = logging.getLogger(__name__)


def normalise_image(image: np.ndarray, text_height: float | None, ucfg: UpscaleConfig) -> tuple[
    np.ndarray, TextHeight, float
]:
    """Estimate the page's text height and resample it to the weights' trained height."""
    estimate = estimate_text_height(image)
    factor = normalisation_factor(estimate, text_height or 0.0, ucfg)
    return resize(image, factor), estimate, factor


SMALL_PRINT_PX = 2.5  # the smallest LR x-height the validated-range sweeps measure (srgan.fidelity.sweep.SIZES)


def range_decision(text_px: float | None, factor: float, validated_range: Sequence[float] | None,
                   ucfg: UpscaleConfig, note: str | None = None) -> tuple[bool | None, str]:
    """(in_validated_range, method) for a page whose text (estimate text_px, normalised by factor) meets
    the model at text_px * factor px: None when there is no estimate or no range. The method is
    ``lanczos`` for a page outside the range under ``upscale.out_of_range: lanczos``. A page without an
    estimate (``note``: the estimator's reason) gets under ``upscale.no_estimate``: ``lanczos``, ``model``,
    or ``evidence``: text too small to measure (its ink is word blobs in text lines: the estimator's
    ``TOO_SMALL``) is decided as the smallest size measured, so the model when the range reaches down to
    ``SMALL_PRINT_PX`` and Lanczos otherwise; blank pages and pictures (no text to gain) get Lanczos.
    Weights without a range leave every page to the model."""
    if not validated_range:
        return None, "model"
    lo, hi = validated_range
    if text_px is None:
        if ucfg.no_estimate == "evidence":
            small_print = bool(note and note.startswith(TOO_SMALL))
            return None, "model" if small_print and lo <= SMALL_PRINT_PX else "lanczos"
        return None, "lanczos" if ucfg.no_estimate == "lanczos" else "model"
    inside = bool(lo <= text_px * factor <= hi)
    return inside, "lanczos" if not inside and ucfg.out_of_range == "lanczos" else "model"


def upscale_images(
    engine: Engine, images: Sequence[np.ndarray], text_height: float | None, ucfg: UpscaleConfig,
    validated_range: Sequence[float] | None = None,
) -> list[tuple[np.ndarray, TextHeight, float]]:
    """In-memory path: normalise, upscale in shared batches, resample to exactly scale x input.

    With validated_range (``weights.decision_range`` of the manifest), pages outside it are handled
    as ``ucfg.out_of_range`` says, pages without a text-height estimate as ``ucfg.no_estimate`` says
    (Lanczos instead of the model for ``lanczos``).
    """
    prepared = [normalise_image(img, text_height, ucfg) for img in images]
    methods = [range_decision(est.px, factor, validated_range, ucfg, est.reason)[1]
               for _, est, factor in prepared]
    to_model = [p[0] for p, m in zip(prepared, methods, strict=True) if m == "model"]
    outs = iter(engine.upscale(to_model) if to_model else [])
    s = engine.scale
    result = []
    for img, (_, est, factor), method in zip(images, prepared, methods, strict=True):
        size = (img.shape[1] * s, img.shape[0] * s)
        out = resize_to(next(outs), size) if method == "model" else lanczos_upscale(img, size)
        result.append((out, est, factor))
    return result


def prepare_page(page: Page, work_dir: Path, text_height: float | None, ucfg: UpscaleConfig,
                 validated_range: Sequence[float] | None = None, in_memory: bool = False,
                 clock: Callable[[], float] = time.perf_counter) -> PageWork:
    """Decoded page -> normalised page on disk (.npy), or in ``PageWork.arrays`` when `in_memory`
    (the stages run in one process: no disk round trip); errors become PageWork.error.

    validated_range (``weights.decision_range`` of the manifest) decides ``in_validated_range``
    and, with ``upscale.out_of_range`` and ``upscale.no_estimate``, the page's ``method``. ``clock``
    times the step (the bench passes a CPU clock to measure CPU, not wall time).
    """
    work = PageWork(doc=page.doc, page_index=page.page_index, page_count=page.page_count, error=page.error,
                    source_format=page.format, page_size_pt=page.size_pt, doc_info=page.info,
                    pdf_path=page.pdf_path, dpi_reason=page.dpi_reason, pdf_note=page.pdf_note,
                    has_text=page.has_text)
    work.seconds["decode"] = getattr(page, "seconds", 0.0) or 0.0
    if page.error or page.image is None:
        work.error = work.error or "page could not be decoded"
        return work
    img, chroma = page.image, None
    if img.ndim == 3:  # a colour page: the model sees its luminance; the chroma waits in its own file
        img, chroma = split_luma(img)
    work.color = "grey" if chroma is None else "rgb"
    work.input_height, work.input_width = img.shape[:2]
    work.dpi = page.dpi
    if not page.dpi and ucfg.assumed_dpi > 0:  # untagged (RVL-CDIP's pages are): OCR and viewers need a size
        work.dpi, work.dpi_assumed = float(ucfg.assumed_dpi), True
    t0 = clock()
    norm, estimate, factor = normalise_image(img, text_height, ucfg)
    work.seconds["normalise"] = clock() - t0
    work.text_height_px, work.text_height_note, work.factor = estimate.px, estimate.reason, factor
    work.validated_range = tuple(validated_range) if validated_range else None
    work.in_validated_range, work.method = range_decision(estimate.px, factor, validated_range, ucfg, estimate.reason)
    if work.in_validated_range is False and ucfg.out_of_range == "model_warn":
        log.warning("%s page %d: text x-height %.1f px is outside the weights' validated range %s; model used",
                    printable(page.doc.member or page.doc.source), page.page_index + 1, estimate.px * factor,
                    list(validated_range))
    if in_memory:
        work.arrays.update(input=img, norm=norm)
        if chroma is not None:
            work.arrays["chroma"] = chroma
        return work
    work_dir.mkdir(parents=True, exist_ok=True)
    # rel_path is unique within a run (unlike member: two archives may hold the same member name)
    base = work_dir / _safe_name(f"{page.doc.container}|{page.doc.rel_path}|{page.page_index}")
    work.input_npy = str(base) + ".in.npy"
    np.save(work.input_npy, img)
    if chroma is not None:
        work.chroma_npy = str(base) + ".chroma.npy"
        np.save(work.chroma_npy, chroma)
    if factor != 1.0:
        work.norm_npy = str(base) + ".norm.npy"
        np.save(work.norm_npy, norm)
    else:
        work.norm_npy = work.input_npy
    return work


def infer_pages(engine: Engine, works: Sequence[PageWork], chunk_pages: int = 16) -> list[PageWork]:
    """Run the model over the normalised pages of many PageWorks in shared tile batches.

    Pages go to the model `chunk_pages` at a time, so a large task (auto flow.pages_per_task may hand
    it 800 pages) holds a few pages in memory, not all of them. Pages whose method is ``lanczos``
    (outside the weights' validated range) skip the model.
    """
    todo = [w for w in works if not w.error and w.method == "model"]
    for start in range(0, len(todo), chunk_pages):
        _infer_chunk(engine, todo[start : start + chunk_pages])
    return list(works)


def _infer_chunk(engine: Engine, todo: list[PageWork]) -> None:
    t0 = time.perf_counter()
    try:
        outs = engine.upscale([w.load("norm") for w in todo])
    except Exception as exc:  # noqa: BLE001 - one failing batch must not stop the run
        for w in todo:
            w.error = f"inference failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return
    share = (time.perf_counter() - t0) / len(todo)
    for w, out in zip(todo, outs, strict=True):
        w.seconds["infer"] = share
        if "norm" in w.arrays:
            w.arrays["sr"] = out
            continue
        w.sr_npy = w.norm_npy.replace(".norm.npy", ".sr.npy").replace(".in.npy", ".sr.npy")
        np.save(w.sr_npy, out)


JPEG_QUALITY = 95  # pages of JPEG inputs written as JPEG (output_format document): their own format family


def encode_image(image: np.ndarray, fmt: str, dpi: float | None, compress_level: int = 6) -> bytes:
    """(H, W) grey or (H, W, 3) RGB uint8 -> the bytes of fmt: a page encoding (png8, png4, png2, bitonal, jp2:
    srgan.encoding.codecs; grey PNGs by srgan.encoding.png, no row filter, zlib Z_RLE), png, tiff or jpeg."""
    if fmt == "png":
        fmt = "png8"
    if fmt in codecs.ENCODINGS:
        return codecs.encode(image, codecs.get(fmt), dpi, compress_level)
    buf = io.BytesIO()
    kwargs: dict = {"dpi": (dpi, dpi)} if dpi else {}
    if fmt == "jpeg":
        kwargs.update(quality=JPEG_QUALITY, subsampling=0)
    Image.fromarray(image).save(buf, format="JPEG" if fmt == "jpeg" else "TIFF", **kwargs)
    return buf.getvalue()


def compare_picture(inp: np.ndarray, bicubic: np.ndarray, model: np.ndarray, scale: int, crop: int,
                    model_name: str = "model", luma: np.ndarray | None = None) -> np.ndarray:
    """input (nearest-enlarged) | bicubic | model, for the crop of the input with the most ink, each panel
    labelled above. Grey (H, W) or RGB (H, W, 3) panels; luma: the input's luminance for the ink search."""
    grey = inp if luma is None else luma
    h, w = grey.shape
    c = min(crop, h, w)
    step = max(c // 2, 1)
    best, by, bx = -1.0, 0, 0
    for y in range(0, h - c + 1, step):
        for x in range(0, w - c + 1, step):
            ink = float((grey[y : y + c, x : x + c] < 128).mean())
            if ink > best:
                best, by, bx = ink, y, x
    s = scale
    a = np.asarray(Image.fromarray(inp[by : by + c, bx : bx + c]).resize((c * s, c * s), Image.Resampling.NEAREST))
    b = bicubic[by * s : (by + c) * s, bx * s : (bx + c) * s]
    m = model[by * s : (by + c) * s, bx * s : (bx + c) * s]
    return side_by_side([a, b, m], [f"input (nearest x{s})", f"bicubic x{s}", f"model {model_name}"])


def new_run_id() -> str:
    """Sortable and unique: UTC time to the second plus six hex digits."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]


def make_run_context(cfg: PipelineConfig, out_dir: Location, engine_info: EngineInfo, weights_name: str,
                     weights_sha256: str) -> RunContext:
    """The one place a run's shared row fields are gathered (plain runner and Prefect flow alike)."""
    return RunContext(run_id=new_run_id(), started_at=datetime.now(UTC), out_dir=str(out_dir),
                      scale=cfg.upscale.scale, weights_name=weights_name, weights_sha256=weights_sha256,
                      device=engine_info.device, precision=engine_info.precision, runtime=engine_info.runtime,
                      config_hash=output_config_hash(cfg), output_format=cfg.upscale.output_format,
                      compare_crop=cfg.upscale.compare_crop, png_compress_level=cfg.upscale.png_compress_level,
                      encoding=cfg.upscale.encoding,
                      records_dir=str(join(out_dir, cfg.records.dir)), ocr_layer=cfg.upscale.ocr_layer,
                      ocr_language=cfg.upscale.ocr_language, max_member_bytes=cfg.limits.max_member_bytes)


def finish_page(work: PageWork, ctx: RunContext, compare: bool = False,
                clock: Callable[[], float] = time.perf_counter) -> dict:
    """Resample to exactly scale x input, measure, write page (+ compare picture), return its row.

    The bicubic baseline's consistency PSNR is computed at the input size (bicubic_consistency_psnr, the
    same figure as from its upscale); the upscale itself is made only for the compare picture.
    ``clock`` times the steps (seconds_metrics, seconds_write); perf_counter unless told."""
    row = base_row(work, ctx)
    if work.error:
        row.update(status="error", error=work.error)
        return row
    try:
        t0 = clock()
        inp = work.load("input")
        s = ctx.scale
        size = (work.input_width * s, work.input_height * s)
        out = lanczos_upscale(inp, size) if work.method == "lanczos" else resize_to(work.load("sr"), size)
        t1 = clock()
        row["psnr_consistency"] = consistency_psnr(out, inp)  # on luminance for colour pages
        row["psnr_consistency_bicubic"] = bicubic_consistency_psnr(inp, s)  # the baseline's, without its upscale
        t2 = clock()
        chroma = work.load("chroma") if work.color == "rgb" else None
        page = out if chroma is None else recombine(out, chroma)  # model's Y + Lanczos-upscaled chroma
        fmt = page_format(ctx.output_format, work.page_count, work.doc.kind, work.source_format, ctx.encoding)
        if fmt in codecs.ENCODINGS:
            fmt = codecs.for_page(fmt, page).name  # colour pages stay 8-bit under the grey-level encodings
        ext = codecs.ENCODINGS[fmt].ext if fmt in codecs.ENCODINGS else {"tiff": "tif", "jpeg": "jpg"}[fmt]
        out_path = join(ctx.out_dir, "pages", f"{work.stem}.{ext}")  # a local path or a URL
        out_dpi = work.dpi * s if work.dpi else None
        data = encode_image(page, fmt, out_dpi, ctx.png_compress_level)
        atomic_write_bytes(out_path, data)
        if compare:
            if chroma is None:
                pic = compare_picture(inp, bicubic_upscale(inp, size), out, s, ctx.compare_crop, ctx.weights_name)
            else:
                inp_rgb = merge_luma(inp, chroma)
                bic_rgb = np.asarray(Image.fromarray(inp_rgb).resize(size, Image.Resampling.BICUBIC))
                pic = compare_picture(inp_rgb, bic_rgb, page, s, ctx.compare_crop, ctx.weights_name, luma=inp)
            atomic_write_bytes(join(ctx.out_dir, "compare", f"{work.stem}.png"), encode_image(pic, "png", None))
        t3 = clock()
        row.update(text_layer(work, ctx, out_path, clock))
        row.update(
            output_path=str(out_path),
            output_width=size[0],
            output_height=size[1],
            output_dpi=out_dpi,
            encoding=fmt,
            output_bytes=len(data),
            seconds_metrics=t2 - t1,
            seconds_write=(t1 - t0) + (t3 - t2),
            status="ok",
        )
    except FencedError:
        raise  # the output is no longer this run's: stop (srgan.storage.fence)
    except TextLayerError as exc:
        row.update(status="error", error=str(exc))
        log.warning("%s", exc)
    except Exception as exc:  # noqa: BLE001 - a page that cannot be written becomes an error row
        row.update(status="error", error=f"write failed: {type(exc).__name__}: {exc}".splitlines()[0])
    return row


def text_layer(work: PageWork, ctx: RunContext, page_file: Path,
               clock: Callable[[], float] = time.perf_counter) -> dict:
    """The text_layer (and seconds_ocr) of a PDF page of an output document: ``kept`` (the page has
    text: the output keeps it), ``added`` (upscale.ocr_layer add: tesseract's layer written beside the
    page file, srgan.pdf.textlayer) or ``none``. Raises when tesseract fails, so the page is redone."""
    if work.doc.kind != "pdf" or ctx.output_format != "document":
        return {}
    if work.has_text:
        return {"text_layer": "kept"}
    if ctx.ocr_layer != "add":
        return {"text_layer": "none"}
    t0 = clock()
    try:
        write_text_layer(page_file, ctx.ocr_language)
    except Exception as exc:  # noqa: BLE001 - one line naming the page; the row becomes an error
        raise TextLayerError(f"text layer not made ({where(work.doc, work.page_index)}): {one_line(exc)}") from None
    return {"text_layer": "added", "seconds_ocr": clock() - t0}


class TextLayerError(RuntimeError):
    """tesseract could not make a page's text layer (upscale.ocr_layer add); the message is the row's error."""


def base_row(work: PageWork, ctx: RunContext) -> dict:
    d = work.doc
    return {
        "run_id": ctx.run_id,
        "started_at": ctx.started_at,
        "finished_at": datetime.now(UTC),  # the page reached its write step (rates over the night)
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
        "dpi_assumed": work.dpi_assumed,
        "text_height_px": work.text_height_px,
        "text_height_note": work.text_height_note,
        "normalise_factor": work.factor,
        "scale": ctx.scale,
        "weights_name": ctx.weights_name,
        "weights_sha256": ctx.weights_sha256,
        "device": ctx.device,
        "precision": ctx.precision,
        "runtime": ctx.runtime,
        "seconds_decode": work.seconds.get("decode"),
        "seconds_normalise": work.seconds.get("normalise"),
        "seconds_infer": work.seconds.get("infer"),
        "config_hash": ctx.config_hash,
        "color": work.color or None,
        "page_width_pt": work.page_size_pt[0] if work.page_size_pt else None,
        "page_height_pt": work.page_size_pt[1] if work.page_size_pt else None,
        "in_validated_range": work.in_validated_range,
        "validated_xheight_lo": work.validated_range[0] if work.validated_range else None,
        "validated_xheight_hi": work.validated_range[1] if work.validated_range else None,
        "method": work.method,
        "pdf_path": work.pdf_path,
        "pdf_dpi_reason": work.dpi_reason,
        "pdf_path_note": work.pdf_note,
    }


def cleanup(work: PageWork) -> None:
    """Remove the page's work files (or drop its in-memory pages) once it is written."""
    work.arrays.clear()
    for p in {work.input_npy, work.norm_npy, work.sr_npy, work.chroma_npy}:
        if p:
            Path(p).unlink(missing_ok=True)


def _safe_name(key: str) -> str:
    import hashlib

    return hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:20]

