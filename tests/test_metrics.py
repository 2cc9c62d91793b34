import numpy as np
import pytest

from srgan.imaging.metrics import PSNR_CAP, consistency_psnr, psnr, ssim
from srgan.imaging.textsize import resize_to
from tests.conftest import text_like_page


def test_psnr_known_value():
    a = np.zeros((10, 10), np.uint8)
    b = np.full((10, 10), 10, np.uint8)
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 100))
    assert psnr(a, a) == PSNR_CAP


def test_ssim_identity_and_degradation():
    rng = np.random.default_rng(0)
    a = text_like_page(60, 60)
    assert ssim(a, a) == pytest.approx(1.0)
    noisy = np.clip(a.astype(int) + rng.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    assert 0 < ssim(a, noisy) < 0.95


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        psnr(np.zeros((3, 3), np.uint8), np.zeros((3, 4), np.uint8))


def test_consistency_of_exact_upscale_is_high():
    a = resize_to(text_like_page(64, 64), (32, 32))
    good = resize_to(a, (64, 64))
    bad = np.roll(good, 3, axis=1)
    assert consistency_psnr(good, a) > consistency_psnr(bad, a) + 5


def test_psnr_uint8_fast_path_equals_the_tensor_path():
    import torch

    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (61, 47), dtype=np.uint8)
    b = np.clip(a.astype(np.int16) + rng.integers(-9, 10, a.shape), 0, 255).astype(np.uint8)
    assert psnr(a, b) == pytest.approx(psnr(torch.from_numpy(a), torch.from_numpy(b)), abs=1e-9)
    assert psnr(a, a) == PSNR_CAP


def _pages_for_the_baseline() -> list[np.ndarray]:
    """Rendered text (odd sizes), bitonal, noise, a flat page and the smallest sizes of each path."""
    from srgan.sample import synthetic_page

    rng = np.random.default_rng(5)
    rendered = [resize_to(synthetic_page(seed, dpi=100)[0], size) for seed, size in ((0, (301, 203)), (1, (250, 333)))]
    return [
        *rendered,
        np.where(rendered[1] < 128, 0, 255).astype(np.uint8),  # paper and ink overshoot past 255 and 0
        text_like_page(61, 47),
        rng.integers(0, 256, (37, 53), dtype=np.uint8),
        np.full((20, 30), 255, np.uint8),
        rng.integers(0, 256, (8, 9), dtype=np.uint8),  # smallest page of the fast path
        rng.integers(0, 256, (5, 40), dtype=np.uint8),  # plain path
        rng.integers(0, 256, (1, 1), dtype=np.uint8),
    ]


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_bicubic_box_mean_is_pillows_upscale_and_reduce_bit_for_bit(scale):
    from PIL import Image

    from srgan.imaging.metrics import bicubic_box_mean, bicubic_upscale

    for page in _pages_for_the_baseline():
        h, w = page.shape
        expected = np.asarray(Image.fromarray(bicubic_upscale(page, (w * scale, h * scale))).reduce(scale))
        for band_rows in (128, 8):  # one band, and many (seams between bands, edges in their own band)
            got = bicubic_box_mean(page, scale, band_rows)
            assert got.dtype == np.uint8 and np.array_equal(got, expected), (page.shape, band_rows)


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_bicubic_consistency_psnr_is_the_upscales_figure(scale):
    from srgan.imaging.metrics import bicubic_consistency_psnr, bicubic_upscale

    for page in _pages_for_the_baseline():
        h, w = page.shape
        old = consistency_psnr(bicubic_upscale(page, (w * scale, h * scale)), page)
        assert bicubic_consistency_psnr(page, scale) == pytest.approx(old, abs=1e-9)  # the same pixels
