"""The bench's ``report`` case: ``srgan report`` over a night of synthetic records (400,000 rows by
default), in a fresh process: wall seconds and peak RSS of the whole command, and RSS before it read
anything (the imports), so the report's own share shows.

The night: ``--report-rows`` rows in part files of 2,000 (as a night's record tasks write them), spread
over 40 units (runs) and 200 archives, with RVL-CDIP labels, estimates, gains, a Lanczos share, error
rows with a handful of causes, and 5% of the pages done twice (an error row, then a rerun's row), so
the latest-row reduction has work to do. No pictures: the pages to look at first are picked, but there
are no page files to draw them from (their cost is a dozen pages, whatever the night's size).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from srgan.pipeline.records import SCHEMA
from srgan.readers.labels import RVL_CDIP_CLASSES

PART_ROWS = 2000
UNITS = 40
ARCHIVES = 200
CAUSES = ("not a readable TIFF: cannot identify image file ({})", "page too large: 412000000 pixels ({})",
          "cannot read pdf: PdfError: xref table broken ({})")


def synthetic_night(records_dir: Path, rows: int, seed: int = 0) -> int:
    """Write `rows` record rows as Parquet parts under records_dir; returns the number of distinct pages."""
    rng = np.random.default_rng(seed)
    records_dir.mkdir(parents=True, exist_ok=True)
    redo = rows // 21  # ~5% of pages have an earlier error row replaced by a later one
    pages = rows - redo
    page_ids = np.concatenate([np.arange(pages), rng.choice(pages, redo, replace=False)])
    start = datetime(2026, 12, 7, 22, 0, tzinfo=UTC)
    for part, lo in enumerate(range(0, rows, PART_ROWS)):
        ids = page_ids[lo : lo + PART_ROWS]
        n = len(ids)
        rerun = np.arange(lo, lo + n) >= pages
        unit = ids % UNITS
        archive = ids % ARCHIVES
        started = [start + timedelta(minutes=int(u) * 3 + (300 if r else 0)) for u, r in zip(unit, rerun, strict=True)]
        finished = [s + timedelta(seconds=float(x)) for s, x in zip(started, rng.uniform(0, 6 * 3600, n), strict=True)]
        est = rng.lognormal(np.log(9), 0.35, n)
        est[rng.random(n) < 0.03] = np.nan
        failed = (rng.random(n) < 0.01) | (~rerun & np.isin(ids, page_ids[pages:]))
        method = np.where(np.isnan(est) | (est > 16) | (est < 5), "lanczos", "model")
        psnr_bic = rng.normal(38, 2, n)
        gain = rng.normal(1.2, 0.8, n)
        members = [f"images/{i % 97:02d}/{i:08d}.tif" for i in ids]
        errors = [CAUSES[i % 3].format(m) if f else None for i, m, f in zip(ids, members, failed, strict=True)]
        cols = {
            "run_id": [f"20261207T2200{u:02d}-unit{u:02d}{'-rerun' if r else ''}"
                       for u, r in zip(unit, rerun, strict=True)],
            "started_at": started, "finished_at": finished, "source": ["s3://scans/night"] * n,
            "container": [f"batch{a:03d}.tar" for a in archive], "member": members,
            "page_index": np.zeros(n, np.int32), "label": [RVL_CDIP_CLASSES[i % 16] for i in ids],
            "status": np.where(failed, "error", "ok"), "error": errors,
            "text_height_px": np.where(failed, np.nan, est), "normalise_factor": np.ones(n),
            "in_validated_range": (est >= 5) & (est <= 16), "validated_xheight_lo": np.full(n, 5.0),
            "validated_xheight_hi": np.full(n, 16.0), "method": method,
            "text_height_note": np.where(np.isnan(est), "no text lines found (3 ink components)", None),
            "psnr_consistency_bicubic": psnr_bic, "psnr_consistency": psnr_bic + gain,
            "output_path": [f"s3://out/night/pages/{m[:-4]}.png" for m in members],
            "scale": np.full(n, 2, np.int32), "weights_name": ["srgan_x2"] * n,
        }
        table = pa.table({k: pa.array(v, SCHEMA.field(k).type, from_pandas=True) for k, v in cols.items()})
        pq.write_table(table, records_dir / f"part-{part:06d}.parquet")
    return pages


def run_report(out: Path) -> tuple[str, int, float, float]:
    """`srgan report OUT --no-pictures` in a fresh process: (its output, exit status, wall s, its peak RSS in MB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "srgan.cli", "report", str(out), "--no-pictures"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    printed = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)  # the child's own rusage: its peak RSS alone
    proc.returncode = os.waitstatus_to_exitcode(status)
    return printed, proc.returncode, time.perf_counter() - t0, usage.ru_maxrss / 1024


def bench_report(rows: int = 400_000) -> dict:
    """One row: `srgan report --no-pictures` over a synthetic night of `rows` rows, in a fresh process
    (whole-process figures: interpreter start and imports included), and the same command on an output
    without records (what the interpreter and the imports alone take)."""
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        empty = Path(tmp) / "empty"
        empty.mkdir()
        _, _, empty_s, empty_mb = run_report(empty)  # exit 1: no pages
        out = Path(tmp) / "night"
        t0 = time.perf_counter()
        pages = synthetic_night(out / "records", rows)
        made = time.perf_counter() - t0
        printed, status, wall, peak_mb = run_report(out)
        if status != 0:
            raise RuntimeError(f"srgan report exited {status}: {printed[-500:]}")
        html_mb = (out / "report.html").stat().st_size / 1e6
    if f"pages: {pages} " not in printed:
        raise RuntimeError(f"srgan report counted other pages than the night's {pages}: {printed[:300]}")
    return {"case": "report", "rows": rows, "pages": pages, "parts": -(-rows // PART_ROWS),
            "seconds": round(wall, 2), "peak_rss_mb": round(peak_mb, 1), "html_mb": round(html_mb, 2),
            "seconds_no_records": round(empty_s, 2), "peak_rss_mb_no_records": round(empty_mb, 1),
            "seconds_writing_the_records": round(made, 1)}
