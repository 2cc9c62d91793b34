"""The x-height sweep and the validated text range of a model.

:func:`xheight_sweep` resamples the evaluation pages so that the LR x-height spans ``sizes`` px and
measures each point (:func:`srgan.fidelity.gate.measure_page`); :func:`validated_range` is the longest
run of consecutive measured sizes at which, on every page measured, the model is at least as good as
Lanczos by PSNR, and by CER reads no worse (+0.005) than Lanczos or the original page itself, whichever
reads worse: a model that reads as the original does has changed nothing, even where tesseract happens
to read a Lanczos upscale better than the original (docs/fidelity.md).
``python -m srgan.fidelity`` writes it into the weights manifest (``validated_xheight_px`` and
``validated_range_evidence``) with :func:`estimate_range`, the same range in the estimator's units
(``validated_estimate_px``), which upscale runs compare each page's estimate with
(``weights.decision_range``, ``upscale.out_of_range``).
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.atomic import atomic_write_bytes
from srgan.config import PipelineConfig, UpscaleConfig
from srgan.fidelity.evaluate import make_lr
from srgan.fidelity.gate import CER_MARGIN, NATIVE_DPI, OcrCache, OcrPage, measure_page, row_engines
from srgan.fidelity.ocr import ENGINES, TESSERACT, field_name
from srgan.imaging.textsize import TOO_SMALL, estimate_text_height, resize
from srgan.inference.engine import Engine
from srgan.models import Generator
from srgan.pipeline.stages import range_decision

log = logging.getLogger(__name__)

SIZES = (2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 28.0)  # LR x-heights of the sweep, px
MAX_MEGAPIXELS = 10.0  # sweep points whose resampled original is larger are skipped (CPU time)


def xheight_sweep(net_g: Generator, text_height: float | None, pages: Sequence[OcrPage], cfg: PipelineConfig,
                  sizes: Sequence[float] = SIZES, max_megapixels: float = MAX_MEGAPIXELS,
                  cache: OcrCache | None = None, ocr_engines: Sequence[str] = ENGINES) -> tuple[list[dict], list[dict]]:
    """(rows, skipped): each page resampled so that its LR x-height is each size, then measure_page.

    A page is resampled (bicubic, as if scanned at another resolution; see textsize_study) by
    size x scale / its estimated x-height. Points whose resampled page exceeds max_megapixels are
    skipped and listed.
    """
    engine = Engine(net_g, cfg.engine, cfg.tiling)
    scale = engine.scale
    cache = cache or OcrCache()
    rows, skipped = [], []
    for page in pages:
        est = estimate_text_height(page.image)
        if est.px is None:
            log.warning("fidelity: %s skipped: %s", page.name, est.reason)
            continue
        for size in sizes:
            factor = size * scale / est.px
            megapixels = page.image.size * factor**2 / 1e6
            if megapixels > max_megapixels:
                skipped.append({"page": page.name, "size": size, "megapixels": round(megapixels, 1)})
                continue
            image = resize(page.image, factor, Image.Resampling.BICUBIC)
            if min(image.shape) < 8 * scale:
                skipped.append({"page": page.name, "size": size, "megapixels": round(megapixels, 3)})
                continue
            dpi = max(30, round(NATIVE_DPI * factor))
            row = measure_page(engine, text_height, OcrPage(page.name, image, page.truth), cfg, dpi, cache,
                               tag=f"{factor:.6f}", ocr_engines=ocr_engines)
            rows.append({**row, "size": size, "resample": factor})
    return rows, skipped


NATIVE_MIN_PAGES = 3  # native pages decide a size by their mean only when at least this many are there
RANGE_RULE = ("every page at the size: PSNR model >= PSNR Lanczos and, on every OCR engine the rows were read "
              f"with, tesseract CER model <= max(CER Lanczos, CER original) + {CER_MARGIN}, other engines word F1 "
              f"model >= min(F1 Lanczos, F1 original) - {CER_MARGIN}; native pages (no original) at the size: mean "
              f"word F1 model >= mean F1 Lanczos - {CER_MARGIN} on every engine (when >= {NATIVE_MIN_PAGES} pages); "
              "range = longest run of consecutive passing sizes")


def reads_ok(row: dict, ocr: str = TESSERACT, margin: float = CER_MARGIN) -> bool:
    """The model reads no worse (margin) than Lanczos or the original, whichever reads worse, on one engine:
    by CER for tesseract, by order-free word F1 for the others (reading as the original does changes nothing)."""
    if ocr == TESSERACT:
        return row["cer_model"] <= max(row["cer_lanczos"], row["cer_original"]) + margin
    f1 = {k: row[field_name("f1", k, ocr)] for k in ("model", "lanczos", "original")}
    return f1["model"] >= min(f1["lanczos"], f1["original"]) - margin


def point_ok(row: dict, margin: float = CER_MARGIN) -> bool:
    """The model at least as good as Lanczos on this page and size by PSNR, and reading no worse than
    Lanczos or the original (:func:`reads_ok`) on every engine the row was read with. A native row (a real
    low-resolution page, no original: :func:`native_points`) is not judged alone: :func:`native_ok`."""
    if row.get("kind") == "native":
        return native_ok([row], margin)
    return row["psnr"] >= row["psnr_lanczos"] and all(reads_ok(row, e, margin) for e in row_engines(row))


def native_ok(native: Sequence[dict], margin: float = CER_MARGIN) -> bool:
    """The native pages at one size pass when on every engine, averaged over the pages read with it (at least
    NATIVE_MIN_PAGES of them; fewer are reported, not counted), the model's word F1 is at least Lanczos's -
    margin. By their mean, not page by page: a form's word F1 against annotation-order ground truth moves by
    several hundredths between two upscales (FUNSD at 2x, tesseract: model - Lanczos per form -0.052 to
    +0.099 around a mean of +0.01, 2026-12-05), so a per-form rule, or the mean of one or two forms, would
    decide on that spread; the per-page rule stays with the pages whose ground truth is in reading order."""
    for e in ENGINES:
        diffs = [r[f"f1_model_{e}"] - r[f"f1_lanczos_{e}"] for r in native if e in row_engines(r)]
        if len(diffs) >= NATIVE_MIN_PAGES and float(np.mean(diffs)) < -margin:
            return False
    return True


def native_points(native_rows: Sequence[dict], scale: int, sizes: Sequence[float] = SIZES) -> list[dict]:
    """Sweep points from real low-resolution pages read at their own size (``python -m
    srgan.fidelity.rvl_paired --native``: FUNSD's RVL-CDIP forms at ~100 dpi, upscaled by ``scale``): each
    page counts at the sweep size nearest (in log) to its estimated LR x-height; a page whose text is too
    small to measure counts at the smallest size; pages without text lines are left out. Their ground truth
    is in annotation order, so every engine judges them by order-free word F1 (model against Lanczos).
    Rows of the same page and scale (runs with different engines) are merged."""
    merged: dict[str, dict] = {}
    for r in native_rows:
        if r.get("kind") == "native" and r["scale"] == scale:
            merged[r["page"]] = {**merged.get(r["page"], {}), **r}
    out = []
    for r in merged.values():
        est = r.get("lr_xheight_px")
        if est is None and not (r.get("estimate_note") or "").startswith(TOO_SMALL):
            continue
        size = min(sizes) if est is None else min(sizes, key=lambda s, est=est: abs(math.log(s / est)))
        engines = [e for e in ENGINES if f"f1_model_{e}" in r and f"f1_lanczos_{e}" in r]
        out.append({"page": f"native/{r['page']}", "kind": "native", "scale": scale, "size": size,
                    "lr_xheight_px": est, "estimate_note": r.get("estimate_note"), "ocr_engines": engines,
                    **{f"f1_{k}_{e}": r[f"f1_{k}_{e}"] for e in engines for k in ("model", "lanczos")}})
    return out


def per_size(rows: Sequence[dict], margin: float = CER_MARGIN) -> list[dict]:
    """Per measured size: pages, whether every page passes, and the worst margins (resampled pages; the
    native pages' figures under ``native``)."""
    out = []
    for size in sorted({r["size"] for r in rows}):
        here = [r for r in rows if r["size"] == size]
        at = [r for r in here if r.get("kind") != "native"]
        native = [r for r in here if r.get("kind") == "native"]
        ok = all(point_ok(r, margin) for r in at) and native_ok(native, margin)
        entry = {"size": size, "pages": [r["page"] for r in here], "ok": ok, "native": _native_means(native, margin)}
        if not at:
            out.append(entry)
            continue
        out.append({
            **entry,
            "min_psnr_minus_lanczos": min(r["psnr"] - r["psnr_lanczos"] for r in at),
            "max_cer_minus_lanczos": max(r["cer_model"] - r["cer_lanczos"] for r in at),
            "mean_psnr": float(np.mean([r["psnr"] for r in at])),
            "mean_psnr_lanczos": float(np.mean([r["psnr_lanczos"] for r in at])),
            "mean_psnr_bicubic": float(np.mean([r["psnr_bicubic"] for r in at])),
            "mean_cer_model": float(np.mean([r["cer_model"] for r in at])),
            "mean_cer_lanczos": float(np.mean([r["cer_lanczos"] for r in at])),
            "mean_cer_bicubic": float(np.mean([r["cer_bicubic"] for r in at])),
            "mean_cer_original": float(np.mean([r["cer_original"] for r in at])),
            **_engine_means(at, margin),
        })
    return out


def _native_means(native: Sequence[dict], margin: float) -> dict:
    """Native pages at a size: how many, mean word F1 of model and Lanczos per engine, pages that fail."""
    out: dict = {"pages": len(native)}
    for ocr in ENGINES:
        with_engine = [r for r in native if ocr in row_engines(r)]
        if with_engine:
            out[ocr] = {"pages": len(with_engine),
                        "mean_f1_model": float(np.mean([r[f"f1_model_{ocr}"] for r in with_engine])),
                        "mean_f1_lanczos": float(np.mean([r[f"f1_lanczos_{ocr}"] for r in with_engine])),
                        "pages_model_lower": [r["page"] for r in with_engine
                                              if r[f"f1_model_{ocr}"] < r[f"f1_lanczos_{ocr}"] - margin]}
    return out


def _engine_means(at: Sequence[dict], margin: float) -> dict:
    """Per engine read on every row: mean CER and word F1 of original / bicubic / Lanczos / model, and the
    pages where the model reads worse than the range rule allows on that engine."""
    out: dict = {}
    for ocr in ENGINES:
        if not all(ocr in row_engines(r) for r in at):
            continue
        for m in ("cer", "f1"):
            for k in ("original", "bicubic", "lanczos", "model"):
                key = field_name(m, k, ocr)
                if all(key in r for r in at):
                    out[f"mean_{key}"] = float(np.mean([r[key] for r in at]))
        out[f"reads_worse_{ocr}"] = [r["page"] for r in at if not reads_ok(r, ocr, margin)]
    return out


def validated_range(rows: Sequence[dict], margin: float = CER_MARGIN) -> list[float] | None:
    """[lo, hi] px: the longest run of consecutive measured sizes that all pass (ties: the smaller sizes)."""
    best: list[float] | None = None
    run: list[float] = []
    for s in per_size(rows, margin):
        run = [*run, s["size"]] if s["ok"] else []
        if run and (best is None or len(run) > len(best)):
            best = list(run)
    return [best[0], best[-1]] if best else None


def estimate_range(rows: Sequence[dict], rng: Sequence[float] | None) -> list[float] | None:
    """The validated range in the estimator's units, which is what a run compares: [the lowest estimate
    of a page at the range's lowest size, the highest estimate at its highest size], never narrower than
    ``rng`` itself. The estimator reads 1-3% above the true size, so without this a page at the top size
    of the range (measured and passed) would be sent to Lanczos; ``x normalise_factor`` as the run does."""
    if not rng:
        return None
    lo, hi = rng

    def estimates(size: float) -> list[float]:
        return [r["lr_xheight_px"] * (r.get("normalise_factor") or 1.0) for r in rows
                if r["size"] == size and r.get("lr_xheight_px")]

    return [math.floor(min([lo, *estimates(lo)]) * 100) / 100, math.ceil(max([hi, *estimates(hi)]) * 100) / 100]


def default_output_table(rows: Sequence[dict], rng: Sequence[float] | None, ucfg: UpscaleConfig,
                         text_height: float | None, margin: float = CER_MARGIN) -> list[dict]:
    """Per size: the default output against bicubic, each page decided as the pipeline decides it.

    The decision rests on the page's estimated x-height (``lr_xheight_px``; None: no estimate), not on
    the sweep's true size: ``stages.range_decision`` with the configured ``upscale.out_of_range`` and
    ``upscale.no_estimate``. ``output`` is ``model``, ``lanczos`` or ``mixed`` (``pages_model`` of them
    by the model)."""
    out = []
    rows = [r for r in rows if r.get("kind") != "native"]  # native pages have no original to measure PSNR on
    for s in sorted({r["size"] for r in rows}):
        at = [r for r in rows if r["size"] == s]
        kinds = [range_decision(r.get("lr_xheight_px"), r.get("normalise_factor") or 1.0, rng, ucfg,
                                r.get("estimate_note"))[1] for r in at]
        p = [r["psnr"] if k == "model" else r["psnr_lanczos"] for r, k in zip(at, kinds, strict=True)]
        c = [r["cer_model"] if k == "model" else r["cer_lanczos"] for r, k in zip(at, kinds, strict=True)]
        n_model = kinds.count("model")
        out.append({"size": s, "ratio": s / text_height if text_height else None,
                    "output": "model" if n_model == len(at) else "lanczos" if n_model == 0 else "mixed",
                    "pages": len(at), "pages_model": n_model,
                    "psnr": float(np.mean(p)), "psnr_bicubic": float(np.mean([r["psnr_bicubic"] for r in at])),
                    "cer": float(np.mean(c)), "cer_bicubic": float(np.mean([r["cer_bicubic"] for r in at])),
                    "no_worse_than_bicubic": all(
                        pp >= r["psnr_bicubic"] and cc <= r["cer_bicubic"] + margin
                        for pp, cc, r in zip(p, c, at, strict=True))})
    return out


@dataclass
class RangeDecision:
    """What a sweep's rows decide: per-size figures, the validated range (true sizes and as the estimator
    reads them) and the default-output table."""

    sizes: list[dict]
    rng: list[float] | None
    estimated: list[float] | None
    default_output: list[dict]
    default_checks: dict | None = None
    mean_rule_checks: dict | None = None


DEFAULT_PSNR_SLACK = 0.3  # dB: the default output may trail the model alone by this where the model reads as well


def default_checks(rows: Sequence[dict], rng: Sequence[float] | None, ucfg: UpscaleConfig,
                   margin: float = CER_MARGIN) -> dict:
    """Each resampled sweep point decided as a run decides it (``stages.range_decision`` on its estimate),
    checked against two promises: where the model reads no worse than Lanczos (:func:`reads_ok` against
    Lanczos alone, every engine), the default output is within DEFAULT_PSNR_SLACK dB of the model alone; and
    the default never reads worse than Lanczos by more than margin (tesseract CER, other engines word F1)."""
    return _checks(rows, lambda r: range_decision(r.get("lr_xheight_px"), r.get("normalise_factor") or 1.0, rng,
                                                  ucfg, r.get("estimate_note"))[1], margin)


def sizes_read_worse_on_average(rows: Sequence[dict], margin: float = CER_MARGIN) -> list[float]:
    """The measured sizes where the model reads worse than Lanczos on the average of the pages measured there:
    mean PSNR below Lanczos's, or on some reader mean tesseract CER above Lanczos's + margin or mean word F1
    below Lanczos's - margin, or the native pages failing :func:`native_ok`. The per-size mean, where the range
    rule asks it of every page."""
    worse = []
    for size in sorted({r["size"] for r in rows}):
        here = [r for r in rows if r["size"] == size]
        at = [r for r in here if r.get("kind") != "native"]
        bad = not native_ok([r for r in here if r.get("kind") == "native"], margin)
        if at:
            bad |= float(np.mean([r["psnr"] - r["psnr_lanczos"] for r in at])) < 0
            for e in ENGINES:
                read = [r for r in at if e in row_engines(r)]
                if not read:
                    continue
                key = "cer" if e == TESSERACT else "f1"
                diff = float(np.mean([r[field_name(key, "model", e)] - r[field_name(key, "lanczos", e)] for r in read]))
                bad |= diff > margin if e == TESSERACT else diff < -margin
        if bad:
            worse.append(size)
    return worse


def mean_rule_checks(rows: Sequence[dict], margin: float = CER_MARGIN) -> dict:
    """:func:`default_checks` under a rule no run uses, to show what the range rule costs: each point gets the
    model unless the measured size nearest its estimate (on a log scale) is one of
    :func:`sizes_read_worse_on_average`; a page without an estimate is decided as the smallest size when its
    text is too small to measure, else gets Lanczos."""
    sizes = sorted({r["size"] for r in rows})
    worse = set(sizes_read_worse_on_average(rows, margin))

    def decide(r: dict) -> str:
        est = r.get("lr_xheight_px")
        if est is None:
            small = (r.get("estimate_note") or "").startswith(TOO_SMALL)
            return "lanczos" if not small or sizes[0] in worse else "model"
        near = min(sizes, key=lambda s: abs(math.log(est * (r.get("normalise_factor") or 1.0) / s)))
        return "lanczos" if near in worse else "model"

    return {"sizes_read_worse_on_average": sorted(worse), **_checks(rows, decide, margin)}


def _checks(rows: Sequence[dict], decide: Callable[[dict], str], margin: float) -> dict:
    """The two promises of :func:`default_checks` for the resampled points, each decided by ``decide``."""
    points, slow, worse = [], [], []
    for r in rows:
        if r.get("kind") == "native":
            continue
        method = decide(r)
        psnr_default = r["psnr"] if method == "model" else r["psnr_lanczos"]
        vs_lanczos = {**r, "cer_original": r["cer_lanczos"]}  # reads_ok against Lanczos alone
        for e in row_engines(r):
            if e != TESSERACT:
                vs_lanczos[field_name("f1", "original", e)] = r[field_name("f1", "lanczos", e)]
        model_ok = all(reads_ok(vs_lanczos, e, margin) for e in row_engines(r))
        point = {"page": r["page"], "size": r["size"], "method": method, "model_reads_no_worse": model_ok,
                 "psnr_default_minus_model": round(psnr_default - r["psnr"], 3)}
        for e in row_engines(r):
            key = "cer" if e == TESSERACT else "f1"
            point[f"{key}_default_minus_lanczos_{e}"] = round(
                r[field_name(key, method, e)] - r[field_name(key, "lanczos", e)], 4)
        points.append(point)
        if model_ok and psnr_default < r["psnr"] - DEFAULT_PSNR_SLACK:
            slow.append(f"{r['page']}@{r['size']:g}")
        if method == "model" and not model_ok:
            worse.append(f"{r['page']}@{r['size']:g}")
    return {"points": points, "psnr_slack_db": DEFAULT_PSNR_SLACK, "margin": margin,
            "trails_model_where_it_reads_as_well": slow, "reads_worse_than_lanczos": worse}


def decide_range(rows: Sequence[dict], ucfg: UpscaleConfig, text_height: float | None) -> RangeDecision:
    """per_size, validated_range, estimate_range, default_output_table, default_checks and mean_rule_checks of
    the rows; prints the sweep."""
    sizes, rng = per_size(rows), validated_range(rows)
    estimated = estimate_range(rows, rng)
    checks = default_checks(rows, estimated, ucfg)
    print(format_sweep(sizes, rng) + f" (as the estimator reads it: {estimated})")
    print(f"default output: {len(checks['points'])} points; trails the model by more than {DEFAULT_PSNR_SLACK} dB "
          f"where the model reads as well as Lanczos: {checks['trails_model_where_it_reads_as_well'] or 'none'}; "
          f"reads worse than Lanczos: {checks['reads_worse_than_lanczos'] or 'none'}")
    mean = mean_rule_checks(rows)
    print(f"under the per-size mean rule instead (sizes read worse on average: "
          f"{mean['sizes_read_worse_on_average'] or 'none'}): trails the model at "
          f"{len(mean['trails_model_where_it_reads_as_well'])} points, reads worse than Lanczos at "
          f"{len(mean['reads_worse_than_lanczos'])}: {mean['reads_worse_than_lanczos'] or 'none'}")
    return RangeDecision(sizes, rng, estimated, default_output_table(rows, estimated, ucfg, text_height), checks,
                         mean)


def format_sweep(sizes: Sequence[dict], rng: list[float] | None) -> str:
    """The sweep as a markdown table: resampled pages (PSNR; tesseract CER; EasyOCR word F1) and native pages
    (word F1 of model / Lanczos on each engine), and whether the size passes the range rule."""
    def fig(d: dict, key: str, fmt: str = ".3f") -> str:
        return f"{d[key]:{fmt}}" if d.get(key) is not None else "–"

    head = ("| LR x-height px | pages (native) | PSNR model | Lanczos | tesseract CER original | Lanczos | model "
            "| EasyOCR F1 original | Lanczos | model | native F1 tesseract model / Lanczos | EasyOCR model / Lanczos "
            "| passes |")
    lines = [head, "|" + "---|" * 13]
    for s in sizes:
        nat = s.get("native") or {"pages": 0}
        nat_fig = [f"{nat[e]['mean_f1_model']:.3f} / {nat[e]['mean_f1_lanczos']:.3f}" if e in nat else "–"
                   for e in ENGINES]
        lines.append(
            f"| {s['size']:g} | {len(s['pages']) - nat['pages']} ({nat['pages']}) | {fig(s, 'mean_psnr', '.2f')} | "
            f"{fig(s, 'mean_psnr_lanczos', '.2f')} | {fig(s, 'mean_cer_original')} | {fig(s, 'mean_cer_lanczos')} | "
            f"{fig(s, 'mean_cer_model')} | {fig(s, 'mean_f1_original_easyocr')} | "
            f"{fig(s, 'mean_f1_lanczos_easyocr')} | {fig(s, 'mean_f1_model_easyocr')} | {nat_fig[0]} | {nat_fig[1]} | "
            f"{'yes' if s['ok'] else 'no'} |")
    lines.append(f"validated range: {rng if rng else 'none'} px")
    return "\n".join(lines)


def write_range(manifest_path: Path, rng: list[float] | None, evidence: dict,
                estimated: list[float] | None = None) -> None:
    """Put validated_xheight_px (true sizes), validated_estimate_px (the same range as the estimator reads
    it: what runs compare) and the evidence into a weights manifest (atomic; sha256 untouched)."""
    data = json.loads(manifest_path.read_text())
    data["validated_xheight_px"] = rng
    data["validated_estimate_px"] = estimated
    data["validated_range_evidence"] = evidence
    atomic_write_bytes(manifest_path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def reestimate(rows: Sequence[dict], pages: Sequence[OcrPage]) -> int:
    """Estimate each sweep row's LR x-height again with the current estimator (``lr_xheight_px``, in place):
    the row's page resampled as the sweep did and bicubic-downscaled by its scale. Returns the rows changed."""
    by_name = {p.name: p.image for p in pages}
    changed = 0
    for row in rows:
        if row["page"] not in by_name:
            continue
        image = resize(by_name[row["page"]], row["resample"], Image.Resampling.BICUBIC)
        px = estimate_text_height(make_lr(image, row["scale"])[1]).px
        changed += px != row.get("lr_xheight_px")
        row["lr_xheight_px"] = px
    return changed


def rescore(loaded: Sequence[tuple[Generator, dict]], out: Path, cfg: PipelineConfig, write_manifest: bool,
            pages: Sequence[OcrPage] = (), native_rows: Sequence[dict] | None = None,
            native_from: Sequence[str] = ()) -> int:
    """Decide each weights' range again from the rows its earlier sweep stored (no model, no OCR).

    With pages (the sweep's), the rows' x-height estimates are first made again by the current estimator,
    so that the default-output table decides each page as the pipeline now would. With native_rows
    (``rvl_paired --native`` rows), the stored native points are replaced by those rows' points."""
    for _, manifest in loaded:
        name = Path(manifest["path"]).stem
        src = out / f"fidelity_{name}.json"
        if not src.is_file():
            print(f"error: {src} not found: run the sweep first", file=sys.stderr)
            return 2
        result = json.loads(src.read_text())
        rows = result["rows"]
        if pages:
            print(f"{name}: {reestimate([r for r in rows if r.get('kind') != 'native'], pages)} of {len(rows)} "
                  "x-height estimates changed")
        if native_rows is not None:
            sizes = sorted({r["size"] for r in rows if r.get("kind") != "native"}) or list(SIZES)
            native = native_points(native_rows, result["scale"], sizes)
            rows = [r for r in rows if r.get("kind") != "native"] + native
            result["rows"] = rows
            result["evidence"].update(native_pages=sorted({r["page"] for r in native}),
                                      native_rows_from=list(native_from))
        decided = decide_range(rows, cfg.upscale, manifest.get("text_height"))
        rng, estimated = decided.rng, decided.estimated
        evidence = dict(result["evidence"], rule=RANGE_RULE, per_size=decided.sizes,
                        rescored=datetime.now(UTC).isoformat(timespec="seconds"),
                        range_before_rescoring=result.get("validated_xheight_px"))
        result.update(validated_xheight_px=rng, validated_estimate_px=estimated, evidence=evidence,
                      default_output=decided.default_output, default_checks=decided.default_checks,
                      mean_rule_checks=decided.mean_rule_checks)
        atomic_write_bytes(src, json.dumps(result, indent=1).encode())
        if write_manifest:
            write_range(Path(manifest["path"]).with_suffix(".json"), rng, evidence, estimated)
        print(f"{name}: validated_xheight_px {result['evidence']['range_before_rescoring']} -> {rng}")
    return 0
