"""The run summary is built from a streaming tally: same figures as over all rows, bounded memory."""

import math

from srgan.pipeline.summary import RunTally, format_summary, summarise


def _rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        if i % 7 == 3:
            rows.append({"status": "error", "source": f"s{i}.tif", "member": None, "page_index": 0, "error": "bad"})
        else:
            rows.append({"status": "ok", "psnr_consistency": 30.0 + i % 5, "psnr_consistency_bicubic": 28.0,
                         "normalise_factor": 1.0 + (i % 3) / 10, "page_index": i})
    return rows


def test_tally_in_batches_equals_summary_of_all_rows():
    rows = _rows(100)
    tally = RunTally()
    for start in range(0, len(rows), 9):
        tally.add(rows[start : start + 9])
    got, want = tally.summary(10.0), summarise(rows, 10.0)
    assert got["pages"] == 100 and got["errors"] == sum(r["status"] == "error" for r in rows)
    oks = [r for r in rows if r["status"] == "ok"]
    mean_gain = sum(r["psnr_consistency"] - 28.0 for r in oks) / len(oks)
    assert math.isclose(got["mean_consistency_gain_db"], mean_gain)
    assert got == want


def test_tally_keeps_only_the_first_error_messages():
    tally = RunTally(keep_errors=3)
    tally.add(_rows(200))
    summary = tally.summary(1.0)
    assert summary["errors"] > 3 and len(summary["error_messages"]) == 3
    assert summary["error_messages"][0] == "s3.tif p1: bad"


def test_tally_of_nothing_has_no_means():
    summary = RunTally().summary(0.0)
    assert summary["pages"] == 0 and summary["mean_psnr_consistency"] is None and summary["pages_per_s"] is None


def test_range_counts_and_lanczos_pages():
    """Outside the range, no range decision (no estimate / no range) and Lanczos pages, counted apart."""
    ok = {"status": "ok", "psnr_consistency": 30.0, "psnr_consistency_bicubic": 28.0, "normalise_factor": 1.0}
    rows = [
        {**ok, "text_height_px": 9.0, "in_validated_range": True, "method": "model"},
        {**ok, "text_height_px": 30.0, "in_validated_range": False, "method": "lanczos"},
        {**ok, "text_height_px": 30.0, "in_validated_range": False, "method": "model"},  # out_of_range: model
        {**ok, "text_height_px": None, "in_validated_range": None, "method": "lanczos"},  # no_estimate: lanczos
        {**ok, "text_height_px": None, "in_validated_range": None, "method": "model"},  # no_estimate: model
        {**ok, "text_height_px": 9.0, "in_validated_range": None, "method": "model"},  # weights without a range
        {"status": "error", "error": "bad", "text_height_px": None, "method": "model"},  # errors are not counted
    ]
    summary = summarise(rows, 1.0)
    assert summary["pages_out_of_range"] == 2 and summary["pages_no_range"] == 3
    assert summary["pages_no_estimate"] == 2 and summary["pages_lanczos"] == 2
    assert ("outside the weights' validated text range: 2 pages; no range decision: 3 (no text-height estimate: 2); "
            "written by Lanczos instead of the model: 2") in format_summary(summary)
