"""The OCR fidelity gate, the validated x-height range, and pages outside it in the runner and the flow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srgan.config import ConfigError, PipelineConfig, UpscaleConfig, load_config, override
from srgan.fidelity.gate import fidelity_gate, format_native_summary, load_ocr_pages, measure_pages, native_summary
from srgan.fidelity.ocr import have_engine, have_tesseract
from srgan.fidelity.sweep import default_output_table, estimate_range, point_ok, validated_range, write_range
from srgan.imaging.metrics import lanczos_upscale
from srgan.inference.engine import Engine
from srgan.models import Generator
from srgan.pipeline.records import read_records
from srgan.pipeline.run import run_pipeline
from srgan.pipeline.stages import range_decision
from srgan.pipeline.summary import format_summary
from srgan.sample import render_text_page
from srgan.weights import decision_range, load_generator, save_weights
from tests.conftest import REPO, text_like_page, tiny_generator, write_config

needs_tesseract = pytest.mark.skipif(not have_tesseract(), reason="tesseract not installed (make system)")

TEXT = "The quick brown fox\njumps over the lazy dog"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def rendered_page(folder: Path) -> Path:
    """A small 150 dpi page in DejaVu Sans that tesseract reads, with its ground truth beside it."""
    if not FONT.exists():
        pytest.skip(f"{FONT} missing (fonts-dejavu-core)")
    page, _ = render_text_page(TEXT, str(FONT), 14, 150, width_in=3.2, height_in=1.0, margin_in=0.15)
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(page).save(folder / "fox.png", dpi=(150, 150))
    (folder / "fox.txt").write_text(TEXT + "\n")
    return folder


def garbling_generator(scale: int = 2) -> Generator:
    """A random tiny generator without the bicubic skip: its output is noise, not letters."""
    import torch

    torch.manual_seed(3)
    return Generator(scale=scale, num_feat=4, num_block=1, skip="none").eval()


def _cpu(cfg: PipelineConfig) -> PipelineConfig:
    return override(cfg, "engine.device", "cpu")


# ------------------------------------------------------------------------------------------- the gate


@needs_tesseract
def test_gate_refuses_a_generator_that_reads_worse_than_lanczos(tmp_path):
    cfg = _cpu(PipelineConfig())
    pages = load_ocr_pages([str(rendered_page(tmp_path / "eval"))], cfg)
    assert [p.name for p in pages] == ["fox"]
    engines = ("tesseract", "easyocr") if have_engine("easyocr") else ("tesseract",)
    (row,) = measure_pages(garbling_generator(), None, pages, cfg, ocr_engines=engines)
    assert row["cer_original"] < 0.1 and min(row["cer_bicubic"], row["cer_lanczos"]) < 0.2  # readable baselines
    assert row["cer_model"] > 0.5 and row["f1_model"] < 0.5
    gate = fidelity_gate([row], new_gain_db=3.0, current_gain_db=None)
    assert not gate.passed
    # both readers catch the garbled letters, each by the paired words rule over the pages (here one), which the
    # rows' word evidence lets it judge; the per-page CER rule's trip is kept as a note
    assert sorted({f["rule"] for f in gate.failures}) == ["words_easyocr", "words_tesseract"][2 - len(engines):]
    assert "rule words_tesseract: model reads fewer words" in gate.reason() and "p = " in gate.reason()
    assert any(n.startswith("per_page_cer fox") for n in gate.notes)
    assert len(row["found_model"]) == 9 and row["found_lanczos"].count("1") > row["found_model"].count("1")
    if len(engines) == 2:
        assert row["f1_lanczos_easyocr"] > 0.5 and row["f1_model_easyocr"] < 0.5
        assert "rule words_easyocr: model reads fewer words" in gate.reason()
        assert [t["engine"] for t in gate.words_tests] == ["tesseract", "easyocr"]


def test_gate_rule_on_the_neural_engine_uses_word_f1():
    base = {"page": "p", "scale": 2, "cer_model": 0.0, "cer_bicubic": 0.0, "cer_lanczos": 0.0,
            "ocr_engines": ["tesseract", "easyocr"], "f1_bicubic_easyocr": 0.80, "f1_lanczos_easyocr": 0.90}
    assert fidelity_gate([{**base, "f1_model_easyocr": 0.896}], None, None).passed  # within the margin
    failed = fidelity_gate([{**base, "f1_model_easyocr": 0.89}], None, None)
    assert [f["rule"] for f in failed.failures] == ["words_easyocr"]


def _row(page: str, model: float, bic: float, lan: float, **kw) -> dict:
    return {"page": page, "scale": 2, "cer_model": model, "cer_bicubic": bic, "cer_lanczos": lan, **kw}


def test_gate_rules_cer_margin_and_psnr():
    rows = [_row("a", 0.104, 0.10, 0.12), _row("b", 0.0, 0.3, 0.2)]
    assert fidelity_gate(rows, 2.0, 1.0).passed  # within +0.005 of the better baseline, gain beats current
    gate = fidelity_gate([_row("a", 0.106, 0.10, 0.12), rows[1]], 2.0, 2.5)
    assert [(f["rule"], f["page"]) for f in gate.failures] == [("cer", "a"), ("psnr", None)]
    assert "rule psnr" in gate.reason()
    empty = fidelity_gate([], 2.0, None)
    assert empty.passed and "not checked" in empty.reason()


def test_native_summary_means_gains_and_failures():
    rows = [{**_row("a", 0.02, 0.01, 0.03), "psnr": 30.0, "psnr_lanczos": 22.0, "psnr_bicubic": 21.0,
             "cer_original": 0.0},
            {**_row("b", 0.10, 0.30, 0.20), "psnr": 26.0, "psnr_lanczos": 20.0, "psnr_bicubic": 19.0,
             "cer_original": 0.05}]
    summary = native_summary(rows)
    assert summary["pages"] == 2 and summary["psnr"] == 28.0 and summary["gain_over_bicubic_db"] == 8.0
    assert summary["gain_over_lanczos_db"] == 7.0 and summary["cer_model"] == 0.06
    assert summary["cer_failures"] == ["a"]  # 0.02 > 0.01 + 0.005
    line = format_native_summary("x", summary)
    assert "gain +8.00 over bicubic" in line and "failed on 1" in line
    assert native_summary([]) == {"pages": 0}


def test_validated_range_is_the_longest_run_of_passing_sizes():
    def pt(size, page, ok_psnr=True, ok_cer=True):
        return {**_row(page, 0.0 if ok_cer else 0.5, 0.3, 0.1), "size": size,
                "psnr": 20.0 if ok_psnr else 10.0, "psnr_lanczos": 15.0, "psnr_bicubic": 14.0, "cer_original": 0.0}

    rows = [pt(2, "a", ok_cer=False), pt(3, "a"), pt(4, "a"), pt(4, "b"), pt(6, "a"), pt(6, "b", ok_psnr=False),
            pt(8, "a"), pt(10, "a")]
    assert validated_range(rows) == [3, 4]  # 6 fails on page b; 8-10 is as long, the smaller sizes win
    assert validated_range([pt(2, "a", ok_cer=False)]) is None
    for r in rows:
        r["lr_xheight_px"] = float(r["size"])  # the estimate right
    ucfg = UpscaleConfig(out_of_range="lanczos", no_estimate="lanczos")
    table = default_output_table(rows, [3, 4], ucfg, 4.0)
    assert [t["output"] for t in table] == ["lanczos", "model", "model", "lanczos", "lanczos", "lanczos"]
    # the pipeline decides by the estimate, not the true size: an estimate off (or missing) moves the page
    rows[3]["lr_xheight_px"] = 9.0  # size 4, page b: read as 9 px
    rows[6]["lr_xheight_px"] = 3.5  # size 8: a headline-like misreading into the range
    rows[7]["lr_xheight_px"] = None  # size 10: no estimate
    table = default_output_table(rows, [3, 4], ucfg, 4.0)
    assert [(t["output"], t["pages_model"]) for t in table] == [
        ("lanczos", 0), ("model", 1), ("mixed", 1), ("lanczos", 0), ("model", 1), ("lanczos", 0)]
    size8 = table[4]
    assert size8["psnr"] == 20.0  # the model's figure, not Lanczos's
    table = default_output_table(rows, [3, 4], UpscaleConfig(out_of_range="model", no_estimate="model"), 4.0)
    assert all(t["output"] == "model" for t in table)


def test_rescore_estimates_the_rows_again_with_the_current_estimator():
    """Stored sweep rows carry the estimate of the estimator of their day; a rescore with the pages makes
    it again (the page resampled as the sweep did, then downscaled by the scale)."""
    from srgan.fidelity.evaluate import make_lr
    from srgan.fidelity.gate import OcrPage
    from srgan.fidelity.sweep import reestimate
    from srgan.imaging.textsize import estimate_text_height, resize
    from tests.test_textsize import text_page

    page, truth = text_page(10)
    rows = [{"page": "p", "scale": 2, "resample": 1.0, "lr_xheight_px": 99.0},
            {"page": "p", "scale": 2, "resample": 0.8, "lr_xheight_px": None},
            {"page": "other", "scale": 2, "resample": 1.0, "lr_xheight_px": 5.0}]
    assert reestimate(rows, [OcrPage("p", page, "")]) == 2
    want = estimate_text_height(make_lr(resize(page, 0.8, Image.Resampling.BICUBIC), 2)[1]).px
    assert want is not None and rows[1]["lr_xheight_px"] == want
    assert abs(rows[0]["lr_xheight_px"] - truth / 2) < 0.2 * truth / 2  # a real estimate of the LR page
    assert rows[2]["lr_xheight_px"] == 5.0  # a page not given stays as stored


def test_range_point_reading_as_the_original_is_faithful():
    """Worse than Lanczos by CER but no worse than the original page itself: the model changed nothing."""
    base = {"page": "p", "psnr": 20.0, "psnr_lanczos": 15.0, "cer_bicubic": 0.09, "cer_lanczos": 0.034}
    assert point_ok({**base, "cer_original": 0.094, "cer_model": 0.095})  # within +0.005 of the original
    assert not point_ok({**base, "cer_original": 0.094, "cer_model": 0.100})  # reads worse than both
    assert not point_ok({**base, "cer_original": 0.010, "cer_model": 0.119})  # linn at 4 px: letters changed
    assert not point_ok({**base, "cer_original": 0.094, "cer_model": 0.0, "psnr": 14.0})  # below Lanczos by PSNR


def test_manifest_carries_the_range_and_still_loads(tmp_path):
    save_weights(tiny_generator(2), tmp_path, "w", {"text_height": 9.0})
    write_range(tmp_path / "w.json", [3.0, 12.0], {"pages": ["x"], "machine": "m"})
    _, manifest = load_generator("w", tmp_path, 2)  # sha256 of the .pt unchanged
    assert manifest["validated_xheight_px"] == [3.0, 12.0]
    assert manifest["validated_range_evidence"]["pages"] == ["x"]
    assert decision_range(manifest) == [3.0, 12.0]  # no estimate range: the true sizes
    write_range(tmp_path / "w.json", [3.0, 12.0], {"pages": ["x"]}, [2.9, 12.4])
    _, manifest = load_generator("w", tmp_path, 2)
    assert manifest["validated_estimate_px"] == [2.9, 12.4] and decision_range(manifest) == [2.9, 12.4]
    assert decision_range({}) is None


def test_estimate_range_covers_how_the_estimator_reads_the_validated_sizes():
    rows = [{"size": 6, "lr_xheight_px": 6.2}, {"size": 6, "lr_xheight_px": 5.9}, {"size": 8, "lr_xheight_px": 8.1},
            {"size": 20, "lr_xheight_px": 20.4}, {"size": 20, "lr_xheight_px": None},
            {"size": 28, "lr_xheight_px": 28.9}]
    assert estimate_range(rows, [6, 20]) == [5.9, 20.4]  # the page read at 20.4 px was measured at 20 and passed
    assert estimate_range([{"size": 6, "lr_xheight_px": 6.3}, {"size": 10, "lr_xheight_px": 9.8}], [6, 10]) == [6, 10]
    assert estimate_range([{"size": 3, "lr_xheight_px": None}], [3, 3]) == [3, 3]  # no estimate: the true size
    assert estimate_range(rows, None) is None
    assert estimate_range([{"size": 20, "lr_xheight_px": 20.3647}], [6, 20]) == [6, 20.37]  # rounded outwards
    # what a run then decides: a 20 px page read at 20.4 gets the model, one read at 20.6 Lanczos
    ucfg = PipelineConfig().upscale
    assert range_decision(20.4, 1.0, estimate_range(rows, [6, 20]), ucfg) == (True, "model")
    assert range_decision(20.6, 1.0, estimate_range(rows, [6, 20]), ucfg) == (False, "lanczos")


@pytest.mark.parametrize("name", ["srgan_x2", "srgan_x2_small", "fast_x2", "srgan_x4"])
def test_shipped_manifests_carry_a_measured_range(name):
    manifest = json.loads((REPO / "weights" / f"{name}.json").read_text())
    assert "validated_xheight_px" in manifest
    evidence = manifest["validated_range_evidence"]
    assert {"8071_093.3B", "linn", "phototest"} <= set(evidence["pages"])  # the held-out scans (and families)
    assert evidence["per_size"] and "machine" in evidence


# ------------------------------------------------------------------------------- the training promotion


@needs_tesseract
def test_training_does_not_promote_a_generator_that_fails_the_gate(tmp_path, monkeypatch):
    import srgan.sample
    from srgan.training.train import train

    original = srgan.sample.synthetic_page
    monkeypatch.setattr(srgan.sample, "synthetic_page", lambda seed, dpi=100: original(seed, dpi=dpi))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cfg = _cpu(PipelineConfig())
    for key, value in dict(num_feat=4, num_block=1, crop=24, batch_size=2, pretrain_steps=1, workers=0,
                           synthetic_pages=3, save_every=2, eval_every=2, text_height=4.5, eval_fraction=0.34,
                           skip="none").items():
        cfg = override(cfg, f"training.{key}", value)
    wdir = tmp_path / "weights"
    result = train(cfg, [], tmp_path / "run", device="cpu", weights_dir=wdir,
                   ocr_eval_data=[str(rendered_page(tmp_path / "eval"))])
    assert not result.promoted  # no current weights: PSNR alone would have promoted it
    assert "rule words_tesseract: model reads fewer words" in result.reason
    gate = result.summary()["fidelity_gate"]
    assert not gate["passed"] and gate["words_tests"][0]["losses"] > gate["words_tests"][0]["wins"]
    assert any(n.startswith("per_page_cer fox") for n in gate["notes"])  # the per-page rule's trip, kept as a note
    assert not (wdir / "srgan_x2.pt").exists()
    assert json.loads(result.new_weights.with_suffix(".json").read_text())["fidelity_gate"]["passed"] is False


# --------------------------------------------------------------------------- pages outside the range


def _inputs(tmp_path: Path, n: int = 3) -> Path:
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(n):
        Image.fromarray(text_like_page(120, 120, seed=i)).save(inp / f"p{i}.png")
    return inp


def _run_tiny(tmp_path, key: str, value: str, inp, validated_range: list[float]) -> dict:
    """The plain runner over inp with a tiny 2x generator, `key` set to `value`, and a validated range."""
    cfg = override(_cpu(load_config(write_config(tmp_path, tmp_path))), key, value)
    engine = Engine(tiny_generator(2), cfg.engine, cfg.tiling)
    return run_pipeline([str(inp)], tmp_path / "out", cfg, engine, "tiny", "w" * 64, 9.0,
                        validated_range=validated_range)


@pytest.mark.parametrize("policy", ["lanczos", "model", "model_warn"])
def test_runner_handles_out_of_range_pages_as_configured(tmp_path, policy):
    # text_like_page's x-height is about 9 px: [20, 40] puts every page outside
    inp = _inputs(tmp_path)
    summary = _run_tiny(tmp_path, "upscale.out_of_range", policy, inp, [20, 40])
    assert summary["pages_out_of_range"] == 3 and summary["pages_no_range"] == 0
    assert summary["pages_lanczos"] == (3 if policy == "lanczos" else 0)
    assert "outside the weights' validated text range: 3 pages" in format_summary(summary)
    rows = read_records(tmp_path / "out" / "records").to_pylist()
    assert {r["method"] for r in rows} == {"lanczos" if policy == "lanczos" else "model"}
    assert all(r["in_validated_range"] is False and r["validated_xheight_lo"] == 20 for r in rows)
    for r in rows:
        src = np.asarray(Image.open(inp / r["member"]))
        out = np.asarray(Image.open(r["output_path"]))
        assert np.array_equal(out, lanczos_upscale(src, (out.shape[1], out.shape[0]))) == (policy == "lanczos")


def test_flow_compares_estimates_with_the_estimate_range(prefect_harness, tmp_path):
    """The manifest's validated_estimate_px, when present, is the range a run decides by."""
    from flows.upscale import upscale

    wdir = tmp_path / "weights"
    wdir.mkdir()
    save_weights(tiny_generator(2), wdir, "srgan_x2", {"text_height": 9.0})
    write_range(wdir / "srgan_x2.json", [20.0, 40.0], {"pages": ["test"]}, [5.0, 40.0])  # pages are ~9 px
    summary = upscale(input_path=str(_inputs(tmp_path)), output_dir=str(tmp_path / "out"), scale=2,
                      config_path=str(write_config(tmp_path, wdir)))
    assert summary["pages_out_of_range"] == 0 and summary["pages_lanczos"] == 0
    rows = read_records(tmp_path / "out" / "records").to_pylist()
    assert all(r["in_validated_range"] is True and r["validated_xheight_lo"] == 5.0 for r in rows)


