"""The paired RVL-like benchmark: what OCR reads on RVL-CDIP-like pages, as is and upscaled.

``python -m srgan.fidelity.rvl_paired``. Two kinds of pages:

- **paired** (``--pages``): high-resolution pages with ground-truth text (the held-out real scans with a
  ``.txt`` beside them, at the dpi of their tag, and with ``--held-out`` one text page per held-out type
  family rendered at a 300 dpi scan's x-height), degraded the way RVL-CDIP's pages were made
  (:func:`rvl_lr`: a bitonal threshold at 300 dpi, then area downsampling to about 100 or 75 dpi);
- **native** (``--native``): real low-resolution pages with ground-truth words (FUNSD's RVL-CDIP forms at
  about 100 dpi, no dpi tag: ``--native-dpi``), with no high-resolution original.

Each case (LR dpi, scale) reads the page as is (at its LR dpi), its bicubic, Lanczos, model and default
upscales (at LR dpi x scale) and, for paired pages, the HR original, with every OCR engine
(:mod:`srgan.fidelity.ocr`), and records word F1 (order-free) and CER for each. ``model`` is the model
alone; ``default`` is what ``srgan upscale`` writes: the model or Lanczos as the weights' validated range
decides (:func:`srgan.pipeline.stages.range_decision`, ``upscale.out_of_range`` / ``no_estimate``).
Native pages are also read by tesseract untagged (``model_untagged``, ``lanczos_untagged``: as the
pipeline wrote them before ``upscale.assumed_dpi``). ``share_<variant>_<engine>`` = F1 / F1 of the HR page.

Paired pages also read two references, never baselines (:func:`references`): ``hr_output``, the HR page resampled
to the output's size (what an upscaler that gave back the original would write: the share an output of that size
can reach on that reader), and ``model_bitonal``, the model's page thresholded at mid-grey (a diagnostic: does a
reader lose the model's words on grey, uncommitted strokes, or on the letters' shapes?).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.atomic import atomic_write_bytes
from srgan.config import PipelineConfig, UpscaleConfig, load_config
from srgan.fidelity.ocr import ENGINES, TESSERACT, cer, missing_engines, ocr_text, word_f1
from srgan.imaging.metrics import bicubic_upscale, lanczos_upscale
from srgan.inference.engine import Engine
from srgan.pipeline.stages import range_decision, upscale_images
from srgan.weights import WeightsError, decision_range, load_generator

log = logging.getLogger(__name__)

BASELINES = ("as_is", "bicubic", "lanczos")
VARIANTS = (*BASELINES, "model", "default")
REFERENCES = ("hr_output", "model_bitonal")
HELD_OUT_DPI = 300.0  # the held-out family pages are rendered as a 300 dpi scan of 10 pt text
HELD_OUT_XHEIGHT = 19.5  # px: 10 pt body text at 300 dpi (6.5 px at 100 dpi, the gate's evaluation size)


@dataclass
class TruthPage:
    """A page with ground-truth text: its name, (H, W) uint8 pixels and their dpi."""

    name: str
    image: np.ndarray
    dpi: float
    truth: str


def rvl_lr(hr: np.ndarray, hr_dpi: float, lr_dpi: float) -> np.ndarray:
    """An RVL-CDIP-like low-resolution page: bitonal at HR (threshold at mid-grey, as IIT-CDIP's scans are
    bitonal), then area-averaged down to lr_dpi (Pillow's box filter: grey letter edges, as RVL-CDIP's)."""
    bitonal = np.where(hr < 128, 0, 255).astype(np.uint8)
    k = lr_dpi / hr_dpi
    size = (max(1, round(hr.shape[1] * k)), max(1, round(hr.shape[0] * k)))
    return np.asarray(Image.fromarray(bitonal).resize(size, Image.Resampling.BOX))


def load_truth_pages(folders: Sequence[str], default_dpi: float, assume_dpi: bool = False,
                     limit: int = 0) -> list[TruthPage]:
    """Pages with a sibling ``<stem>.txt`` in the folders (sorted by name; at most ``limit`` per folder when
    > 0), grey, at the dpi of their tag (default_dpi when untagged or when assume_dpi)."""
    pages = []
    for folder in folders:
        found = []
        for txt in sorted(Path(folder).glob("*.txt")):
            image = next((p for p in sorted(txt.parent.glob(txt.stem + ".*"))
                          if p.suffix.lower() in (".png", ".tif", ".tiff", ".jpg", ".jpeg")), None)
            if image is None:
                continue
            with Image.open(image) as im:
                tag = im.info.get("dpi")
                dpi = default_dpi if assume_dpi or not tag else float(tag[0] if isinstance(tag, tuple) else tag)
                found.append(TruthPage(txt.stem, np.asarray(im.convert("L")), dpi, txt.read_text(errors="replace")))
        pages += found[:limit] if limit > 0 else found
    return pages


def held_out_pages() -> list[TruthPage]:
    """One text page per held-out type family, body x-height of a 300 dpi scan of 10 pt text."""
    from srgan.training.heldout import held_out_text_pages

    return [TruthPage(name, doc.image, HELD_OUT_DPI, "\n".join(doc.lines))
            for name, doc in held_out_text_pages(HELD_OUT_XHEIGHT)]


def references(hr: np.ndarray, model: np.ndarray) -> dict[str, np.ndarray]:
    """The paired page's two references at the model output's size: the HR page resampled to it (area when
    smaller, Lanczos when larger) and the model's page thresholded at mid-grey."""
    h, w = model.shape[:2]
    filt = Image.Resampling.BOX if w <= hr.shape[1] else Image.Resampling.LANCZOS
    return {"hr_output": np.asarray(Image.fromarray(hr).resize((w, h), filt)),
            "model_bitonal": np.where(model < 128, 0, 255).astype(np.uint8)}


