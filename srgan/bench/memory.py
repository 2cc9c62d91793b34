"""The bench's ``memory`` case: peak RSS of whole pipeline runs over tar archives of growing size, each
run in a fresh process (memory must not grow with the archive)."""

from __future__ import annotations

import io
import multiprocessing
import queue
import resource
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.bench.throughput import synthetic_pages
from srgan.config import PipelineConfig
from srgan.inference.engine import Engine
from srgan.pipeline.run import run_pipeline
from srgan.weights import load_generator


def write_tar(path: Path, pages: list[np.ndarray], count: int) -> Path:
    """A tar archive of `count` PNG pages cycling through `pages` (no page kept in memory twice)."""
    with tarfile.open(path, "w") as tar:
        for i in range(count):
            buf = io.BytesIO()
            Image.fromarray(pages[i % len(pages)]).save(buf, format="PNG", dpi=(100, 100))
            info = tarfile.TarInfo(f"pages/page{i:06d}.png")
            info.size = buf.tell()
            buf.seek(0)
            tar.addfile(info, buf)
    return path


def _memory_child(archive: str, out_dir: str, cfg: PipelineConfig, name: str, weights_dir: str,
                  result: multiprocessing.Queue) -> None:
    """Runs in a fresh process: one pipeline run over the archive; reports pages, seconds, peak RSS."""
    net_g, manifest = load_generator(name, Path(weights_dir))
    engine = Engine(net_g, cfg.engine, cfg.tiling)
    t0 = time.perf_counter()
    summary = run_pipeline([archive], Path(out_dir), cfg, engine, name, manifest.get("sha256", ""),
                           manifest.get("text_height"))
    seconds = time.perf_counter() - t0
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result.put({"pages": summary["pages"], "errors": summary["errors"], "seconds": seconds,
                "peak_rss_mb": peak_kib / 1024, "device": engine.info.device,
                "device_name": engine.info.device_name, "precision": engine.info.precision})


def peak_rss_run(archive: Path, out_dir: Path, cfg: PipelineConfig, name: str, weights_dir: Path) -> dict:
    """Peak resident memory of one pipeline run over `archive`, measured in a fresh (spawned) process."""
    ctx = multiprocessing.get_context("spawn")
    result = ctx.Queue()
    proc = ctx.Process(target=_memory_child, args=(str(archive), str(out_dir), cfg, name, str(weights_dir), result))
    proc.start()
    while True:  # read before joining: a child with unread queue data does not exit
        try:
            row = result.get(timeout=5)
            break
        except queue.Empty:
            if not proc.is_alive():
                raise RuntimeError(f"memory run over {archive} failed (exit {proc.exitcode})") from None
    proc.join()
    return row


def bench_memory(cfg: PipelineConfig, name: str, weights_dir: Path, counts: list[int],
                 size: tuple[int, int]) -> list[dict]:
    """One row per archive size: peak RSS of a whole pipeline run over that many pages."""
    base_pages = synthetic_pages(4, size)
    rows = []
    for count in counts:
        with tempfile.TemporaryDirectory() as tmp:
            archive = write_tar(Path(tmp) / f"pages{count}.tar", base_pages, count)
            r = peak_rss_run(archive, Path(tmp) / "out", cfg, name, weights_dir)
        rows.append({**r, "archive_pages": count})
    return rows
