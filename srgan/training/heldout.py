"""OCR evaluation pages in the held-out type families: running text with its ground truth.

One page per held-out family (``srgan.training.fonts.held_out_families``: designs training never
draws), rendered by ``synth.synth_text_page`` (heading, memo lines, paragraphs; bold and italic
where the family has them) at one body x-height, black on white. Each page's ground truth is the
text lines it drew, in reading order, so tesseract reads the rendered original at CER ~0 and any
error on an upscale is the upscale's.

``python -m srgan.training.heldout --out DIR --scale 4 --lr-xheight 8`` writes ``<family>.png`` and
``<family>.txt`` per family and ``pages.json`` (families, sizes, seed): ``python -m srgan.fidelity
--pages DIR``, ``srgan evaluate --ocr`` and the training gate (``--ocr-eval-data DIR``) read them as
they read the real scans that have ground truth. The training flow's gate adds them by itself when
``training.held_out_family_pages`` > 0 (``held_out_ocr_pages``).
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from srgan.atomic import atomic_write_bytes
from srgan.training.fonts import held_out_families
from srgan.training.synth import SynthDocument, synth_text_page

if TYPE_CHECKING:
    from srgan.fidelity.gate import OcrPage

# LR x-height (px) of the held-out pages: a 10 pt office page scanned at 100 dpi, as RVL-CDIP's are (a
# 300 dpi scan's 19 px x-height / 3); inside every shipped validated range
EVAL_LR_XHEIGHT = 6.5
LONG_EMS = 32.0  # page long side in body ems: 15-20 lines of text at any size
SEED = 1000


def family_slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def held_out_text_pages(hr_xheight: float, long_ems: float = LONG_EMS, seed: int = SEED
                        ) -> list[tuple[str, SynthDocument]]:
    """(name, document) per installed held-out family, body x-height ``hr_xheight`` px; deterministic."""
    return [(f"held_out_text/{family_slug(fam.name)}", synth_text_page(seed + i, hr_xheight, fam, long_ems))
            for i, fam in enumerate(held_out_families())]


def held_out_ocr_pages(scale: int, lr_xheight: float = EVAL_LR_XHEIGHT, long_ems: float = LONG_EMS
                       ) -> list[OcrPage]:
    """The held-out text pages as ``srgan.fidelity.gate.OcrPage`` for a model of ``scale``: body text of
    ``lr_xheight`` px once downscaled by ``scale``."""
    from srgan.fidelity.gate import OcrPage  # fidelity imports the engine: only when the gate asks

    return [OcrPage(name, doc.image, "\n".join(doc.lines))
            for name, doc in held_out_text_pages(lr_xheight * scale, long_ems)]


def _png_bytes(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", dpi=(300, 300))
    return buf.getvalue()


def write_held_out_pages(out: Path, hr_xheight: float, long_ems: float = LONG_EMS, seed: int = SEED) -> list[Path]:
    """Write ``<family>.png`` + ``<family>.txt`` per held-out family and ``pages.json`` into ``out``
    (atomic writes). Returns the PNG paths; empty when no held-out family is installed."""
    pages = held_out_text_pages(hr_xheight, long_ems, seed)
    written, listing = [], []
    for name, doc in pages:
        stem = out / name.split("/", 1)[1]
        atomic_write_bytes(stem.with_suffix(".png"), _png_bytes(doc.image))
        atomic_write_bytes(stem.with_suffix(".txt"), ("\n".join(doc.lines) + "\n").encode())
        written.append(stem.with_suffix(".png"))
        listing.append({"page": stem.name, "families": doc.families, "styles": doc.styles,
                        "x_height_px": round(doc.x_height, 2), "size": [int(doc.image.shape[1]),
                                                                        int(doc.image.shape[0])],
                        "characters": sum(len(line) for line in doc.lines)})
    if pages:
        atomic_write_bytes(out / "pages.json", json.dumps(
            {"hr_xheight_px": hr_xheight, "long_ems": long_ems, "seed": seed, "pages": listing}, indent=1).encode())
    return written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m srgan.training.heldout", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for <family>.png / .txt and pages.json")
    p.add_argument("--scale", type=int, default=2, help="the scale the pages are for (HR x-height = lr x scale)")
    p.add_argument("--lr-xheight", type=float, default=EVAL_LR_XHEIGHT,
                   help="body x-height in px after downscaling by --scale")
    p.add_argument("--long-ems", type=float, default=LONG_EMS, help="page long side in body ems")
    p.add_argument("--seed", type=int, default=SEED)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.scale < 1 or args.lr_xheight <= 0 or args.long_ems < 8:
        print("error: --scale >= 1, --lr-xheight > 0 and --long-ems >= 8 are required", file=sys.stderr)
        return 2
    written = write_held_out_pages(Path(args.out), args.lr_xheight * args.scale, args.long_ems, args.seed)
    if not written:
        print("error: no held-out type family installed (the Makefile's system target installs the fonts)",
              file=sys.stderr)
        return 2
    print(f"wrote {len(written)} held-out family page(s) with ground truth into {args.out} "
          f"(body x-height {args.lr_xheight * args.scale:g} px = {args.lr_xheight:g} px at {args.scale}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
