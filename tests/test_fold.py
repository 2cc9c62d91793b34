"""srgan/inference/fold.py: the folded inference form computes the generator's function; srgan's CPU memory setting."""

import os

import numpy as np
import pytest
import torch

from srgan.config import EngineConfig, TilingConfig
from srgan.inference.engine import Engine
from srgan.inference.fold import FoldedGenerator, fold_generator, subpixel_kernel
from srgan.models import Generator
from srgan.weights import resolve_weights_dir
from tests.conftest import text_like_page


def _random_generator(scale: int, in_channels: int = 1, skip: str = "bicubic") -> Generator:
    torch.manual_seed(scale * 10 + in_channels)
    net = Generator(scale=scale, num_feat=4, num_block=1, in_channels=in_channels, skip=skip).eval()
    with torch.no_grad():
        for p in net.parameters():  # no zero tail: every weight of the folded kernel is exercised
            p.normal_(0.0, 0.2)
    return net


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("skip", ["bicubic", "none"])
def test_folded_equals_generator(scale, in_channels, skip):
    net = _random_generator(scale, in_channels, skip)
    folded = fold_generator(net)
    x = torch.rand(2, in_channels, 13, 19)  # odd sizes: the folded kernel's zero padding at every edge
    with torch.no_grad():
        ref, out = net(x), folded(x)
    assert out.shape == ref.shape == (2, in_channels, 13 * scale, 19 * scale)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-4)


def test_folded_tail_pads_output_channels_to_eight():
    folded = fold_generator(_random_generator(2, in_channels=3))
    assert folded.folded_tail.tail.out_channels == 16  # 4 sub-pixels x 3 channels, padded
    assert folded.folded_tail.out_channels == 12
    assert folded.folded_tail.tail.weight.shape[-1] == 5  # 9x9 at HR -> 5x5 at LR


def test_subpixel_kernel_moves_each_weight_once():
    """Each HR tap lands once per output sub-pixel: the folded kernel holds r*r copies of the weights."""
    w = torch.randn(1, 2, 9, 9)
    k = subpixel_kernel(w, 2)
    assert k.shape == (4, 8, 5, 5)
    assert torch.isclose(k.sum(), 4 * w.sum(), rtol=1e-5)
    assert int((k != 0).sum()) == 4 * w.numel()
    with pytest.raises(ValueError):
        subpixel_kernel(torch.randn(1, 1, 4, 4))


@pytest.mark.parametrize("scale", [2, 4])
def test_engine_output_unchanged_by_folding(scale):
    """Pages through the engine: folded and unfolded agree to the grey level (rounding ties aside)."""
    net = _random_generator(scale)
    page = text_like_page(90, 110)
    tiling = TilingConfig(tile=48, overlap=16, batch_size=2)
    plain = Engine(net, EngineConfig(device="cpu", precision="fp32", fold_tail=False), tiling).upscale([page])[0]
    folded_engine = Engine(net, EngineConfig(device="cpu", precision="fp32", fold_tail=True), tiling)
    assert isinstance(folded_engine.net_g, FoldedGenerator)
    folded = folded_engine.upscale([page])[0]
    diff = np.abs(plain.astype(int) - folded.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.001


def test_shipped_weights_fold_exactly():
    """The shipped 2x weights: folded output within float rounding of the trained network."""
    from srgan.weights import load_generator

    weights = resolve_weights_dir("weights") / "srgan_x2.pt"
    if not weights.exists():
        pytest.skip("weights/srgan_x2.pt not present")
    net, _ = load_generator(weights)
    x = torch.from_numpy(text_like_page(64, 80)).float()[None, None] / 255.0
    with torch.no_grad():
        ref, out = net.eval()(x), fold_generator(net)(x)
    assert (ref - out).abs().max().item() < 1e-4



def test_package_asks_torch_for_huge_pages():
    """Importing srgan sets THP_MEM_ALLOC_ENABLE (torch's CPU allocator reads it at its first large
    allocation) unless the environment set it; a fresh interpreter shows both."""
    import subprocess
    import sys

    code = "import os, srgan; print(os.environ['THP_MEM_ALLOC_ENABLE'])"
    env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    fresh = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert fresh.stdout.strip() == "1"
    told = subprocess.run([sys.executable, "-c", code], env={**env, "THP_MEM_ALLOC_ENABLE": "0"},
                          capture_output=True, text=True, check=True)
    assert told.stdout.strip() == "0"
