"""The report's plots (matplotlib, Agg), each returned as PNG bytes to embed.

Each takes whole columns (numpy arrays from the latest rows) and bins them with numpy; matplotlib only
draws the bins, so a night of hundreds of thousands of pages costs the same figure as a small one.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display: figures are files
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

FIGSIZE = (6.4, 3.0)
DPI = 90
MAX_LINES = 8  # units drawn one line each; the rest are one "other units" line


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _floats(column: pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(pc.cast(column, pa.float64()), float("nan")).to_numpy()


def text_height_figure(pages: pa.Table, validated: tuple[float, float] | None) -> bytes | None:
    """Histogram of the x-height the model saw (estimate x normalise factor), the validated range shaded."""
    est = _floats(pages.column("text_height_px"))
    factor = np.nan_to_num(_floats(pages.column("normalise_factor")), nan=1.0)
    seen = est * factor
    seen = seen[np.isfinite(seen)]
    if seen.size == 0:
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    hi = max(float(np.percentile(seen, 99.5)), validated[1] if validated else 0.0) * 1.1
    ax.hist(seen, bins=np.linspace(0, max(hi, 1.0), 60), color="#4470a0")
    if validated:
        ax.axvspan(validated[0], validated[1], color="#3a3", alpha=0.15,
                   label=f"validated range {validated[0]:.1f}-{validated[1]:.1f} px")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("text x-height the model saw (input px x normalise factor)")
    ax.set_ylabel("pages")
    ax.set_title(f"text height ({seen.size} pages with an estimate)", fontsize=10)
    return _png(fig)


def gain_figure(gain: np.ndarray) -> bytes | None:
    """Histogram of the model's gain over bicubic per page (consistency PSNR, dB), zero marked."""
    gain = gain[np.isfinite(gain)]
    if gain.size == 0:
        return None
    fig, ax = plt.subplots(figsize=FIGSIZE)
    lo, hi = np.percentile(gain, [0.5, 99.5])
    lo, hi = min(lo, 0.0) - 0.5, max(hi, 0.0) + 0.5
    ax.hist(np.clip(gain, lo, hi), bins=np.linspace(lo, hi, 60), color="#a06030")
    ax.axvline(0.0, color="black", linewidth=1)
    ax.set_xlabel("model minus bicubic, consistency PSNR (dB); left of 0: worse than bicubic")
    ax.set_ylabel("pages")
    ax.set_title(f"gain over bicubic ({gain.size} model pages, median {np.median(gain):+.2f} dB)", fontsize=10)
    return _png(fig)


def pace_figure(pages: pa.Table) -> bytes | None:
    """Pages per minute over the night, one line per unit (run), from when each page was written
    (records without finished_at: the run's start)."""
    finished = pages.column("finished_at")
    if not pa.types.is_timestamp(finished.type):
        finished = pages.column("started_at")
    when = pc.coalesce(pc.cast(finished, pa.timestamp("us", tz="UTC")),
                       pc.cast(pages.column("started_at"), pa.timestamp("us", tz="UTC")))
    seconds = pc.fill_null(pc.cast(when, pa.int64()), -1).to_numpy() / 1e6
    keep = seconds >= 0
    if not keep.any():
        return None
    runs = pc.dictionary_encode(pc.fill_null(pc.cast(pages.column("run_id"), pa.string()), "?")).combine_chunks()
    codes, names = runs.indices.to_numpy()[keep], runs.dictionary.to_pylist()
    t = seconds[keep] - seconds[keep].min()
    span_min = max(t.max() / 60.0, 1.0)
    bin_min = max(1.0, float(np.ceil(span_min / 120.0)))  # at most ~120 bins over the night
    bins = (t // (bin_min * 60)).astype(np.int64)
    nbins = int(bins.max()) + 1
    per_run = np.bincount(codes * nbins + bins, minlength=len(names) * nbins).reshape(len(names), nbins) / bin_min
    order = np.argsort(-per_run.sum(axis=1))
    fig, ax = plt.subplots(figsize=FIGSIZE)
    edges = np.arange(nbins + 1) * bin_min  # each bin drawn over its own width, the last one too
    for i in order[:MAX_LINES]:
        ax.stairs(per_run[i], edges, label=names[i], linewidth=1.2)
    if len(order) > MAX_LINES:
        ax.stairs(per_run[order[MAX_LINES:]].sum(axis=0), edges, label="other units", linewidth=1.2)
    ax.set_xlabel(f"minutes since the first page ({bin_min:g}-minute bins)")
    ax.set_ylabel("pages per minute")
    ax.set_title(f"pace per unit ({len(names)} runs)", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    return _png(fig)
