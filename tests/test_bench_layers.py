"""The bench's per-layer profile (srgan/bench/layers.py) on a tiny generator."""

import pytest
import torch

from srgan.bench.layers import format_layers, profile_layers
from srgan.bench.throughput import conv_flops
from srgan.inference.fold import fold_generator
from srgan.models import Generator


@pytest.mark.parametrize("arch", ["srresnet", "lr_shuffle"])
def test_profile_covers_every_layer_and_counts_the_convolutions_flops(arch):
    net = Generator(2, num_feat=8, num_block=2, skip="bicubic", arch=arch)
    shape = (1, 1, 24, 20)
    rows = profile_layers(fold_generator(net), shape, "fp32", repeats=2)
    layers, between, whole = rows[:-2], rows[-2], rows[-1]
    convs = [r for r in layers if r["op"].startswith("conv")]
    n_convs = sum(isinstance(m, torch.nn.Conv2d) for m in fold_generator(net).modules())
    assert len(convs) == n_convs and all(r["ms"] >= 0 and r["gflop"] > 0 for r in convs)
    assert whole["layer"] == "(forward)" and between["layer"] == "(between layers)"
    assert whole["ms"] == pytest.approx(sum(r["ms"] for r in layers) + between["ms"], abs=0.01)
    if arch == "lr_shuffle":  # unfolded: the counted FLOPs are the bench's own count
        assert whole["gflop"] == pytest.approx(conv_flops(net, shape) / 1e9, abs=2e-3)
    table = format_layers("tiny", rows)
    assert table.count("\n| ") == len(rows) + 1 and "| (forward) |" in table
