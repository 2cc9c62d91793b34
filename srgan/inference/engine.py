"""Batched inference: tiles from many pages run through the generator in fixed-size batches.

The engine picks its device and precision once, at construction, and keeps no per-page state
between calls (RealESRGANer's issue #658: outputs mixed between concurrent calls).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from srgan.config import EngineConfig, TilingConfig
from srgan.inference.fold import fold_generator
from srgan.inference.tiling import merge_tiles, split_tiles
from srgan.models import Generator

log = logging.getLogger(__name__)


def pick_device(requested: str = "auto") -> torch.device:
    """CUDA when present (and not refused), else CPU."""
    if requested == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device("cuda")
    if requested == "cuda":
        raise RuntimeError("engine.device is cuda but no CUDA device is available")
    return torch.device("cpu")


def cpu_has_fast_bf16() -> bool:
    """True where the CPU runs bf16 convolutions natively (AMX or AVX512-BF16, through oneDNN).

    On such CPUs bf16 autocast makes the generator 2-4x faster than fp32 (docs/performance.md);
    elsewhere bf16 is emulated and slower, so ``auto`` stays at fp32 there.
    """
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")  # torch.cpu, torch >= 2.3
    has_native = any(getattr(torch.cpu, name, lambda: False)() for name in probes)
    return bool(has_native and torch.backends.mkldnn.is_available())


def pick_precision(requested: str, device: torch.device) -> str:
    """auto: bf16 on CUDA (fp16 where bf16 is missing); on CPU bf16 where the CPU has native bf16
    (AMX / AVX512-BF16), else fp32. An explicit request is taken as is."""
    if device.type != "cuda":
        if requested != "auto":
            return requested
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if requested == "auto":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return requested


def autocast_context(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The one place a precision name becomes an autocast context."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


@dataclass
class EngineInfo:
    device: str
    device_name: str
    precision: str
    runtime: str = "torch"  # torch | torch-compile | the name of the runtime handed in (srgan.runtimes)


class Engine:
    """Runs a generator over whole pages by tiles, batching tiles across pages.

    Args:
        net_g: the generator (moved to the engine's device, eval mode).
        engine: EngineConfig (device, precision, channels_last, fold_tail, compile, threads).
        tiling: TilingConfig (tile, overlap, batch_size).
        runtime: None (PyTorch), or a CPU runtime of the same function (srgan.runtimes): a callable from a
            float32 (B, C, win, win) batch in [0, 1] to its (B, C, win*s, win*s) output, with ``name`` and
            ``precision``; it is handed full batches of the tiling's CPU shape.
    """

    def __init__(self, net_g: Generator, engine: EngineConfig, tiling: TilingConfig,
                 runtime: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        if engine.threads:
            torch.set_num_threads(engine.threads)
        self.device = pick_device(engine.device)
        self.precision = pick_precision(engine.precision, self.device)
        self.scale = net_g.scale
        self.tile, self.batch_size = tiling.for_device(self.device.type)
        self.pad = tiling.overlap
        self.channels_last = engine.channels_last  # faster on CUDA and with oneDNN on CPU
        net_g = net_g.to(self.device).eval()
        if engine.fold_tail:  # the same function with the last stage and tail at the input resolution
            net_g = fold_generator(net_g)
        if self.channels_last:
            net_g = net_g.to(memory_format=torch.channels_last)
        self.net_g = net_g
        self.forward = net_g
        self._compiled_ran = False
        if engine.compile:
            try:
                mode = None if engine.compile_mode == "default" else engine.compile_mode
                self.forward = torch.compile(net_g, dynamic=False, mode=mode)
            except Exception as exc:  # noqa: BLE001 - any compile failure falls back to eager
                log.warning("torch.compile unavailable (%s); running eager", str(exc).splitlines()[0])
        self.runtime = runtime
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu"
        runtime_name = "torch-compile" if self.forward is not self.net_g else "torch"
        if runtime is not None:
            self.precision, runtime_name = runtime.precision, runtime.name
        self.info = EngineInfo(str(self.device.type), name, self.precision, runtime_name)

    @torch.inference_mode()
    def _run_batch(self, batch: np.ndarray) -> np.ndarray:
        """(B, C, win, win) uint8 -> (B, C, win*s, win*s) uint8, B padded up to batch_size."""
        n = batch.shape[0]
        if n < self.batch_size:  # fixed shapes so compiled graphs and cuDNN plans are reused
            fill = np.zeros((self.batch_size - n, *batch.shape[1:]), dtype=batch.dtype)
            batch = np.concatenate([batch, fill])
        if self.runtime is not None:  # (B, C, win, win) float32 in [0, 1] -> (B, C, win*s, win*s)
            y = torch.from_numpy(self.runtime(batch.astype(np.float32) / 255.0))
            return y.clamp_(0, 1).mul_(255.0).round_().to(torch.uint8)[:n].numpy()
        x = torch.from_numpy(batch)
        if self.device.type == "cuda":
            x = x.pin_memory().to(self.device, non_blocking=True)
        x = x.float().div_(255.0)  # (B, C, win, win) in [0, 1], on the device
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_context(self.device, self.precision):
            y = self._forward(x)  # (B, C, win*s, win*s)
        y = y.float().clamp_(0, 1).mul_(255.0).round_().to(torch.uint8)
        return y[:n].cpu().numpy()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """The (compiled) generator; a compiled graph that fails on its first call falls back to eager
        with one log line (torch.compile builds lazily, so its failures show only here)."""
        if self.forward is self.net_g or self._compiled_ran:
            return self.forward(x)
        try:
            y = self.forward(x)
        except Exception as exc:  # noqa: BLE001 - a backend that cannot build the graph: run eager
            log.warning("torch.compile failed on the first batch (%s); running eager",
                        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            self.forward = self.net_g
            self.info.runtime = "torch"
            return self.net_g(x)
        self._compiled_ran = True
        return y

    def _run_tiles(self, tiles: np.ndarray) -> np.ndarray:
        outs = []
        i = 0
        while i < len(tiles):
            chunk = tiles[i : i + self.batch_size]
            try:
                outs.append(self._run_batch(chunk))
            except torch.cuda.OutOfMemoryError:
                if self.batch_size == 1:
                    raise
                self.batch_size //= 2
                torch.cuda.empty_cache()
                log.warning("CUDA out of memory: batch size halved to %d", self.batch_size)
                continue
            i += len(chunk)
        return np.concatenate(outs) if outs else tiles

    def upscale(self, pages: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Upscale (H, W) or (C, H, W) uint8 pages; returns (H*s, W*s) / (C, H*s, W*s) uint8 pages."""
        layouts = []
        all_tiles = []
        for page in pages:
            tiles, layout = split_tiles(page, self.tile, self.pad)
            layouts.append(layout)
            all_tiles.append(tiles)
        if not all_tiles:
            return []
        out_tiles = self._run_tiles(np.concatenate(all_tiles))  # tiles of all pages, batched together
        results = []
        start = 0
        for page, tiles, layout in zip(pages, all_tiles, layouts, strict=True):
            merged = merge_tiles(out_tiles[start : start + len(tiles)], layout, self.scale)
            start += len(tiles)
            results.append(merged[0] if page.ndim == 2 else merged)
        return results

    @torch.inference_mode()
    def upscale_whole(self, page: np.ndarray) -> np.ndarray:
        """Upscale one page in a single forward pass (reference for the tiling test)."""
        x = torch.from_numpy(page[None, None] if page.ndim == 2 else page[None]).to(self.device).float() / 255.0
        with autocast_context(self.device, self.precision):
            y = self.net_g(x)
        y = y.float().clamp(0, 1).mul(255.0).round().to(torch.uint8)[0].cpu().numpy()
        return y[0] if page.ndim == 2 else y
