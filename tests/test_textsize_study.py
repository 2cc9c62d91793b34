import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srgan.fidelity.ocr import cer, edit_distance, have_tesseract, ocr_text
from srgan.fidelity.textsize_study import main, text_crop
from srgan.sample import find_fonts, render_text_page

TEXT = "The quick brown fox jumps over the lazy dog.\nPack my box with five dozen liquor jugs."


def small_page(tmp_path: Path, size_pt: float = 12, dpi: int = 150, with_text: bool = False,
               text: str = TEXT) -> Path:
    fonts = find_fonts()
    page, _ = render_text_page(text, fonts[3] if fonts else "", size_pt, dpi, width_in=7,
                               height_in=0.5 + len(text.splitlines()) * size_pt / 72 * 1.4, margin_in=0.2)
    path = tmp_path / "page.png"
    Image.fromarray(page).save(path)
    if with_text:
        path.with_suffix(".txt").write_text(TEXT + "\n")
    return path


@pytest.mark.parametrize("a,b,d", [("", "", 0), ("abc", "", 3), ("", "ab", 2), ("kitten", "sitting", 3),
                                   ("flaw", "lawn", 2), ("same", "same", 0), ("ab", "ba", 2)])
def test_edit_distance(a, b, d):
    assert edit_distance(a, b) == d == edit_distance(b, a)


def test_cer_ignores_line_breaks_and_repeated_spaces():
    assert cer("the  quick\nbrown", "the quick brown") == 0.0
    assert cer("tha quick", "the quick") == pytest.approx(1 / 9)
    assert cer("", "abc") == 1.0


def test_text_crop_takes_the_text_not_the_picture():
    fonts = find_fonts()
    text, _ = render_text_page(TEXT * 8, fonts[3] if fonts else "", 10, 150, width_in=3, height_in=3,
                               margin_in=0.1)
    page = np.full((900, 1200), 255, np.uint8)
    page[:, 750:] = np.where(np.random.default_rng(0).random((900, 450)) < 0.5, 0, 255)  # a picture
    page[:450, :450] = text[:450, :450]
    crop = text_crop(page, 400)
    assert crop.shape == (400, 400)
    assert (crop < 128).mean() < 0.3  # not the picture (half ink)


def test_study_runs_on_one_small_page(tmp_path, tiny_weights, capsys):
    """The study end to end with tiny weights: table printed, JSON written, factors as the policies say."""
    page = small_page(tmp_path, text=TEXT.splitlines()[0])  # one line: the test stays fast
    out = tmp_path / "study"
    code = main(["--weights", "srgan_x2", "--weights-dir", str(tiny_weights), "--scale", "2", "--out", str(out),
                 "--pages", str(page), "--ratios", "0.5", "2", "--policies", "off", "always", "default", "up_only",
                 "--no-ocr"])
    assert code == 0
    table = capsys.readouterr().out
    assert table.startswith("| text / trained |") and "| 0.5x | 1 |" in table and "| 2x | 1 |" in table
    result = json.loads((out / "study.json").read_text())
    assert result["text_height"] == 9.0 and result["scale"] == 2 and not result["ocr"]
    rows = {(r["ratio"], r["policy"]): r for r in result["rows"]}
    assert len(rows) == 8
    assert all(r["factor"] == 1.0 for (_, p), r in rows.items() if p in ("off", "default"))  # default: off
    assert rows[(0.5, "up_only")]["factor"] == pytest.approx(2.0, rel=0.15)  # small text enlarged
    assert rows[(2.0, "up_only")]["factor"] == 1.0  # large text left alone (min factor 1)
    assert rows[(2.0, "always")]["factor"] == pytest.approx(0.5, rel=0.15)
    assert rows[(2.0, "always")]["lr_text_px"] == pytest.approx(18.0, rel=0.15)  # the study's ratio holds
    for s in result["summary"]:
        assert s["psnr_bicubic"] > 10 and "default_minus_best" in s


def test_study_refuses_missing_weights(tmp_path, tiny_weights, capsys):
    code = main(["--weights", "nope", "--weights-dir", str(tiny_weights), "--out", str(tmp_path)])
    assert code == 2 and "no weights named 'nope'" in capsys.readouterr().err


@pytest.mark.skipif(not have_tesseract(), reason="tesseract is not installed")
def test_ocr_reads_a_rendered_page(tmp_path):
    page = np.asarray(Image.open(small_page(tmp_path, size_pt=14, dpi=200)))
    assert cer(ocr_text(page, 200), TEXT) < 0.1


@pytest.mark.skipif(not have_tesseract(), reason="tesseract is not installed")
def test_study_reads_pages_with_ground_truth(tmp_path, tiny_weights):
    page = small_page(tmp_path, with_text=True)
    out = tmp_path / "study"
    assert main(["--weights", "srgan_x2", "--weights-dir", str(tiny_weights), "--out", str(out), "--pages",
                 str(page), "--ratios", "1.5", "--policies", "off"]) == 0
    result = json.loads((out / "study.json").read_text())
    (row,) = result["rows"]
    assert result["ocr"] and 0 <= row["cer_original"] < 0.1 and 0 <= row["cer"] and 0 <= row["cer_bicubic"]
    assert "CER off" in result["table"]


def test_study_default_applies_the_validated_range(tmp_path, tiny_weights):
    """default = the upscale default: outside the manifest's validated range, the out_of_range output."""
    from srgan.fidelity.sweep import write_range

    write_range(tiny_weights / "srgan_x2.json", [7.0, 11.0], {"pages": ["test"]})  # 0.5x (4.5 px) is outside
    page = small_page(tmp_path, text=TEXT.splitlines()[0])
    out = tmp_path / "study"
    assert main(["--weights", "srgan_x2", "--weights-dir", str(tiny_weights), "--scale", "2", "--out", str(out),
                 "--pages", str(page), "--ratios", "0.5", "1", "--policies", "off", "default", "--no-ocr"]) == 0
    result = json.loads((out / "study.json").read_text())
    assert result["validated_xheight_px"] == [7.0, 11.0]
    rows = {(r["ratio"], r["policy"]): r for r in result["rows"]}
    assert rows[(0.5, "default")]["fallback"] and not rows[(0.5, "off")]["fallback"]
    assert rows[(0.5, "default")]["psnr"] != rows[(0.5, "off")]["psnr"]  # Lanczos, not the model
    assert not rows[(1.0, "default")]["fallback"]
    assert rows[(1.0, "default")]["psnr"] == rows[(1.0, "off")]["psnr"]


def test_study_of_weights_without_a_trained_height_needs_a_reference(tmp_path, capsys):
    """Weights trained over a range of sizes have no text_height: the ratios are of --reference-height."""
    from srgan.weights import save_weights
    from tests.conftest import tiny_generator

    wdir = tmp_path / "w"
    save_weights(tiny_generator(2), wdir, "srgan_x2", {"text_height": None})
    page = small_page(tmp_path, text=TEXT.splitlines()[0])
    out = tmp_path / "study"
    common = ["--weights", "srgan_x2", "--weights-dir", str(wdir), "--scale", "2", "--out", str(out),
              "--pages", str(page), "--ratios", "1", "--policies", "off", "--no-ocr"]
    assert main(common) == 2 and "--reference-height" in capsys.readouterr().err
    assert main([*common, "--reference-height", "6"]) == 0
    result = json.loads((out / "study.json").read_text())
    (row,) = result["rows"]
    assert result["text_height"] == 6.0 and result["trained_text_height"] is None
    assert abs(row["lr_text_px"] - 6.0) < 1.5  # the page was resampled to 1 x the reference height
