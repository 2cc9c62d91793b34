"""OCR fidelity: does the model change what a page says? ``python -m srgan.fidelity``.

Pages with ground-truth text (a ``<stem>.txt`` beside the image) are shrunk by the scale (bicubic, as
in :mod:`srgan.evaluate`) and upscaled by the model, by bicubic and by Lanczos; tesseract reads the
original and the three upscales, and each reading's character error rate (CER) against the ground
truth is recorded beside the PSNRs.

- :func:`fidelity_gate`: the promotion rule of training. Weights are promoted only when on every
  evaluation page ``CER model <= min(CER bicubic, CER Lanczos) + 0.005`` (rule ``cer``) and their mean
  PSNR gain over bicubic beats the current weights' on the same pages (rule ``psnr``). The result
  names each failed rule and page.
- :func:`xheight_sweep` and :func:`validated_range`: the pages resampled so that the LR x-height
  spans ``sizes`` px; the validated range is the longest run of consecutive measured sizes at which,
  on every page measured, the model is at least as good as Lanczos by PSNR, and by CER reads no worse
  (+0.005) than Lanczos or the original page itself, whichever reads worse: a model that reads as the
  original does has changed nothing, even where tesseract happens to read a Lanczos upscale better
  than the original (README, Fidelity).
  The CLI writes it into the weights manifest (``validated_xheight_px`` and
  ``validated_range_evidence``) with :func:`estimate_range`, the same range in the estimator's units
  (``validated_estimate_px``), which upscale runs compare each page's estimate with
  (``weights.decision_range``, ``upscale.out_of_range``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.atomic import atomic_write_bytes
from srgan.config import ConfigError, PipelineConfig, UpscaleConfig, load_config
from srgan.engine import Engine
from srgan.evaluate import load_ground_truth, load_originals, make_lr
from srgan.metrics import bicubic_upscale, lanczos_upscale, psnr
from srgan.models import Generator
from srgan.ocr import cer, ocr_text
from srgan.stages import range_decision, upscale_images
from srgan.textsize import estimate_text_height, resize
from srgan.weights import WeightsError, load_generator

log = logging.getLogger(__name__)

CER_MARGIN = 0.005  # the model may read this much worse than the better baseline (tesseract's jitter)
SIZES = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0, 20.0, 28.0)  # LR x-heights of the sweep, px
MAX_MEGAPIXELS = 10.0  # sweep points whose resampled original is larger are skipped (CPU time)
NATIVE_DPI = 300  # the evaluation scans' resolution: the nominal dpi given to tesseract, times the resampling


@dataclass
class OcrPage:
    """An evaluation page: its name, the (H, W) uint8 original and its ground-truth text."""

    name: str
    image: np.ndarray
    truth: str


def load_ocr_pages(inputs: Sequence[str], cfg: PipelineConfig) -> list[OcrPage]:
    """The pages under inputs that have ground-truth text (a sibling ``<stem>.txt``)."""
    if not inputs:
        return []
    texts = load_ground_truth(list(inputs), cfg)
    return [OcrPage(name, image, texts[name]) for name, image in load_originals(list(inputs), cfg) if name in texts]


class OcrCache:
    """CERs of readings that do not depend on the weights (original, bicubic, Lanczos), by key."""

    def __init__(self) -> None:
        self._cer: dict[tuple, float] = {}

    def get(self, key: tuple, image: np.ndarray, truth: str, dpi: int) -> float:
        if key not in self._cer:
            self._cer[key] = cer(ocr_text(image, dpi), truth)
        return self._cer[key]


def measure_page(engine: Engine, text_height: float | None, page: OcrPage, cfg: PipelineConfig,
                 dpi: int = NATIVE_DPI, cache: OcrCache | None = None, tag: str = "") -> dict:
    """One page at the engine's scale: PSNR and CER of the model, bicubic and Lanczos; CER of the original.

    The model path is the upscale path itself (``upscale_images``, normalisation as configured), with no
    out-of-range fallback: this measures the model.
    """
    cache = cache or OcrCache()
    scale = engine.scale
    hr, lr = make_lr(page.image, scale)
    size = (hr.shape[1], hr.shape[0])
    ((sr, estimate, factor),) = upscale_images(engine, [lr], text_height, cfg.upscale)
    bic, lan = bicubic_upscale(lr, size), lanczos_upscale(lr, size)
    key = (page.name, tag, scale)
    row = {
        "page": page.name, "scale": scale, "width": size[0], "height": size[1],
        "lr_xheight_px": estimate.px, "normalise_factor": factor,
        "psnr": psnr(sr, hr), "psnr_bicubic": psnr(bic, hr), "psnr_lanczos": psnr(lan, hr),
        "cer_original": cache.get((page.name, tag, "original"), hr, page.truth, dpi),
        "cer_bicubic": cache.get((*key, "bicubic"), bic, page.truth, dpi),
        "cer_lanczos": cache.get((*key, "lanczos"), lan, page.truth, dpi),
        "cer_model": cer(ocr_text(sr, dpi), page.truth),
    }
    log.info("fidelity %s%s x%d: CER original %.3f bicubic %.3f lanczos %.3f model %.3f; PSNR model %.2f "
             "lanczos %.2f bicubic %.2f", page.name, f" {tag}" if tag else "", scale, row["cer_original"],
             row["cer_bicubic"], row["cer_lanczos"], row["cer_model"], row["psnr"], row["psnr_lanczos"],
             row["psnr_bicubic"])
    return row


def measure_pages(net_g: Generator, text_height: float | None, pages: Sequence[OcrPage], cfg: PipelineConfig,
                  cache: OcrCache | None = None) -> list[dict]:
    """measure_page for every page at native size (the training gate's evaluation)."""
    engine = Engine(net_g, cfg.engine, cfg.tiling)
    return [measure_page(engine, text_height, p, cfg, cache=cache) for p in pages]


# ------------------------------------------------------------------------------------------- the gate


@dataclass
class GateResult:
    """The promotion decision: passed, and each failure as {rule, page, detail}."""

    passed: bool
    failures: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)

    def reason(self) -> str:
        if self.passed:
            return "fidelity gate passed" + (f" ({'; '.join(self.notes)})" if self.notes else "")
        return "fidelity gate failed: " + "; ".join(
            f"rule {f['rule']}" + (f" on {f['page']}" if f.get("page") else "") + f": {f['detail']}"
            for f in self.failures)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "failures": self.failures, "notes": self.notes, "reason": self.reason(),
                "cer_margin": CER_MARGIN, "pages": self.rows}


