"""The paired RVL-like benchmark: the degradation, the readings and the summary."""

from __future__ import annotations

import numpy as np
import pytest

from srgan.config import PipelineConfig, override
from srgan.fidelity.ocr import have_tesseract
from srgan.fidelity.rvl_paired import TruthPage, measure, references, rvl_lr, summarise
from srgan.inference.engine import Engine
from tests.conftest import tiny_generator


def test_rvl_lr_is_bitonal_then_area_averaged():
    hr = np.full((300, 240), 255, np.uint8)
    hr[:, :120] = 100  # dark grey: ink after the threshold
    hr[:, 120:] = 200  # light grey: paper
    lr = rvl_lr(hr, 300, 100)
    assert lr.shape == (100, 80)
    assert lr[:, :40].max() == 0 and lr[:, 41:].min() == 255  # thresholded at mid-grey, then averaged by area
    edge = rvl_lr(np.pad(np.zeros((3, 3), np.uint8), ((0, 0), (0, 1)), constant_values=255), 300, 75)
    assert edge.shape == (1, 1) and 0 < edge[0, 0] < 255  # a 4 x 4 block three-quarters ink: grey


def _row(page, as_is, bic, lan, model, hr=1.0):
    row = {"page": page, "kind": "paired", "lr_dpi": 100.0, "scale": 2, "default": "model", "f1_hr_tesseract": hr}
    for v, f in zip(("as_is", "bicubic", "lanczos", "model", "default"), (as_is, bic, lan, model, model), strict=True):
        row[f"f1_{v}_tesseract"] = f
    return row


def test_summary_names_the_best_baseline_and_the_worst_page():
    rows = [_row("a", 0.5, 0.7, 0.8, 0.9), _row("b", 0.5, 0.7, 0.8, 0.75)]
    (s,) = summarise(rows, ["tesseract"])
    assert s["best_baseline_tesseract"] == "lanczos"
    assert s["share_model_tesseract"] == pytest.approx(0.825)
    assert s["model_minus_best_tesseract"] == pytest.approx(0.025)
    assert s["model_worst_page_minus_best_tesseract"] == pytest.approx(-0.05)


FOX = "The quick brown fox jumps over the lazy dog"


def _fox_case() -> tuple[TruthPage, Engine, PipelineConfig]:
    """A rendered 300 dpi line with its text, a tiny 2x engine on the CPU and its config."""
    from srgan.sample import find_fonts, render_text_page

    fonts = find_fonts()
    if not fonts:
        pytest.skip("no TrueType fonts on this machine")
    hr, _ = render_text_page(FOX, fonts[0], 14, 300, width_in=5.5, height_in=0.8, margin_in=0.2)
    cfg = override(PipelineConfig(), "engine.device", "cpu")
    return TruthPage("fox", hr, 300.0, FOX), Engine(tiny_generator(2), cfg.engine, cfg.tiling), cfg


@pytest.mark.skipif(not have_tesseract(), reason="tesseract not installed (make system)")
def test_measure_reads_every_variant_and_the_hr_page():
    page, engine, cfg = _fox_case()
    (row,) = measure({2: (engine, None)}, [page], [], [(150.0, 2)], cfg.upscale, ["tesseract"])
    assert row["f1_hr_tesseract"] > 0.8 and row["share_lanczos_tesseract"] > 0.5
    assert row["default"] == "model" and row["f1_default_tesseract"] == row["f1_model_tesseract"]  # no range
    assert {f"f1_{v}_tesseract" for v in ("as_is", "bicubic", "lanczos", "model")} <= row.keys()
    assert row["f1_hr_output_tesseract"] > 0.8  # the 300 dpi line at the output's 300 dpi: read as the HR page is
    assert 0 <= row["share_model_bitonal_tesseract"] <= 1.5


def test_references_are_the_hr_page_at_the_output_size_and_the_model_thresholded():
    hr = np.full((300, 240), 255, np.uint8)
    hr[:, :120] = 0
    model = np.tile(np.array([[40, 127, 128, 230]], np.uint8), (50, 10))  # (50, 40): a smaller output
    refs = references(hr, model)
    assert refs["hr_output"].shape == model.shape
    assert refs["hr_output"][:, :20].max() == 0 and refs["hr_output"][:, 20:].min() == 255  # area: edges kept
    assert refs["model_bitonal"][0, :4].tolist() == [0, 0, 255, 255]  # mid-grey: 128 and above is paper
    bigger = references(hr, np.zeros((600, 480), np.uint8))["hr_output"]  # 4x of a 75 dpi page: above the HR
    assert bigger.shape == (600, 480) and bigger[:, :200].max() < 64 and bigger[:, 280:].min() > 192


def test_summary_reads_rows_without_references():
    rows = [_row("a", 0.5, 0.7, 0.8, 0.9), {**_row("b", 0.5, 0.7, 0.8, 0.75), "f1_hr_output_tesseract": 1.0}]
    (s,) = summarise(rows, ["tesseract"])  # an earlier version's row has no references: none in the summary
    assert "share_hr_output_tesseract" not in s
    (s,) = summarise([{**r, "f1_hr_output_tesseract": 0.9, "f1_model_bitonal_tesseract": 0.8} for r in rows],
                     ["tesseract"])
    assert s["share_hr_output_tesseract"] == pytest.approx(0.9) and s["share_model_bitonal_tesseract"] == 0.8


def test_resume_keeps_rows_of_the_same_weights_and_engines_only(tmp_path):
    import json

    from srgan.fidelity.rvl_paired import earlier_rows

    out = tmp_path / "paired.json"
    rows = [_row("a", 0.5, 0.7, 0.8, 0.9), {**_row("a", 0.5, 0.7, 0.8, 0.9), "scale": 4}]
    out.write_text(json.dumps({"engines": ["tesseract"], "rows": rows,
                               "weights": {"2": {"sha256": "aa"}, "4": {"sha256": "bb"}}}))
    kept = earlier_rows(out, {2: {"sha256": "aa"}, 4: {"sha256": "new"}}, ["tesseract"])
    assert [r["scale"] for r in kept] == [2]  # the 4x rows were read from other weights: measured again
    assert earlier_rows(out, {2: {"sha256": "aa"}}, ["tesseract", "easyocr"]) == []  # other engines
    assert earlier_rows(tmp_path / "none.json", {2: {"sha256": "aa"}}, ["tesseract"]) == []
    engine = Engine(tiny_generator(2), PipelineConfig().engine, PipelineConfig().tiling)
    # a kept row is not measured again: no page, engine or reader is touched for it
    assert measure({2: (engine, None)}, [TruthPage("a", np.zeros((8, 8), np.uint8), 300.0, "x")], [], [(100.0, 2)],
                   PipelineConfig().upscale, ["tesseract"], done=kept) == kept


@pytest.mark.skipif(not have_tesseract(), reason="tesseract not installed (make system)")
def test_resumed_page_is_not_read_at_hr_again():
    page, engine, cfg = _fox_case()
    kept = {**_row("fox", 0.5, 0.7, 0.8, 0.9, hr=0.123), "cer_hr_tesseract": 0.456}  # the 100 dpi case, kept
    rows = measure({2: (engine, None)}, [page], [], [(100.0, 2), (150.0, 2)], cfg.upscale, ["tesseract"],
                   done=[kept])
    assert len(rows) == 2 and rows[0] is kept and rows[1]["lr_dpi"] == 150.0
    assert rows[1]["f1_hr_tesseract"] == 0.123 and rows[1]["cer_hr_tesseract"] == 0.456  # the kept HR reading
