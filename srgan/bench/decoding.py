"""The bench's decoding cases: ``archive`` (a .tar.gz read in flow-sized tasks, streamed per task against
spooled once) and ``colour`` (decoding with ``upscale.color`` grey against auto)."""

from __future__ import annotations

import gzip
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.bench.memory import write_tar
from srgan.bench.throughput import format_row, synthetic_pages
from srgan.config import PipelineConfig


def write_tar_gz(path: Path, pages: list[np.ndarray], count: int) -> Path:
    """`write_tar` compressed (gzip level 6): what archives such as RVL-CDIP ship as."""
    plain = write_tar(path.with_suffix(".plain"), pages, count)
    with plain.open("rb") as src, gzip.open(path, "wb", compresslevel=6) as dst:
        shutil.copyfileobj(src, dst)
    plain.unlink()
    return path


def bench_archive(cfg: PipelineConfig, count: int, size: tuple[int, int]) -> list[dict]:
    """Decode a .tar.gz of `count` pages in flow-sized tasks: streamed per task, then spooled once."""
    from srgan.readers import discover, read_pages
    from srgan.readers.spool import spool_archives

    per_task = cfg.flow.per_task(count)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        archive = write_tar_gz(Path(tmp) / "pages.tar.gz", synthetic_pages(4, size), count)
        docs = list(discover([archive], cfg.limits))
        for mode in ("stream", "spool"):
            t0 = time.perf_counter()
            todo = spool_archives(docs, Path(tmp) / "spool") if mode == "spool" else docs
            pages = errors = 0
            for i in range(0, len(todo), per_task):
                for page in read_pages(todo[i : i + per_task], cfg.pdf, cfg.limits):
                    pages += 1
                    errors += page.error is not None
            seconds = time.perf_counter() - t0
            rows.append({"case": "archive", "mode": mode, "device": "cpu", "device_name": "cpu (decode)",
                         "model": "-", "scale": 0, "page_size": f"{size[0]}x{size[1]}", "precision": "-",
                         "pages": pages, "errors": errors, "pages_per_task": per_task,
                         "archive_bytes": archive.stat().st_size, "seconds": round(seconds, 3),
                         "pages_per_s": round(pages / seconds, 3), "tflops": None, "pct_of_matmul_peak": None})
            print(format_row(rows[-1]), flush=True)
    return rows


def bench_colour(cfg: PipelineConfig, n_pages: int, size: tuple[int, int]) -> list[dict]:
    """Decoding with upscale.color grey vs auto: grey PNGs, RGB PNGs of grey pages, colour pages, a PDF."""
    import dataclasses as dc

    from srgan.readers import discover, read_pages
    from srgan.sample import colour_page

    pages = synthetic_pages(n_pages, size)
    colour = [np.asarray(Image.fromarray(colour_page(i, 150)).resize(size)) for i in range(n_pages)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sets = {"grey-png": Path(tmp) / "grey", "rgb-of-grey": Path(tmp) / "rgbgrey", "colour-png": Path(tmp) / "col",
                "grey-pdf": Path(tmp) / "pdf"}
        for folder in sets.values():
            folder.mkdir()
        for i, (g, c) in enumerate(zip(pages, colour, strict=True)):
            Image.fromarray(g).save(sets["grey-png"] / f"p{i}.png", compress_level=1)
            Image.fromarray(g).convert("RGB").save(sets["rgb-of-grey"] / f"p{i}.png", compress_level=1)
            Image.fromarray(c).save(sets["colour-png"] / f"p{i}.png", compress_level=1)
        pil = [Image.fromarray(g) for g in pages]
        pil[0].save(sets["grey-pdf"] / "doc.pdf", save_all=True, append_images=pil[1:], resolution=100)
        pdf_cfg = dc.replace(cfg.pdf, dpi=100)
        for name, folder in sets.items():
            docs = list(discover([str(folder)], cfg.limits))
            for color in ("grey", "auto"):
                t0 = time.perf_counter()
                got = list(read_pages(docs, pdf_cfg, cfg.limits, color))
                seconds = time.perf_counter() - t0
                rgb = sum(p.image is not None and p.image.ndim == 3 for p in got)
                rows.append({"case": "colour", "mode": f"{name}/{color}", "device": "cpu",
                             "device_name": f"cpu (decode, {rgb} rgb)", "model": "-", "scale": 0,
                             "page_size": f"{size[0]}x{size[1]}", "precision": "-", "pages": len(got),
                             "seconds": round(seconds, 3), "pages_per_s": round(len(got) / seconds, 3),
                             "ms_per_page": round(1000 * seconds / max(len(got), 1), 1), "tflops": None,
                             "pct_of_matmul_peak": None})
                print(format_row(rows[-1]), flush=True)
    return rows
