"""``losses.csv`` and ``losses.png`` of a training run, rewritten at every save and at the end."""

from __future__ import annotations

import csv
import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path

from srgan.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

COLUMNS = ("step", "stage", "l1", "content", "adversarial", "d_real", "d_fake", "val_psnr", "lr")


def _cell(value: object) -> object:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return round(value, 6) if isinstance(value, float) else value


def write_csv(history: Sequence[dict], path: Path) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in history:
        writer.writerow([_cell(row.get(c)) for c in COLUMNS])
    atomic_write_bytes(Path(path), buf.getvalue().encode())
    return Path(path)


def write_png(history: Sequence[dict], path: Path) -> Path | None:
    """Four panels over steps: L1/content, adversarial, discriminator real/fake, validation PSNR."""
    try:  # Agg through the object API: no pyplot, no global backend switch
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        log.info("losses plot: matplotlib is not installed; wrote losses.csv only")
        return None

    def series(key: str) -> tuple[list[int], list[float]]:
        pts = [(r["step"], r[key]) for r in history if r.get(key) is not None]
        return [p[0] for p in pts], [p[1] for p in pts]

    fig = Figure(figsize=(11, 7), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 2, sharex=True)
    panels = [
        (axes[0, 0], "generator content", [("l1", "L1 (pixels)"), ("content", "VGG content")]),
        (axes[0, 1], "adversarial (weighted)", [("adversarial", "adversarial")]),
        (axes[1, 0], "discriminator", [("d_real", "D real"), ("d_fake", "D fake")]),
        (axes[1, 1], "validation PSNR (dB)", [("val_psnr", "val PSNR")]),
    ]
    for ax, title, keys in panels:
        for key, label in keys:
            xs, ys = series(key)
            if xs:
                ax.plot(xs, ys, label=label, marker="." if len(xs) < 30 else None, linewidth=1)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    gan_start = next((r["step"] for r in history if r.get("stage") == "srgan"), None)
    if gan_start is not None:
        for ax in axes.flat:
            ax.axvline(gan_start, color="grey", linestyle="--", linewidth=0.8)
    for ax in axes[1]:
        ax.set_xlabel("step")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def write_losses(history: Sequence[dict], out_dir: Path) -> tuple[Path, Path | None]:
    """Write out_dir/losses.csv and out_dir/losses.png (the PNG only when matplotlib is there)."""
    out_dir = Path(out_dir)
    csv_path = write_csv(history, out_dir / "losses.csv")
    png_path = write_png(history, out_dir / "losses.png")
    return csv_path, png_path
