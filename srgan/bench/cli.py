"""``python -m srgan.bench``: throughput of the model, the whole pipeline and the naive tiler.

Cases, for every selected model in weights/:
- ``model``: engine only (tiles batched across pages), counted convolution FLOPs;
- ``pipeline``: decode -> normalise -> tiles -> infer -> reassemble -> metrics -> write -> records;
  its row also gives the CPU milliseconds per page of each stage beside the model (``cpu_ms_per_page``:
  decode, normalise, metrics, write, record; measured after the run, one page at a time with nothing
  else running: srgan/bench/stage_cpu.py), their sum (``cpu_ms_per_page_total``) and the page rate that CPU
  work alone allows with the configured workers (``cpu_bound_pages_per_s``);
- ``naive``: tiles one at a time in fp32, as the original script and Real-ESRGAN's tiler do;
- ``layers``: a per-layer profile (ms, share, GFLOP/s of each convolution) of the engine's inference
  form on one batch of tiles, fp32 and the engine's precision: srgan/bench/layers.py;
- ``runtimes``: every CPU runtime (``--runtimes``, default srgan/bench/runtimes.py's list) on the same
  weights and pages (``--hr-pages``: HR image files, shrunk by the scale; default synthetic pages of
  ``--size``): seconds per page and mean PSNR against the HR pages beside PyTorch fp32's;
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
  runner and through the flow (``srgan upscale``), one row (srgan/bench/orchestration.py);
- ``scale``: ``--scale-pages`` small pages through the ``upscale-folder`` deployment on a real Prefect
  server (``--scale-db`` postgresql or sqlite): ``srgan/bench/scale.py``;
- ``scaleout``: one night of ``--scale-pages`` pages over ``--workers`` unit workers (one row per count and
  ``--storage``: local folder or a local S3 server), then one row per ``--faults`` item (worker killed,
  night started twice, store unreachable 10 s, Prefect server restarted): ``srgan/bench/scaleout.py``.
- ``report``: ``srgan report`` over a synthetic night of ``--report-rows`` record rows (400,000) in a fresh
  process: seconds and peak RSS (srgan/bench/report.py).
- ``scaleout_apart``: the same nights with every machine in its own network namespace, delay, jitter and
  loss on every worker link, and ``--faults cut-unit,cut-parent,cut-store`` (as root):
  ``srgan/bench/scaleout_apart.py``.
- ``pdf_dpi``: the PDFs given by ``--pdfs`` through the plain runner (``output_format: document``) with
  ``pdf.dpi`` native and ``--pdf-fixed-dpi`` (150), with the first of ``--models``: ``srgan/bench/pdfdpi.py``.
- ``encoding``: bytes per page of each page encoding (``upscale.encoding``) on the pages of ``--encoding-pages``
  folders (``--pages`` per folder at most), upscaled by the first of ``--models``, and the output PDF of each of
  ``--pdfs`` in each encoding (``--pdf-crooked DEG``: their first pages turned, as crooked scans):
  ``srgan/bench/pagebytes.py``.
Timings live here, never in pass/fail tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from srgan.bench.decoding import bench_archive, bench_colour
from srgan.bench.layers import format_layers, profile_layers
from srgan.bench.memory import bench_memory, write_tar
from srgan.bench.orchestration import bench_orchestration
from srgan.bench.orchestration import format_row as format_orchestration
from srgan.bench.runtimes import DEFAULT_RUNTIMES, bench_runtimes, format_runtime_row
from srgan.bench.throughput import (
    bench_model,
    conv_flops,
    cpu_stage_costs,
    format_row,
    matmul_tflops,
    sync_device,
    synthetic_pages,
)
from srgan.config import EngineConfig, PipelineConfig, load_config
from srgan.inference.engine import Engine
from srgan.inference.fold import fold_generator
from srgan.models import Generator
from srgan.pipeline.run import cpu_stage_workers, run_pipeline
from srgan.runtimes.choose import build_engine
from srgan.runtimes.export import grey_pages
from srgan.weights import load_generator, resolve_weights_dir


def run_cases(cfg: PipelineConfig, models: list[str], cases: list[str], device: str, n_pages: int,
              size: tuple[int, int], weights_dir: Path, memory_pages: tuple[int, ...] = (100, 2000),
              memory_size: tuple[int, int] = (320, 240), archive_pages: int = 2000,
              orchestration_pages: int = 2000, runtimes: tuple[str, ...] = (),
              hr_pages: tuple[str, ...] = ()) -> list[dict]:
    rows = bench_archive(cfg, archive_pages, memory_size) if "archive" in cases else []
    if "colour" in cases:
        rows += bench_colour(cfg, n_pages, size)
    if "orchestration" in cases:
        rows.append(bench_orchestration(cfg, orchestration_pages, memory_size, device, write_tar, synthetic_pages))
        print(format_orchestration(rows[-1]), flush=True)
    if "runtimes" in cases:
        originals = (grey_pages([Path(p) for p in hr_pages]) if hr_pages
                     else synthetic_pages(n_pages, size))
        loaded = [(name, load_generator(name, weights_dir)[0]) for name in models]
        print("| model | asked | ran | precision | s/page | pages/s | PSNR | vs first |")
        print("|---|---|---|---|---:|---:|---:|---:|")
        for row in bench_runtimes(cfg, loaded, originals, runtimes or DEFAULT_RUNTIMES):
            rows.append(row)
            print(format_runtime_row(row), flush=True)
    cases = [c for c in cases if c not in ("archive", "colour", "orchestration", "runtimes")]
    if not cases:
        return rows
    pages = synthetic_pages(n_pages, size)
    engine_cfg = dataclasses.replace(cfg.engine, device=device)
    peak = None
    pairs = [(name, runtime) for name in models for runtime in (runtimes or (cfg.engine.runtime,))]
    for name, runtime in pairs:
        net_g, manifest = load_generator(name, weights_dir)
        run_cfg = dataclasses.replace(cfg, engine=dataclasses.replace(engine_cfg, runtime=runtime))
        engine = build_engine(net_g, run_cfg.engine, cfg.tiling)
        win = engine.tile + 2 * engine.pad
        flops_per_tile = conv_flops(Generator.from_spec(manifest["spec"]), (1, 1, win, win))
        if peak is None:
            peak = matmul_tflops(engine.device)
        base = {"device": engine.info.device, "device_name": engine.info.device_name, "model": name,
                "runtime": engine.info.runtime, "runtime_asked": runtime,
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
            elif case == "layers":
                for layer_precision in dict.fromkeys(("fp32", engine.info.precision)):
                    layer_rows = profile_layers(fold_generator(net_g) if cfg.engine.fold_tail else net_g,
                                                (engine.batch_size, 1, win, win), layer_precision)
                    rows.append({"case": case, **base, "precision": layer_precision, "layers": layer_rows})
                    print(format_layers(f"{name} {layer_precision}", layer_rows), flush=True)
                continue
            elif case == "memory":
                mem_cfg = dataclasses.replace(cfg, engine=engine_cfg)
                for r in bench_memory(mem_cfg, name, weights_dir, list(memory_pages), memory_size):
                    rows.append({"case": case, **base, "device": r["device"], "device_name": r["device_name"],
                                 "page_size": f"{memory_size[0]}x{memory_size[1]}", "pages": r["pages"],
                                 "seconds": round(r["seconds"], 3), "pages_per_s": round(r["pages"] / r["seconds"], 3),
                                 "tflops": None, "pct_of_matmul_peak": None,
                                 "matmul_peak_tflops": None if peak is None else round(peak, 3),
                                 "archive_pages": r["archive_pages"], "errors": r["errors"],
                                 "peak_rss_mb": round(r["peak_rss_mb"], 1)})
                    print(format_row(rows[-1]), flush=True)
                continue
            elif case == "pipeline":
                with tempfile.TemporaryDirectory() as tmp:
                    src = Path(tmp) / "in"
                    src.mkdir()
                    for i, p in enumerate(pages):
                        Image.fromarray(p).save(src / f"page{i:05d}.png", dpi=(100, 100))
                    c0, t0 = time.process_time(), time.perf_counter()
                    summary = run_pipeline([str(src)], Path(tmp) / "out", run_cfg, engine, name,
                                           manifest.get("sha256", ""), manifest.get("text_height"))
                    sync_device(engine.device)
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
                         "matmul_peak_tflops": None if peak is None else round(peak, 3),
                         "process_cpu_s_per_page": round(cpu_s / max(n, 1), 3), **extra})
            print(format_row(rows[-1]), flush=True)
    return rows


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
    p.add_argument("--runtimes", default="", help="model and pipeline cases: CPU runtimes to run each model on, "
                   "comma-separated (engine.runtime values; default: engine.runtime), one row each")
    p.add_argument("--hr-pages", nargs="*", default=[], help="runtimes case: HR page images or folders")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), help="engine.precision for every case")
    p.add_argument("--json", help="write the rows to this JSON file")
    p.add_argument("--scale-pages", type=int, default=2000, help="pages of the scale case (srgan/bench/scale.py)")
    p.add_argument("--scale-db", default="postgresql", choices=("postgresql", "sqlite"), help="scale case's server")
    p.add_argument("--scale-timeout", type=float, default=6 * 3600, help="scale case: stop waiting after this many s")
    p.add_argument("--workers", default="1,2,4", help="scaleout case: unit worker counts")
    p.add_argument("--storage", default="local", help="scaleout case: local and/or s3 (comma-separated)")
    p.add_argument("--faults", default="", help="scaleout case: kill,twice,store,server (comma-separated)")
    p.add_argument("--scaleout-size", default="320x240", help="scaleout case: page WxH")
    p.add_argument("--keep", help="scaleout case: keep its folders (servers' and workers' logs) here")
    p.add_argument("--units-per-worker", type=int, help="scaleout case: flow.units_per_worker (default: shipped)")
    p.add_argument("--scaleout-model", default="2x8", help="scaleout case: the untrained generator, BLOCKSxFEATURES")
    p.add_argument("--no-pin", action="store_true",
                   help="scaleout case: workers share every core (default: one core each, as one-core machines)")
    p.add_argument("--train-scales", default="2,4", help="train_speed case: scales (8 x 32 generator, batch 8)")
    p.add_argument("--train-steps", type=int, default=10, help="train_speed case: timed steps per row")
    p.add_argument("--train-crop", type=int, default=96, help="train_speed case: HR crop side")
    p.add_argument("--train-precisions", default="fp32,bf16", help="train_speed case: fp32 and/or bf16 autocast")
    p.add_argument("--content-layers", default="conv2_2,conv3_2", help="train_speed case: CRAFT layers of the loss")
    p.add_argument("--disc-feat", type=int, default=64, help="train_speed case: discriminator stem channels")
    p.add_argument("--report-rows", type=int, default=400_000, help="report case: rows of the synthetic night")
    p.add_argument("--delay-ms", type=float, default=50.0, help="scaleout_apart case: each worker link's delay")
    p.add_argument("--jitter-ms", type=float, default=10.0, help="scaleout_apart case: +/- this around the delay")
    p.add_argument("--loss-pct", type=float, default=0.5, help="scaleout_apart case: random loss on each worker link")
    p.add_argument("--cut-s", type=float, default=90.0, help="scaleout_apart case: cut-unit / cut-parent length")
    p.add_argument("--faults-only", action="store_true", help="scaleout_apart case: only the --faults nights")
    p.add_argument("--store-cut-s", type=float, default=30.0, help="scaleout_apart case: cut-store length")
    p.add_argument("--pdfs", nargs="*", default=[], help="PDFs of the pdf_dpi case")
    p.add_argument("--pdf-fixed-dpi", type=int, default=150, help="pdf_dpi case: the fixed dpi native is compared with")
    p.add_argument("--encoding-pages", nargs="*", default=[], help="encoding case: folders of page images")
    p.add_argument("--pdf-crooked", type=float, default=0.0,
                   help="encoding case: run each PDF's first page turned by this many degrees instead (a crooked scan)")
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
    if a.precision:
        cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, precision=a.precision))
    if a.cpu_workers is not None:
        cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, cpu_workers=a.cpu_workers))
    wdir = resolve_weights_dir(cfg.upscale.weights_dir)
    models = sorted(x.stem for x in wdir.glob("*.pt")) if a.models == "all" else a.models.split(",")
    w, h = (int(v) for v in a.size.lower().split("x"))
    mw, mh = (int(v) for v in a.memory_size.lower().split("x"))
    cases, scale_rows = a.cases.split(","), []
    if "scale" in cases:  # the deployment on a real server: its own module, driven by subprocesses and REST
        from srgan.bench.scale import bench_scale

        scale_rows.append(bench_scale(a.scale_pages, a.scale_db, run_timeout_s=a.scale_timeout))
        print(json.dumps(scale_rows[0]), flush=True)
        cases.remove("scale")
    if "scaleout" in cases:  # N workers on a real server, local or S3 storage: subprocesses and REST as above
        from srgan.bench.scaleout import bench_scaleout

        sw, sh = (int(v) for v in a.scaleout_size.lower().split("x"))
        scale_rows += bench_scaleout([int(n) for n in a.workers.split(",")], a.storage.split(","), a.scale_pages,
                                     (sw, sh), [f for f in a.faults.split(",") if f], Path(a.keep) if a.keep else None,
                                     night_timeout_s=a.scale_timeout, pin=not a.no_pin,
                                     units_per_worker=a.units_per_worker,
                                     model=tuple(int(v) for v in a.scaleout_model.split("x"))[::-1])
        cases.remove("scaleout")
    if "train_speed" in cases:  # training steps/s of each objective (srgan/bench/training_speed.py)
        from srgan.bench.training_speed import bench_training_speed

        for scale in (int(v) for v in a.train_scales.split(",")):
            speed = bench_training_speed(scale, crop=a.train_crop, steps=a.train_steps,
                                         precisions=tuple(a.train_precisions.split(",")),
                                         content_layers=a.content_layers, disc_feat=a.disc_feat)
            for row in speed:
                print(json.dumps(row), flush=True)
            scale_rows += speed
        cases.remove("train_speed")
    if "report" in cases:  # the night report over synthetic records: its own process, no model
        from srgan.bench.report import bench_report

        scale_rows.append(bench_report(a.report_rows))
        print(json.dumps(scale_rows[-1]), flush=True)
        cases.remove("report")
    if "scaleout_apart" in cases:  # the same nights with every machine in its own network namespace
        from srgan.bench.scaleout_apart import Link, bench_scaleout_apart

        sw, sh = (int(v) for v in a.scaleout_size.lower().split("x"))
        scale_rows += bench_scaleout_apart([int(n) for n in a.workers.split(",")], a.scale_pages, (sw, sh),
                                           [f for f in a.faults.split(",") if f],
                                           Link(a.delay_ms, a.jitter_ms, a.loss_pct), a.cut_s, a.store_cut_s,
                                           Path(a.keep) if a.keep else None, night_timeout_s=a.scale_timeout,
                                           model=tuple(int(v) for v in a.scaleout_model.split("x"))[::-1],
                                           units_per_worker=a.units_per_worker, faults_only=a.faults_only)
        cases.remove("scaleout_apart")
    if "pdf_dpi" in cases:
        from srgan.bench.pdfdpi import bench_pdf_dpi

        scale_rows += bench_pdf_dpi(cfg, models[0], wdir, [Path(x) for x in a.pdfs], a.device,
                                    ("native", a.pdf_fixed_dpi))
        cases.remove("pdf_dpi")
    if "encoding" in cases:
        from srgan.bench.pagebytes import bench_encoding

        scale_rows += bench_encoding(cfg, models[0], wdir, [Path(x) for x in a.encoding_pages],
                                     [Path(x) for x in a.pdfs], a.device, a.pages, a.pdf_crooked)
        cases.remove("encoding")
    rows = scale_rows + (run_cases(cfg, models, cases, a.device, a.pages, (w, h), wdir,
                                   tuple(int(n) for n in a.memory_pages.split(",")), (mw, mh), a.archive_pages,
                                   a.orchestration_pages, tuple(r for r in a.runtimes.split(",") if r),
                                   tuple(a.hr_pages))
                         if cases else [])
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