def test_runner_pages_inside_the_range_and_without_one(tmp_path):
    cfg = _cpu(load_config(write_config(tmp_path, tmp_path)))
    inp = _inputs(tmp_path, 2)
    engine = Engine(tiny_generator(2), cfg.engine, cfg.tiling)
    inside = run_pipeline([str(inp)], tmp_path / "a", cfg, engine, "tiny", "w" * 64, 9.0, validated_range=[2, 30])
    assert inside["pages_out_of_range"] == 0 and inside["pages_lanczos"] == 0
    assert all(r["in_validated_range"] is True for r in read_records(tmp_path / "a" / "records").to_pylist())
    none = run_pipeline([str(inp)], tmp_path / "b", cfg, engine, "tiny", "w" * 64, 9.0)
    assert none["pages_no_range"] == 2
    rows = read_records(tmp_path / "b" / "records").to_pylist()
    assert all(r["in_validated_range"] is None and r["method"] == "model" for r in rows)


def test_out_of_range_key_is_validated():
    with pytest.raises(ConfigError, match="upscale.out_of_range"):
        override(PipelineConfig(), "upscale.out_of_range", "bicubic")


@pytest.mark.parametrize("policy", ["lanczos", "model"])
def test_flow_handles_out_of_range_pages_as_configured(prefect_harness, tmp_path, policy):
    from flows.upscale import upscale

    wdir = tmp_path / "weights"
    wdir.mkdir()
    save_weights(tiny_generator(2), wdir, "srgan_x2", {"text_height": 9.0})
    write_range(wdir / "srgan_x2.json", [20.0, 40.0], {"pages": ["test"]})
    cfg = write_config(tmp_path, wdir)
    cfg.write_text(cfg.read_text().replace("upscale:\n", f"upscale:\n  out_of_range: {policy}\n"))
    inp = _inputs(tmp_path)
    summary = upscale(input_path=str(inp), output_dir=str(tmp_path / "out"), scale=2, config_path=str(cfg))
    assert summary["pages_out_of_range"] == 3
    assert summary["pages_lanczos"] == (3 if policy == "lanczos" else 0)
    rows = read_records(tmp_path / "out" / "records").to_pylist()
    assert {r["method"] for r in rows} == {policy}
    assert all(r["in_validated_range"] is False and r["validated_xheight_hi"] == 40.0 for r in rows)


