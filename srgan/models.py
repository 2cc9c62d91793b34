"""SRGAN generator and discriminator (Ledig et al. 2017, as used on RVL-CDIP pages).

Images are float tensors in [0, 1]; grayscale pages have one channel.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GeneratorSpec:
    """Everything needed to rebuild a generator; stored beside its weights (nanoGPT's model_args)."""

    scale: int = 2
    num_feat: int = 64
    num_block: int = 16
    in_channels: int = 1
    skip: str = "none"  # "none" (the paper) or "bicubic": the body learns a residual over bicubic
    arch: str = "srresnet"  # "srresnet" (9x9 head, upsample stages, 9x9 tail at HR) or "lr_shuffle" (below)

    def to_dict(self) -> dict:
        """The spec as a dict; an srresnet spec leaves ``arch`` out, so manifests and checkpoints written
        before the key existed compare equal to the specs rebuilt from them."""
        out = asdict(self)
        if self.arch == "srresnet":
            del out["arch"]
        return out


class ResidualBlock(nn.Module):
    """conv3x3 -> PReLU -> conv3x3, plus the input.

    The SRGAN paper puts batch norm after each conv; we leave it out (as EDSR and BasicSR's
    MSRResNet do) because BN statistics of 96x96 text crops do not match whole pages at inference.
    """

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        self.act = nn.PReLU(num_feat)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, F, H, W) -> (N, F, H, W)
        return x + self.conv2(self.act(self.conv1(x)))


