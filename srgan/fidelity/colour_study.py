"""``python -m srgan.fidelity.colour_study``: does the colour path keep the model's gain and the page's colours?

Each original page (synthetic colour pages from ``srgan.sample.colour_page`` and real colour scans)
is bicubic-downscaled by the scale (the evaluation's degradation, on RGB) and upscaled three ways:

- colour path (``upscale.color: auto``): the model on luminance Y, chroma Lanczos-upscaled, recombined;
- bicubic on RGB (the baseline);
- grey twin: the page turned grey first, then the grey path (model vs bicubic), as for grey pages.

Reported per page and as means: PSNR on luminance (the colour output's Y vs the original's Y) for the
model and bicubic, and their gain, beside the grey twin's gain; colour error against the original:
mean |dCb|, |dCr| (YCbCr levels), the mean signed dCb, dCr (a shift of colour would show here), and
the mean CIELAB chroma difference dE_ab over a, b (D65). Chroma upscaled with bicubic instead of
Lanczos is measured as well (the choice of CHROMA_RESAMPLE).
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.config import PipelineConfig, load_config
from srgan.fidelity.evaluate import make_lr
from srgan.imaging.colour import (
    CHROMA_THRESHOLD,
    chroma_error,
    has_colour,
    merge_luma,
    split_luma,
    to_ycbcr,
    upscale_chroma,
)
from srgan.imaging.metrics import psnr
from srgan.imaging.textsize import resize_to
from srgan.inference.engine import Engine
from srgan.pipeline.stages import upscale_images
from srgan.readers import discover, read_pages
from srgan.weights import load_generator

log = logging.getLogger(__name__)


def _lab_ab(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) sRGB uint8 -> (H, W, 2) CIELAB a*, b* (D65)."""
    c = rgb.astype(np.float64) / 255
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = lin @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def delta_ab(a_rgb: np.ndarray, b_rgb: np.ndarray) -> float:
    """Mean CIELAB chroma difference sqrt(da^2 + db^2) between two RGB pages."""
    d = _lab_ab(a_rgb) - _lab_ab(b_rgb)
    return float(np.sqrt((d**2).sum(axis=-1)).mean())


def measure_page(engine: Engine, text_height: float | None, cfg: PipelineConfig, name: str,
                 original: np.ndarray, scale: int) -> dict:
    """The figures of one RGB original (see the module docstring)."""
    hr, lr = make_lr(original, scale)
    size = (hr.shape[1], hr.shape[0])
    y_hr = split_luma(hr)[0]
    y_lr, c_lr = split_luma(lr)
    ((sr_y, _, _),) = upscale_images(engine, [y_lr], text_height, cfg.upscale)
    sr = merge_luma(sr_y, upscale_chroma(c_lr, size))
    sr_bicubic_chroma = merge_luma(sr_y, upscale_chroma(c_lr, size, Image.Resampling.BICUBIC))
    bic = np.asarray(Image.fromarray(lr).resize(size, Image.Resampling.BICUBIC))
    grey_hr = np.asarray(Image.fromarray(hr).convert("L"))
    grey_hr, grey_lr = make_lr(grey_hr, scale)
    ((grey_sr, _, _),) = upscale_images(engine, [grey_lr], text_height, cfg.upscale)
    grey_bic = resize_to(grey_lr, (grey_hr.shape[1], grey_hr.shape[0]))
    row = {"name": name, "width": size[0], "height": size[1], "has_colour": has_colour(hr),
           "psnr_y": psnr(split_luma(sr)[0], y_hr), "psnr_y_bicubic": psnr(split_luma(bic)[0], y_hr),
           "psnr_grey": psnr(grey_sr, grey_hr), "psnr_grey_bicubic": psnr(grey_bic, grey_hr)}
    row["gain_y"] = row["psnr_y"] - row["psnr_y_bicubic"]
    row["gain_grey"] = row["psnr_grey"] - row["psnr_grey_bicubic"]
    hr_chroma = to_ycbcr(hr)[..., 1:].astype(np.int16)
    coloured = (np.abs(hr_chroma - 128) > CHROMA_THRESHOLD).any(axis=-1)  # where the original has colour
    row["coloured_share"] = float(coloured.mean())
    for key, img in (("model", sr), ("bicubic", bic), ("model_bicubic_chroma", sr_bicubic_chroma)):
        mean_abs, d_cb, d_cr = chroma_error(img, hr)
        diff = np.abs(to_ycbcr(img)[..., 1:].astype(np.int16) - hr_chroma)[coloured]
        row.update({f"chroma_abs_{key}": mean_abs, f"d_cb_{key}": d_cb, f"d_cr_{key}": d_cr,
                    f"delta_ab_{key}": delta_ab(img, hr),
                    f"chroma_abs_coloured_{key}": float(diff.mean()) if diff.size else float("nan")})
    return row


