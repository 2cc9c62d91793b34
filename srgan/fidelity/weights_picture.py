"""The same crop of one page under several weights, side by side: how an L1 model and an SRGAN-stage model
draw the same letters (the docs' pictures).

The page is bicubic-downscaled by the scale (the evaluation's LR, ``srgan.fidelity.evaluate.make_lr``), then
given back by Lanczos and by each weights through the upscale path itself (normalisation as configured, no
out-of-range fallback: the model is what is shown). Panels: the original, Lanczos, then one per weights,
each labelled with its name and its PSNR on the whole page.

    python -m srgan.fidelity.weights_picture --page .data/heldout_x2/tex-gyre-adventor.png --scale 2 \\
        --weights weights/srgan_x2.pt runs/export/srgan_x2_content.pt --crop 40,60,160,320 --zoom 2 \\
        --out docs/l1-against-srgan-stage.png
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.atomic import atomic_target
from srgan.config import PipelineConfig, load_config
from srgan.fidelity.evaluate import make_lr
from srgan.imaging.metrics import lanczos_upscale, psnr
from srgan.inference.engine import Engine
from srgan.pipeline.captions import side_by_side
from srgan.pipeline.stages import upscale_images
from srgan.weights import load_generator


def upscaled_by(weights: Path, lr: np.ndarray, scale: int, cfg: PipelineConfig) -> tuple[str, np.ndarray]:
    """(name, page) of one weights file on the LR page, at exactly scale x its size."""
    net_g, manifest = load_generator(weights, weights.parent, scale)
    engine = Engine(net_g, cfg.engine, cfg.tiling)
    ((sr, _estimate, _factor),) = upscale_images(engine, [lr], manifest.get("text_height"), cfg.upscale)
    return str(manifest.get("name", weights.stem)), sr


def weights_picture(page: np.ndarray, scale: int, weights: Sequence[Path], crop: tuple[int, int, int, int],
                    cfg: PipelineConfig, zoom: int = 1) -> np.ndarray:
    """Side-by-side crops (y, x, h, w in HR pixels) of the original, Lanczos and each weights' page."""
    hr, lr = make_lr(page, scale)
    size = (hr.shape[1], hr.shape[0])
    panels = [("original", hr), ("Lanczos", lanczos_upscale(lr, size))]
    panels += [upscaled_by(Path(w), lr, scale, cfg) for w in weights]
    y, x, h, w = crop
    crops, labels = [], []
    for name, full in panels:
        label = name if name == "original" else f"{name} {psnr(full, hr):.1f} dB"
        part = full[y : y + h, x : x + w]
        if zoom > 1:  # nearest: the pixels as they are, larger
            part = np.repeat(np.repeat(part, zoom, axis=0), zoom, axis=1)
        crops.append(part)
        labels.append(label)
    return side_by_side(crops, labels)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srgan.fidelity.weights_picture", description=__doc__.splitlines()[0])
    ap.add_argument("--page", required=True, help="an HR page (grey or colour; read as grey)")
    ap.add_argument("--scale", type=int, required=True)
    ap.add_argument("--weights", nargs="+", required=True, help="weights files (.pt with their .json beside)")
    ap.add_argument("--crop", required=True, help="y,x,h,w of the crop in HR pixels")
    ap.add_argument("--zoom", type=int, default=1, help="nearest-neighbour enlargement of the crops")
    ap.add_argument("--config", default=None)
    ap.add_argument("--out", required=True, help="the picture (PNG)")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    page = np.asarray(Image.open(args.page).convert("L"))
    y, x, h, w = (int(v) for v in args.crop.split(","))
    picture = weights_picture(page, args.scale, [Path(p) for p in args.weights], (y, x, h, w), cfg, args.zoom)
    with atomic_target(args.out) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