def cer_failures(rows: Sequence[dict], margin: float = CER_MARGIN) -> list[dict]:
    """Rule ``cer``: pages where the model reads worse than min(bicubic, Lanczos) + margin."""
    out = []
    for r in rows:
        limit = min(r["cer_bicubic"], r["cer_lanczos"]) + margin
        if not r["cer_model"] <= limit:
            out.append({"rule": "cer", "page": r["page"], "scale": r["scale"],
                        "detail": f"CER model {r['cer_model']:.3f} > min(bicubic {r['cer_bicubic']:.3f}, "
                                  f"Lanczos {r['cer_lanczos']:.3f}) + {margin} at {r['scale']}x"})
    return out


def fidelity_gate(rows: Sequence[dict], new_gain_db: float | None, current_gain_db: float | None,
                  margin: float = CER_MARGIN) -> GateResult:
    """Rules ``cer`` (every page) and ``psnr`` (new mean gain over bicubic > the current weights').

    current_gain_db None: no current weights, the psnr rule holds. rows empty: the cer rule cannot be
    checked (noted, not failed: there was no page with ground truth).
    """
    failures = cer_failures(rows, margin)
    notes = [] if rows else ["rule cer not checked: no evaluation page has ground-truth text"]
    if current_gain_db is not None:
        if new_gain_db is None or not math.isfinite(new_gain_db) or not new_gain_db > current_gain_db:
            failures.append({"rule": "psnr", "page": None,
                             "detail": f"mean gain {_db(new_gain_db)} <= current weights' {_db(current_gain_db)}"})
    else:
        notes.append("rule psnr: no current weights to beat")
    return GateResult(passed=not failures, failures=failures, notes=notes, rows=list(rows))


