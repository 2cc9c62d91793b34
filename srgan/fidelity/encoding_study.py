"""Which page encoding a run should write: bytes against what both OCR readers read.

``python -m srgan.fidelity.encoding_study``. Every page is upscaled once, as ``srgan upscale`` writes it by default
(the model, or Lanczos where the weights' validated range says so: ``srgan.pipeline.stages.range_decision``);
that 8-bit page is stored in each encoding (``srgan.encoding.codecs``), decoded back, and read by every OCR engine
(``srgan.fidelity.ocr``) at its output dpi. Pages (as in ``srgan.fidelity.rvl_paired``):

- ``native``: real low-resolution pages with ground-truth words (FUNSD's RVL-CDIP forms, about 100 dpi);
- ``paired``: high-resolution real scans with a ``.txt`` beside them and (``--held-out``) one text page per
  held-out type family, made RVL-CDIP-like (bitonal, area-downsampled to ``--lr-dpi``) and upscaled.

A row per page: bytes and word F1 / CER of each encoding on each engine. The summary gives, per page set, the
bytes of each encoding against ``png8`` (today's 8-bit pages) and its mean word F1 minus png8's; ``choose`` picks
the smallest encoding whose every page set reads within ``TOLERANCE`` word F1 of png8 on every engine.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from srgan.atomic import atomic_write_bytes
from srgan.config import PipelineConfig, load_config, override
from srgan.encoding import codecs
from srgan.fidelity.ocr import ENGINES, cer, missing_engines, ocr_text, word_f1
from srgan.fidelity.rvl_paired import TruthPage, held_out_pages, load_truth_pages, rvl_lr, upscales
from srgan.inference.engine import Engine
from srgan.weights import WeightsError, decision_range, load_generator

log = logging.getLogger(__name__)

TOLERANCE = 0.005  # an encoding reads as well as png8 when its mean word F1 is at most this much lower
BASE = "png8"


def read_encodings(page: np.ndarray, dpi: float, truth: str, encodings: Sequence[str],
                   engines: Sequence[str]) -> dict:
    """Bytes and word F1 / CER of the page stored in each encoding, decoded back and read by each engine."""
    row: dict = {}
    for name in encodings:
        data = codecs.encode(page, codecs.get(name), dpi)
        back = codecs.decode(data)
        row[f"bytes_{name}"] = len(data)
        for ocr in engines:
            text = ocr_text(back, dpi, engine=ocr)
            row[f"f1_{name}_{ocr}"], row[f"cer_{name}_{ocr}"] = word_f1(text, truth), cer(text, truth)
    return row


def measure(engine: Engine, rng: Sequence[float] | None, cfg: PipelineConfig, pages: Sequence[tuple[str, TruthPage]],
            lr_dpi: float, encodings: Sequence[str], engines: Sequence[str],
            on_row: Callable[[list[dict]], None] | None = None, done: Sequence[dict] = ()) -> list[dict]:
    """One row per (set, page): ``set`` is ``native`` (the page is the LR page, at its own dpi) or a paired set
    (``scans``, ``held_out``: the page made RVL-like at lr_dpi first)."""
    rows, have = list(done), {(r["set"], r["page"]) for r in done}
    s = engine.scale
    for kind, page in pages:
        if (kind, page.name) in have:
            continue
        t0 = time.perf_counter()
        lr, dpi = (page.image, page.dpi) if kind == "native" else (rvl_lr(page.image, page.dpi, lr_dpi), lr_dpi)
        images, info = upscales(engine, lr, rng, cfg.upscale)
        out = images[info["default"]]
        row = {"set": kind, "page": page.name, "lr_dpi": dpi, "scale": s, "method": info["default"],
               "width": out.shape[1], "height": out.shape[0],
               **read_encodings(out, dpi * s, page.truth, encodings, engines),
               "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        log.info("encoding_study %s %s: %s", kind, page.name, "; ".join(
            f"{e} {row[f'bytes_{e}'] / 1e3:.0f} KB " + " ".join(f"{row[f'f1_{e}_{o}']:.3f}" for o in engines)
            for e in encodings))
        if on_row:
            on_row(rows)
    return rows


def summarise(rows: Sequence[dict], encodings: Sequence[str], engines: Sequence[str]) -> list[dict]:
    """Per page set and encoding: pages, total bytes and their share of png8's, mean word F1 per engine and its
    difference from png8's (with the worst page's)."""
    out = []
    for kind in sorted({r["set"] for r in rows}):
        at = [r for r in rows if r["set"] == kind]
        base_bytes = sum(r[f"bytes_{BASE}"] for r in at)
        for name in encodings:
            s: dict = {"set": kind, "encoding": name, "pages": len(at),
                       "kb_per_page": round(sum(r[f"bytes_{name}"] for r in at) / len(at) / 1e3, 1),
                       "bytes_share": round(sum(r[f"bytes_{name}"] for r in at) / base_bytes, 4)}
            for ocr in engines:
                diffs = [r[f"f1_{name}_{ocr}"] - r[f"f1_{BASE}_{ocr}"] for r in at]
                s[f"f1_{ocr}"] = round(float(np.mean([r[f"f1_{name}_{ocr}"] for r in at])), 4)
                s[f"f1_minus_{BASE}_{ocr}"] = round(float(np.mean(diffs)), 4)
                s[f"worst_page_minus_{BASE}_{ocr}"] = round(float(min(diffs)), 4)
            out.append(s)
    return out


def choose(summary: Sequence[dict], engines: Sequence[str], tolerance: float = TOLERANCE) -> str:
    """The encoding of the fewest bytes (over all page sets) whose mean word F1 on every set and engine is at most
    ``tolerance`` below png8's."""
    names = list(dict.fromkeys(s["encoding"] for s in summary))
    passing = [n for n in names if all(s[f"f1_minus_{BASE}_{e}"] >= -tolerance
                                       for s in summary if s["encoding"] == n for e in engines)]
    total = {n: sum(s["kb_per_page"] * s["pages"] for s in summary if s["encoding"] == n) for n in passing}
    return min(passing, key=total.__getitem__) if passing else BASE


