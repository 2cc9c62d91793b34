"""``srgan evaluate``: inputs are treated as originals.

Each original is downscaled by bicubic (the original SRGAN degradation), upscaled by the model and by
bicubic, and both are compared with the original (PSNR, SSIM on 8-bit grey levels).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.atomic import atomic_write_bytes
from srgan.config import PipelineConfig
from srgan.fidelity.ocr import field_name, read_scores
from srgan.imaging.metrics import bicubic_upscale, psnr, ssim
from srgan.imaging.textsize import resize_to
from srgan.inference.engine import Engine
from srgan.models import Generator
from srgan.pipeline.records import write_part
from srgan.pipeline.stages import encode_image, range_decision, upscale_images
from srgan.readers import discover, read_pages
from srgan.weights import load_generator

log = logging.getLogger(__name__)


PAGE_FIGURES = ("name", "psnr", "psnr_bicubic", "ssim", "ssim_bicubic", "ocr_engines")  # and every OCR figure


@dataclass
class EvalResult:
    rows: list[dict] = field(default_factory=list)

    def _mean(self, key: str) -> float:
        vals = [r[key] for r in self.rows if r.get(key) is not None]
        return float(np.mean(vals)) if vals else float("nan")

    @property
    def mean_psnr(self) -> float:
        return self._mean("psnr")

    @property
    def mean_psnr_bicubic(self) -> float:
        return self._mean("psnr_bicubic")

    @property
    def mean_ssim(self) -> float:
        return self._mean("ssim")

    @property
    def mean_ssim_bicubic(self) -> float:
        return self._mean("ssim_bicubic")

    @property
    def mean_gain_db(self) -> float:
        return self.mean_psnr - self.mean_psnr_bicubic

    def figures(self) -> dict:
        return {
            "pages": len(self.rows),
            "mean_psnr": round(self.mean_psnr, 3),
            "mean_psnr_bicubic": round(self.mean_psnr_bicubic, 3),
            "mean_gain_db": round(self.mean_gain_db, 3),
            "mean_ssim": round(self.mean_ssim, 4),
            "mean_ssim_bicubic": round(self.mean_ssim_bicubic, 4),
            "per_page": [{k: v for k, v in r.items() if k in PAGE_FIGURES or k.startswith(("cer_", "f1_"))}
                         for r in self.rows],
        }


def make_lr(original: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """Crop the original to a multiple of scale and bicubic-downscale it: returns (hr, lr)."""
    h, w = (original.shape[0] // scale) * scale, (original.shape[1] // scale) * scale
    hr = original[:h, :w]
    return hr, resize_to(hr, (w // scale, h // scale))


def evaluate_images(
    net_g: Generator,
    text_height: float | None,
    originals: Sequence[tuple[str, np.ndarray]],
    scale: int,
    cfg: PipelineConfig,
    out_dir: Path | None = None,
    validated_range: Sequence[float] | None = None,
) -> EvalResult:
    """Evaluate net_g against bicubic on (name, original page) pairs; optionally write the images.

    validated_range: ``weights.decision_range`` of the manifest; pages outside it get the configured
    ``upscale.out_of_range`` output, pages without a text-height estimate the ``upscale.no_estimate``
    one (the upscale default), as in a run. None: the model everywhere.
    """
    if net_g.scale != scale:
        raise ValueError(f"evaluate: generator is for scale {net_g.scale}, not {scale}")
    engine = Engine(net_g, cfg.engine, cfg.tiling)
    result = EvalResult()
    for name, original in originals:
        hr, lr = make_lr(original, scale)
        t0 = time.perf_counter()
        ((sr, estimate, factor),) = upscale_images(engine, [lr], text_height, cfg.upscale, validated_range)
        seconds = time.perf_counter() - t0
        bic = bicubic_upscale(lr, (hr.shape[1], hr.shape[0]))
        row = {
            "name": name,
            "width": int(hr.shape[1]),
            "height": int(hr.shape[0]),
            "text_height_px": estimate.px,
            "normalise_factor": factor,
            "method": range_decision(estimate.px, factor, validated_range, cfg.upscale, estimate.reason)[1],
            "psnr": psnr(sr, hr),
            "ssim": ssim(sr, hr),
            "psnr_bicubic": psnr(bic, hr),
            "ssim_bicubic": ssim(bic, hr),
            "seconds_infer": seconds,
        }
        result.rows.append(row)
        if out_dir is not None:
            stem = Path(out_dir) / "pages" / name
            for suffix, img in (("lr", lr), ("bicubic", bic), ("model", sr), ("original", hr)):
                atomic_write_bytes(stem.parent / f"{stem.name}_{suffix}.png", encode_image(img, "png", None))
    return result


def load_originals(inputs: Sequence[str], cfg: PipelineConfig) -> list[tuple[str, np.ndarray]]:
    """Every readable page under inputs as (name, grey array); unreadable pages are logged and skipped."""
    pages = []
    for page in read_pages(list(discover(inputs, cfg.limits)), cfg.pdf, cfg.limits):
        if page.error or page.image is None:
            log.warning("evaluate: skipping %s page %d: %s", page.doc.member, page.page_index + 1, page.error)
            continue
        name = page.doc.rel_path + (f"_p{page.page_index + 1:04d}" if page.page_count > 1 else "")
        pages.append((name, page.image))
    return pages


def load_ground_truth(inputs: Sequence[str], cfg: PipelineConfig) -> dict[str, str]:
    """Ground-truth text of plain-file pages that have a sibling ``<stem>.txt``, by page name."""
    texts = {}
    for doc in discover(inputs, cfg.limits):
        if doc.container or doc.kind != "image":
            continue
        src = Path(doc.source)
        path = src if src.is_file() else src / doc.member
        txt = path.with_suffix(".txt")
        if txt.is_file():
            texts[doc.rel_path] = txt.read_text(errors="replace")
    return texts


def ocr_figures(result: EvalResult, texts: dict[str, str], out_dir: Path, engines: Sequence[str]) -> None:
    """CER and word F1 of each engine on the original, the model's and bicubic's page, into rows
    (``cer_model`` for tesseract, ``cer_model_easyocr`` for EasyOCR: ``ocr.field_name``)."""
    for row in result.rows:
        truth = texts.get(row["name"])
        if truth is None:
            continue
        row["ocr_engines"] = list(engines)
        for kind in ("original", "model", "bicubic"):
            img = np.asarray(Image.open(Path(out_dir) / "pages" / f"{row['name']}_{kind}.png"))
            for engine in engines:
                c, f1 = read_scores(img, truth, 300, engine)
                row[field_name("cer", kind, engine)], row[field_name("f1", kind, engine)] = c, f1
        for engine in engines:
            log.info("OCR %s (%s): CER original %.3f, model %.3f, bicubic %.3f", row["name"], engine,
                     *(row[field_name("cer", k, engine)] for k in ("original", "model", "bicubic")))


def run_evaluate(inputs: Sequence[str], scale: int, out_dir: Path, cfg: PipelineConfig,
                 weights: str = "auto", ocr_engines: Sequence[str] = ()) -> tuple[EvalResult, dict]:
    """The CLI's evaluate: load weights, evaluate, write records and images under out_dir.

    With ocr_engines, pages that have ground-truth text (a sibling .txt) also get each engine's
    character error rate and word F1 on the original, the model's output and bicubic's.
    """
    net_g, manifest = load_generator(weights, cfg.upscale.weights_dir, scale)
    originals = load_originals(inputs, cfg)
    result = evaluate_images(net_g, manifest.get("text_height"), originals, scale, cfg, out_dir)
    if ocr_engines:
        ocr_figures(result, load_ground_truth(inputs, cfg), out_dir, ocr_engines)
    run_id = "eval-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    started = datetime.now(UTC)
    rows = [
        {
            "run_id": run_id,
            "started_at": started,
            "source": ",".join(inputs),
            "member": r["name"],
            "page_index": 0,
            "input_width": r["width"] // scale,
            "input_height": r["height"] // scale,
            "text_height_px": r["text_height_px"],
            "normalise_factor": r["normalise_factor"],
            "scale": scale,
            "output_path": str(Path(out_dir) / "pages" / f"{r['name']}_model.png"),
            "output_width": r["width"],
            "output_height": r["height"],
            "weights_name": Path(manifest["path"]).stem,
            "weights_sha256": manifest["sha256"],
            "psnr": r["psnr"],
            "ssim": r["ssim"],
            "psnr_bicubic": r["psnr_bicubic"],
            "ssim_bicubic": r["ssim_bicubic"],
            "seconds_infer": r["seconds_infer"],
            "status": "ok",
        }
        for r in result.rows
    ]
    write_part(rows, Path(out_dir) / cfg.records.dir, run_id)
    return result, manifest


def format_table(result: EvalResult) -> str:
    lines = [f"{'page':40s} {'psnr':>7s} {'bicubic':>7s} {'gain':>6s} {'ssim':>6s} {'ssim_bic':>8s} {'factor':>6s}"]
    for r in result.rows:
        lines.append(f"{r['name'][:40]:40s} {r['psnr']:7.2f} {r['psnr_bicubic']:7.2f} "
                     f"{r['psnr'] - r['psnr_bicubic']:6.2f} {r['ssim']:6.3f} {r['ssim_bicubic']:8.3f} "
                     f"{r['normalise_factor']:6.2f}")
    for r in result.rows:
        for engine in r.get("ocr_engines", ()):
            original, model, bicubic = (r[field_name("cer", k, engine)] for k in ("original", "model", "bicubic"))
            lines.append(f"  OCR {r['name'][:27]:27s} {engine:9s} CER original {original:.3f}  model "
                         f"{model:.3f}  bicubic {bicubic:.3f}")
    lines.append(f"{'mean':40s} {result.mean_psnr:7.2f} {result.mean_psnr_bicubic:7.2f} "
                 f"{result.mean_gain_db:6.2f} {result.mean_ssim:6.3f} {result.mean_ssim_bicubic:8.3f}")
    return "\n".join(lines)