def test_in_memory_path_falls_back_too():
    from srgan.pipeline.stages import upscale_images

    cfg = _cpu(PipelineConfig())
    engine = Engine(tiny_generator(2), cfg.engine, cfg.tiling)
    page = text_like_page(120, 120)
    ((out, est, _),) = upscale_images(engine, [page], 9.0, cfg.upscale, validated_range=[20, 40])
    assert est.px is not None and np.array_equal(out, lanczos_upscale(page, (240, 240)))
    ((model_out, _, _),) = upscale_images(engine, [page], 9.0, cfg.upscale)
    assert not np.array_equal(model_out, out)


# ------------------------------------------------------------------------- pages without an estimate


def tiny_text_page() -> np.ndarray:
    """Rendered body text shrunk (bicubic) to a 2 px x-height: too small to measure."""
    from srgan.imaging.textsize import resize
    from tests.test_textsize import text_page

    page, truth = text_page(10)
    return resize(page, 2.0 / truth, Image.Resampling.BICUBIC)


@pytest.mark.parametrize("text_px,rng,out_of_range,no_estimate,want", [
    (9.0, [2, 30], "lanczos", "lanczos", (True, "model")),
    (9.0, [20, 40], "lanczos", "model", (False, "lanczos")),
    (9.0, [20, 40], "model", "lanczos", (False, "model")),
    (None, [2, 30], "lanczos", "lanczos", (None, "lanczos")),
    (None, [2, 30], "model", "lanczos", (None, "lanczos")),  # out_of_range does not decide it
    (None, [2, 30], "lanczos", "model", (None, "model")),
    (None, None, "lanczos", "lanczos", (None, "model")),  # weights without a range: nothing to decide by
    (9.0, None, "lanczos", "lanczos", (None, "model")),
])
def test_range_decision(text_px, rng, out_of_range, no_estimate, want):
    ucfg = UpscaleConfig(out_of_range=out_of_range, no_estimate=no_estimate)
    assert range_decision(text_px, 1.0, rng, ucfg) == want