def _db(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.2f} dB"


def native_summary(rows: Sequence[dict]) -> dict:
    """Means of native-size rows: PSNR of the model, Lanczos and bicubic, the model's gains over both, the
    four CERs, and the pages where the model reads worse than the better baseline (rule ``cer``)."""
    def mean(key: str) -> float:
        return round(float(np.mean([r[key] for r in rows])), 4)

    out = {"pages": len(rows)}
    if rows:
        out.update({k: mean(k) for k in ("psnr", "psnr_lanczos", "psnr_bicubic", "cer_original", "cer_bicubic",
                                         "cer_lanczos", "cer_model")})
        out.update(gain_over_bicubic_db=round(out["psnr"] - out["psnr_bicubic"], 2),
                   gain_over_lanczos_db=round(out["psnr"] - out["psnr_lanczos"], 2),
                   cer_failures=[f["page"] for f in cer_failures(rows)])
    return out


def format_native_summary(label: str, summary: dict) -> str:
    if not summary["pages"]:
        return f"  {label}: no page"
    return (f"  {label} ({summary['pages']} pages): PSNR model {summary['psnr']:.2f} dB, Lanczos "
            f"{summary['psnr_lanczos']:.2f}, bicubic {summary['psnr_bicubic']:.2f} (gain "
            f"{summary['gain_over_bicubic_db']:+.2f} over bicubic, {summary['gain_over_lanczos_db']:+.2f} over "
            f"Lanczos); CER original {summary['cer_original']:.3f} bicubic {summary['cer_bicubic']:.3f} Lanczos "
            f"{summary['cer_lanczos']:.3f} model {summary['cer_model']:.3f}; rule cer failed on "
            f"{len(summary['cer_failures'])}")


# ------------------------------------------------------------------------------------ validated range


def xheight_sweep(net_g: Generator, text_height: float | None, pages: Sequence[OcrPage], cfg: PipelineConfig,
                  sizes: Sequence[float] = SIZES, max_megapixels: float = MAX_MEGAPIXELS,
                  cache: OcrCache | None = None) -> tuple[list[dict], list[dict]]:
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
                               tag=f"{factor:.6f}")
            rows.append({**row, "size": size, "resample": factor})
    return rows, skipped


RANGE_RULE = ("every page at the size: PSNR model >= PSNR Lanczos and CER model <= max(CER Lanczos, "
              f"CER original) + {CER_MARGIN}; range = longest run of consecutive passing sizes")


def point_ok(row: dict, margin: float = CER_MARGIN) -> bool:
    """The model at least as good as Lanczos on this page and size by PSNR, and by CER no worse (+margin)
    than Lanczos or the original, whichever reads worse (reading as the original does changes nothing)."""
    cer_limit = max(row["cer_lanczos"], row["cer_original"]) + margin
    return row["psnr"] >= row["psnr_lanczos"] and row["cer_model"] <= cer_limit


def per_size(rows: Sequence[dict], margin: float = CER_MARGIN) -> list[dict]:
    """Per measured size: pages, whether every page passes, and the worst margins."""
    out = []
    for size in sorted({r["size"] for r in rows}):
        at = [r for r in rows if r["size"] == size]
        out.append({
            "size": size, "pages": [r["page"] for r in at], "ok": all(point_ok(r, margin) for r in at),
            "min_psnr_minus_lanczos": min(r["psnr"] - r["psnr_lanczos"] for r in at),
            "max_cer_minus_lanczos": max(r["cer_model"] - r["cer_lanczos"] for r in at),
            "mean_psnr": float(np.mean([r["psnr"] for r in at])),
            "mean_psnr_lanczos": float(np.mean([r["psnr_lanczos"] for r in at])),
            "mean_psnr_bicubic": float(np.mean([r["psnr_bicubic"] for r in at])),
            "mean_cer_model": float(np.mean([r["cer_model"] for r in at])),
            "mean_cer_lanczos": float(np.mean([r["cer_lanczos"] for r in at])),
            "mean_cer_bicubic": float(np.mean([r["cer_bicubic"] for r in at])),
            "mean_cer_original": float(np.mean([r["cer_original"] for r in at])),
        })
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
    for s in sorted({r["size"] for r in rows}):
        at = [r for r in rows if r["size"] == s]
        kinds = [range_decision(r.get("lr_xheight_px"), r.get("normalise_factor") or 1.0, rng, ucfg)[1] for r in at]
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