def _means(rows: list[dict]) -> dict:
    keys = [k for k, v in rows[0].items() if isinstance(v, float)]
    return {k: round(float(np.mean([r[k] for r in rows])), 3) for k in keys} | {"pages": len(rows)}


def synthetic_originals(pages: int, dpi: int) -> list[tuple[str, np.ndarray]]:
    from srgan.sample import colour_page

    return [(f"colour_page_{seed}", colour_page(1000 + seed, dpi)) for seed in range(pages)]


def scan_originals(folder: Path, cfg: PipelineConfig) -> list[tuple[str, np.ndarray]]:
    """The RGB pages of a folder of scans (pages the reader finds grey are left out and logged)."""
    found = []
    for page in read_pages(list(discover([str(folder)], cfg.limits)), cfg.pdf, cfg.limits, "auto"):
        if page.image is None or page.image.ndim != 3:
            log.warning("colour study: %s page %d is %s: left out", page.doc.member, page.page_index + 1,
                        page.error or "grey")
            continue
        found.append((page.doc.rel_path, page.image))
    return found


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:  # noqa: BLE001 - no lscpu: the platform's word
        model = platform.processor() or platform.machine()
    import os

    return f"{model}, {os.cpu_count()} cores"


def page_line(set_name: str, r: dict) -> str:
    return (f"{set_name:10s} {r['name'][:36]:36s} Y {r['psnr_y']:6.2f} bic {r['psnr_y_bicubic']:6.2f} "
            f"gain {r['gain_y']:+5.2f} | grey gain {r['gain_grey']:+5.2f} | |dCbCr| model "
            f"{r['chroma_abs_model']:.3f} bicubic {r['chroma_abs_bicubic']:.3f} | dCb {r['d_cb_model']:+.3f} "
            f"dCr {r['d_cr_model']:+.3f} | dE_ab model {r['delta_ab_model']:.3f} bicubic {r['delta_ab_bicubic']:.3f} "
            f"(bicubic chroma {r['delta_ab_model_bicubic_chroma']:.3f}) | coloured pixels ({r['coloured_share']:.1%}): "
            f"|dCbCr| model {r['chroma_abs_coloured_model']:.2f} bicubic {r['chroma_abs_coloured_bicubic']:.2f} "
            f"(bicubic chroma {r['chroma_abs_coloured_model_bicubic_chroma']:.2f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srgan.fidelity.colour_study", description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="srgan_x2")
    ap.add_argument("--scale", type=int, default=2)
    ap.add_argument("--pages", type=int, default=4, help="synthetic colour pages")
    ap.add_argument("--dpi", type=int, default=200, help="dpi of the synthetic pages (the originals)")
    ap.add_argument("--scans", nargs="*", default=[], help="folders of real colour scans")
    ap.add_argument("--config", default=None)
    ap.add_argument("--json", default=None, help="write the figures here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = load_config(args.config)
    net_g, manifest = load_generator(args.weights, cfg.upscale.weights_dir, args.scale)
    engine = Engine(net_g, cfg.engine, cfg.tiling)
    sets = {"synthetic": synthetic_originals(args.pages, args.dpi)}
    for folder in args.scans:
        sets[Path(folder).name] = scan_originals(Path(folder), cfg)
    report = {"machine": machine(), "date": datetime.now(UTC).strftime("%Y-%m-%d"), "weights": args.weights,
              "device": engine.info.device, "precision": engine.info.precision, "sets": {}}
    for set_name, originals in sets.items():
        rows = []
        for name, original in originals:
            row = measure_page(engine, manifest.get("text_height"), cfg, name, original, args.scale)
            rows.append(row)
            print(page_line(set_name, row), flush=True)
        report["sets"][set_name] = {"mean": _means(rows) if rows else {}, "pages": rows}
        if rows:
            print(f"{set_name} mean: {json.dumps(report['sets'][set_name]['mean'])}", flush=True)
    print(f"machine: {report['machine']}; date {report['date']}; {report['device']}/{report['precision']}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