@pytest.mark.parametrize("rng,note,want", [
    ([2.5, 20], "text too small to measure (letters merged ...)", "model"),  # the smallest size measured passed
    ([3.0, 20], "text too small to measure (letters merged ...)", "lanczos"),  # it did not
    ([2.5, 20], "blank page: no ink found", "lanczos"),  # no text to gain
    ([2.5, 20], "no text lines found (40 ink components)", "lanczos"),
    ([2.5, 20], None, "lanczos"),
])
def test_no_estimate_evidence_decides_small_print_as_the_smallest_size_measured(rng, note, want):
    ucfg = UpscaleConfig(no_estimate="evidence")
    assert range_decision(None, 1.0, rng, ucfg, note) == (None, want)
    assert range_decision(2.0, 1.0, rng, ucfg, None) == (False, "lanczos")  # an estimate below the range


def test_no_estimate_key_is_validated_and_shapes_the_output_hash():
    from srgan.config import output_config_hash

    assert PipelineConfig().upscale.no_estimate == "evidence"
    with pytest.raises(ConfigError, match="upscale.no_estimate"):
        override(PipelineConfig(), "upscale.no_estimate", "model_warn")
    cfg = PipelineConfig()
    assert output_config_hash(override(cfg, "upscale.no_estimate", "model")) != output_config_hash(cfg)