def decide_range(rows: Sequence[dict], ucfg: UpscaleConfig, text_height: float | None) -> RangeDecision:
    """per_size, validated_range, estimate_range and default_output_table of the rows; prints the sweep."""
    sizes, rng = per_size(rows), validated_range(rows)
    estimated = estimate_range(rows, rng)
    print(format_sweep(sizes, rng) + f" (as the estimator reads it: {estimated})")
    return RangeDecision(sizes, rng, estimated, default_output_table(rows, estimated, ucfg, text_height))


def format_sweep(sizes: Sequence[dict], rng: list[float] | None) -> str:
    head = ("| LR x-height px | pages | PSNR model | Lanczos | bicubic | CER original | bicubic | Lanczos | model "
            "| model >= Lanczos |")
    lines = [head, "|" + "---|" * 10]
    for s in sizes:
        lines.append(f"| {s['size']:g} | {len(s['pages'])} | {s['mean_psnr']:.2f} | {s['mean_psnr_lanczos']:.2f} | "
                     f"{s['mean_psnr_bicubic']:.2f} | {s['mean_cer_original']:.3f} | {s['mean_cer_bicubic']:.3f} | "
                     f"{s['mean_cer_lanczos']:.3f} | {s['mean_cer_model']:.3f} | {'yes' if s['ok'] else 'no'} |")
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


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ----------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m srgan.fidelity", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", nargs="+", required=True, help="names in the weights folder or .pt paths")
    p.add_argument("--weights-dir", help="weights folder (default: upscale.weights_dir)")
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--pages", nargs="+", help="folders or files; pages with a sibling .txt are used")
    p.add_argument("--sizes", nargs="+", type=float, default=list(SIZES), help="LR x-heights of the sweep, px")
    p.add_argument("--max-megapixels", type=float, default=MAX_MEGAPIXELS)
    p.add_argument("--gate-only", action="store_true", help="native size only: the gate's CER table, no sweep")
    p.add_argument("--write-manifest", action="store_true", help="write the validated range into each manifest")
    p.add_argument("--out", help="folder for fidelity_<weights>.json")
    p.add_argument("--rescore", action="store_true",
                   help="no measuring: decide the range again from the rows of the fidelity_<weights>.json in --out "
                        "(after a change of the range rule); with --pages, estimate the rows' x-heights again")
    p.add_argument("--config", help="pipeline.yaml (default: the project's)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config)
        wdir = args.weights_dir or cfg.upscale.weights_dir
        loaded = [load_generator(w, wdir, args.scale) for w in args.weights]
    except (ConfigError, WeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    groups: dict[str, set[str]] = {}  # page names per --pages input, for the per-folder means
    pages: list[OcrPage] = []
    for src in args.pages or []:
        found = load_ocr_pages([src], cfg)
        groups[src] = {p.name for p in found}
        pages += found
    if args.rescore:
        return rescore(loaded, Path(args.out or "."), cfg, args.write_manifest, pages)
    if not pages:
        where = " ".join(args.pages or ["(no --pages given)"])
        print(f"error: no page with ground-truth text (.txt beside it) under {where}", file=sys.stderr)
        return 2
    cache = OcrCache()  # baselines are read once for all weights of this scale
    for net_g, manifest in loaded:
        t0 = time.perf_counter()
        name = Path(manifest["path"]).stem
        native = measure_pages(net_g, manifest.get("text_height"), pages, cfg, cache)
        gate = fidelity_gate(native, None, None)
        result: dict = {"weights": name, "sha256": manifest.get("sha256"), "scale": args.scale,
                        "native": native, "cer_rule": {"passed": not gate.failures, "failures": gate.failures}}
        verdict = "passed" if not gate.failures else "failed: " + "; ".join(f["detail"] for f in gate.failures)
        print(f"{name} x{args.scale} at native size, rule cer: {verdict}")
        for r in native:
            print(f"  {r['page']}: CER original {r['cer_original']:.3f} bicubic {r['cer_bicubic']:.3f} "
                  f"Lanczos {r['cer_lanczos']:.3f} model {r['cer_model']:.3f}; PSNR model {r['psnr']:.2f} "
                  f"Lanczos {r['psnr_lanczos']:.2f} bicubic {r['psnr_bicubic']:.2f}")
        summaries = {src: native_summary([r for r in native if r["page"] in names]) for src, names in groups.items()}
        summaries["all"] = native_summary(native)
        result["native_summary"] = summaries
        for label, summary in summaries.items():
            print(format_native_summary(label, summary))
        if not args.gate_only:
            rows, skipped = xheight_sweep(net_g, manifest.get("text_height"), pages, cfg, args.sizes,
                                          args.max_megapixels, cache)
            decided = decide_range(rows, cfg.upscale, manifest.get("text_height"))
            rng, estimated = decided.rng, decided.estimated
            evidence = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{cpu_model()}, {os.cpu_count()} cores",
                "rule": RANGE_RULE,
                "pages": [p.name for p in pages], "sizes": list(args.sizes), "per_size": decided.sizes,
                "skipped": skipped, "seconds": round(time.perf_counter() - t0, 1),
            }
            result.update(validated_xheight_px=rng, validated_estimate_px=estimated, evidence=evidence, rows=rows,
                          default_output=decided.default_output)
            if args.write_manifest:
                write_range(Path(manifest["path"]).with_suffix(".json"), rng, evidence, estimated)
                print(f"wrote validated_xheight_px {rng} (estimates {estimated}) into "
                      f"{Path(manifest['path']).with_suffix('.json')}")
        if args.out:
            out = Path(args.out)
            atomic_write_bytes(out / f"fidelity_{name}.json", json.dumps(result, indent=1).encode())
    return 0


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
            pages: Sequence[OcrPage] = ()) -> int:
    """Decide each weights' range again from the rows its earlier sweep stored (no model, no tesseract).

    With pages (the sweep's), the rows' x-height estimates are first made again by the current estimator,
    so that the default-output table decides each page as the pipeline now would."""
    for _, manifest in loaded:
        name = Path(manifest["path"]).stem
        src = out / f"fidelity_{name}.json"
        if not src.is_file():
            print(f"error: {src} not found: run the sweep first", file=sys.stderr)
            return 2
        result = json.loads(src.read_text())
        rows = result["rows"]
        if pages:
            print(f"{name}: {reestimate(rows, pages)} of {len(rows)} x-height estimates changed")
        decided = decide_range(rows, cfg.upscale, manifest.get("text_height"))
        rng, estimated = decided.rng, decided.estimated
        evidence = dict(result["evidence"], rule=RANGE_RULE, per_size=decided.sizes,
                        rescored=datetime.now(UTC).isoformat(timespec="seconds"),
                        range_before_rescoring=result.get("validated_xheight_px"))
        result.update(validated_xheight_px=rng, validated_estimate_px=estimated, evidence=evidence,
                      default_output=decided.default_output)
        atomic_write_bytes(src, json.dumps(result, indent=1).encode())
        if write_manifest:
            write_range(Path(manifest["path"]).with_suffix(".json"), rng, evidence, estimated)
        print(f"{name}: validated_xheight_px {result['evidence']['range_before_rescoring']} -> {rng}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
