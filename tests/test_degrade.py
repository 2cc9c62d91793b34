import numpy as np
import pytest

from srgan.training.degrade import (
    MIX,
    add_noise,
    area_down,
    bicubic_down,
    binarise,
    binary_scan,
    blur,
    degrade,
    fax_streaks,
    ink_spread,
    jpeg,
    rvl_degrade,
    scan_degrade,
    speckle,
)
from tests.conftest import text_like_page


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("mode", ["bicubic", "scan", "rvl", "mix"])
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
    with pytest.raises(ValueError, match="bicubic, scan, rvl, mix"):
        degrade(text_like_page(32, 32), 2, "nope", np.random.default_rng(0))


def test_binary_scan_gives_two_levels_then_area_down_gives_grey():
    hr = blur(text_like_page(96, 96), 1.5)  # anti-aliased grey edges
    assert len(np.unique(hr)) > 2
    for seed in range(6):  # thresholds and dithers
        scan = binary_scan(hr, np.random.default_rng(seed))
        assert set(np.unique(scan).tolist()) <= {0, 255} and (scan == 0).any() and (scan == 255).any()
    scan = binary_scan(hr, np.random.default_rng(0))
    lr = area_down(scan, 4)
    assert lr.shape == (24, 24) and len(np.unique(lr)) > 2  # grey levels from averaging 4x4 bitonal blocks
    block = scan[:4, :4].astype(float).mean()
    assert lr[0, 0] == round(block)


def test_speckle_and_fax_streaks_do_what_they_say():
    page = np.full((64, 64), 255, np.uint8)
    page[20:40, 10:50] = 0
    dirty = speckle(page, np.random.default_rng(0), 0.02)
    assert ((dirty == 0) & (page == 255)).sum() > 0  # dots on paper
    assert ((dirty == 255) & (page == 0)).sum() > 0  # drop-outs in ink
    streaked = [fax_streaks(page, np.random.default_rng(s)) for s in range(10)]
    assert any(not np.array_equal(s, page) for s in streaked)
    assert all(s.shape == page.shape and s.dtype == np.uint8 for s in streaked)


def test_rvl_chain_is_seeded_and_differs_from_bicubic():
    hr = text_like_page(96, 96)
    a, b = rvl_degrade(hr, 2, np.random.default_rng(5)), rvl_degrade(hr, 2, np.random.default_rng(5))
    assert np.array_equal(a, b) and a.shape == (48, 48)
    assert not np.array_equal(a, bicubic_down(hr, 2))


def test_mix_draws_every_chain():
    assert abs(sum(p for _, p in MIX) - 1) < 1e-9
    hr = text_like_page(64, 64)
    rng = np.random.default_rng(0)
    outs = {degrade(hr, 2, "mix", rng).tobytes() for _ in range(30)}
    assert bicubic_down(hr, 2).tobytes() in outs and len(outs) > 5  # plain bicubic and random chains


def test_mix_weights_choose_the_chains():
    """training.mix: a chain weighing 0 is never drawn; bicubic alone gives plain bicubic every time."""
    from srgan.config import DegradationMix
    from srgan.training.train import parse_mix

    hr = text_like_page(64, 64)
    rng = np.random.default_rng(0)
    plain = bicubic_down(hr, 2).tobytes()
    only_bicubic = parse_mix("bicubic=1").pairs()
    assert only_bicubic == (("bicubic", 1.0), ("scan", 0.0), ("rvl", 0.0))
    assert {degrade(hr, 2, "mix", rng, only_bicubic).tobytes() for _ in range(10)} == {plain}
    no_bicubic = DegradationMix(bicubic=0, scan=1, rvl=3).pairs()
    assert dict(no_bicubic) == {"bicubic": 0.0, "scan": 0.25, "rvl": 0.75}
    outs = [degrade(hr, 2, "mix", rng, no_bicubic).tobytes() for _ in range(20)]
    assert plain not in outs and len(set(outs)) > 5
    with pytest.raises(ValueError, match="unknown chain 'jpeg'"):
        parse_mix("bicubic=0.5,jpeg=0.5")
