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
