import time

import numpy as np
import pytest
from PIL import Image

from srgan.config import ConfigError, UpscaleConfig, config_from_dict
from srgan.imaging.textsize import (
    MAX_PIXELS,
    TOO_SMALL,
    TextHeight,
    estimate_text_height,
    normalisation_factor,
    resize,
    resize_to,
    text_line_boxes,
)
from srgan.sample import find_fonts, render_text_page, synthetic_page
from tests.conftest import text_like_page

BODY = ("Quarterly results of the testing program were reviewed by the committee and the budget "
        "for the following year was approved with additional costs for production and research. ") * 6


def text_page(size_pt: float = 10, dpi: int = 150, font: int = 3, text: str = BODY) -> tuple[np.ndarray, float]:
    """A rendered 5 x 4 inch page of body text; returns (page, true x-height in px)."""
    fonts = find_fonts()
    return render_text_page(text, fonts[font % len(fonts)] if fonts else "", size_pt, dpi,
                            width_in=5, height_in=4, margin_in=0.4)


def dither(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Error-diffusion-like picture: random black dots at a smoothly varying density."""
    yy, xx = np.mgrid[0:h, 0:w]
    tone = 0.5 + 0.45 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
    return np.where(np.random.default_rng(seed).random((h, w)) < tone, 0, 255).astype(np.uint8)


def screen(h: int, w: int, cell: int = 6) -> np.ndarray:
    """Ordered halftone: round dots on a square grid, sized by a smoothly varying tone."""
    yy, xx = np.mgrid[0:h, 0:w]
    tone = 0.5 + 0.45 * np.sin(xx / 80.0) * np.cos(yy / 60.0)
    r = np.hypot(xx % cell - cell / 2 + 0.5, yy % cell - cell / 2 + 0.5) / (cell / np.sqrt(2))
    return np.where(r < tone, 0, 255).astype(np.uint8)


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


def test_rendered_text_is_measured_within_ten_percent():
    page, truth = text_page()
    est = estimate_text_height(page)
    assert est.px == pytest.approx(truth, rel=0.1) and est.reason is None and not est.vertical


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_rotated_pages_are_measured_across_their_lines(turns):
    page, _ = text_page()
    upright = estimate_text_height(page)
    turned = estimate_text_height(np.ascontiguousarray(np.rot90(page, turns)))
    assert turned.px == pytest.approx(upright.px, rel=0.03)
    assert turned.vertical == (turns % 2 == 1)


def test_noise_rules_tables_and_pictures_do_not_move_the_estimate():
    page, truth = text_page(dpi=200)
    h, w = page.shape
    rng = np.random.default_rng(0)
    speckled = page.copy()
    flip = rng.random(page.shape) < 0.01  # 1% salt and pepper
    speckled[flip] = 255 - speckled[flip]
    ruled = page.copy()
    for y in range(40, h - 40, 45):
        ruled[y : y + 3, 30 : w - 30] = 0  # table rows
    for x in range(30, w - 30, 250):
        ruled[40 : h - 40, x : x + 3] = 0  # table columns
    dithered, screened = page.copy(), page.copy()
    dithered[h // 4 : 3 * h // 4, w // 3 :] = dither(h // 2 + h % 2, w - w // 3)  # a picture over half the text
    screened[h // 4 : 3 * h // 4, w // 3 :] = screen(h // 2 + h % 2, w - w // 3)
    for name, img in {"speckle": speckled, "rules": ruled, "dither": dithered, "screen": screened}.items():
        est = estimate_text_height(img)
        assert est.px == pytest.approx(truth, rel=0.1), (name, est, truth)


def test_mixed_sizes_report_the_body_text():
    head, head_px = text_page(28, text="Annual Report Summary")
    body, body_px = text_page(10)
    small, small_px = text_page(7, text=BODY[:300])
    est = estimate_text_height(np.vstack([head[:120], body, small[:200]]))
    assert est.px == pytest.approx(body_px, rel=0.1), (est, head_px, body_px, small_px)


def test_blurred_and_shrunk_scan_keeps_its_text_height():
    """An RVL-CDIP-like page: a 300 dpi scan (blur, noise) shrunk so its longest side is 1000 px."""
    page, truth = synthetic_page(2, dpi=300, scan=True)
    factor = 1000 / max(page.shape)
    est = estimate_text_height(resize(page, factor))
    assert est.px == pytest.approx(truth * factor, rel=0.12)


@pytest.mark.parametrize("seed", [0, 1])
def test_estimate_follows_the_page_down_to_small_text(seed):
    """Shrunk pages (letter edges inside pixel rows): the estimate keeps scaling with the page."""
    page, truth = synthetic_page(seed, dpi=300)
    est = {}
    for target in (4.75, 9.5, 19.0):  # the 4x and 2x weights' trained heights, and twice that
        f = target / truth
        small = resize_to(page, (round(page.shape[1] * f), round(page.shape[0] * f)))
        est[target] = estimate_text_height(small).px
        assert 0.95 <= est[target] / target <= 1.2, (target, est)  # round letters overshoot: a few % high
    assert est[9.5] / est[4.75] == pytest.approx(2.0, rel=0.1)
    assert est[19.0] / est[9.5] == pytest.approx(2.0, rel=0.1)


@pytest.mark.parametrize("x_height", [1.6, 2.0])
@pytest.mark.parametrize("turns", [0, 1])
def test_text_too_small_to_measure_has_no_estimate(x_height, turns):
    """Letters of 2 px merge into word blobs too thin to measure; the estimate was 10-16 px (a paragraph's
    left edge read as text turned by 90 degrees, or the blobs' length): now none, with the reason."""
    body, truth = text_page(10)
    page = np.ascontiguousarray(np.rot90(resize(body, x_height / truth, Image.Resampling.BICUBIC), turns))
    est = estimate_text_height(page)
    assert est.px is None and est.reason.startswith(TOO_SMALL), est
    assert text_line_boxes(page).shape == (0, 4)


@pytest.mark.parametrize("x_height", [2.4, 2.7, 3.0])
@pytest.mark.parametrize("turns", [0, 1])
def test_small_print_is_measured_on_word_blobs(x_height, turns):
    """Letters of 2.4-3 px merge into word blobs; their row profiles still give the x-height."""
    body, truth = text_page(10)
    page = np.ascontiguousarray(np.rot90(resize(body, x_height / truth, Image.Resampling.BICUBIC), turns))
    est = estimate_text_height(page)
    assert est.px == pytest.approx(x_height, rel=0.15), est
    assert est.vertical == bool(turns)


def test_a_headline_over_text_too_small_is_no_estimate():
    """The headline (5.8 px) is measurable, the body text (2 px) under it is not: the page has no estimate."""
    head, _ = text_page(28, text="Annual Report Summary of the Year")
    body, truth = text_page(10)
    page = resize(np.vstack([head[:150], body]), 2.0 / truth, Image.Resampling.BICUBIC)
    est = estimate_text_height(page)
    assert est.px is None and est.reason.startswith(TOO_SMALL), est


@pytest.mark.parametrize("x_height", [3.0, 4.0])
def test_small_text_above_the_limit_is_still_measured(x_height):
    body, truth = text_page(10, font=0)
    est = estimate_text_height(resize(body, x_height / truth, Image.Resampling.BICUBIC))
    assert est.px == pytest.approx(x_height, rel=0.15), est


def test_negative_page_is_measured():
    page, truth = text_page()
    assert estimate_text_height(255 - page).px == pytest.approx(truth, rel=0.1)


@pytest.mark.parametrize("kind", ["dither", "screen", "speckle", "grey noise"])
def test_pictures_and_noise_alone_have_no_estimate(kind):
    rng = np.random.default_rng(1)
    img = {
        "dither": lambda: dither(1200, 900),
        "screen": lambda: screen(1200, 900),
        "speckle": lambda: np.where(rng.random((1200, 900)) < 0.02, 0, 255).astype(np.uint8),
        "grey noise": lambda: np.clip(rng.normal(128, 60, (600, 600)), 0, 255).astype(np.uint8),
    }[kind]()
    est = estimate_text_height(img)
    assert est.px is None and "no text lines" in est.reason, est


def test_colour_and_float_input_are_accepted():
    page, truth = text_page()
    rgb = np.repeat(page[:, :, None], 3, axis=2)
    assert estimate_text_height(rgb).px == pytest.approx(truth, rel=0.1)
    assert estimate_text_height(page.astype(np.float32)).px == pytest.approx(truth, rel=0.1)
    assert estimate_text_height(np.zeros((0, 0), np.uint8)).px is None


def test_text_line_boxes_are_the_letters_measured():
    page, truth = text_page()
    boxes = text_line_boxes(page)
    est = estimate_text_height(page)
    assert boxes.shape == (est.components, 4)
    top, bot, left, right = boxes.T
    assert (top >= 0).all() and (bot <= page.shape[0]).all() and (left >= 0).all() and (right <= page.shape[1]).all()
    assert np.median(bot - top) == pytest.approx(truth, rel=0.15)
    assert text_line_boxes(np.full((50, 50), 255, np.uint8)).shape == (0, 4)


def test_full_page_takes_under_half_a_second_of_cpu():
    page, _ = synthetic_page(0, dpi=300)  # 2550 x 3300
    assert page.shape == (3300, 2550)
    estimate_text_height(page)  # warm imports
    times = []
    for _ in range(3):
        t0 = time.process_time()  # CPU time: other processes on the machine do not count
        estimate_text_height(page)
        times.append(time.process_time() - t0)
    assert min(times) < 0.5, times


def test_very_large_page_is_measured_on_a_reduced_copy():
    page, truth = text_page()
    big = resize(page, 6.0)  # 4500 x 3600: over MAX_PIXELS
    assert big.size > MAX_PIXELS
    est = estimate_text_height(big)
    assert est.px == pytest.approx(6 * truth, rel=0.1)
    assert text_line_boxes(big)[:, 1].max() <= big.shape[0]


def test_factor_policy():
    assert not UpscaleConfig().normalise  # off by default: the study table in docs/fidelity.md
    assert normalisation_factor(TextHeight(4.5), 9.0, UpscaleConfig()) == 1.0
    cfg = UpscaleConfig(normalise=True)
    assert cfg.normalise_min_factor == 1.0  # when on: enlarge small text only
    assert normalisation_factor(TextHeight(4.5), 9.0, cfg) == pytest.approx(2.0)
    assert normalisation_factor(TextHeight(8.5), 9.0, cfg) == 1.0  # within tolerance
    assert normalisation_factor(TextHeight(18.0), 9.0, cfg) == 1.0  # large text is left alone
    assert normalisation_factor(TextHeight(1.0), 9.0, cfg) == cfg.normalise_max_factor
    assert normalisation_factor(TextHeight(None, "blank"), 9.0, cfg) == 1.0
    assert normalisation_factor(TextHeight(4.5), 0.0, cfg) == 1.0  # weights without a text height
    both = UpscaleConfig(normalise=True, normalise_min_factor=0.25)
    assert normalisation_factor(TextHeight(18.0), 9.0, both) == pytest.approx(0.5)
    assert normalisation_factor(TextHeight(100.0), 9.0, both) == 0.25
    off = UpscaleConfig(normalise=False)
    assert normalisation_factor(TextHeight(4.5), 9.0, off) == 1.0


@pytest.mark.parametrize("key,value", [("normalise_min_factor", 1.5), ("normalise_min_factor", 0.0),
                                       ("normalise_max_factor", 0.5), ("normalise_tolerance", 1.0)])
def test_bad_normalisation_keys_are_refused(key, value):
    with pytest.raises(ConfigError, match=f"upscale.{key}"):
        config_from_dict({"upscale": {key: value}})


def test_resize_round_trip_sizes():
    page = text_like_page(101, 77)
    assert resize(page, 1.37).shape == (round(101 * 1.37), round(77 * 1.37))
    assert resize_to(resize(page, 1.37), (77 * 2, 101 * 2)).shape == (202, 154)


@pytest.mark.parametrize("shape,density", [((97, 131), 0.3), ((64, 1), 0.5), ((1, 50), 0.5), ((40, 40), 0.0)])
def test_component_boxes_equal_find_objects(shape, density):
    from scipy import ndimage

    from srgan.imaging.textsize import _components

    ink = np.random.default_rng(7).random(shape) < density
    boxes = _components(ink)
    labels, count = ndimage.label(ink, structure=np.ones((3, 3), dtype=bool))
    expected = [[s[0].start, s[0].stop, s[1].start, s[1].stop] for s in ndimage.find_objects(labels)]
    assert boxes.dtype == np.int64 and boxes.shape == (count, 5)
    assert boxes[:, :4].tolist() == expected
    assert boxes[:, 4].tolist() == np.bincount(labels.ravel(), minlength=count + 1)[1:].tolist()
