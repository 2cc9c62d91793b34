"""Weights interpolated between two generators (srgan.training.soup)."""

from __future__ import annotations

import json

import pytest
import torch

from srgan.models import Generator
from srgan.training.soup import interpolate, main
from srgan.weights import load_generator, save_weights


def _net(seed: int, num_feat: int = 8) -> Generator:
    torch.manual_seed(seed)
    return Generator(2, num_feat, 1, 1, "bicubic").eval()


def test_interpolate_blends_every_parameter_and_keeps_the_parents():
    a, b = _net(0), _net(1)
    before = {k: v.clone() for k, v in a.state_dict().items()}
    half = interpolate(a, b, 0.5).state_dict()
    for k, v in a.state_dict().items():
        assert torch.equal(v, before[k])  # A untouched
        assert torch.allclose(half[k], (v + b.state_dict()[k]) / 2, atol=1e-6)
    ends = interpolate(a, b, 0.0).state_dict(), interpolate(a, b, 1.0).state_dict()
    assert all(torch.equal(ends[0][k], v) for k, v in a.state_dict().items())
    assert all(torch.allclose(ends[1][k], v) for k, v in b.state_dict().items())
    x = torch.rand(1, 1, 12, 12)
    with torch.no_grad():  # a blend is a working generator of the same scale
        assert interpolate(a, b, 0.3)(x).shape == (1, 1, 24, 24)


def test_interpolate_refuses_other_architectures_and_alphas():
    with pytest.raises(ValueError, match="architecture"):
        interpolate(_net(0), _net(1, num_feat=16), 0.5)
    with pytest.raises(ValueError, match="alpha"):
        interpolate(_net(0), _net(1), 1.5)


def test_cli_writes_loadable_weights_naming_both_parents(tmp_path, capsys):
    wdir = tmp_path / "w"
    save_weights(_net(0), wdir, "a", {"validated_xheight_px": [6.0, 16.0], "text_height": None})
    save_weights(_net(1), wdir, "b", {"text_height": None})
    out = tmp_path / "soup"
    assert main(["a", "b", "--alpha", "0.7", "--name", "ab", "--out", str(out), "--weights-dir", str(wdir)]) == 0
    net, manifest = load_generator(out / "ab.pt")  # sha256 checked
    assert manifest["soup"]["alpha_b"] == 0.7 and manifest["stage"] == "soup"
    assert manifest["soup"]["b"]["sha256"] == json.loads((wdir / "b.json").read_text())["sha256"]
    assert "validated_xheight_px" not in manifest  # A's range was measured on A, not on the blend
    b_state = load_generator(wdir / "b.pt")[0].state_dict()
    a_state = load_generator(wdir / "a.pt")[0].state_dict()
    k = next(iter(a_state))
    assert torch.allclose(net.state_dict()[k], 0.3 * a_state[k] + 0.7 * b_state[k], atol=1e-6)
    save_weights(_net(2, num_feat=16), wdir, "c", {"text_height": None})
    assert main(["a", "c", "--alpha", "0.5", "--name", "x", "--out", str(out), "--weights-dir", str(wdir)]) == 2
    assert "architecture" in capsys.readouterr().err
