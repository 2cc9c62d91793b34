"""OCR fidelity: does the model change what a page says? ``python -m srgan.fidelity``.

Measures the given weights on pages with ground-truth text at native size (rule ``cer`` of the gate,
:mod:`srgan.fidelity.gate`) and, unless ``--gate-only``, sweeps the LR x-height and decides the
validated range (:mod:`srgan.fidelity.sweep`), optionally writing it into each weights manifest.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from srgan.atomic import atomic_write_bytes
from srgan.config import ConfigError, load_config
from srgan.fidelity.gate import (
    GateResult,
    OcrCache,
    OcrPage,
    fidelity_gate,
    format_native_summary,
    load_ocr_pages,
    measure_pages,
    native_summary,
)
from srgan.fidelity.ocr import ENGINES, field_name, missing_engines
from srgan.fidelity.sweep import (
    MAX_MEGAPIXELS,
    RANGE_RULE,
    SIZES,
    decide_range,
    native_points,
    rescore,
    write_range,
    xheight_sweep,
)
from srgan.runtimes.choose import cpu_model
from srgan.weights import WeightsError, load_generator


def ocr_verdict(gate: GateResult) -> dict:
    """The OCR rules' part of a gate result, as stored under ``cer_rule`` in fidelity_<weights>.json."""
    return {"passed": not gate.failures, "failures": gate.failures, "notes": gate.notes,
            "words_tests": gate.words_tests}


def print_verdict(label: str, gate: GateResult) -> None:
    verdict = "passed" if not gate.failures else "failed: " + "; ".join(
        f"{f['rule']}" + (f" on {f['page']}" if f.get("page") else "") + f": {f['detail']}" for f in gate.failures)
    print(f"{label}, OCR rules: {verdict}")
    for note in gate.notes:
        print(f"  note: {note}")