def _pages_without_estimate(tmp_path: Path) -> Path:
    """A folder of three pages: text (an estimate, ~9 px), a blank page and text too small to measure."""
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(text_like_page(120, 120)).save(inp / "text.png")
    Image.fromarray(np.full((64, 80), 255, np.uint8)).save(inp / "blank.png")
    Image.fromarray(tiny_text_page()).save(inp / "tiny.png")
    return inp


@pytest.mark.parametrize("policy", ["lanczos", "model"])
def test_runner_handles_pages_without_estimate_as_configured(tmp_path, policy):
    inp = _pages_without_estimate(tmp_path)
    summary = _run_tiny(tmp_path, "upscale.no_estimate", policy, inp, [2, 30])
    assert summary["ok"] == 3 and summary["pages_out_of_range"] == 0
    assert summary["pages_no_range"] == 2 and summary["pages_no_estimate"] == 2
    assert summary["pages_lanczos"] == (2 if policy == "lanczos" else 0)
    assert "no range decision: 2 (no text-height estimate: 2)" in format_summary(summary)
    rows = {r["member"]: r for r in read_records(tmp_path / "out" / "records").to_pylist()}
    assert rows["text.png"]["in_validated_range"] is True and rows["text.png"]["method"] == "model"
    assert rows["tiny.png"]["text_height_note"].startswith("text too small to measure")
    assert rows["blank.png"]["text_height_note"].startswith("blank page")
    for name in ("tiny.png", "blank.png"):
        r = rows[name]
        assert r["text_height_px"] is None and r["in_validated_range"] is None and r["method"] == policy
        src = np.asarray(Image.open(inp / name))
        out = np.asarray(Image.open(r["output_path"]))
        if name == "tiny.png":  # (a blank page is blank either way)
            assert np.array_equal(out, lanczos_upscale(src, (out.shape[1], out.shape[0]))) == (policy == "lanczos")


