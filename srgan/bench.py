"""``python -m srgan.bench``: throughput of the model, the whole pipeline and the naive tiler.

Cases, for every selected model in weights/:
- ``model``: engine only (tiles batched across pages), counted convolution FLOPs;
- ``pipeline``: decode -> normalise -> tiles -> infer -> reassemble -> metrics -> write -> records;
  its row also gives the CPU milliseconds per page of each stage beside the model (``cpu_ms_per_page``:
  decode, normalise, metrics, write, record; measured after the run, one page at a time with nothing
  else running: srgan/stage_cpu.py), their sum (``cpu_ms_per_page_total``) and the page rate that CPU
  work alone allows with the configured workers (``cpu_bound_pages_per_s``);
- ``naive``: tiles one at a time in fp32, as the original script and Real-ESRGAN's tiler do;
- ``memory``: peak RSS of whole pipeline runs over tar archives of ``--memory-pages`` pages each
  (default 100 and 2000, small pages of ``--memory-size``), each run in a fresh process: memory must
  not grow with the archive.

And once, whatever the models:
- ``archive``: decoding a ``.tar.gz`` of ``--archive-pages`` pages split into tasks of
  ``flow.pages_per_task`` documents, as the flow does: ``stream`` (each task streams the archive from
  its start) against ``spool`` (decompressed once, each task seeks to its members);
- ``colour``: decoding ``--pages`` pages of ``--size`` with ``upscale.color`` grey and auto: grey PNGs,
  RGB PNGs of grey pages, colour pages (``sample.colour_page``) and one grey PDF at 100 dpi;
- ``orchestration``: ``--orchestration-pages`` small pages with a tiny generator through the plain
  runner and through the flow (``srgan upscale``), one row (srgan/bench_orchestration.py);
- ``scale``: ``--scale-pages`` small pages through the ``upscale-folder`` deployment on a real Prefect
  server (``--scale-db`` postgresql or sqlite): ``srgan/bench_scale.py``.
Timings live here, never in pass/fail tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import io
import json
import multiprocessing
import queue
import resource
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from srgan.bench_orchestration import bench_orchestration
from srgan.bench_orchestration import format_row as format_orchestration
from srgan.config import EngineConfig, PipelineConfig, load_config
from srgan.engine import Engine
from srgan.models import Generator
from srgan.run import cpu_stage_workers, run_pipeline
from srgan.stage_cpu import stage_cpu_ms
from srgan.tiling import split_tiles
from srgan.weights import load_generator, resolve_weights_dir


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


def matmul_tflops(device: torch.device) -> float | None:
    """The card's measured bf16 matrix rate (8192^3 products), for the percentage column."""
    if device.type != "cuda":
        return None
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    reps = 10
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_model(engine: Engine, pages: list[np.ndarray], flops_per_tile: int) -> tuple[float, float, float]:
    """Seconds for engine.upscale over pages (after a warm-up), the convolution FLOPs executed and the
    process's CPU seconds meanwhile (all threads: on a shared machine wall time overstates the cost)."""
    engine.upscale(pages[:1])
    _sync(engine.device)
    c0 = time.process_time()
    t0 = time.perf_counter()
    engine.upscale(pages)
    _sync(engine.device)
    seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    tiles = sum(len(split_tiles(p, engine.tile, engine.pad)[1].boxes) for p in pages)
    batches = -(-tiles // engine.batch_size)
    return seconds, float(flops_per_tile * batches * engine.batch_size), cpu_seconds


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
            print(_fmt_row(rows[-1]), flush=True)
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
                print(_fmt_row(rows[-1]), flush=True)
    return rows


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


def run_cases(cfg: PipelineConfig, models: list[str], cases: list[str], device: str, n_pages: int,
              size: tuple[int, int], weights_dir: Path, memory_pages: tuple[int, ...] = (100, 2000),
              memory_size: tuple[int, int] = (320, 240), archive_pages: int = 2000,
              orchestration_pages: int = 2000) -> list[dict]:
    rows = bench_archive(cfg, archive_pages, memory_size) if "archive" in cases else []
    if "colour" in cases:
        rows += bench_colour(cfg, n_pages, size)
    if "orchestration" in cases:
        rows.append(bench_orchestration(cfg, orchestration_pages, memory_size, device, write_tar, synthetic_pages))
        print(format_orchestration(rows[-1]), flush=True)
    cases = [c for c in cases if c not in ("archive", "colour", "orchestration")]
    if not cases:
        return rows
    pages = synthetic_pages(n_pages, size)
    engine_cfg = dataclasses.replace(cfg.engine, device=device)
    peak = None
    for name in models:
        net_g, manifest = load_generator(name, weights_dir)
        engine = Engine(net_g, engine_cfg, cfg.tiling)
        win = engine.tile + 2 * engine.pad
        flops_per_tile = conv_flops(Generator.from_spec(manifest["spec"]), (1, 1, win, win))
        if peak is None:
            peak = matmul_tflops(engine.device)
        base = {"device": engine.info.device, "device_name": engine.info.device_name, "model": name,
                "scale": net_g.scale, "page_size": f"{size[0]}x{size[1]}", "precision": engine.info.precision,
                "tile": engine.tile, "batch_size": engine.batch_size, "compile": cfg.engine.compile,
                "compile_mode": cfg.engine.compile_mode if cfg.engine.compile else None}
        for case in cases:
            precision = engine.info.precision
            extra: dict = {}
            if case == "model":
                seconds, flops, cpu_s = bench_model(engine, pages, flops_per_tile)
                n = len(pages)
            elif case == "naive":
                # the configured tile, one at a time, fp32, on every device
                naive_cfg = dataclasses.replace(cfg.tiling, batch_size=1, cpu_tile=0, cpu_batch_size=1)
                naive = Engine(net_g, EngineConfig(device=device, precision="fp32", channels_last=False), naive_cfg)
                naive_win = naive.tile + 2 * naive.pad
                naive_flops = conv_flops(Generator.from_spec(manifest["spec"]), (1, 1, naive_win, naive_win))
                few = pages[: max(1, min(len(pages), 4 if naive.device.type == "cpu" else 16))]
                seconds, flops, cpu_s = bench_model(naive, few, naive_flops)
                precision = naive.info.precision
                n = len(few)
            elif case == "memory":
                mem_cfg = dataclasses.replace(cfg, engine=engine_cfg)
                for r in bench_memory(mem_cfg, name, weights_dir, list(memory_pages), memory_size):
                    rows.append({"case": case, **base, "device": r["device"], "device_name": r["device_name"],
                                 "page_size": f"{memory_size[0]}x{memory_size[1]}", "pages": r["pages"],
                                 "seconds": round(r["seconds"], 3), "pages_per_s": round(r["pages"] / r["seconds"], 3),
                                 "tflops": None, "pct_of_matmul_peak": None,
                                 "matmul_peak_tflops": None if peak is None else round(peak, 1),
                                 "archive_pages": r["archive_pages"], "errors": r["errors"],
                                 "peak_rss_mb": round(r["peak_rss_mb"], 1)})
                    print(_fmt_row(rows[-1]), flush=True)
                continue
            elif case == "pipeline":
                with tempfile.TemporaryDirectory() as tmp:
                    src = Path(tmp) / "in"
                    src.mkdir()
                    for i, p in enumerate(pages):
                        Image.fromarray(p).save(src / f"page{i:05d}.png", dpi=(100, 100))
                    c0, t0 = time.process_time(), time.perf_counter()
                    summary = run_pipeline([str(src)], Path(tmp) / "out", cfg, engine, name,
                                           manifest.get("sha256", ""), manifest.get("text_height"))
                    _sync(engine.device)
                    seconds, cpu_s = time.perf_counter() - t0, time.process_time() - c0
                    n = summary["pages"]
                    flops = float("nan")
                    extra = cpu_stage_costs([str(src)], Path(tmp) / "stage-cpu", cfg, engine,
                                            manifest.get("text_height"),
                                            cpu_stage_workers(cfg.engine, engine.device.type))
            else:
                raise ValueError(f"unknown case {case}")
            tflops = flops / seconds / 1e12 if seconds > 0 and flops == flops else None
            rows.append({"case": case, **base, "precision": precision, "pages": n, "seconds": round(seconds, 3),
                         "pages_per_s": round(n / seconds, 3), "tflops": None if tflops is None else round(tflops, 2),
                         "pct_of_matmul_peak": None if (tflops is None or not peak) else round(100 * tflops / peak, 1),
                         "matmul_peak_tflops": None if peak is None else round(peak, 1),
                         "process_cpu_s_per_page": round(cpu_s / max(n, 1), 3), **extra})
            print(_fmt_row(rows[-1]), flush=True)
    return rows


def _fmt_row(r: dict) -> str:
    case = f"{r['case']}/{r['mode']}" if "mode" in r else r["case"]
    return (f"{case:14s} {r['model']:12s} x{r['scale']} {r['device_name'][:22]:22s} {r['precision']:5s} "
            f"{r['pages']:4d} pages {r['seconds']:8.2f} s {r['pages_per_s']:8.2f} pages/s "
            f"{r['tflops'] if r['tflops'] is not None else '-':>7} TFLOP/s "
            f"{r['pct_of_matmul_peak'] if r['pct_of_matmul_peak'] is not None else '-':>5} %peak"
            + (f"  peak RSS {r['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in r else "")
            + (f"  process CPU {r['process_cpu_s_per_page']} s/page" if "process_cpu_s_per_page" in r else "")
            + (f"  CPU {r['cpu_ms_per_page_total']:.0f} ms/page {r['cpu_ms_per_page']}, {r['cpu_workers']} workers:"
               f" <= {r['cpu_bound_pages_per_s']} pages/s" if "cpu_ms_per_page" in r else ""))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m srgan.bench", description=__doc__.splitlines()[0])
    p.add_argument("--config")
    p.add_argument("--models", default="all", help="comma-separated names in weights/, or 'all'")
    p.add_argument("--cases", default="model,pipeline,naive")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--pages", type=int, default=8)
    p.add_argument("--size", default="1000x768", help="page WxH in pixels")
    p.add_argument("--tile", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--compile-mode", choices=("default", "reduce-overhead", "max-autotune"),
                   help="torch.compile mode (implies --compile); reduce-overhead replays CUDA graphs")
    p.add_argument("--cuda-graphs", action="store_true", help="same as --compile-mode reduce-overhead")
    p.add_argument("--cpu-workers", type=int, help="threads for the CPU stages beside the model (0 = auto: "
                   "2 with the model on the CPU, one per core less one beside a GPU)")
    p.add_argument("--memory-pages", default="100,2000", help="archive sizes of the memory case")
    p.add_argument("--memory-size", default="320x240", help="page WxH of the memory and archive cases")
    p.add_argument("--archive-pages", type=int, default=2000, help="pages in the archive case's .tar.gz")
    p.add_argument("--orchestration-pages", type=int, default=2000,
                   help="pages (of --memory-size) in the orchestration case's tar")
    p.add_argument("--json", help="write the rows to this JSON file")
    p.add_argument("--scale-pages", type=int, default=2000, help="pages of the scale case (srgan/bench_scale.py)")
    p.add_argument("--scale-db", default="postgresql", choices=("postgresql", "sqlite"), help="scale case's server")
    p.add_argument("--scale-timeout", type=float, default=6 * 3600, help="scale case: stop waiting after this many s")
    a = p.parse_args(argv)
    cfg = load_config(a.config)
    if a.tile or a.batch_size:
        cfg = dataclasses.replace(cfg, tiling=dataclasses.replace(
            cfg.tiling, tile=a.tile or cfg.tiling.tile, batch_size=a.batch_size or cfg.tiling.batch_size,
            cpu_tile=a.tile or cfg.tiling.cpu_tile, cpu_batch_size=a.batch_size or cfg.tiling.cpu_batch_size))
    mode = "reduce-overhead" if a.cuda_graphs else a.compile_mode
    if a.compile or mode:
        cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, compile=True,
                                                                  compile_mode=mode or cfg.engine.compile_mode))
    if a.cpu_workers is not None:
        cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, cpu_workers=a.cpu_workers))
    wdir = resolve_weights_dir(cfg.upscale.weights_dir)
    models = sorted(x.stem for x in wdir.glob("*.pt")) if a.models == "all" else a.models.split(",")
    w, h = (int(v) for v in a.size.lower().split("x"))
    mw, mh = (int(v) for v in a.memory_size.lower().split("x"))
    cases, scale_rows = a.cases.split(","), []
    if "scale" in cases:  # the deployment on a real server: its own module, driven by subprocesses and REST
        from srgan.bench_scale import bench_scale

        scale_rows.append(bench_scale(a.scale_pages, a.scale_db, run_timeout_s=a.scale_timeout))
        print(json.dumps(scale_rows[0]), flush=True)
        cases.remove("scale")
    rows = scale_rows + (run_cases(cfg, models, cases, a.device, a.pages, (w, h), wdir,
                                   tuple(int(n) for n in a.memory_pages.split(",")), (mw, mh), a.archive_pages,
                                   a.orchestration_pages)
                         if cases else [])
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
