"""OCR fidelity per page and the promotion gate of training.

Pages with ground-truth text (a ``<stem>.txt`` beside the image) are shrunk by the scale (bicubic, as
in :mod:`srgan.fidelity.evaluate`) and upscaled by the model, by bicubic and by Lanczos; each OCR engine
(:mod:`srgan.fidelity.ocr`: tesseract and EasyOCR) reads the original and the three upscales, and each
reading's character error rate (CER) and order-free word F1 against the ground truth are recorded beside
the PSNRs (:func:`measure_page`). Tesseract's figures keep their plain names (``cer_model``, ``f1_model``);
another engine's carry its name (``cer_model_easyocr``, ``f1_model_easyocr``).

:func:`fidelity_gate` is the promotion rule of training and of ``python -m srgan.fidelity --gate-only``. Weights
pass only when the model reads no worse than the baselines on *both* engines and their mean PSNR gain over bicubic
beats the current weights' on the same pages (rule ``psnr``). Since 2026-12-08 each engine's OCR rule
(``words_tesseract``, ``words_easyocr``) is the paired words rule over all pages (:mod:`srgan.fidelity.paired_words`:
no loss of words against the per-page better baseline at 95% one-sided confidence, and a pooled word F1 not below
Lanczos's). Rows without word evidence keep the per-page rules of before, with a note: rule ``cer`` (tesseract)
``CER model <= min(CER bicubic, CER Lanczos) + 0.005`` and rule ``words_easyocr`` ``F1 model >= max(F1 bicubic,
F1 Lanczos) - 0.005`` on every page. The result names each failed rule and page (or the test, its counts and
p-value).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from srgan.config import PipelineConfig
from srgan.fidelity.evaluate import load_ground_truth, load_originals, make_lr
from srgan.fidelity.ocr import ENGINES, TESSERACT, Reading, field_name, read_page
from srgan.fidelity.paired_words import paired_words_test
from srgan.imaging.metrics import bicubic_upscale, lanczos_upscale, psnr
from srgan.inference.engine import Engine
from srgan.models import Generator
from srgan.pipeline.stages import upscale_images

log = logging.getLogger(__name__)

CER_MARGIN = 0.005  # the model may read this much worse than the better baseline (tesseract's jitter)
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
    """Readings (CER, word F1, word evidence) that do not depend on the weights (original, bicubic, Lanczos),
    by key."""

    def __init__(self) -> None:
        self._readings: dict[tuple, Reading] = {}

    def get(self, key: tuple, image: np.ndarray, truth: str, dpi: int, engine: str = TESSERACT) -> Reading:
        if (*key, engine) not in self._readings:
            self._readings[(*key, engine)] = read_page(image, truth, dpi, engine)
        return self._readings[(*key, engine)]


def measure_page(engine: Engine, text_height: float | None, page: OcrPage, cfg: PipelineConfig,
                 dpi: int = NATIVE_DPI, cache: OcrCache | None = None, tag: str = "",
                 ocr_engines: Sequence[str] = ENGINES) -> dict:
    """One page at the engine's scale: PSNR of the model, bicubic and Lanczos; CER, word F1 and the word
    evidence (``found_*``, ``extra_*``: :func:`srgan.fidelity.ocr.word_outcomes`, what the paired words rule of
    :mod:`srgan.fidelity.paired_words` pairs) of the original and the three upscales on each of ``ocr_engines``.

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
        "lr_xheight_px": estimate.px, "estimate_note": estimate.reason, "normalise_factor": factor,
        "psnr": psnr(sr, hr), "psnr_bicubic": psnr(bic, hr), "psnr_lanczos": psnr(lan, hr),
        "ocr_engines": list(ocr_engines),
    }
    for ocr in ocr_engines:
        scores = {"original": cache.get((page.name, tag, "original"), hr, page.truth, dpi, ocr),
                  "bicubic": cache.get((*key, "bicubic"), bic, page.truth, dpi, ocr),
                  "lanczos": cache.get((*key, "lanczos"), lan, page.truth, dpi, ocr),
                  "model": read_page(sr, page.truth, dpi, ocr)}
        for kind, reading in scores.items():
            row[field_name("cer", kind, ocr)] = reading.cer
            row[field_name("f1", kind, ocr)] = reading.f1
            row[field_name("found", kind, ocr)] = reading.found
            row[field_name("extra", kind, ocr)] = reading.extra
        log.info("fidelity %s%s x%d %s: CER original %.3f bicubic %.3f lanczos %.3f model %.3f; word F1 original "
                 "%.3f lanczos %.3f model %.3f", page.name, f" {tag}" if tag else "", scale, ocr,
                 *(scores[k][0] for k in ("original", "bicubic", "lanczos", "model")),
                 *(scores[k][1] for k in ("original", "lanczos", "model")))
    log.info("fidelity %s%s x%d: PSNR model %.2f lanczos %.2f bicubic %.2f", page.name, f" {tag}" if tag else "",
             scale, row["psnr"], row["psnr_lanczos"], row["psnr_bicubic"])
    return row