class UpsampleStage(nn.Module):
    """conv3x3 to 4F channels -> PixelShuffle(2) -> PReLU: doubles height and width."""

    def __init__(self, num_feat: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(num_feat, num_feat * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU(num_feat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (N, F, H, W) -> (N, 4F, H, W)
        x = self.shuffle(x)  # (N, 4F, H, W) -> (N, F, 2H, 2W)
        return self.act(x)


ARCHS = ("srresnet", "lr_shuffle")


class Generator(nn.Module):
    """SRResNet generator, or its CPU-shaped variant with every convolution at the input resolution.

    Args:
        scale: upscaling factor, 2, 4 or 8 (log2(scale) PixelShuffle stages). Default 2.
        num_feat: channels of the body. Default 64.
        num_block: residual blocks in the body. Default 16.
        in_channels: 1 for grayscale pages, 3 for colour. Default 1 (output has the same).
        skip: "none" (default, as in the paper) or "bicubic": add the bicubic upscale of the input to
            the output, so an untrained network starts at bicubic quality; this makes short CPU
            trainings reach useful weights (a deviation from the paper, recorded in the spec).
        arch: "srresnet" (default: 9x9 head, log2(scale) conv + PixelShuffle stages, 9x9 tail at the
            output resolution) or "lr_shuffle" (issue 34, shaped for CPUs as ESPCN is: a 3x3 head, the
            same body, a 3x3 tail to C*scale*scale channels at the input resolution and one
            PixelShuffle(scale) last; no convolution runs at the output resolution).
    """

    def __init__(self, scale: int = 2, num_feat: int = 64, num_block: int = 16, in_channels: int = 1,
                 skip: str = "none", arch: str = "srresnet") -> None:
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"scale must be 2, 4 or 8, got {scale}")
        if skip not in ("none", "bicubic"):
            raise ValueError(f"skip must be none or bicubic, got {skip!r}")
        if arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
        self.spec = GeneratorSpec(scale=scale, num_feat=num_feat, num_block=num_block, in_channels=in_channels,
                                  skip=skip, arch=arch)
        head_kernel = 9 if arch == "srresnet" else 3
        self.head = nn.Sequential(nn.Conv2d(in_channels, num_feat, head_kernel, padding=head_kernel // 2),
                                  nn.PReLU(num_feat))
        self.body = nn.Sequential(*[ResidualBlock(num_feat) for _ in range(num_block)])
        self.body_tail = nn.Conv2d(num_feat, num_feat, 3, padding=1)
        if arch == "srresnet":
            self.upsample = nn.Sequential(*[UpsampleStage(num_feat) for _ in range(int(math.log2(scale)))])
            self.tail = nn.Conv2d(num_feat, in_channels, 9, padding=4)
        else:  # one sub-pixel channel per output pixel of each LR pixel, shuffled last
            self.upsample = nn.Sequential()
            self.tail = nn.Conv2d(num_feat, in_channels * scale * scale, 3, padding=1)
        if skip == "bicubic":  # start exactly at bicubic; the body's detail grows from zero
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    @classmethod
    def from_spec(cls, spec: GeneratorSpec | dict) -> Generator:
        if isinstance(spec, dict):
            spec = GeneratorSpec(**spec)
        return cls(spec.scale, spec.num_feat, spec.num_block, spec.in_channels, spec.skip, spec.arch)

    @property
    def scale(self) -> int:
        return self.spec.scale

    def forward(self, lq: torch.Tensor) -> torch.Tensor:
        feat = self.head(lq)  # (N, C, H, W) -> (N, F, H, W)
        body = self.body_tail(self.body(feat))  # (N, F, H, W)
        x = feat + body  # long skip: the body learns only the residual detail
        if self.spec.arch == "lr_shuffle":
            x = self.tail(x)  # (N, F, H, W) -> (N, C*s*s, H, W): still at the input resolution
            out = F.pixel_shuffle(x, self.spec.scale)  # (N, C*s*s, H, W) -> (N, C, sH, sW)
        else:
            x = self.upsample(x)  # (N, F, H, W) -> (N, F, sH, sW)
            out = self.tail(x)  # (N, F, sH, sW) -> (N, C, sH, sW)
        if self.spec.skip == "bicubic":
            # (N, C, H, W) -> (N, C, sH, sW): the body only adds the detail bicubic misses
            out = out + F.interpolate(lq, scale_factor=self.spec.scale, mode="bicubic", align_corners=False)
        return out


def discriminator_depth(crop: int, scale: int) -> int:
    """Number of halving blocks: log2(scale) + 2 (3 for 2x, 4 for 4x, 5 for 8x), as in the original
    notes, but never so many that the last feature map is smaller than 3x3 for this crop."""
    depth = int(math.log2(scale)) + 2
    while depth > 1 and crop // (2**depth) < 3:
        depth -= 1
    return depth


class Discriminator(nn.Module):
    """SRGAN discriminator on HR crops.

    A stem conv, then ``discriminator_depth(crop, scale)`` blocks, each halving the resolution
    (stride-2 conv) and doubling the channels, then Dense(1024) -> LeakyReLU -> Dense(1): one logit.

    Args:
        crop: HR crop side the discriminator sees (the dense layer depends on it). Default 96.
        scale: upscaling factor of the generator it judges. Default 2.
        in_channels: 1 or 3. Default 1.
        num_feat: channels after the stem. Default 64.
    """

    def __init__(self, crop: int = 96, scale: int = 2, in_channels: int = 1, num_feat: int = 64) -> None:
        super().__init__()
        depth = discriminator_depth(crop, scale)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, num_feat, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
        ch = num_feat
        side = crop
        for i in range(depth):
            out = min(num_feat * 2 ** (i + 1), 512)
            layers += [
                nn.Conv2d(ch, ch, 3, stride=2, padding=1),  # halves H and W
                nn.BatchNorm2d(ch),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Conv2d(ch, out, 3, padding=1),  # doubles channels
                nn.BatchNorm2d(out),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            ch = out
            side = (side + 1) // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(ch * side * side, 1024),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Linear(1024, 1),
        )
        self.crop = crop
        self.depth = depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.features(x)  # (N, C, crop, crop) -> (N, F*2^depth, crop/2^depth, crop/2^depth)
        return self.classifier(feat)  # -> (N, 1) logits
