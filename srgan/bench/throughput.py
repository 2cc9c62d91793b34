"""The bench's ``model``, ``pipeline`` and ``naive`` cases: engine throughput, counted convolution FLOPs,
the card's matrix peak, the CPU milliseconds per page beside the model; one line per row."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgan.bench.stage_cpu import stage_cpu_ms
from srgan.config import PipelineConfig
from srgan.inference.engine import Engine, cpu_has_fast_bf16
from srgan.inference.tiling import split_tiles


def conv_flops(net: torch.nn.Module, shape: tuple[int, ...]) -> int:
    """Multiply-add FLOPs (2 per MAC) of every Conv2d for one forward of a tensor of `shape`."""
    total = 0

    def hook(mod: torch.nn.Conv2d, _inp: tuple, out: torch.Tensor) -> None:
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        total += 2 * out.numel() * (mod.in_channels // mod.groups) * k

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.inference_mode():
            net.to("cpu").float()(torch.zeros(shape))
    finally:
        for h in handles:
            h.remove()
    return total


def synthetic_pages(n: int, size: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """RVL-CDIP-size grey pages with text-like strokes (rendered text when fonts exist)."""
    w, h = size
    pages = []
    try:
        from srgan.sample import synthetic_page

        base = [synthetic_page(seed + i, dpi=100)[0] for i in range(min(n, 4))]
        pages = [np.asarray(Image.fromarray(base[i % len(base)]).resize((w, h))) for i in range(n)]
    except Exception:  # noqa: BLE001 - no fonts: fall back to drawn strokes
        rng = np.random.default_rng(seed)
        for _ in range(n):
            page = np.full((h, w), 255, np.uint8)
            for y in range(20, h - 20, 14):
                xs = rng.integers(20, w - 40, size=w // 12)
                for x in xs:
                    page[y : y + 7, x : x + 5] = 0
            pages.append(page)
    return pages


def matmul_tflops(device: torch.device) -> float:
    """The device's measured matrix rate, for the percentage column: bf16 8192^3 products on a card;
    on a CPU 2048^3 products in bf16 where it has native bf16 (AMX / AVX512-BF16), else fp32, on
    torch's threads."""
    cuda = device.type == "cuda"
    n = 8192 if cuda else 2048
    dtype = torch.bfloat16 if cuda or cpu_has_fast_bf16() else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync_device(device)
    t0 = time.perf_counter()
    reps = 10
    for _ in range(reps):
        a @ b
    sync_device(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def sync_device(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_model(engine: Engine, pages: list[np.ndarray], flops_per_tile: int) -> tuple[float, float, float]:
    """Seconds for engine.upscale over pages (after a warm-up), the convolution FLOPs executed and the
    process's CPU seconds meanwhile (all threads: on a shared machine wall time overstates the cost)."""
    engine.upscale(pages[:1])
    sync_device(engine.device)
    c0 = time.process_time()
    t0 = time.perf_counter()
    engine.upscale(pages)
    sync_device(engine.device)
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    tiles = sum(len(split_tiles(p, engine.tile, engine.pad)[1].boxes) for p in pages)
    batches = -(-tiles // engine.batch_size)
    return seconds, float(flops_per_tile * batches * engine.batch_size), cpu_seconds


def cpu_stage_costs(inputs: list[str], out_dir: Path, cfg: PipelineConfig, engine: Engine,
                    text_height: float | None, workers: int) -> dict:
    """CPU milliseconds per page of each stage beside the model, one page at a time with nothing else
    running (srgan.stage_cpu), their total, and the page rate that CPU work alone allows: one thread
    decodes, ``workers`` threads do the rest."""
    ms = stage_cpu_ms(inputs, out_dir, cfg, engine, text_height)
    if not ms:
        return {}
    pooled = sum(v for k, v in ms.items() if k != "decode")
    ceiling = min(1000 / max(ms["decode"], 1e-6), workers * 1000 / max(pooled, 1e-6))
    return {"cpu_ms_per_page": {k: round(v, 1) for k, v in ms.items()},
            "cpu_ms_per_page_total": round(sum(ms.values()), 1), "cpu_clock": "thread_time, one page at a time",
            "cpu_workers": workers, "cpu_bound_pages_per_s": round(ceiling, 1)}


def format_row(r: dict) -> str:
    case = f"{r['case']}/{r['mode']}" if "mode" in r else r["case"]
    return (f"{case:14s} {r['model']:12s} x{r['scale']} {r['device_name'][:22]:22s} "
            f"{r.get('runtime', 'torch'):16s} {r['precision']:5s} "
            f"{r['pages']:4d} pages {r['seconds']:8.2f} s {r['pages_per_s']:8.2f} pages/s "
            f"{r['tflops'] if r['tflops'] is not None else '-':>7} TFLOP/s "
            f"{r['pct_of_matmul_peak'] if r['pct_of_matmul_peak'] is not None else '-':>5} %peak"
            + (f"  peak RSS {r['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in r else "")
            + (f"  process CPU {r['process_cpu_s_per_page']} s/page" if "process_cpu_s_per_page" in r else "")
            + (f"  CPU {r['cpu_ms_per_page_total']:.0f} ms/page {r['cpu_ms_per_page']}, {r['cpu_workers']} workers:"
               f" <= {r['cpu_bound_pages_per_s']} pages/s" if "cpu_ms_per_page" in r else ""))
