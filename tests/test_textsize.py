import numpy as np
import pytest

from srgan.config import UpscaleConfig
from srgan.textsize import TextHeight, estimate_text_height, normalisation_factor, resize, resize_to
from tests.conftest import text_like_page


def test_estimate_on_blob_page_is_the_short_letter_height():
    est = estimate_text_height(text_like_page(400, 300))
    assert est.px is not None and 8 <= est.px <= 10.5, est


def test_estimate_scales_with_the_page():
    page = text_like_page(400, 300)
    small = estimate_text_height(page).px
    big = estimate_text_height(resize(page, 2.0)).px
    assert big == pytest.approx(2 * small, rel=0.15)


@pytest.mark.parametrize("value,reason", [(255, "blank"), (0, "")])
def test_blank_and_black_pages_have_no_estimate(value, reason):
    est = estimate_text_height(np.full((100, 80), value, np.uint8))
    assert est.px is None and est.reason
    assert reason in est.reason


def test_factor_policy():
    cfg = UpscaleConfig()
    assert normalisation_factor(TextHeight(4.5), 9.0, cfg) == pytest.approx(2.0)
    assert normalisation_factor(TextHeight(9.5), 9.0, cfg) == 1.0  # within tolerance
    assert normalisation_factor(TextHeight(None, "blank"), 9.0, cfg) == 1.0
    assert normalisation_factor(TextHeight(100.0), 9.0, cfg) == cfg.normalise_min_factor
    off = UpscaleConfig(normalise=False)
    assert normalisation_factor(TextHeight(4.5), 9.0, off) == 1.0


def test_resize_round_trip_sizes():
    page = text_like_page(101, 77)
    assert resize(page, 1.37).shape == (round(101 * 1.37), round(77 * 1.37))
    assert resize_to(resize(page, 1.37), (77 * 2, 101 * 2)).shape == (202, 154)
