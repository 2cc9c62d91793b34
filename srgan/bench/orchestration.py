"""The bench's ``orchestration`` case: the same small pages through the plain runner and the flow.

One tar archive of ``pages`` small pages (320x240 by default) and a tiny generator (1 block of 4
channels, random weights: the model costs next to nothing, so what is left is orchestration and the
per-page CPU stages). Both runs read the same archive with the same configuration:

- plain: ``srgan.pipeline.run.run_pipeline`` in a fresh process (``python -m srgan.bench.orchestration``), the
  engine built before the run starts;
- flow: ``srgan upscale`` in a subprocess (this library never imports Prefect), which runs the
  Prefect flow in its ephemeral mode and writes its summary with ``--summary-json``.

Both rates come from each run's own summary ``seconds``: from the start of the run (the flow
function's first line, after Prefect's temporary server has started and the flow run exists; in the
plain runner, the call) to its last records part. They cover discovery, decoding, the model,
writing and records; the flow's also include its task runs' state changes and loading the weights.
Prefect's server start-up and the processes' imports are not in them; the flow's whole subprocess
is reported apart as ``flow_wall_s``. Both sides start cold (first calls of the model and of scipy
fall inside both runs). ``task_runs`` is the number of task runs the flow
made, as it counts them (1 discovery, 1 spooling when there are several batches, then 4 per batch).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from srgan.config import PipelineConfig, to_dict
from srgan.inference.engine import Engine
from srgan.models import Generator
from srgan.pipeline.run import run_pipeline
from srgan.weights import save_weights

TINY_NAME = "tiny_x2"


def bench_orchestration(cfg: PipelineConfig, pages: int, size: tuple[int, int], device: str,
                        write_tar, synthetic_pages) -> dict:
    """One row: {case, pages, plain_pages_per_s, flow_pages_per_s, flow_over_plain, task_runs, ...}."""
    import torch

    torch.manual_seed(0)
    net_g = Generator(scale=2, num_feat=4, num_block=1).eval()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        save_weights(net_g, root / "weights", TINY_NAME, {"text_height": 9.0, "trained_on": "bench: random"})
        run_cfg = dataclasses.replace(
            cfg, upscale=dataclasses.replace(cfg.upscale, scale=2, weights=TINY_NAME,
                                             weights_dir=str(root / "weights")),
            engine=dataclasses.replace(cfg.engine, device=device))
        config_path = root / "pipeline.yaml"
        config_path.write_text(yaml.safe_dump(to_dict(run_cfg)))
        archive = write_tar(root / "pages.tar", synthetic_pages(4, size), pages)

        engine = Engine(net_g, run_cfg.engine, run_cfg.tiling)  # for the row's device fields only
        plain, _ = _run([sys.executable, "-m", "srgan.bench.orchestration", str(config_path), str(archive),
                         str(root / "plain")], root / "plain-summary.json", "plain runner")
        flow, flow_wall = _run([sys.executable, "-m", "srgan.cli", "upscale", str(archive), "--out",
                                str(root / "flow"), "--config", str(config_path), "--no-progress"],
                               root / "flow-summary.json", "srgan upscale")
    plain_rate, flow_rate = plain["pages"] / plain["seconds"], flow["pages"] / flow["seconds"]
    return {"case": "orchestration", "device": engine.info.device, "device_name": engine.info.device_name,
            "model": TINY_NAME + " (1 block x 4, random)", "scale": 2, "page_size": f"{size[0]}x{size[1]}",
            "precision": engine.info.precision, "pages": plain["pages"], "flow_pages": flow["pages"],
            "errors": plain["errors"] + flow["errors"],
            "plain_seconds": plain["seconds"], "flow_seconds": flow["seconds"], "flow_wall_s": round(flow_wall, 2),
            "plain_pages_per_s": round(plain_rate, 2), "flow_pages_per_s": round(flow_rate, 2),
            "flow_over_plain": round(flow_rate / plain_rate, 3), "task_runs": flow["task_runs"],
            "pages_per_task": flow["pages_per_task"]}


def _run(command: list[str], summary_path: Path, what: str) -> tuple[dict, float]:
    """Run one side in a fresh process; its summary (from --summary-json) and the process's wall seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run([*command, "--summary-json", str(summary_path)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not summary_path.exists():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"orchestration: {what} failed (exit {proc.returncode}): {' | '.join(tail)}")
    return json.loads(summary_path.read_text()), wall


def plain_main(argv: list[str]) -> int:
    """``python -m srgan.bench.orchestration CONFIG INPUT OUT --summary-json FILE``: the plain side."""
    from srgan.atomic import atomic_write_bytes
    from srgan.config import load_config
    from srgan.weights import load_generator

    config_path, inp, out, _, summary_path = argv
    cfg = load_config(config_path)
    net_g, manifest = load_generator(cfg.upscale.weights, cfg.upscale.weights_dir, cfg.upscale.scale)
    engine = Engine(net_g, cfg.engine, cfg.tiling)
    summary = run_pipeline([inp], Path(out), cfg, engine, cfg.upscale.weights, manifest.get("sha256", ""),
                           manifest.get("text_height"))
    atomic_write_bytes(Path(summary_path), json.dumps(summary, default=str).encode())
    return 0


def format_row(r: dict) -> str:
    return (f"orchestration  {r['pages']} pages {r['page_size']}: plain {r['plain_pages_per_s']} pages/s, "
            f"flow {r['flow_pages_per_s']} pages/s (x{r['flow_over_plain']}), {r['task_runs']} task runs "
            f"of {r['pages_per_task']} documents; flow subprocess {r['flow_wall_s']} s in all")


if __name__ == "__main__":
    sys.exit(plain_main(sys.argv[1:]))
