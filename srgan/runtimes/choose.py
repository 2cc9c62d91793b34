"""Which CPU runtime a run uses (``engine.runtime``), and the engine built on it.

A named runtime is built as asked; ``auto`` times every float runtime that loads (the same function as
PyTorch's; int8 is never picked by itself: it ships only where its own weights pass the gate) on one
tile batch of a synthetic page, once per machine, weights and batch shape, and remembers the fastest
in ``<cache>/runtime_choice.json`` (srgan.runtimes.export.cache_root: the user's cache, never the
output location). A runtime that does not load, compile or run falls back to PyTorch with one
warning line. Off the CPU the engine runs PyTorch as before.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from srgan.atomic import atomic_write_bytes
from srgan.config import CPU_RUNTIMES, EngineConfig, TilingConfig
from srgan.inference.engine import Engine, cpu_has_fast_bf16, pick_device
from srgan.models import Generator
from srgan.runtimes.export import cache_root, export_onnx, runtime_files

log = logging.getLogger(__name__)

RUNTIMES = CPU_RUNTIMES
AUTO_CANDIDATES = ("torch", "torch-compile", "onnxruntime", "openvino", "openvino-bf16")  # the float ones
CHOICE_FILE = "runtime_choice.json"
TIMED_BATCHES = 3


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_signature() -> str:
    """The CPU as the auto choice keys it: model name, family and model (virtual machines of different
    generations can share one model name) and whether it has native bf16."""
    fields = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("cpu family", "model") and key.strip() not in fields:
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    family = f" family {fields['cpu family']} model {fields['model']}" if len(fields) == 2 else ""
    return f"{cpu_model()}{family}{', native bf16' if cpu_has_fast_bf16() else ''}"


def batch_shape(net_g: Generator, tiling: TilingConfig) -> tuple[int, int, int, int]:
    """(B, C, win, win): the CPU engine's fixed tile batch."""
    tile, batch = tiling.for_device("cpu")
    win = tile + 2 * tiling.overlap
    return (batch, net_g.spec.in_channels, win, win)


def make_runtime(name: str, net_g: Generator, engine: EngineConfig, tiling: TilingConfig) -> object:
    """The callable for an ONNX Runtime or OpenVINO runtime (exporting the fp32 file when missing).
    Raises on any failure: the caller falls back."""
    from srgan.runtimes.backends import OpenVinoRuntime, OrtRuntime

    shape = batch_shape(net_g, tiling)
    files = runtime_files(net_g, shape, cache_root(engine.runtime_cache))
    if name.endswith("-int8"):
        if not files.int8.exists():
            raise FileNotFoundError(f"no int8 file {files.int8} (python -m srgan.runtimes.export --int8 --pages ...)")
        path, precision = files.int8, "int8"
    else:
        if not files.fp32.exists():
            log.info("exporting %s for %s", files.fp32, name)
            export_onnx(net_g, shape, files.fp32)
        path, precision = files.fp32, "bf16" if name == "openvino-bf16" else "fp32"
    if name.startswith("onnxruntime"):
        return OrtRuntime(name, precision, path, engine.threads)
    return OpenVinoRuntime(name, precision, path, "bf16" if precision == "bf16" else "f32", engine.threads)


def engine_for(name: str, net_g: Generator, engine: EngineConfig, tiling: TilingConfig) -> Engine:
    """An engine on the named runtime; PyTorch (eager, the configured precision) with one warning line
    where that runtime does not load or compile."""
    if name == "torch":
        return Engine(net_g, dataclasses.replace(engine, compile=False), tiling)
    if name == "torch-compile":
        return Engine(net_g, dataclasses.replace(engine, compile=True), tiling)
    try:
        runtime = make_runtime(name, net_g, engine, tiling)
        eng = Engine(net_g, engine, tiling, runtime=runtime)
        eng.upscale([np.full((8, 8), 255, np.uint8)])  # a first batch: a runtime may fail only when run
        return eng
    except Exception as exc:  # noqa: BLE001 - any runtime failure: PyTorch instead, said once
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning("runtime %s unavailable (%s: %s); running torch", name, type(exc).__name__, reason[:200])
        return Engine(net_g, dataclasses.replace(engine, compile=False), tiling)


def seconds_per_batch(eng: Engine, page: np.ndarray) -> float:
    """Median wall seconds of ``engine.upscale`` over a page of one tile batch, after a warm-up."""
    eng.upscale([page])
    times = []
    for _ in range(TIMED_BATCHES):
        t0 = time.perf_counter()
        eng.upscale([page])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine_key(net_g: Generator, tiling: TilingConfig, engine: EngineConfig) -> str:
    shape = batch_shape(net_g, tiling)
    weights = runtime_files(net_g, shape, Path()).fp32.stem
    threads = engine.threads or torch.get_num_threads()
    return f"{cpu_signature()}|{os.cpu_count()} cpus|{threads} threads|torch {torch.__version__}|{weights}"


def measure_runtimes(net_g: Generator, engine: EngineConfig, tiling: TilingConfig,
                     candidates: tuple[str, ...] = AUTO_CANDIDATES) -> dict[str, float]:
    """Seconds per tile batch of every candidate that built on its own runtime (a fallback is left out)."""
    tile, batch = tiling.for_device("cpu")
    rng = np.random.default_rng(0)  # timing does not depend on the pixels: paper with dark specks
    page = np.where(rng.random((tile, tile * batch)) < 0.1, 0, 255).astype(np.uint8)  # one batch of tiles
    timings = {}
    for name in candidates:
        eng = engine_for(name, net_g, engine, tiling)
        if eng.info.runtime != name and name != "torch":
            continue
        try:
            timings[name] = round(seconds_per_batch(eng, page), 4)
        except Exception as exc:  # noqa: BLE001 - torch.compile failing on its first batch, say
            log.warning("runtime %s failed while measured (%s)", name, str(exc).splitlines()[0][:200])
        if eng.info.runtime != name:  # torch-compile fell back to eager on its first batch
            timings.pop(name, None)
    return timings


def auto_runtime(net_g: Generator, engine: EngineConfig, tiling: TilingConfig) -> str:
    """The fastest float runtime on this machine for these weights, measured once and remembered."""
    path = cache_root(engine.runtime_cache) / CHOICE_FILE
    key = machine_key(net_g, tiling, engine)
    try:
        remembered = json.loads(path.read_text())
    except (OSError, ValueError):
        remembered = {}
    if key in remembered and remembered[key].get("runtime") in RUNTIMES:
        return remembered[key]["runtime"]
    timings = measure_runtimes(net_g, engine, tiling)
    best = min(timings, key=timings.get) if timings else "torch"
    remembered[key] = {"runtime": best, "seconds_per_batch": timings, "measured": datetime.now(UTC).isoformat()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(remembered, indent=2, sort_keys=True).encode())
    log.info("engine.runtime auto: %s on this machine (seconds per tile batch %s), remembered in %s",
             best, timings, path)
    return best


def build_engine(net_g: Generator, engine: EngineConfig, tiling: TilingConfig) -> Engine:
    """The engine a run uses: on the CPU, on ``engine.runtime`` (auto: the measured choice)."""
    if pick_device(engine.device).type != "cpu" or engine.runtime == "torch":
        return Engine(net_g, engine, tiling)
    name = auto_runtime(net_g, engine, tiling) if engine.runtime == "auto" else engine.runtime
    return engine_for(name, net_g, engine, tiling)
