"""The ``pdf_dpi`` case: what ``pdf.dpi: native`` costs against a fixed dpi, on real PDFs.

Each PDF goes through the plain runner with ``output_format: document`` (the output PDF rebuilt) once
per dpi setting, with the same engine (warmed up first); a row per PDF and setting gives its pages, the input
megapixels the model saw, seconds, pages per second, and the sizes of the input and output PDFs.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

from srgan.bench.throughput import sync_device
from srgan.config import PipelineConfig, override
from srgan.inference.engine import Engine
from srgan.pipeline.records import read_records
from srgan.pipeline.run import run_pipeline
from srgan.weights import load_generator


def bench_pdf_dpi(cfg: PipelineConfig, model: str, weights_dir: Path, pdfs: list[Path], device: str,
                  settings: tuple[str | int, ...] = ("native", 150)) -> list[dict]:
    """One row per PDF and pdf.dpi setting (see the module docstring)."""
    net_g, manifest = load_generator(model, weights_dir)
    engine = Engine(net_g, dataclasses.replace(cfg.engine, device=device), cfg.tiling)
    engine.upscale([np.full((256, 256), 255, np.uint8)])  # warm-up: the first call builds the kernels
    sync_device(engine.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for pdf in pdfs:
            for setting in settings:
                run_cfg = override(override(cfg, "upscale.output_format", "document"), "pdf.dpi", setting)
                out = Path(tmp) / f"{pdf.stem}-{setting}"
                t0 = time.perf_counter()
                summary = run_pipeline([str(pdf)], out, run_cfg, engine, model, manifest.get("sha256", ""),
                                       manifest.get("text_height"))
                sync_device(engine.device)
                seconds = time.perf_counter() - t0
                records = read_records(out / run_cfg.records.dir).to_pylist()
                mpx = sum((r["input_width"] or 0) * (r["input_height"] or 0) for r in records) / 1e6
                made = list((out / "documents").glob("*.pdf"))
                rows.append({"case": "pdf_dpi", "pdf": pdf.name, "pdf_dpi": setting, "model": model,
                             "device": engine.info.device, "precision": engine.info.precision,
                             "pages": summary["pages"], "errors": summary["errors"],
                             "paths": sorted({f"{r['pdf_path']}:{r['pdf_dpi_reason']}" for r in records}),
                             "input_dpi": sorted({r["input_dpi"] for r in records if r["input_dpi"]}),
                             "input_mpx": round(mpx, 2), "seconds": round(seconds, 2),
                             "pages_per_s": round(summary["pages"] / seconds, 3),
                             "input_mpx_per_s": round(mpx / seconds, 3),
                             "pdf_in_kb": round(pdf.stat().st_size / 1024),
                             "pdf_out_kb": round(made[0].stat().st_size / 1024) if made else None})
                print(rows[-1], flush=True)
    return rows
