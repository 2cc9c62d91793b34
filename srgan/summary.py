"""A run's summary from its record rows, and the one-screen text the CLI prints."""

from __future__ import annotations

import math
from collections.abc import Sequence


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def summarise(rows: Sequence[dict], seconds: float) -> dict:
    """Counts and means over a run's rows."""
    ok = [r for r in rows if r.get("status") == "ok"]
    gains = [
        r["psnr_consistency"] - r["psnr_consistency_bicubic"]
        for r in ok
        if r.get("psnr_consistency") is not None and r.get("psnr_consistency_bicubic") is not None
    ]
    return {
        "pages": len(rows),
        "ok": len(ok),
        "errors": len(rows) - len(ok),
        "seconds": round(seconds, 2),
        "pages_per_s": round(len(rows) / seconds, 3) if seconds > 0 else None,
        "mean_psnr_consistency": _mean([r.get("psnr_consistency") for r in ok]),
        "mean_psnr_consistency_bicubic": _mean([r.get("psnr_consistency_bicubic") for r in ok]),
        "mean_consistency_gain_db": _mean(gains),
        "mean_normalise_factor": _mean([r.get("normalise_factor") for r in ok]),
        "error_messages": [f"{r.get('member') or r.get('source')} p{(r.get('page_index') or 0) + 1}: {r.get('error')}"
                           for r in rows if r.get("status") != "ok"][:20],
    }


def format_summary(summary: dict) -> str:
    """One screen: counts, quality, speed, where things are."""

    def fmt(v: object) -> str:
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    lines = [
        f"pages: {summary['pages']}  ok: {summary['ok']}  errors: {summary['errors']}",
        f"time: {fmt(summary['seconds'])} s  ({fmt(summary.get('pages_per_s'))} pages/s)",
        f"consistency PSNR (output downscaled vs input): model {fmt(summary.get('mean_psnr_consistency'))} dB, "
        f"bicubic {fmt(summary.get('mean_psnr_consistency_bicubic'))} dB",
        f"mean text-size factor: {fmt(summary.get('mean_normalise_factor'))}",
    ]
    for key, label in (("weights", "weights"), ("pages_dir", "pages"), ("records_dir", "records"),
                       ("compare_dir", "side-by-side")):
        if key in summary:
            lines.append(f"{label}: {summary[key]}")
    for msg in summary.get("error_messages", []):
        lines.append(f"  error: {msg}")
    return "\n".join(lines)
