"""Does text-size normalisation help, and which policy? ``python -m srgan.fidelity.textsize_study``.

For every page and every ratio r (default 0.5, 0.75, 1, 1.5, 2), the page is resampled so that
its text, once the evaluation has shrunk it by ``scale`` (bicubic, as in :mod:`srgan.fidelity.evaluate`),
is r x the weights' trained text height. Each resampled page then goes through
:func:`srgan.fidelity.evaluate.evaluate_images` (original -> bicubic LR -> model vs bicubic) once per
normalisation policy. Pages with ground-truth text (a ``.txt`` beside them) are also read by
Debian's ``tesseract``: the character error rate (CER) of the model's and of bicubic's output.

Policies (``UpscaleConfig`` normalisation keys; see pipeline.yaml), each a change of the
configured ``upscale`` section:
- ``off``: no normalisation;
- ``always``: every page resampled to the trained height, both ways (tolerance 0, factors 0.25..max);
- ``both``: both ways, but estimates within the configured tolerance are left alone;
- ``default``: the configuration as it is (pipeline.yaml or --config);
- ``up_only``: the configured tolerance, pages only ever enlarged (min factor 1);
- ``down_only``: the configured tolerance, pages only ever shrunk (max factor 1).

``default`` is the upscale default as a run makes it: with the weights' validated x-height range
(manifest ``validated_xheight_px``, :mod:`srgan.fidelity`), pages outside it get the configured
``upscale.out_of_range`` output and pages without a text-height estimate the ``upscale.no_estimate``
one (Lanczos by default); the other policies measure the model alone.

Prints a markdown table (means over pages per ratio) and writes ``study.json`` under --out.
Pages without ground truth are cropped (--crop, in original pixels, around the densest ink) to
keep CPU runs short; pages read by OCR are used whole (the ground truth is the whole page).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.config import ConfigError, PipelineConfig, UpscaleConfig, load_config
from srgan.fidelity.evaluate import evaluate_images, load_originals, make_lr
from srgan.fidelity.ocr import cer, have_tesseract, ocr_text
from srgan.imaging.textsize import estimate_text_height, normalisation_factor, resize, text_line_boxes
from srgan.models import Generator
from srgan.weights import WeightsError, decision_range, load_generator

log = logging.getLogger(__name__)

DEFAULT_PAGES = Path(__file__).resolve().parents[3] / "shared" / "data" / "scans"
RATIOS = (0.5, 0.75, 1.0, 1.5, 2.0)
IMAGE_SUFFIXES = {".png", ".tif", ".tiff", ".jpg", ".jpeg", ".pdf"}

SHRINK = 0.25  # smallest factor of the policies that shrink pages


def _policy(normalise: bool = True, tolerance: float | None = None, low: float | None = None,
            high: float | None = None) -> Callable[[UpscaleConfig], UpscaleConfig]:
    """A policy as a change of the configured UpscaleConfig (None: keep the configured value)."""
    def apply(u: UpscaleConfig) -> UpscaleConfig:
        return dataclasses.replace(
            u, normalise=normalise,
            normalise_tolerance=u.normalise_tolerance if tolerance is None else tolerance,
            normalise_min_factor=u.normalise_min_factor if low is None else low,
            normalise_max_factor=u.normalise_max_factor if high is None else high)
    return apply


POLICIES: dict[str, Callable[[UpscaleConfig], UpscaleConfig]] = {
    "off": _policy(normalise=False),
    "always": _policy(tolerance=0.0, low=SHRINK),  # every page to the trained height, both ways
    "both": _policy(low=SHRINK),  # both ways, outside the configured tolerance
    "default": lambda u: u,  # the configuration as it is
    "up_only": _policy(low=1.0),  # enlarge small text only
    "down_only": _policy(low=SHRINK, high=1.0),  # shrink large text only
}
WITH_RANGE = frozenset({"default"})  # policies that apply the validated range (upscale.out_of_range, no_estimate)


# ------------------------------------------------------------------------------------ the study


def text_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The size x size window of the page holding the most text-line letters (whole page when smaller)."""
    h, w = image.shape
    if size <= 0 or (h <= size and w <= size):
        return image
    boxes = text_line_boxes(image)
    cell = max(size // 16, 1)
    gh, gw = -(-h // cell), -(-w // cell)
    grid = np.zeros((gh, gw))
    if boxes.size:
        cy, cx = (boxes[:, 0] + boxes[:, 1]) // 2 // cell, (boxes[:, 2] + boxes[:, 3]) // 2 // cell
        np.add.at(grid, (cy, cx), 1)
    kh, kw = min(size, h) // cell, min(size, w) // cell
    integral = np.pad(grid.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = integral[kh:, kw:] - integral[:-kh, kw:] - integral[kh:, :-kw] + integral[:-kh, :-kw]
    y, x = np.unravel_index(int(np.argmax(sums)), sums.shape)
    y0, x0 = min(y * cell, max(h - size, 0)), min(x * cell, max(w - size, 0))
    return image[y0 : y0 + size, x0 : x0 + size]


def study_page(name: str, original: np.ndarray, net_g: Generator, text_height: float, scale: int,
               cfg: PipelineConfig, ratios: Sequence[float], policies: Sequence[str],
               reference_text: str | None = None, validated_range: Sequence[float] | None = None) -> list[dict]:
    """Rows (one per ratio and policy) for one page; OCR rows when reference_text is given."""
    est = estimate_text_height(original)
    if est.px is None:
        log.warning("study: %s skipped: %s", name, est.reason)
        return []
    rows = []
    for ratio in ratios:
        factor = ratio * text_height * scale / est.px  # LR text = ratio x the trained height
        page = resize(original, factor, Image.Resampling.BICUBIC)  # as if scanned at another resolution
        if min(page.shape) < 4 * scale:
            log.warning("study: %s at ratio %s is too small (%s)", name, ratio, page.shape)
            continue
        lr_estimate = estimate_text_height(make_lr(page, scale)[1])  # what upscale_images will estimate
        groups: dict[tuple[float, bool], list[str]] = {}  # the same factor (and range use): the same pages
        for policy in policies:
            f = normalisation_factor(lr_estimate, text_height, POLICIES[policy](cfg.upscale))
            groups.setdefault((f, policy in WITH_RANGE and validated_range is not None), []).append(policy)
        ocr_dir = Path(tempfile.mkdtemp(prefix="srgan-study-")) if reference_text is not None else None
        try:
            base_ocr: dict[str, float] = {}
            for (predicted, with_range), same in groups.items():
                pcfg = dataclasses.replace(cfg, upscale=POLICIES[same[0]](cfg.upscale))
                t0 = time.perf_counter()
                (r,) = evaluate_images(net_g, text_height, [(name, page)], scale, pcfg, ocr_dir,
                                       validated_range if with_range else None).rows
                if r["normalise_factor"] != predicted:
                    raise RuntimeError(f"study: {name} {same}: factor {r['normalise_factor']} != {predicted}")
                row = {"page": name, "ratio": ratio, "page_text_px": est.px,
                       "lr_text_px": r["text_height_px"], "factor": r["normalise_factor"],
                       "width": r["width"], "height": r["height"], "psnr": r["psnr"],
                       "fallback": bool(with_range and r["method"] != "model"),
                       "psnr_bicubic": r["psnr_bicubic"], "ssim": r["ssim"], "ssim_bicubic": r["ssim_bicubic"],
                       "seconds": time.perf_counter() - t0}
                if ocr_dir is not None:
                    dpi = max(50, round(300 * factor))  # nominal: tesseract reads it for its noise sizes
                    stem = ocr_dir / "pages" / name
                    read = {k: np.asarray(Image.open(f"{stem}_{k}.png")) for k in ("model", "bicubic", "original")}
                    if not base_ocr:  # the same for every policy
                        base_ocr = {k: cer(ocr_text(read[k], dpi), reference_text) for k in ("bicubic", "original")}
                    row.update(cer=cer(ocr_text(read["model"], dpi), reference_text),
                               cer_bicubic=base_ocr["bicubic"], cer_original=base_ocr["original"])
                rows += [{**row, "policy": policy} for policy in same]
                log.info("study: %s ratio %.2f %s: %.2f dB (bicubic %.2f), factor %.2f", name, ratio,
                         "/".join(same), row["psnr"], row["psnr_bicubic"], row["factor"])
        finally:
            if ocr_dir is not None:
                shutil.rmtree(ocr_dir, ignore_errors=True)
    return rows


def summarise(rows: Sequence[dict], policies: Sequence[str]) -> list[dict]:
    """Per ratio: page count, mean PSNR per policy and of bicubic, mean CER where measured."""
    out = []
    for ratio in sorted({r["ratio"] for r in rows}):
        at = [r for r in rows if r["ratio"] == ratio]
        pages = sorted({r["page"] for r in at})
        s: dict = {"ratio": ratio, "pages": len(pages)}
        base = [r for r in at if r["policy"] == policies[0]]
        s["psnr_bicubic"] = float(np.mean([r["psnr_bicubic"] for r in base]))
        ocr = [r for r in base if "cer" in r]
        if ocr:
            s["ocr_pages"] = len(ocr)
            s["cer_bicubic"] = float(np.mean([r["cer_bicubic"] for r in ocr]))
            s["cer_original"] = float(np.mean([r["cer_original"] for r in ocr]))
        for p in policies:
            mine = [r for r in at if r["policy"] == p]
            s[f"psnr_{p}"] = float(np.mean([r["psnr"] for r in mine]))
            s[f"factor_{p}"] = float(np.mean([r["factor"] for r in mine]))
            if any("cer" in r for r in mine):
                s[f"cer_{p}"] = float(np.mean([r["cer"] for r in mine if "cer" in r]))
        if "default" in policies and "off" in policies and "always" in policies:
            s["default_minus_best"] = s["psnr_default"] - max(s["psnr_off"], s["psnr_always"])
        out.append(s)
    return out


def format_table(summary: Sequence[dict], policies: Sequence[str]) -> str:
    """Markdown table: one row per ratio; PSNR (dB) per policy; CER (%) where OCR ran."""
    has_cer = any("cer_bicubic" in s for s in summary)
    has_gap = any("default_minus_best" in s for s in summary)
    head = ["text / trained", "pages", "bicubic dB", *(f"{p} dB" for p in policies)]
    if has_gap:
        head.append("default − best(off, always)")
    head.append("default factor" if "default" in policies else f"{policies[-1]} factor")
    if has_cer:
        head += ["CER original", "CER bicubic", *(f"CER {p}" for p in policies)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    fkey = "factor_default" if "default" in policies else f"factor_{policies[-1]}"
    for s in summary:
        cells = [f"{s['ratio']:g}x", str(s["pages"]), f"{s['psnr_bicubic']:.2f}",
                 *(f"{s[f'psnr_{p}']:.2f}" for p in policies)]
        if has_gap:
            cells.append(f"{s['default_minus_best']:+.2f}")
        cells.append(f"{s[fkey]:.2f}")
        if has_cer:
            if "cer_bicubic" in s:
                cells += [f"{100 * s['cer_original']:.1f}", f"{100 * s['cer_bicubic']:.1f}",
                          *(f"{100 * s[f'cer_{p}']:.1f}" for p in policies)]
            else:
                cells += ["–"] * (2 + len(policies))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def page_files(inputs: Sequence[str]) -> list[Path]:
    """Image and PDF files named or found (not recursively) in the inputs, sorted."""
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(p)
    return files


def run_study(files: Sequence[Path], net_g: Generator, text_height: float, scale: int, cfg: PipelineConfig,
              ratios: Sequence[float] = RATIOS, policies: Sequence[str] = tuple(POLICIES), crop: int = 1024,
              ocr: bool = True, validated_range: Sequence[float] | None = None) -> tuple[list[dict], list[dict]]:
    """(rows, summary) over the pages of files; see the module docstring."""
    rows: list[dict] = []
    for f in files:
        gt = f.with_suffix(".txt")
        reference = gt.read_text(errors="replace") if ocr and gt.exists() else None
        for name, image in load_originals([str(f)], cfg):
            page = image if reference is not None else text_crop(image, crop)
            rows += study_page(name, page, net_g, text_height, scale, cfg, ratios, policies, reference,
                               validated_range)
    return rows, summarise(rows, policies)


def _device_name(cfg: PipelineConfig) -> str:
    import torch

    from srgan.inference.engine import pick_device

    device = pick_device(cfg.engine.device)
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({os.cpu_count()} cores)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m srgan.fidelity.textsize_study", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default="auto", help="name in the weights folder, a .pt path, or auto")
    p.add_argument("--weights-dir", help="weights folder (default: upscale.weights_dir)")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--out", required=True, help="folder for study.json")
    p.add_argument("--pages", nargs="+", default=[str(DEFAULT_PAGES)], help="page files or folders")
    p.add_argument("--ratios", nargs="+", type=float, default=list(RATIOS))
    p.add_argument("--policies", nargs="+", choices=list(POLICIES), default=list(POLICIES))
    p.add_argument("--crop", type=int, default=1024, help="crop side (original px) of pages not read by OCR; 0 = whole")
    p.add_argument("--no-ocr", action="store_true", help="skip tesseract even where ground truth exists")
    p.add_argument("--reference-height", type=float,
                   help="LR x-height (px) the ratios are of, and the normalise policies' target; default the "
                        "manifest's text_height (needed for weights trained over a range of sizes, which have none)")
    p.add_argument("--config", help="pipeline.yaml (default: the project's)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config)
        wdir = args.weights_dir or cfg.upscale.weights_dir
        net_g, manifest = load_generator(args.weights, wdir, args.scale)
    except (ConfigError, WeightsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text_height = args.reference_height or manifest.get("text_height")
    if not text_height or text_height <= 0:
        print(f"error: {manifest['path']}: manifest has no text_height (weights trained over a range of sizes): "
              "pass --reference-height PX", file=sys.stderr)
        return 2
    ocr = not args.no_ocr and have_tesseract()
    if not args.no_ocr and not ocr:
        log.warning("study: tesseract not found: no OCR figures")
    files = page_files(args.pages)
    t0 = time.perf_counter()
    validated = decision_range(manifest)
    rows, summary = run_study(files, net_g, float(text_height), args.scale, cfg, args.ratios, args.policies,
                              args.crop, ocr, validated)
    table = format_table(summary, args.policies) if summary else "(no pages measured)"
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "device": _device_name(cfg),
        "weights": manifest["path"], "weights_sha256": manifest.get("sha256"), "scale": args.scale,
        "text_height": text_height, "trained_text_height": manifest.get("text_height"),
        "ratios": args.ratios, "policies": args.policies,
        "validated_xheight_px": manifest.get("validated_xheight_px"), "decision_range": validated,
        "upscale": dataclasses.asdict(cfg.upscale), "crop": args.crop, "ocr": ocr,
        "seconds": round(time.perf_counter() - t0, 1),
        "summary": summary, "rows": rows, "table": table,
    }
    (out / "study.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