def test_pages_without_estimate_get_the_model_when_the_weights_have_no_range(tmp_path):
    cfg = _cpu(load_config(write_config(tmp_path, tmp_path)))
    inp = _pages_without_estimate(tmp_path)
    engine = Engine(tiny_generator(2), cfg.engine, cfg.tiling)
    summary = run_pipeline([str(inp)], tmp_path / "out", cfg, engine, "tiny", "w" * 64, 9.0)
    assert summary["pages_no_range"] == 3 and summary["pages_no_estimate"] == 2 and summary["pages_lanczos"] == 0


@pytest.mark.parametrize("policy", ["lanczos", "model"])
def test_in_memory_path_honours_no_estimate(policy):
    from srgan.pipeline.stages import upscale_images

    cfg = override(_cpu(PipelineConfig()), "upscale.no_estimate", policy)
    engine = Engine(tiny_generator(2), cfg.engine, cfg.tiling)
    page = tiny_text_page()
    size = (page.shape[1] * 2, page.shape[0] * 2)
    ((out, est, _),) = upscale_images(engine, [page], 9.0, cfg.upscale, validated_range=[2, 30])
    assert est.px is None and est.reason.startswith("text too small to measure")
    assert np.array_equal(out, lanczos_upscale(page, size)) == (policy == "lanczos")
    ((no_range, _, _),) = upscale_images(engine, [page], 9.0, cfg.upscale)  # no range: the model
    assert not np.array_equal(no_range, lanczos_upscale(page, size))



