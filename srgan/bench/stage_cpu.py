"""CPU milliseconds per page of every pipeline stage beside the model, measured one page at a time.

The bench's ``pipeline`` rows carry these figures. The stages run here in the calling thread, one
page after another, with nothing else running (the model's forward pass happens between the timed
steps and is not counted). That is the cost a GPU host pays per page on its cores, free of the
waiting and contention of a concurrent run.

Stages: ``decode`` (read the file, decode to 8-bit grey), ``normalise`` (text-height estimate, and the
resample when normalisation is on), ``metrics`` (consistency PSNR of the model's page and of the bicubic
baseline, the latter at the input size without the upscale: ``metrics.bicubic_consistency_psnr``),
``write`` (resample to exactly scale x input, encode the page, atomic write), ``record`` (the page's
share of writing its records part). Side-by-side pictures (the first
``upscale.compare_pages`` pages of a run only) are left out, and so is the first call's one-off
set-up (imports) in a warm-up page. ``time.thread_time`` of the calling thread is the clock: the
stages' libraries (Pillow, numpy, scipy.ndimage, zlib) do their work in the calling thread, and a
process clock would count the model's idle worker threads spinning between batches.
"""

from __future__ import annotations

import time
from pathlib import Path

from srgan.config import PipelineConfig
from srgan.inference.engine import Engine
from srgan.pipeline.records import write_part
from srgan.pipeline.stages import finish_page, infer_pages, make_run_context, prepare_page
from srgan.readers import discover, read_pages

STAGES = ("decode", "normalise", "metrics", "write", "record")


def stage_cpu_ms(inputs: list[str], out_dir: Path, cfg: PipelineConfig, engine: Engine,
                 text_height: float | None, max_pages: int = 8) -> dict[str, float]:
    """Mean CPU ms per page of each of STAGES over the first `max_pages` documents under `inputs`
    (outputs go to out_dir)."""
    clock = time.thread_time
    ctx = make_run_context(cfg, out_dir, engine.info, "stage-cpu", "")
    docs = list(discover(inputs, cfg.limits))
    for page in read_pages(docs[:1], cfg.pdf, cfg.limits):  # warm-up, not counted: the first call of a
        work = prepare_page(page, out_dir / ".work", text_height, cfg.upscale, in_memory=True)  # process
        finish_page(infer_pages(engine, [work])[0], ctx)  # imports scipy's modules (~0.2 s) once
    totals = dict.fromkeys(STAGES, 0.0)
    rows = []
    t0 = clock()
    for page in read_pages(docs[:max_pages], cfg.pdf, cfg.limits):
        totals["decode"] += clock() - t0
        work = prepare_page(page, out_dir / ".work", text_height, cfg.upscale, in_memory=True, clock=clock)
        infer_pages(engine, [work])  # the model: not counted
        row = finish_page(work, ctx, compare=False, clock=clock)
        work.arrays.clear()
        if row["status"] == "ok":
            totals["normalise"] += work.seconds["normalise"]
            totals["metrics"] += row["seconds_metrics"]
            totals["write"] += row["seconds_write"]
            rows.append(row)
        t0 = clock()
    if not rows:
        return {}
    t0 = clock()
    write_part(rows, out_dir / cfg.records.dir, ctx.run_id)
    totals["record"] = clock() - t0
    return {k: 1000 * v / len(rows) for k, v in totals.items()}