def upscales(engine: Engine, lr: np.ndarray, rng: Sequence[float] | None, ucfg: UpscaleConfig
             ) -> tuple[dict[str, np.ndarray], dict]:
    """The LR page as is and its bicubic, Lanczos and model upscales; ``default`` names the one a run writes."""
    s = engine.scale
    size = (lr.shape[1] * s, lr.shape[0] * s)
    ((model, est, factor),) = upscale_images(engine, [lr], None, ucfg)
    inside, method = range_decision(est.px, factor, rng, ucfg, est.reason)
    images = {"as_is": lr, "bicubic": bicubic_upscale(lr, size), "lanczos": lanczos_upscale(lr, size), "model": model}
    return images, {"lr_xheight_px": est.px, "estimate_note": est.reason, "in_range": inside, "default": method}


def read_case(images: dict[str, np.ndarray], default: str, truth: str, dpis: dict[str, float | None],
              engines: Sequence[str], untagged: Sequence[str] = ()) -> dict:
    """Word F1 and CER of each image by each engine (``default`` copies the reading of the image it is), and
    tesseract's reading of the ``untagged`` variants without a dpi."""
    row: dict = {}
    for ocr in engines:
        for name, image in images.items():
            text = ocr_text(image, dpis[name], engine=ocr)
            row[f"f1_{name}_{ocr}"], row[f"cer_{name}_{ocr}"] = word_f1(text, truth), cer(text, truth)
        row[f"f1_default_{ocr}"], row[f"cer_default_{ocr}"] = row[f"f1_{default}_{ocr}"], row[f"cer_{default}_{ocr}"]
    if TESSERACT in engines:
        for name in untagged:
            text = ocr_text(images[name], None, engine=TESSERACT)
            row[f"f1_{name}_untagged_{TESSERACT}"] = word_f1(text, truth)
            row[f"cer_{name}_untagged_{TESSERACT}"] = cer(text, truth)
    return row


