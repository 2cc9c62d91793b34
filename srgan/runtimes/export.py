"""ONNX files of a generator's inference form, fp32 and int8, made from shipped weights.

``python -m srgan.runtimes.export --weights fast_x2`` writes the fp32 file for the engine's tile batch
shape into the runtime cache (``runtime_files``); ``--int8 --pages DIR...`` also calibrates an int8
file on document pages (ONNX Runtime static quantisation, QDQ, activations u8 and per-channel s8
weights: the operand types of AVX512-VNNI). Nothing is downloaded: both come from the weights file.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from srgan.atomic import atomic_target
from srgan.inference.fold import fold_generator
from srgan.inference.tiling import split_tiles
from srgan.models import Generator

log = logging.getLogger(__name__)

CALIBRATION_BATCHES = 24  # tile batches of document pages the int8 ranges are taken from


def cache_root(configured: str = "") -> Path:
    """Where runtime files and the auto choice live: ``engine.runtime_cache``, else the user's cache
    ($XDG_CACHE_HOME/srgan or ~/.cache/srgan); never the output location."""
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "srgan"


@dataclass(frozen=True)
class RuntimeFiles:
    """The ONNX files of one generator (by weights sha256) at one tile batch shape."""

    fp32: Path
    int8: Path


def runtime_files(net_g: Generator, shape: tuple[int, int, int, int], root: Path) -> RuntimeFiles:
    """File names follow from the weights' bytes and the batch shape, so stale files are never reused."""
    digest = hashlib.sha256()
    for name, tensor in sorted(net_g.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    stem = f"{digest.hexdigest()[:16]}_{'x'.join(str(v) for v in shape)}"
    return RuntimeFiles(root / "onnx" / f"{stem}.onnx", root / "onnx" / f"{stem}.int8.onnx")


def inference_form(net_g: Generator) -> nn.Module:
    """What the runtimes run: the folded generator (srgan/inference/fold.py) in fp32, eval mode."""
    return fold_generator(net_g.float().cpu().eval())


def export_onnx(net_g: Generator, shape: tuple[int, int, int, int], path: Path) -> Path:
    """Write the inference form as ONNX for a fixed (B, C, win, win) input; returns the path."""
    net = inference_form(net_g)
    x = torch.rand(shape)
    with atomic_target(path) as tmp, torch.inference_mode():
        torch.onnx.export(net, (x,), str(tmp), input_names=["lq"], output_names=["sr"], opset_version=17,
                          dynamo=False)
    return path


def calibration_batches(pages: Sequence[np.ndarray], shape: tuple[int, int, int, int],
                        limit: int = CALIBRATION_BATCHES) -> Iterator[np.ndarray]:
    """Float32 tile batches of the shape, cut from grey uint8 pages as the engine cuts them."""
    b, _c, win, _ = shape
    tiles: list[np.ndarray] = []
    for page in pages:
        pad = 16 if win > 32 else 0
        cut, _layout = split_tiles(page, win - 2 * pad, pad)
        tiles += [t for t in cut if (t < 250).mean() > 0.01]  # tiles with ink: blank paper sets no range
    done = 0
    for i in range(0, len(tiles) - b + 1, b):
        if done >= limit:
            return
        yield (np.stack(tiles[i : i + b]).astype(np.float32) / 255.0).reshape(shape)
        done += 1


def quantize_int8(fp32: Path, out: Path, batches: Sequence[np.ndarray]) -> Path:
    """ONNX Runtime static quantisation (QDQ; u8 activations, per-channel s8 weights) calibrated on
    ``batches``; raises ValueError when there is nothing to calibrate on."""
    if not batches:
        raise ValueError("int8 calibration: no tile with ink in the pages given")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"lq": b} for b in batches])

        def get_next(self) -> dict | None:
            return next(self.items, None)

    with atomic_target(out) as tmp:
        quantize_static(str(fp32), str(tmp), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return out


def grey_pages(paths: Sequence[Path]) -> list[np.ndarray]:
    """The first frame of every image file given or in a folder given, as grey uint8 pages."""
    from PIL import Image

    from srgan.readers.decode import to_grey

    files = [f for p in paths for f in (sorted(p.iterdir()) if p.is_dir() else [p])]
    pages = []
    for f in files:
        if f.suffix.lower() not in (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp"):
            continue
        try:
            with Image.open(f) as im:
                pages.append(to_grey(im))
        except (OSError, ValueError) as exc:  # one line for a bad file; the other pages still count
            log.warning("%s: skipped (%s)", f, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return pages


def main(argv: Sequence[str] | None = None) -> int:
    from srgan.config import load_config
    from srgan.weights import load_generator

    p = argparse.ArgumentParser(prog="python -m srgan.runtimes.export", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="pipeline.yaml (default: the project's)")
    p.add_argument("--weights", required=True, help="a name in the weights folder or a .pt path")
    p.add_argument("--scale", type=int, help="default: upscale.scale")
    p.add_argument("--int8", action="store_true", help="also calibrate the int8 file on --pages")
    p.add_argument("--pages", nargs="*", default=[], help="document pages (image files or folders) for --int8")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    cfg = load_config(a.config)
    net_g, _manifest = load_generator(a.weights, cfg.upscale.weights_dir, a.scale or cfg.upscale.scale)
    tile, batch = cfg.tiling.for_device("cpu")
    shape = (batch, net_g.spec.in_channels, tile + 2 * cfg.tiling.overlap, tile + 2 * cfg.tiling.overlap)
    files = runtime_files(net_g, shape, cache_root(cfg.engine.runtime_cache))
    print(export_onnx(net_g, shape, files.fp32))
    if a.int8:
        pages = grey_pages([Path(x) for x in a.pages])
        try:
            print(quantize_int8(files.fp32, files.int8, list(calibration_batches(pages, shape))))
        except ValueError as exc:
            print(f"srgan.runtimes.export: error: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
