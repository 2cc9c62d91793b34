"""The ``scale`` case of ``python -m srgan.bench``: N small pages through the ``upscale-folder`` deployment.

A real Prefect server (on PostgreSQL, as ``make server`` runs it, in a throw-away database; or on
SQLite in a temporary PREFECT_HOME), ``srgan deploy``, one ``prefect worker start`` process worker and
a tiny generator. Everything Prefect is driven from outside: subprocesses for the server, the deploy
and the worker, and the server's REST API over urllib (``srgan/`` never imports Prefect). One row:

    {case: "scale", pages, ok_rows, flow_state, task_runs_created, task_runs_recorded, logs_recorded,
     seconds, pages_per_s, server_db}

``task_runs_created`` is what the flow submits for that many pages (1 discovery, 1 spool when the
run has several batches, then per batch of ``flow.pages_per_task`` documents: decode, infer, write,
record); ``task_runs_recorded`` is what the server holds (``POST /api/task_runs/count``; task runs
are recorded from events, so a dropped event is a missing task run) once the count stops growing
(checked every 20 s, at most 180 s), ``task_runs_at_end`` the count when the flow run ended.
``logs_recorded`` counts the run's logs on the server (``POST /api/logs/filter``, paged);
``events_dropped`` the server log's "Subscription queue is full, dropping message"
warnings (in-memory messaging, queues of 10,000).
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.config import load_config
from srgan.models import Generator
from srgan.pipeline.records import read_records
from srgan.weights import save_weights

PROJECT = Path(__file__).resolve().parents[2]
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _api(url: str, path: str, body: dict | None = None, method: str | None = None, timeout: float = 60) -> object:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if os.environ.get("PREFECT_API_AUTH_STRING"):  # a server with basic auth (make server HOST=..., the apart case)
        headers["Authorization"] = "Basic " + base64.b64encode(os.environ["PREFECT_API_AUTH_STRING"].encode()).decode()
    req = urllib.request.Request(f"{url}{path}", data=data, method=method or ("POST" if data else "GET"),
                                 headers=headers)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        text = r.read().decode()
    return json.loads(text) if text else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, env=env, cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def _as_postgres(*cmd: str) -> list[str]:
    return ([] if os.geteuid() == 0 else ["sudo"]) + ["runuser", "-u", "postgres", "--", *cmd]


def write_pages(folder: Path, n: int, size: tuple[int, int]) -> None:
    """n small grey PNG pages with a few dark strokes each (all different)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    w, h = size
    for i in range(n):
        page = np.full((h, w), 255, dtype=np.uint8)
        for _ in range(4):
            y, x = rng.integers(2, h - 6), rng.integers(2, w - 10)
            page[y : y + 3, x : x + 8] = rng.integers(0, 80)
        Image.fromarray(page).save(folder / f"p{i:06d}.png", dpi=(100, 100))


def expected_task_runs(pages: int, pages_per_task: int) -> int:
    batches = math.ceil(pages / pages_per_task)
    return 1 + (1 if pages > pages_per_task else 0) + 4 * batches


def _count_logs(url: str, run_id: str) -> int:
    total, offset = 0, 0
    while True:
        got = _api(url, "/logs/filter", {"logs": {"flow_run_id": {"any_": [run_id]}}, "limit": 200, "offset": offset})
        total += len(got)
        if len(got) < 200:
            return total
        offset += 200


def _dropped(server_log: Path) -> int:
    """Messages the server's in-memory messaging dropped (its subscription queues hold 10,000)."""
    text = server_log.read_text(errors="replace") if server_log.exists() else ""
    return text.count("dropping message")