def row_key(kind: str, page: str, lr_dpi: float, scale: int) -> tuple:
    """What identifies a row: (kind, page, LR dpi, scale)."""
    return kind, page, float(lr_dpi), int(scale)


def measure(engines_by_scale: dict[int, tuple[Engine, list[float] | None]], paired: Sequence[TruthPage],
            native: Sequence[TruthPage], cases: Sequence[tuple[float, int]], ucfg: UpscaleConfig,
            ocr_engines: Sequence[str] = ENGINES, on_row: Callable[[list[dict]], None] | None = None,
            done: Sequence[dict] = ()) -> list[dict]:
    """One row per page and case: paired pages for each (LR dpi, scale) case, native pages at each scale.
    ``on_row`` is called with the rows so far after each row (the CLI saves them: a long run keeps what it
    measured if it is stopped); ``done``: rows of an earlier run of the same weights and engines, kept and
    not measured again (``--resume``)."""
    rows: list[dict] = list(done)
    have = {row_key(r["kind"], r["page"], r["lr_dpi"], r["scale"]) for r in done}
    # the HR page's readings of kept rows: a page is read at HR once, also across a resumption
    hr_reads: dict[str, dict] = {r["page"]: {k: v for k, v in r.items() if k.startswith(("f1_hr_", "cer_hr_"))}
                                 for r in done if r["kind"] == "paired"}
    for page in paired:
        for lr_dpi, scale in cases:
            if row_key("paired", page.name, lr_dpi, scale) in have:
                continue
            engine, rng = engines_by_scale[scale]
            lr = rvl_lr(page.image, page.dpi, lr_dpi)
            images, info = upscales(engine, lr, rng, ucfg)
            if page.name not in hr_reads:
                hr_reads[page.name] = read_case({"hr": page.image}, "hr", page.truth, {"hr": page.dpi}, ocr_engines)
            images |= references(page.image, images["model"])
            dpis = {"as_is": lr_dpi, **{k: lr_dpi * scale for k in images if k != "as_is"}}
            row = {"page": page.name, "kind": "paired", "hr_dpi": page.dpi, "lr_dpi": lr_dpi, "scale": scale, **info,
                   **{k: v for k, v in hr_reads[page.name].items() if not k.startswith(("f1_default", "cer_default"))},
                   **read_case(images, info["default"], page.truth, dpis, ocr_engines)}
            for ocr in ocr_engines:
                hr_f1 = row[f"f1_hr_{ocr}"]
                for v in (*VARIANTS, *REFERENCES):
                    row[f"share_{v}_{ocr}"] = row[f"f1_{v}_{ocr}"] / hr_f1 if hr_f1 > 0 else None
            rows.append(row)
            log.info("rvl_paired %s %g dpi x%d: %s", page.name, lr_dpi, scale, _brief(row, ocr_engines))
            if on_row:
                on_row(rows)
    for page in native:
        for scale, (engine, rng) in sorted(engines_by_scale.items()):
            if row_key("native", page.name, page.dpi, scale) in have:
                continue
            images, info = upscales(engine, page.image, rng, ucfg)
            dpis = {"as_is": page.dpi, **{k: page.dpi * scale for k in images if k != "as_is"}}
            row = {"page": page.name, "kind": "native", "lr_dpi": page.dpi, "scale": scale, **info,
                   **read_case(images, info["default"], page.truth, dpis, ocr_engines, untagged=("model", "lanczos"))}
            rows.append(row)
            log.info("rvl_paired native %s x%d: %s", page.name, scale, _brief(row, ocr_engines))
            if on_row:
                on_row(rows)
    return rows


def _brief(row: dict, engines: Sequence[str]) -> str:
    return "; ".join(f"{e} F1 " + " ".join(f"{v} {row[f'f1_{v}_{e}']:.3f}" for v in ("hr", *VARIANTS)
                                           if f"f1_{v}_{e}" in row) for e in engines)