def test_training_gate_refuses_without_tesseract(tmp_path, monkeypatch):
    import srgan.fidelity.ocr
    from srgan.training.train import _fidelity_gate

    monkeypatch.setattr(srgan.fidelity.ocr, "have_tesseract", lambda: False)
    cfg = _cpu(PipelineConfig())
    gate = _fidelity_gate(tiny_generator(2), cfg, cfg, [str(rendered_page(tmp_path / "eval"))], None, None)
    assert not gate.passed and "OCR engine not installed: tesseract (apt-get install" in gate.reason()


def test_runner_sends_small_print_to_the_model_on_evidence(tmp_path):
    inp = _pages_without_estimate(tmp_path)
    summary = _run_tiny(tmp_path, "upscale.no_estimate", "evidence", inp, [2.5, 30])
    assert summary["ok"] == 3 and summary["pages_no_estimate"] == 2 and summary["pages_lanczos"] == 1
    rows = {r["member"]: r for r in read_records(tmp_path / "out" / "records").to_pylist()}
    assert rows["tiny.png"]["method"] == "model" and rows["blank.png"]["method"] == "lanczos"


def test_native_pages_count_at_the_nearest_size_and_are_judged_by_word_f1():
    from srgan.fidelity.sweep import native_points, per_size, point_ok, validated_range

    def nat(page, est, model, lanczos, note=None, scale=2):
        return {"page": page, "kind": "native", "scale": scale, "lr_xheight_px": est, "estimate_note": note,
                "f1_model_tesseract": model, "f1_lanczos_tesseract": lanczos,
                "f1_model_easyocr": model, "f1_lanczos_easyocr": lanczos}

    rows = [nat("a", 3.9, 0.8, 0.7), nat("b", 4.6, 0.8, 0.8), nat("c", None, 0.6, 0.5, "text too small to measure"),
            nat("d", None, 0.9, 0.1, "blank page: no ink found"), nat("e", 4.0, 0.1, 0.9, scale=4)]
    points = native_points(rows, 2, [2.5, 3, 4, 5, 6])
    assert [(p["page"], p["size"]) for p in points] == [("native/a", 4), ("native/b", 5), ("native/c", 2.5)]
    assert all(point_ok(p) for p in points)
    assert point_ok({**points[0], "f1_model_easyocr": 0.69})  # one native page alone never decides
    sized = per_size(points)
    assert sized[0]["native"]["pages"] == 1 and "mean_psnr" not in sized[0]
    # native pages decide by their mean at a size: one form lower is not a failure, a lower mean is
    trio = [{**points[0], "page": p, "f1_model_tesseract": f} for p, f in (("a", 0.68), ("x", 0.80), ("y", 0.70))]
    assert per_size(trio)[0]["ok"] and per_size(trio)[0]["native"]["tesseract"]["pages_model_lower"] == ["a"]
    lower = [trio[0], {**trio[1], "f1_model_tesseract": 0.70}, trio[2]]
    assert not per_size(lower)[0]["ok"]  # mean -0.0067
    assert per_size(lower[:2])[0]["ok"]  # two forms do not decide a size
    assert validated_range(points) == [2.5, 5]  # consecutive among the sizes measured


