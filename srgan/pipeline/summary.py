"""A run's summary from its record rows, and the one-screen text the CLI prints."""

from __future__ import annotations

import math
from collections.abc import Iterable


class RunTally:
    """A run's counts and sums, fed batch by batch, so a summary costs O(1) memory in the run's size.

    Only the first ``keep_errors`` error messages are kept for the summary.
    """

    _MEANS = ("psnr_consistency", "psnr_consistency_bicubic", "consistency_gain_db", "normalise_factor")

    def __init__(self, keep_errors: int = 20) -> None:
        self.pages = 0
        self.ok = 0
        self.keep_errors = keep_errors
        self.error_messages: list[str] = []
        self.out_of_range = 0  # ok pages whose text x-height is outside the weights' validated range
        self.lanczos = 0  # ok pages written by Lanczos instead of the model (out of range or no estimate)
        self.no_range = 0  # ok pages with no range decision: no text estimate, or weights without a range
        self.no_estimate = 0  # ok pages with no text-height estimate (blank, pictures, text too small)
        self._sum = dict.fromkeys(self._MEANS, 0.0)
        self._n = dict.fromkeys(self._MEANS, 0)

    def _add_value(self, key: str, value: float | None) -> None:
        if value is not None and math.isfinite(value):
            self._sum[key] += value
            self._n[key] += 1

    def add(self, rows: Iterable[dict]) -> None:
        for r in rows:
            self.pages += 1
            if r.get("status") != "ok":
                if len(self.error_messages) < self.keep_errors:
                    self.error_messages.append(f"{r.get('member') or r.get('source')} "
                                               f"p{(r.get('page_index') or 0) + 1}: {r.get('error')}")
                continue
            self.ok += 1
            model, bicubic = r.get("psnr_consistency"), r.get("psnr_consistency_bicubic")
            self._add_value("psnr_consistency", model)
            self._add_value("psnr_consistency_bicubic", bicubic)
            if model is not None and bicubic is not None:
                self._add_value("consistency_gain_db", model - bicubic)
            self._add_value("normalise_factor", r.get("normalise_factor"))
            inside = r.get("in_validated_range")
            self.out_of_range += inside is False
            self.no_range += inside is None
            self.no_estimate += r.get("text_height_px") is None
            self.lanczos += r.get("method") == "lanczos"

    def mean(self, key: str) -> float | None:
        return self._sum[key] / self._n[key] if self._n[key] else None

    def summary(self, seconds: float) -> dict:
        """Counts and means so far."""
        return {
            "pages": self.pages,
            "ok": self.ok,
            "errors": self.pages - self.ok,
            "seconds": round(seconds, 2),
            "pages_per_s": round(self.pages / seconds, 3) if seconds > 0 else None,
            "mean_psnr_consistency": self.mean("psnr_consistency"),
            "mean_psnr_consistency_bicubic": self.mean("psnr_consistency_bicubic"),
            "mean_consistency_gain_db": self.mean("consistency_gain_db"),
            "mean_normalise_factor": self.mean("normalise_factor"),
            "pages_out_of_range": self.out_of_range,
            "pages_lanczos": self.lanczos,
            "pages_no_range": self.no_range,
            "pages_no_estimate": self.no_estimate,
            "error_messages": list(self.error_messages),
        }


def summarise(rows: Iterable[dict], seconds: float) -> dict:
    """Counts and means over a run's rows."""
    tally = RunTally()
    tally.add(rows)
    return tally.summary(seconds)


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
    if "pages_out_of_range" in summary:
        lines.append(f"outside the weights' validated text range: {summary['pages_out_of_range']} pages; "
                     f"no range decision: {summary['pages_no_range']} (no text-height estimate: "
                     f"{summary.get('pages_no_estimate', 0)}); written by Lanczos instead of the model: "
                     f"{summary['pages_lanczos']}")
    for key, label in (("weights", "weights"), ("pages_dir", "pages"), ("records_dir", "records"),
                       ("compare_dir", "side-by-side"), ("documents_dir", "documents")):
        if key in summary:
            lines.append(f"{label}: {summary[key]}")
    for msg in summary.get("error_messages", []):
        lines.append(f"  error: {msg}")
    return "\n".join(lines)
