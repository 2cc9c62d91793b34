"""The bench's ``runtimes`` case: each CPU runtime on the same weights and pages, side by side.

For every model and every ``runtime[:precision]`` item, the engine is built as a run builds it
(srgan.runtimes.choose.engine_for: a runtime that does not load falls back to torch, and the row
says so), run over LR copies of the given HR pages (``make_lr``: the fidelity figures' bicubic
downscale), timed after a warm-up, and its output compared with the HR pages. ``psnr_vs_first`` is
the row's mean PSNR less that of the model's first item (PyTorch fp32 by default): the runtimes'
agreement figure (issue 34: within 0.05 dB).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Iterator

import numpy as np

from srgan.config import PipelineConfig
from srgan.fidelity.evaluate import make_lr
from srgan.imaging.metrics import psnr
from srgan.models import Generator
from srgan.runtimes.choose import engine_for

DEFAULT_RUNTIMES = ("torch:fp32", "torch:bf16", "onnxruntime", "onnxruntime-int8", "openvino", "openvino-bf16",
                    "openvino-int8", "torch-compile:bf16")


def bench_runtimes(cfg: PipelineConfig, models: list[tuple[str, Generator]], originals: list[np.ndarray],
                   items: tuple[str, ...] = DEFAULT_RUNTIMES, repeats: int = 2) -> Iterator[dict]:
    """One row per model and runtime item, as each is measured: seconds per page (median of ``repeats``
    passes), pages/s, mean PSNR against the HR pages and its difference from the model's first item."""
    for name, net_g in models:
        pairs = [make_lr(o, net_g.scale) for o in originals]
        first = None
        for item in items:
            runtime, _, precision = item.partition(":")
            engine_cfg = dataclasses.replace(cfg.engine, device="cpu", runtime=runtime,
                                             precision=precision or cfg.engine.precision)
            engine = engine_for(runtime, net_g, engine_cfg, cfg.tiling)
            lrs = [lr for _hr, lr in pairs]
            outs = engine.upscale(lrs[:1])  # warm-up (a compiled graph builds here)
            passes = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                outs = engine.upscale(lrs)
                passes.append(time.perf_counter() - t0)
            seconds = statistics.median(passes) / len(lrs)
            mean_psnr = float(np.mean([psnr(out, hr) for out, (hr, _lr) in zip(outs, pairs, strict=True)]))
            first = mean_psnr if first is None else first
            yield {"case": "runtimes", "model": name, "asked": item, "runtime": engine.info.runtime,
                   "precision": engine.info.precision, "pages": len(lrs),
                   "lr_megapixels": round(sum(lr.size for lr in lrs) / 1e6, 2),
                   "seconds_per_page": round(seconds, 3), "pages_per_s": round(1 / seconds, 3),
                   "psnr": round(mean_psnr, 3), "psnr_vs_first": round(mean_psnr - first, 3)}


def format_runtime_row(r: dict) -> str:
    ran = r["runtime"] if r["runtime"] == r["asked"].partition(":")[0] else f"{r['runtime']} (fell back)"
    return (f"| {r['model']} | {r['asked']} | {ran} | {r['precision']} | {r['seconds_per_page']:.3f} | "
            f"{r['pages_per_s']:.2f} | {r['psnr']:.2f} | {r['psnr_vs_first']:+.3f} |")