def summarise(rows: Sequence[dict], engines: Sequence[str] = ENGINES) -> list[dict]:
    """Per (kind, LR dpi, scale): mean word F1 of each variant per engine, the share of the HR page's (paired),
    the best baseline by mean F1, the model's mean margin over it and its worst page margin."""
    out = []
    for key in sorted({(r["kind"], r["lr_dpi"], r["scale"]) for r in rows}):
        at = [r for r in rows if (r["kind"], r["lr_dpi"], r["scale"]) == key]
        s: dict = {"kind": key[0], "lr_dpi": key[1], "scale": key[2], "pages": len(at),
                   "pages_model_by_default": sum(r["default"] == "model" for r in at)}
        for ocr in engines:
            names = [*(["hr"] if key[0] == "paired" else []), *VARIANTS]
            names += [n for n in ("model_untagged", "lanczos_untagged", *REFERENCES)
                      if all(f"f1_{n}_{ocr}" in r for r in at)]  # rows of an earlier version may lack references
            for v in names:
                s[f"f1_{v}_{ocr}"] = round(float(np.mean([r[f"f1_{v}_{ocr}"] for r in at])), 4)
            if key[0] == "paired":
                hr = s[f"f1_hr_{ocr}"]
                for v in (*VARIANTS, *(r for r in REFERENCES if r in names)):
                    s[f"share_{v}_{ocr}"] = round(s[f"f1_{v}_{ocr}"] / hr, 4) if hr else None
            best = max(BASELINES, key=lambda b, ocr=ocr: s[f"f1_{b}_{ocr}"])
            s[f"best_baseline_{ocr}"] = best
            for v in ("model", "default"):
                margins = [r[f"f1_{v}_{ocr}"] - r[f"f1_{best}_{ocr}"] for r in at]
                s[f"{v}_minus_best_{ocr}"] = round(float(np.mean(margins)), 4)
                s[f"{v}_worst_page_minus_best_{ocr}"] = round(float(min(margins)), 4)
        out.append(s)
    return out


def format_summary(summary: Sequence[dict], engines: Sequence[str] = ENGINES) -> str:
    def pct(share: float | None) -> str:
        return "–" if share is None else f"{share:.1%}"

    lines = ["| pages | LR dpi | scale | engine | HR | as is | bicubic | Lanczos | model | default | model share of HR "
             "| model - best baseline (worst page) | share: HR at output size | model thresholded |", "|" + "---|" * 14]
    for s in summary:
        for e in engines:
            hr = f"{s[f'f1_hr_{e}']:.3f}" if f"f1_hr_{e}" in s else "–"
            lines.append(
                f"| {s['kind']} {s['pages']} | {s['lr_dpi']:g} | {s['scale']}x | {e} | {hr} | "
                + " | ".join(f"{s[f'f1_{v}_{e}']:.3f}" for v in VARIANTS)
                + f" | {pct(s.get(f'share_model_{e}'))} | {s[f'model_minus_best_{e}']:+.3f} "
                  f"({s[f'model_worst_page_minus_best_{e}']:+.3f}) | "
                + " | ".join(pct(s.get(f"share_{v}_{e}")) for v in REFERENCES) + " |")
    return "\n".join(lines)