def test_default_checks_flag_lanczos_where_the_model_reads_as_well_and_model_where_it_reads_worse():
    from srgan.fidelity.sweep import default_checks

    def pt(page, est, cer_model, psnr=30.0):
        return {"page": page, "size": 4.0, "lr_xheight_px": est, "psnr": psnr, "psnr_lanczos": 20.0,
                "cer_model": cer_model, "cer_lanczos": 0.10, "cer_original": 0.0, "cer_bicubic": 0.1}

    rows = [pt("in", 5.0, 0.05), pt("below", 3.0, 0.05), pt("bad", 5.0, 0.2)]
    checks = default_checks(rows, [4.5, 20], UpscaleConfig())
    assert [p["method"] for p in checks["points"]] == ["model", "lanczos", "model"]
    assert checks["trails_model_where_it_reads_as_well"] == ["below@4"]  # Lanczos cost 10 dB there
    assert checks["reads_worse_than_lanczos"] == ["bad@4"]


def test_mean_rule_sends_a_size_to_lanczos_only_where_the_model_reads_worse_on_average():
    from srgan.fidelity.sweep import mean_rule_checks, sizes_read_worse_on_average

    def pt(page, size, est, cer_model, psnr=30.0):
        return {"page": page, "size": size, "lr_xheight_px": est, "psnr": psnr, "psnr_lanczos": 20.0,
                "cer_model": cer_model, "cer_lanczos": 0.10, "cer_original": 0.0, "cer_bicubic": 0.1}

    # at 4 px one page of two reads worse than Lanczos (the range rule drops the size), the mean reads better;
    # at 8 px the mean reads worse; at 16 px the model is below Lanczos by mean PSNR
    rows = [pt("a", 4.0, 4.1, 0.02), pt("b", 4.0, 4.2, 0.15), pt("a", 8.0, 8.2, 0.3), pt("b", 8.0, 8.1, 0.0),
            pt("a", 16.0, 16.3, 0.0, psnr=19.0)]
    assert sizes_read_worse_on_average(rows) == [8.0, 16.0]
    checks = mean_rule_checks(rows)
    assert [p["method"] for p in checks["points"]] == ["model", "model", "lanczos", "lanczos", "lanczos"]
    assert checks["reads_worse_than_lanczos"] == ["b@4"]  # what the mean rule costs: the page it lets through
    assert checks["trails_model_where_it_reads_as_well"] == ["b@8"]  # and the page its mean holds back
    # an estimate between sizes goes to the nearest on a log scale; no estimate: Lanczos unless too small to measure
    near = mean_rule_checks([*rows, pt("c", 4.0, 5.8, 0.02)])["points"][-1]
    assert near["method"] == "lanczos"  # 5.8 px is nearer 8 than 4 on a log scale (5.66 between)
    none = mean_rule_checks([*rows, {**pt("d", 4.0, None, 0.02), "estimate_note": "blank page"}])["points"][-1]
    assert none["method"] == "lanczos"