def measure_pages(net_g: Generator, text_height: float | None, pages: Sequence[OcrPage], cfg: PipelineConfig,
                  cache: OcrCache | None = None, ocr_engines: Sequence[str] = ENGINES) -> list[dict]:
    """measure_page for every page at native size (the training gate's evaluation)."""
    engine = Engine(net_g, cfg.engine, cfg.tiling)
    return [measure_page(engine, text_height, p, cfg, cache=cache, ocr_engines=ocr_engines) for p in pages]


# ------------------------------------------------------------------------------------------- the gate


@dataclass
class GateResult:
    """The promotion decision: passed, and each failure as {rule, page, detail}."""

    passed: bool
    failures: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    words_tests: list[dict] = field(default_factory=list)  # WordsTest.to_dict() per engine the paired rule judged

    def reason(self) -> str:
        if self.passed:
            return "fidelity gate passed" + (f" ({'; '.join(self.notes)})" if self.notes else "")
        return "fidelity gate failed: " + "; ".join(
            f"rule {f['rule']}" + (f" on {f['page']}" if f.get("page") else "") + f": {f['detail']}"
            for f in self.failures)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "failures": self.failures, "notes": self.notes, "reason": self.reason(),
                "cer_margin": CER_MARGIN, "words_tests": self.words_tests, "pages": self.rows}


def row_engines(row: dict) -> list[str]:
    """The OCR engines a row was read with (rows stored before 2026-12-05: tesseract alone)."""
    return list(row.get("ocr_engines") or [TESSERACT])


def cer_failures(rows: Sequence[dict], margin: float = CER_MARGIN) -> list[dict]:
    """The per-page OCR rules, per page and engine: rule ``cer`` (tesseract) where the model's CER is above
    min(bicubic, Lanczos) + margin; rule ``words_<engine>`` (the other engines, whose line order is not the
    reading order) where its word F1 is below max(bicubic, Lanczos) - margin. The gate (:func:`ocr_rules`) applies
    them only to rows without word evidence; elsewhere the paired words rule judges and these are notes."""
    out = []
    for r in rows:
        for ocr in row_engines(r):
            if ocr == TESSERACT:
                limit = min(r["cer_bicubic"], r["cer_lanczos"]) + margin
                if not r["cer_model"] <= limit:
                    out.append({"rule": "cer", "page": r["page"], "scale": r["scale"],
                                "detail": f"CER model {r['cer_model']:.3f} > min(bicubic {r['cer_bicubic']:.3f}, "
                                          f"Lanczos {r['cer_lanczos']:.3f}) + {margin} at {r['scale']}x"})
                continue
            f1 = {k: r[field_name("f1", k, ocr)] for k in ("model", "bicubic", "lanczos")}
            if not f1["model"] >= max(f1["bicubic"], f1["lanczos"]) - margin:
                out.append({"rule": f"words_{ocr}", "page": r["page"], "scale": r["scale"],
                            "detail": f"{ocr} word F1 model {f1['model']:.3f} < max(bicubic {f1['bicubic']:.3f}, "
                                      f"Lanczos {f1['lanczos']:.3f}) - {margin} at {r['scale']}x"})
    return out


def ocr_rules(rows: Sequence[dict], margin: float = CER_MARGIN) -> tuple[list[dict], list[str], list[dict]]:
    """The gate's OCR rules: (failures, notes, paired words tests).

    Each engine's rule ``words_<engine>`` is the paired words rule over all rows read by it
    (:func:`srgan.fidelity.paired_words.paired_words_test`; one failure per part that fails, page None, the detail
    naming the test, counts, p-value and confidence). The per-page rules (:func:`cer_failures`: ``cer`` for
    tesseract, ``words_<engine>`` per page for the others) trip on one word of a ~70-word page, so where the paired
    rule judges, their trips become notes (``per_page_cer`` / ``per_page_words``), kept for comparison. Where a row
    lacks word evidence (stored before 2026-12-08) the paired rule cannot judge and the per-page rule fails as
    before, with a note saying so: such rows never pass for want of evidence.
    """
    per_page = cer_failures(rows, margin)
    failures, notes, tests = [], [], []
    engines = sorted({e for r in rows for e in row_engines(r)}, key=lambda e: (e != TESSERACT, e))
    for ocr in engines:
        judged_rows = [r for r in rows if ocr in row_engines(r)]
        test = paired_words_test(judged_rows, ocr)
        per_page_rule = "cer" if ocr == TESSERACT else f"words_{ocr}"
        trips = [f for f in per_page if f["rule"] == per_page_rule]
        if not test.judged:
            failures += trips
            notes.append(f"{test.summary()}; the per-page rule {per_page_rule} applies")
            continue
        tests.append(test.to_dict())
        notes += [f"per_page_{'cer' if ocr == TESSERACT else 'words'} {f['page']}: {f['detail']}" for f in trips]
        if test.worse_with_confidence:
            failures.append({"rule": f"words_{ocr}", "page": None, "scale": _scale(judged_rows),
                             "detail": f"model reads fewer words than the best baseline: {test.summary()}"})
        if test.below_lanczos:
            failures.append({"rule": f"words_{ocr}", "page": None, "scale": _scale(judged_rows),
                             "detail": f"pooled word F1 model {test.pooled_f1['model']:.4f} < Lanczos "
                                       f"{test.pooled_f1['lanczos']:.4f}: {test.summary()}"})
        if test.passed:
            notes.append(f"words_{ocr} passed: {test.summary()}")
    return failures, notes, tests


