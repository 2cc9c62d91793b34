"""Small-print copies of training pages: ``python -m srgan.training.small_print SRC DST --scale S``.

Real scans are mostly 300 dpi: at 2x their LR x-height is about 9 px, so a model trained on them as they
are never sees the small print RVL-CDIP's 100 dpi pages are full of (issue 24: on 50 real forms the
estimator reads 4.2-9.9 px). Each page of SRC is written ``--copies`` times into DST, resampled (bicubic,
as if scanned at a lower resolution) so that its LR x-height at ``--scale`` is drawn log-uniformly from
``--lo``..``--hi`` px; pages whose text is already that small (factor >= 0.95) are left out. The
training then reads SRC and DST together (``python -m srgan.training --data SRC DST``).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.atomic import atomic_write_bytes
from srgan.encoding.png import encode_grey_png
from srgan.imaging.textsize import estimate_text_height, resize

SKIP_FACTOR = 0.95  # a copy that would shrink the page less than this is not small print: left out


def small_copies(page: np.ndarray, scale: int, lo: float, hi: float, copies: int,
                 rng: np.random.Generator) -> list[tuple[float, np.ndarray]]:
    """(target LR x-height, (H', W') uint8 page) for each copy of an (H, W) uint8 page; [] without an estimate."""
    est = estimate_text_height(resize(page, 1 / scale, Image.Resampling.BICUBIC))
    if est.px is None:
        return []
    out = []
    for _ in range(copies):
        target = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        factor = target / est.px
        if factor < SKIP_FACTOR:
            out.append((target, resize(page, factor, Image.Resampling.BICUBIC)))
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m srgan.training.small_print", description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="folder of training pages (images)")
    p.add_argument("dst", help="folder for the copies (<stem>_lr<px>.png)")
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--lo", type=float, default=3.0, help="smallest LR x-height of a copy, px")
    p.add_argument("--hi", type=float, default=6.0, help="largest LR x-height of a copy, px")
    p.add_argument("--copies", type=int, default=2, help="copies per page")
    p.add_argument("--seed", type=int, default=24)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not 0 < args.lo <= args.hi:
        print("error: --lo must be > 0 and <= --hi", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    dst = Path(args.dst)
    dst.mkdir(parents=True, exist_ok=True)
    written = 0
    for path in sorted(Path(args.src).iterdir()):
        try:
            with Image.open(path) as im:
                page = np.asarray(im.convert("L"))
        except (OSError, ValueError) as exc:
            print(f"small_print: {path.name}: skipped ({str(exc).splitlines()[0]})", file=sys.stderr)
            continue
        found = small_copies(page, args.scale, args.lo, args.hi, args.copies, rng)
        if not found:
            print(f"small_print: {path.name}: no text-height estimate, no copies", file=sys.stderr)
        for target, copy in found:
            atomic_write_bytes(dst / f"{path.stem}_lr{target:.2f}.png", encode_grey_png(copy))
            written += 1
    print(f"wrote {written} small-print copies into {dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