def format_summary(summary: Sequence[dict], engines: Sequence[str]) -> str:
    lines = ["| set (pages) | encoding | KB/page | bytes / png8 | " + " | ".join(
        f"{e} F1 (- png8; worst page)" for e in engines) + " |", "|" + "---|" * (4 + len(engines))]
    for s in summary:
        lines.append(f"| {s['set']} ({s['pages']}) | {s['encoding']} | {s['kb_per_page']:,.0f} | "
                     f"{s['bytes_share']:.3f} | " + " | ".join(
                         f"{s[f'f1_{e}']:.3f} ({s[f'f1_minus_{BASE}_{e}']:+.3f}; "
                         f"{s[f'worst_page_minus_{BASE}_{e}']:+.3f})"
                         for e in engines) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m srgan.fidelity.encoding_study", description=__doc__.split("\n\n")[0])
    p.add_argument("--native", nargs="*", default=[], help="folders of LR pages with ground-truth words (FUNSD)")
    p.add_argument("--native-dpi", type=float, default=100.0, help="dpi of the native pages (they carry no tag)")
    p.add_argument("--max-native", type=int, default=20, help="native pages per folder at most (0: all)")
    p.add_argument("--native-skip", type=int, default=0, help="leave out the first N native pages (sorted by name): "
                                                               "a study split over several processes")
    p.add_argument("--pages", nargs="*", default=[], help="folders of HR scans with a .txt beside them (paired)")
    p.add_argument("--held-out", action="store_true", help="add one text page per held-out type family (paired)")
    p.add_argument("--families", nargs="*", help="with --held-out: only these families (page names, e.g. carlito)")
    p.add_argument("--lr-dpi", type=float, default=100.0, help="dpi the paired pages are made RVL-like at")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--weights", default="", help="weights name or path (default weights/srgan_x<scale>)")
    p.add_argument("--encodings", nargs="+", choices=codecs.NAMES, default=list(codecs.NAMES))
    p.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    p.add_argument("--threads", type=int, default=1, help="torch threads (the model and EasyOCR)")
    p.add_argument("--out", required=True, help="JSON file for the rows and the summary")
    p.add_argument("--resume", action="store_true", help="keep the rows already in --out (same weights, encodings, "
                                                         "engines) and measure only the rest")
    p.add_argument("--combine", nargs="*", default=[],
                   help="no measuring: the rows of these earlier --out files (same weights, encodings, engines), "
                        "summarised together into --out")
    p.add_argument("--config", help="pipeline.yaml (default: the project's)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from srgan.fidelity.cli import cpu_model

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = override(load_config(args.config), "engine.threads", args.threads)
    if BASE not in args.encodings:
        args.encodings.insert(0, BASE)
    if missing := missing_engines(args.engines):
        print(f"error: OCR engine not installed: {'; '.join(missing)}", file=sys.stderr)
        return 2
    try:
        net_g, manifest = load_generator(args.weights or f"srgan_x{args.scale}", cfg.upscale.weights_dir, args.scale)
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    engine, rng = Engine(net_g, cfg.engine, cfg.tiling), decision_range(manifest)
    weights = {"name": Path(manifest["path"]).stem, "sha256": manifest["sha256"]}
    native = load_truth_pages(args.native, args.native_dpi, True, args.native_skip + args.max_native
                              if args.max_native else 0)
    pages = [("native", p) for p in native[args.native_skip:]]
    pages += [("scans", p) for p in load_truth_pages(args.pages, 300.0)]
    pages += [("held_out", p) for p in (held_out_pages() if args.held_out else [])
              if not args.families or p.name.split("/")[-1] in args.families]
    if not pages and not args.combine:
        print("error: no page with ground truth (--native, --pages or --held-out)", file=sys.stderr)
        return 2
    out, t0 = Path(args.out), time.perf_counter()
    same = {"weights": weights, "encodings": args.encodings, "engines": args.engines, "jp2_db": codecs.JP2_DB}
    done: list[dict] = []
    for path in [*args.combine, *([out] if args.resume and out.is_file() else [])]:
        earlier = json.loads(Path(path).read_text())
        if all(earlier.get(k) == v for k, v in same.items()):
            done += [r for r in earlier["rows"] if (r["set"], r["page"]) not in {(d["set"], d["page"]) for d in done}]
        else:
            log.warning("encoding_study: %s left out: other weights, encodings, engines or JPEG 2000 level", path)
    if args.combine:
        pages = []

    def save(rows: list[dict], complete: bool = False) -> None:
        summary = summarise(rows, args.encodings, args.engines)
        result = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": cpu_model(),
                  "seconds": round(time.perf_counter() - t0, 1), "complete": complete, **same,
                  "scale": args.scale, "lr_dpi": args.lr_dpi, "tolerance": TOLERANCE,
                  "chosen": choose(summary, args.engines), "summary": summary, "rows": rows}
        atomic_write_bytes(out, json.dumps(result, indent=1).encode())

    rows = measure(engine, rng, cfg, pages, args.lr_dpi, args.encodings, args.engines, on_row=save, done=done)
    save(rows, complete=True)
    summary = summarise(rows, args.encodings, args.engines)
    print(format_summary(summary, args.engines))
    print(f"chosen: {choose(summary, args.engines)} (the fewest bytes within {TOLERANCE} word F1 of {BASE})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