def earlier_rows(out: Path, weights: dict[int, dict], engines: Sequence[str]) -> list[dict]:
    """The rows of an earlier run in ``out`` that can stand beside new ones: read by the same engines, at a
    scale whose weights have the same sha256 (rows of other weights are dropped, not mixed in)."""
    if not out.is_file():
        return []
    earlier = json.loads(out.read_text())
    if sorted(earlier.get("engines", [])) != sorted(engines):
        return []
    same = {int(s) for s, w in earlier.get("weights", {}).items()
            if int(s) in weights and w.get("sha256") == weights[int(s)]["sha256"]}
    return [r for r in earlier.get("rows", []) if int(r["scale"]) in same]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m srgan.fidelity.rvl_paired", description=__doc__.split("\n\n")[0])
    p.add_argument("--pages", nargs="*", default=[], help="folders of HR pages with a .txt beside them (paired)")
    p.add_argument("--held-out", action="store_true", help="add one 300 dpi text page per held-out type family")
    p.add_argument("--native", nargs="*", default=[], help="folders of LR pages with ground-truth words (FUNSD)")
    p.add_argument("--native-dpi", type=float, default=100.0, help="dpi of the native pages (they carry no tag)")
    p.add_argument("--max-native", type=int, default=0, help="native pages per folder at most (0: all)")
    p.add_argument("--max-paired", type=int, default=0, help="paired pages per folder at most (0: all)")
    p.add_argument("--cases", nargs="+", default=["100:2", "100:4", "75:2", "75:4"],
                   help="LR_DPI:SCALE pairs of the paired pages (native pages are read at every scale given)")
    p.add_argument("--weights", nargs="*", default=[], help="SCALE=NAME overrides (default weights/srgan_x<scale>)")
    p.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    p.add_argument("--out", required=True, help="JSON file for the rows and the summary")
    p.add_argument("--resume", action="store_true",
                   help="keep the rows already in --out that were read by the same engines with the same weights "
                        "(sha256 per scale) and measure only the rest")
    p.add_argument("--families", nargs="*",
                   help="with --held-out: only these held-out families (page names, e.g. cmu-typewriter-text)")
    p.add_argument("--config", help="pipeline.yaml (default: the project's)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from srgan.runtimes.choose import cpu_model

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg: PipelineConfig = load_config(args.config)
    try:
        cases = [(float(c.split(":")[0]), int(c.split(":")[1])) for c in args.cases]
    except (ValueError, IndexError):
        print("error: --cases takes LR_DPI:SCALE pairs, e.g. 100:2 75:4", file=sys.stderr)
        return 2
    if missing := missing_engines(args.engines):
        print(f"error: OCR engine not installed: {'; '.join(missing)}", file=sys.stderr)
        return 2
    names = dict(w.split("=", 1) for w in args.weights)
    engines_by_scale, weights = {}, {}
    try:
        for scale in sorted({s for _, s in cases}):
            net_g, manifest = load_generator(names.get(str(scale), f"srgan_x{scale}"),
                                             cfg.upscale.weights_dir, scale)
            engines_by_scale[scale] = (Engine(net_g, cfg.engine, cfg.tiling), decision_range(manifest))
            weights[scale] = {"name": Path(manifest["path"]).stem, "sha256": manifest["sha256"],
                              "decision_range": decision_range(manifest)}
    except WeightsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    held_out = held_out_pages() if args.held_out else []
    if args.families:
        held_out = [p for p in held_out if p.name.split("/")[-1] in args.families]
    paired = load_truth_pages(args.pages, 300.0, limit=args.max_paired) + held_out
    native = load_truth_pages(args.native, args.native_dpi, assume_dpi=True, limit=args.max_native)
    if not paired and not native:
        print("error: no page with ground truth (--pages, --held-out or --native)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()

    def save(rows: list[dict], complete: bool = False) -> None:
        result = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": f"{cpu_model()}",
                  "seconds": round(time.perf_counter() - t0, 1), "complete": complete, "engines": list(args.engines),
                  "cases": args.cases, "weights": weights, "out_of_range": cfg.upscale.out_of_range,
                  "no_estimate": cfg.upscale.no_estimate, "paired_pages": [p.name for p in paired],
                  "native_pages": [p.name for p in native], "summary": summarise(rows, args.engines), "rows": rows}
        atomic_write_bytes(Path(args.out), json.dumps(result, indent=1).encode())

    done = earlier_rows(Path(args.out), weights, args.engines) if args.resume else []
    if done:
        log.info("rvl_paired: %d row(s) kept from %s", len(done), args.out)
    rows = measure(engines_by_scale, paired, native, cases, cfg.upscale, args.engines, on_row=save, done=done)
    save(rows, complete=True)
    print(format_summary(summarise(rows, args.engines), args.engines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