def judge(files: Sequence[str]) -> int:
    """Judge stored gate rows again under the current OCR rules (no model, no OCR): 0 when all pass, 1 if not."""
    failed = 0
    for f in files:
        stored = json.loads(Path(f).read_text())
        gate = fidelity_gate(stored["native"], None, None)
        print_verdict(f"{f} ({stored.get('weights')} x{stored.get('scale')}, {len(stored['native'])} pages)", gate)
        failed += not gate.passed
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m srgan.fidelity", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", nargs="+", help="names in the weights folder or .pt paths (required but with --judge)")
    p.add_argument("--judge", nargs="+", metavar="FILE",
                   help="no measuring: judge the native rows of stored fidelity_<weights>.json / gate files again "
                        "under the gate's OCR rules (exit 1 when any fails)")
    p.add_argument("--weights-dir", help="weights folder (default: upscale.weights_dir)")
    p.add_argument("--scale", type=int, help="the weights' scale (required but with --judge)")
    p.add_argument("--pages", nargs="+", help="folders or files; pages with a sibling .txt are used")
    p.add_argument("--sizes", nargs="+", type=float, default=list(SIZES), help="LR x-heights of the sweep, px")
    p.add_argument("--max-megapixels", type=float, default=MAX_MEGAPIXELS)
    p.add_argument("--gate-only", action="store_true", help="native size only: the gate's CER table, no sweep")
    p.add_argument("--sweep-only", action="store_true", help="the sweep only: no native-size table")
    p.add_argument("--write-manifest", action="store_true", help="write the validated range into each manifest")
    p.add_argument("--out", help="folder for fidelity_<weights>.json")
    p.add_argument("--rescore", action="store_true",
                   help="no measuring: decide the range again from the rows of the fidelity_<weights>.json in --out "
                        "(after a change of the range rule); with --pages, estimate the rows' x-heights again")
    p.add_argument("--native-rows", nargs="*", default=[],
                   help="JSON files of python -m srgan.fidelity.rvl_paired --native: real low-resolution pages read at "
                        "their own size, each counted at the sweep size nearest its estimate (sweep.native_points)")
    p.add_argument("--keep-above", type=float,
                   help="keep the rows above this size from the fidelity_<weights>.json already in --out (an earlier "
                        "sweep of the large sizes) and decide the range on them with the new rows")
    p.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES),
                   help="OCR engines that read every page (default: all; the range rule must hold on each)")
    p.add_argument("--config", help="pipeline.yaml (default: the project's)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.judge:
        return judge(args.judge)
    if not args.weights or args.scale is None:
        parser.error("--weights and --scale are required (or --judge FILE...)")
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
        native = [r for f in args.native_rows for r in json.loads(Path(f).read_text())["rows"]]
        return rescore(loaded, Path(args.out or "."), cfg, args.write_manifest, pages,
                       native if args.native_rows else None, args.native_rows)
    if not pages:
        where = " ".join(args.pages or ["(no --pages given)"])
        print(f"error: no page with ground-truth text (.txt beside it) under {where}", file=sys.stderr)
        return 2
    if missing := missing_engines(args.engines):
        print(f"error: OCR engine not installed: {'; '.join(missing)}", file=sys.stderr)
        return 2
    cache = OcrCache()  # baselines are read once for all weights of this scale
    for net_g, manifest in loaded:
        t0 = time.perf_counter()
        name = Path(manifest["path"]).stem
        native = [] if args.sweep_only else measure_pages(net_g, manifest.get("text_height"), pages, cfg, cache,
                                                          args.engines)
        gate = fidelity_gate(native, None, None)
        result: dict = {"weights": name, "sha256": manifest.get("sha256"), "scale": args.scale,
                        "native": native, "cer_rule": ocr_verdict(gate)}
        print_verdict(f"{name} x{args.scale} at native size", gate)
        for r in native:
            reads = "; ".join(
                f"{e} CER original {r[field_name('cer', 'original', e)]:.3f} bicubic "
                f"{r[field_name('cer', 'bicubic', e)]:.3f} Lanczos {r[field_name('cer', 'lanczos', e)]:.3f} model "
                f"{r[field_name('cer', 'model', e)]:.3f}, word F1 Lanczos {r[field_name('f1', 'lanczos', e)]:.3f} "
                f"model {r[field_name('f1', 'model', e)]:.3f}" for e in args.engines)
            print(f"  {r['page']}: {reads}; PSNR model {r['psnr']:.2f} Lanczos {r['psnr_lanczos']:.2f} "
                  f"bicubic {r['psnr_bicubic']:.2f}")
        summaries = {src: native_summary([r for r in native if r["page"] in names]) for src, names in groups.items()}
        summaries["all"] = native_summary(native)
        result["native_summary"] = summaries
        for label, summary in summaries.items():
            print(format_native_summary(label, summary))
        if not args.gate_only:
            rows, skipped = xheight_sweep(net_g, manifest.get("text_height"), pages, cfg, args.sizes,
                                          args.max_megapixels, cache, args.engines)
            native = native_points([r for f in args.native_rows for r in json.loads(Path(f).read_text())["rows"]],
                                   args.scale, args.sizes)
            kept = []
            if args.keep_above is not None and args.out and (Path(args.out) / f"fidelity_{name}.json").is_file():
                earlier = json.loads((Path(args.out) / f"fidelity_{name}.json").read_text())
                kept = [r for r in earlier.get("rows", []) if r["size"] > args.keep_above and r.get("kind") != "native"]
            rows += native + kept
            decided = decide_range(rows, cfg.upscale, manifest.get("text_height"))
            rng, estimated = decided.rng, decided.estimated
            evidence = {
                "date": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": f"{cpu_model()}, {os.cpu_count()} cores",
                "rule": RANGE_RULE, "ocr_engines": list(args.engines),
                "pages": [p.name for p in pages], "sizes": list(args.sizes), "per_size": decided.sizes,
                "native_pages": sorted({r["page"] for r in native}), "native_rows_from": list(args.native_rows),
                "kept_rows_above_px": args.keep_above if kept else None,
                "kept_sizes": sorted({r["size"] for r in kept}),
                "skipped": skipped, "seconds": round(time.perf_counter() - t0, 1),
            }
            result.update(validated_xheight_px=rng, validated_estimate_px=estimated, evidence=evidence, rows=rows,
                          default_output=decided.default_output, default_checks=decided.default_checks,
                          mean_rule_checks=decided.mean_rule_checks)
            if args.write_manifest:
                write_range(Path(manifest["path"]).with_suffix(".json"), rng, evidence, estimated)
                print(f"wrote validated_xheight_px {rng} (estimates {estimated}) into "
                      f"{Path(manifest['path']).with_suffix('.json')}")
        if args.out:
            out = Path(args.out)
            atomic_write_bytes(out / f"fidelity_{name}.json", json.dumps(result, indent=1).encode())
    return 0