def bench_scale(pages: int, server_db: str = "postgresql", size: tuple[int, int] = (48, 40),
                keep: Path | None = None, run_timeout_s: float = 6 * 3600) -> dict:
    """One row for `pages` pages through the deployment; server_db: postgresql | sqlite."""
    if server_db not in ("postgresql", "sqlite"):
        raise ValueError(f"server_db: postgresql or sqlite, got {server_db!r}")
    root = Path(keep or tempfile.mkdtemp(prefix="srgan-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    home, inputs, out, wdir = root / "prefect-home", root / "in", root / "out", root / "weights"
    home.mkdir(exist_ok=True)
    write_pages(inputs, pages, size)
    save_weights(Generator(scale=2, num_feat=4, num_block=1).eval(), wdir, "srgan_x2",
                 {"text_height": 9.0, "trained_on": "bench scale: untrained tiny generator"})
    cfg_path = root / "pipeline.yaml"
    cfg_path.write_text(f"upscale:\n  weights_dir: {wdir}\n  compare_pages: 0\ntiling:\n  tile: 48\n  overlap: 8\n")
    ppt = load_config(cfg_path).flow.per_task(pages)  # documents per task (auto unless pipeline.yaml sets it)

    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_API_URL=url, PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_UI_ENABLED="false", PREFECT_WORKER_QUERY_SECONDS="2",
               PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE="prefect.server.concurrency.lease_storage.filesystem",
               PYTHONPATH=str(PROJECT))
    db_name = None
    if server_db == "postgresql":
        db_name = f"srgan_bench_{uuid.uuid4().hex[:8]}"
        made = subprocess.run([str(PROJECT / "scripts" / "server.sh"), "pg"], env={**os.environ, "PG_DB": db_name},
                              capture_output=True, text=True, timeout=120)
        if made.returncode:
            raise RuntimeError(f"PostgreSQL: {(made.stderr or made.stdout).strip().splitlines()[-1:]}")
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = made.stdout.strip().splitlines()[-1]
    server = worker = run = None
    try:
        server = _start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                         str(port)], env, root / "server.log")
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(OSError):
                if _api(url, "/health", timeout=5) is not None:
                    break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start (see {root / 'server.log'})")
            time.sleep(1)
        deployed = subprocess.run([sys.executable, "-m", "srgan.cli", "deploy", "--config", str(cfg_path)], env=env,
                                  cwd=PROJECT, capture_output=True, text=True, timeout=600)
        if deployed.returncode:
            raise RuntimeError(f"srgan deploy failed: {deployed.stderr.strip().splitlines()[-1:]}")
        worker = _start([sys.executable, "-m", "prefect", "worker", "start", "--pool", "srgan", "--type", "process"],
                        env, root / "worker.log")
        dep = _api(url, "/deployments/name/upscale/upscale-folder")
        started = time.monotonic()
        run = _api(url, f"/deployments/{dep['id']}/create_flow_run", {"parameters": {
            "input_path": str(inputs), "output_dir": str(out), "scale": 2, "config_path": str(cfg_path)}})
        while True:
            state = _api(url, f"/flow_runs/{run['id']}")["state"]
            if state and state["type"] in FINAL:
                break
            if time.monotonic() - started > run_timeout_s:
                break
            time.sleep(5)
        seconds = time.monotonic() - started
        count_body = {"flow_runs": {"id": {"any_": [run["id"]]}}}
        at_end = _api(url, "/task_runs/count", count_body)
        recorded, settle_until = at_end, time.monotonic() + 180  # events still in flight land meanwhile
        while time.monotonic() < settle_until:
            time.sleep(20)
            now = _api(url, "/task_runs/count", count_body)
            if now == recorded:
                break
            recorded = now
        ok_rows = sum(1 for s in read_records(out / "records").column("status").to_pylist() if s == "ok")
        return {"case": "scale", "pages": pages, "ok_rows": ok_rows, "flow_state": state["type"] if state else None,
                "task_runs_created": expected_task_runs(pages, ppt), "task_runs_recorded": recorded,
                "task_runs_at_end": at_end,
                "logs_recorded": _count_logs(url, run["id"]), "seconds": round(seconds, 1),
                "pages_per_s": round(ok_rows / seconds, 2) if seconds else None, "server_db": server_db,
                "pages_per_task": ppt, "page_size": f"{size[0]}x{size[1]}",
                "events_dropped": _dropped(root / "server.log")}
    finally:
        if run is not None:  # a run still going (waited too long): its process is ended by its own pid
            with contextlib.suppress(Exception):
                left = _api(url, f"/flow_runs/{run['id']}")
                pid = (left.get("infrastructure_pid") or "").rsplit(":", 1)[-1]
                if left["state"]["type"] not in FINAL and pid.isdigit():
                    os.kill(int(pid), signal.SIGKILL)
        _stop(worker)
        _stop(server)
        if db_name:
            subprocess.run(_as_postgres("dropdb", "--if-exists", "--force", db_name), timeout=120, check=False)
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