def _scale(rows: Sequence[dict]) -> int | None:
    scales = {r["scale"] for r in rows}
    return scales.pop() if len(scales) == 1 else None


def fidelity_gate(rows: Sequence[dict], new_gain_db: float | None, current_gain_db: float | None,
                  margin: float = CER_MARGIN) -> GateResult:
    """Rules ``cer`` (every page), ``words_<engine>`` (:func:`ocr_rules`) and ``psnr`` (new mean gain over
    bicubic > the current weights').

    current_gain_db None: no current weights, the psnr rule holds. rows empty: the OCR rules cannot be
    checked (noted, not failed: there was no page with ground truth).
    """
    failures, notes, tests = ocr_rules(rows, margin)
    if not rows:
        notes = ["rule cer not checked: no evaluation page has ground-truth text"]
    if current_gain_db is not None:
        if new_gain_db is None or not math.isfinite(new_gain_db) or not new_gain_db > current_gain_db:
            failures.append({"rule": "psnr", "page": None,
                             "detail": f"mean gain {_db(new_gain_db)} <= current weights' {_db(current_gain_db)}"})
    else:
        notes.append("rule psnr: no current weights to beat")
    return GateResult(passed=not failures, failures=failures, notes=notes, rows=list(rows), words_tests=tests)


def _db(x: float | None) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:+.2f} dB"


def native_summary(rows: Sequence[dict]) -> dict:
    """Means of native-size rows: PSNR of the model, Lanczos and bicubic, the model's gains over both, the
    four CERs, and the pages where the model reads worse than the better baseline (rule ``cer``)."""
    def mean(key: str) -> float:
        return round(float(np.mean([r[key] for r in rows])), 4)

    out = {"pages": len(rows)}
    if rows:
        keys = ["psnr", "psnr_lanczos", "psnr_bicubic"]
        engines = [e for e in ENGINES if all(e in row_engines(r) for r in rows)]
        for ocr in engines:
            keys += [field_name(m, k, ocr) for m in ("cer", "f1") for k in ("original", "bicubic", "lanczos", "model")
                     if all(field_name(m, k, ocr) in r for r in rows)]
        out.update({k: mean(k) for k in keys})
        out["ocr_engines"] = engines
        out.update(gain_over_bicubic_db=round(out["psnr"] - out["psnr_bicubic"], 2),
                   gain_over_lanczos_db=round(out["psnr"] - out["psnr_lanczos"], 2),
                   cer_failures=[f["page"] for f in cer_failures(rows)])
    return out


def format_native_summary(label: str, summary: dict) -> str:
    if not summary["pages"]:
        return f"  {label}: no page"
    text = (f"  {label} ({summary['pages']} pages): PSNR model {summary['psnr']:.2f} dB, Lanczos "
            f"{summary['psnr_lanczos']:.2f}, bicubic {summary['psnr_bicubic']:.2f} (gain "
            f"{summary['gain_over_bicubic_db']:+.2f} over bicubic, {summary['gain_over_lanczos_db']:+.2f} over "
            f"Lanczos)")
    for ocr in summary.get("ocr_engines") or [TESSERACT]:
        def fig(metric: str, kind: str, ocr: str = ocr) -> str:
            v = summary.get(field_name(metric, kind, ocr))
            return "n/a" if v is None else f"{v:.3f}"
        text += (f"; {ocr} CER original {fig('cer', 'original')} bicubic {fig('cer', 'bicubic')} Lanczos "
                 f"{fig('cer', 'lanczos')} model {fig('cer', 'model')}, word F1 original {fig('f1', 'original')} "
                 f"bicubic {fig('f1', 'bicubic')} Lanczos {fig('f1', 'lanczos')} model {fig('f1', 'model')}")
    return text + f"; per-page OCR rules failed on {len(summary['cer_failures'])}"
