import numpy as np
import pytest

from srgan.training.degrade import add_noise, bicubic_down, binarise, blur, degrade, ink_spread, jpeg, scan_degrade
from tests.conftest import text_like_page


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("mode", ["bicubic", "scan"])
def test_lr_shape_and_dtype(scale, mode):
    hr = text_like_page(96, 64)
    rng = np.random.default_rng(0)
    for _ in range(5):  # several random chains
        lr = degrade(hr, scale, mode, rng)
        assert lr.shape == (96 // scale, 64 // scale)
        assert lr.dtype == np.uint8


def test_scan_chain_is_seeded_and_changes_the_image():
    hr = text_like_page(96, 96)
    a = scan_degrade(hr, 2, np.random.default_rng(3))
    b = scan_degrade(hr, 2, np.random.default_rng(3))
    assert np.array_equal(a, b)
    outs = [scan_degrade(hr, 2, np.random.default_rng(s)) for s in range(8)]
    assert any(not np.array_equal(o, bicubic_down(hr, 2)) for o in outs)


def test_each_step_keeps_shape_and_dtype():
    img = text_like_page(40, 48)
    rng = np.random.default_rng(0)
    for out in (ink_spread(img, True), ink_spread(img, False), blur(img, 1.0), add_noise(img, 5.0, rng),
                binarise(img, 128), jpeg(img, 50)):
        assert out.shape == img.shape and out.dtype == np.uint8
    assert set(np.unique(binarise(img, 128))) <= {0, 255}
    assert (ink_spread(img, True) < 128).sum() > (img < 128).sum()  # ink grows


def test_unknown_mode():
    with pytest.raises(ValueError, match="bicubic or scan"):
        degrade(text_like_page(32, 32), 2, "nope", np.random.default_rng(0))
