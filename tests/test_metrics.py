import numpy as np
import pytest

from srgan.metrics import PSNR_CAP, consistency_psnr, psnr, ssim
from srgan.textsize import resize_to
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
