"""The ``scaleout`` case of ``python -m srgan.bench``: one night over N workers, and the night's faults.

Everything real and on this machine: a Prefect server on PostgreSQL (a throw-away database, as
``make server`` runs it), ``srgan deploy``, N unit workers (``srgan worker``: one run at a time), each
with its own PREFECT_HOME and scratch folder, and one control worker for the night's parent run;
storage ``local`` (one folder) or ``s3`` (moto's S3-compatible server in its own process, reached
through the standard AWS environment). Workers share nothing but the Prefect server and the store.
A tiny generator keeps the model's share small. Prefect is driven from outside (subprocesses and the
REST API over urllib): ``srgan/`` never imports Prefect.

One row per night (``upscale-sharded/upscale-sharded`` with ``shards: 0``, or ``nightly-upscale``):

    {case: "scaleout", storage, workers, pages, ok_rows, pages_twice, seconds, pages_per_s,
     speedup_vs_one, units, unit_attempts, task_runs, night_state, fault, ...}

Faults (each on a fresh output; the row says whether every page was done exactly once and the night
ended Completed with no person): ``kill`` (one unit worker and its flow-run process SIGKILLed while a
unit runs: ``kill_to_rerun_s`` is the time until that unit runs again on another worker),
``parent`` (the control worker running the night's parent and the parent's process SIGKILLed; a
second control worker takes the rescheduled parent, which adopts its units), ``twice`` (the nightly
deployment started twice at once), ``store`` (the S3 server stopped for 10 s mid-night; s3 only),
``server`` (the Prefect server restarted mid-night).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from srgan.bench.scale import PROJECT, _api, _as_postgres, _free_port, _start, _stop, write_pages
from srgan.models import Generator
from srgan.pipeline.records import read_records
from srgan.storage.files import _filesystem, filesystem
from srgan.weights import save_weights

FAULTS = ("kill", "parent", "twice", "store", "server")
BUCKET = "srgan-bench"


@dataclass
class S3Server:
    """moto's S3-compatible server in its own process on a free port; its endpoint and credentials as env."""

    root: Path
    proc: subprocess.Popen | None = None
    port: int = 0

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.port}"}

    def start(self) -> None:
        self.port = _free_port()
        exe = Path(sys.executable).with_name("moto_server")
        self.proc = _start([str(exe), "-H", "127.0.0.1", "-p", str(self.port)], dict(os.environ), self.root / "s3.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=2).close()
                return
            time.sleep(0.5)
        raise RuntimeError(f"moto server did not start (see {self.root / 's3.log'})")

    def pause(self, seconds: float) -> None:
        """The store unreachable: the server process stopped (connections hang), then continued."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        _stop(self.proc)


@dataclass
class Cluster:
    """Server, deployments, unit workers and a control worker under one root folder."""

    root: Path
    config: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    pin: bool = True  # each unit worker on one core of its own (taskset), as machines of one core each
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    server: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)
    control: subprocess.Popen | None = None
    db_name: str | None = None

    def start(self, n_workers: int) -> None:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}/api"
        self.db_name = f"srgan_scaleout_{uuid.uuid4().hex[:8]}"
        made = subprocess.run([str(PROJECT / "scripts" / "server.sh"), "pg"],
                              env={**os.environ, "PG_DB": self.db_name}, capture_output=True, text=True, timeout=120)
        if made.returncode:
            raise RuntimeError(f"PostgreSQL: {(made.stderr or made.stdout).strip().splitlines()[-1:]}")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        self.env.update(self.extra_env, PREFECT_API_URL=self.url, PREFECT_SERVER_ANALYTICS_ENABLED="false",
                        PREFECT_SERVER_UI_ENABLED="false", PREFECT_WORKER_QUERY_SECONDS="2",
                        PREFECT_SERVER_DATABASE_CONNECTION_URL=made.stdout.strip().splitlines()[-1],
                        PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE="prefect.server.concurrency.lease_storage.filesystem",
                        PREFECT_HOME=str(self.root / "server-home"), PYTHONPATH=str(PROJECT))
        self.start_server()
        deployed = subprocess.run([sys.executable, "-m", "srgan.cli", "deploy", "--config", str(self.config)],
                                  env=self.env, cwd=PROJECT, capture_output=True, text=True, timeout=600)
        if deployed.returncode:
            raise RuntimeError(f"srgan deploy failed: {deployed.stderr.strip().splitlines()[-1:]}")
        self.control = self._worker("control", ["--control"])
        cores = os.cpu_count() or 1
        self.workers = [self._worker(f"unit-{i}", [], i % cores if self.pin else None) for i in range(n_workers)]
        self.wait_workers_online(n_workers + 1)

    def start_server(self) -> None:
        port = self.url.rsplit(":", 1)[1].split("/")[0]
        cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", port]
        self.server = _start(cmd, self.env, self.root / f"server-{int(time.time())}.log")
        deadline = time.monotonic() + 180
        while True:
            with contextlib.suppress(OSError):
                if _api(self.url, "/health", timeout=5) is not None:
                    return
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prefect server did not start (logs in {self.root})")
            time.sleep(1)

    def _worker(self, name: str, args: list[str], core: int | None = None) -> subprocess.Popen:
        """A worker with a home and scratch folder of its own, as on its own machine (and, with core,
        on one CPU core of its own: its flow runs inherit the affinity)."""
        home = self.root / "workers" / name
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        env = {**self.env, "PREFECT_HOME": str(home / "prefect"), "TMPDIR": str(home / "tmp"), "HOME": str(home)}
        prefix = "control-" if args else ""
        pin = ["taskset", "-c", str(core)] if core is not None else []
        return _start([*pin, sys.executable, "-m", "srgan.cli", "worker", "--name", f"{prefix}{name}", *args], env,
                      home / "worker.log")

    def wait_workers_online(self, n: int, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            online = _api(self.url, "/work_pools/srgan/workers/filter", {"workers": {"status": {"any_": ["ONLINE"]}}})
            if len(online) >= n:
                return
            time.sleep(1)
        raise RuntimeError(f"fewer than {n} workers online after {timeout_s} s")

    def stop(self) -> None:
        for w in [*self.workers, self.control]:
            _stop(w)
        _stop(self.server)
        if self.db_name:
            subprocess.run(_as_postgres("dropdb", "--if-exists", "--force", self.db_name), timeout=120, check=False)


def start_night(cluster: Cluster, deployment: str, params: dict) -> str:
    dep = _api(cluster.url, f"/deployments/name/{deployment}")
    return _api(cluster.url, f"/deployments/{dep['id']}/create_flow_run", {"parameters": params})["id"]


def flow_run(url: str, run_id: str) -> dict:
    return _api(url, f"/flow_runs/{run_id}")


def units_of(url: str, parent_id: str) -> list[dict]:
    return _api(url, "/flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [parent_id]}}})


def wait_final(url: str, run_id: str, timeout_s: float, tick=None, settle_s: float = 150) -> dict:
    """The run once it is settled: Completed, Cancelled, given up (GaveUp, Incomplete), or Crashed/Failed
    and not scheduled again within settle_s (the automation runs crashed and failed runs again)."""
    deadline, ended, run = time.monotonic() + timeout_s, None, {}
    while True:
        with contextlib.suppress(OSError):  # the server may be restarting
            run = flow_run(url, run_id)
            state = run["state"] or {}
            if state.get("type") in ("COMPLETED", "CANCELLED") or state.get("name") in ("GaveUp", "Incomplete"):
                return run
            if state.get("type") in ("CRASHED", "FAILED"):
                ended = ended or time.monotonic()
                if time.monotonic() - ended > settle_s:
                    return run
            else:
                ended = None
        if time.monotonic() > deadline:
            return run
        if tick:
            tick()
        time.sleep(2)


def task_run_count(url: str, run_ids: list[str]) -> int:
    return _api(url, "/task_runs/count", {"flow_runs": {"id": {"any_": run_ids}}}) if run_ids else 0


def record_rows(out: str) -> list[dict]:
    with contextlib.suppress(FileNotFoundError):
        return read_records(out + "/records").to_pylist()
    return []


def night_row(cluster: Cluster, parent: dict, out: str, pages: int, started: float) -> dict:
    seconds = time.monotonic() - started
    rows = record_rows(out)
    ok = Counter((r["source"], r["member"], r["page_index"]) for r in rows if r["status"] == "ok")
    units = units_of(cluster.url, parent["id"])
    return {"pages": pages, "ok_rows": sum(ok.values()), "pages_done": len(ok),
            "pages_twice": sum(1 for c in ok.values() if c > 1), "seconds": round(seconds, 1),
            "pages_per_s": round(len(ok) / seconds, 2) if seconds else None,
            "units": len(units), "unit_attempts": sum(u["run_count"] for u in units),
            "unit_runs_by_worker": unit_runs_by_worker(cluster, {u["id"] for u in units}),
            "task_runs": task_run_count(cluster.url, [u["id"] for u in units] + [parent["id"]]),
            "night_state": parent["state"]["type"] if parent["state"] else None,
            "night_state_name": parent["state"]["name"] if parent["state"] else None}


_SUBMITTED = re.compile(r"Worker '([^']+)' submitting flow run '([0-9a-f-]+)'")


def unit_runs_by_worker(cluster: Cluster, unit_ids: set[str]) -> dict[str, int]:
    """How many unit runs (attempts included) each worker started, from the workers' own logs."""
    counts: Counter = Counter()
    for log in sorted((cluster.root / "workers").glob("*/worker.log")):
        for name, run_id in _SUBMITTED.findall(log.read_text(errors="replace")):
            if run_id in unit_ids:
                counts[name] += 1
    return dict(sorted(counts.items()))


def make_inputs(root: Path, pages: int, size: tuple[int, int], s3: S3Server | None) -> str:
    local = root / "in"
    write_pages(local, pages, size)
    if s3 is None:
        return str(local)
    fs, _ = filesystem(f"s3://{BUCKET}")  # through the AWS environment bench_scaleout set, as the workers do
    fs.mkdir(BUCKET)
    fs.put(str(local), f"{BUCKET}/in", recursive=True)
    return f"s3://{BUCKET}/in"


def bench_scaleout(workers: list[int], storages: list[str], pages: int, size: tuple[int, int] = (320, 240),
                   faults: list[str] | tuple[str, ...] = (), keep: Path | None = None,
                   night_timeout_s: float = 3600, pin: bool = True, units_per_worker: int | None = None,
                   model: tuple[int, int] = (8, 2)) -> list[dict]:
    """One row per (storage, workers) night, then one per fault (at the largest worker count).

    pin: each unit worker on one core (taskset) with one torch thread, as machines of one core each;
    without it the workers share every core of this machine. units_per_worker: flow.units_per_worker
    of the night (None: the shipped default). model: (num_feat, num_block) of the untrained generator."""
    unknown = [f for f in faults if f not in FAULTS]
    if unknown:
        raise ValueError(f"faults: unknown {unknown}; known: {', '.join(FAULTS)}")
    root = Path(keep or tempfile.mkdtemp(prefix="srgan-scaleout-"))
    root.mkdir(parents=True, exist_ok=True)
    wdir = root / "weights"
    save_weights(Generator(scale=2, num_feat=model[0], num_block=model[1]).eval(), wdir, "srgan_x2",
                 {"text_height": 9.0, "trained_on": "bench scaleout: untrained generator"})
    config = root / "pipeline.yaml"  # the shipped flow defaults (heartbeat, crash window, attempts)
    config.write_text(f"upscale:\n  weights_dir: {wdir}\n  compare_pages: 0\n"
                      + ("engine:\n  threads: 1\n" if pin else "")
                      + (f"flow:\n  units_per_worker: {units_per_worker}\n" if units_per_worker else ""))
    rows: list[dict] = []
    try:
        for storage in storages:
            s3 = S3Server(root) if storage == "s3" else None
            if s3:
                s3.start()
                os.environ.update(s3.env)  # this process reads the records from the store too
                _filesystem.cache_clear()
            try:
                inputs = make_inputs(root / storage, pages, size, s3)
                out_base = f"s3://{BUCKET}" if s3 else str(root / storage)
                one = None
                for n in sorted(workers):
                    row = run_night(root / storage / f"w{n}", config, n, inputs, f"{out_base}/out-w{n}", pages,
                                    s3, None, night_timeout_s, pin)
                    one = row["pages_per_s"] if n == 1 else one
                    row.update(storage=storage, workers=n, pinned=pin, units_per_worker=units_per_worker or 4,
                               model=f"{model[1]} x {model[0]}",
                               page_size=f"{size[0]}x{size[1]}", speedup_vs_one=round(row["pages_per_s"] / one, 2)
                               if one and row["pages_per_s"] else None)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                for fault in faults:
                    if fault == "store" and not s3:
                        continue
                    n = max(workers)
                    row = run_night(root / storage / f"fault-{fault}", config, n, inputs, f"{out_base}/out-{fault}",
                                    pages, s3, fault, night_timeout_s, pin)
                    row.update(storage=storage, workers=n, pinned=pin)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
            finally:
                if s3:
                    s3.stop()
    finally:
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return rows


def run_night(root: Path, config: Path, n: int, inputs: str, out: str, pages: int, s3: S3Server | None,
              fault: str | None, timeout_s: float, pin: bool) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(root, config, extra_env=s3.env if s3 else {}, pin=pin)
    try:
        cluster.start(n)
        params = {"input_path": inputs, "output_dir": out, "shards": 0, "config_path": str(config)}
        started = time.monotonic()
        extra: dict = {}
        if fault == "twice":
            first = start_night(cluster, "upscale-sharded/nightly-upscale", params)
            second = start_night(cluster, "upscale-sharded/nightly-upscale", params)
            ends = [wait_final(cluster.url, r, timeout_s) for r in (first, second)]
            parent = next((e for e in ends if e["state"]["type"] == "COMPLETED"), ends[0])
            extra["other_night_state"] = [e["state"]["type"] for e in ends if e is not parent][0]
        else:
            parent_id = start_night(cluster, "upscale-sharded/upscale-sharded", params)
            tick = fault_tick(cluster, parent_id, fault, s3, extra)
            parent = wait_final(cluster.url, parent_id, timeout_s, tick)
        row = {"case": "scaleout", "fault": fault, **night_row(cluster, parent, out, pages, started), **extra}
        row["every_page_once"] = row["pages_done"] == pages and row["pages_twice"] == 0
        return row
    finally:
        cluster.stop()


def fault_tick(cluster: Cluster, parent_id: str, fault: str | None, s3: S3Server | None, extra: dict):
    """A callable run every poll of the night: does the fault once, at the right moment, and follows it."""
    if fault is None:
        return None
    status: dict = {"done": False}

    def running_unit() -> dict | None:
        units = units_of(cluster.url, parent_id)
        running = [u for u in units if u["state"] and u["state"]["type"] == "RUNNING"]
        return running[0] if running and len(units) > 1 else None

    def tick() -> None:
        if not status["done"]:
            unit = running_unit()
            if unit is None:
                return
            status["done"] = True
            if fault == "kill":
                time.sleep(3)  # a few seconds into the unit
                pid = int(unit["infrastructure_pid"].rsplit(":", 1)[-1])
                ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                victim = next(w for w in cluster.workers if w.pid == ppid)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(victim.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                status.update(unit=unit["id"], killed_at=time.monotonic(), runs=unit["run_count"])
            elif fault == "parent":  # the machine running the night's parent dies; another control worker is up
                time.sleep(3)
                night = flow_run(cluster.url, parent_id)
                pid = int(night["infrastructure_pid"].rsplit(":", 1)[-1])
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(cluster.control.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                cluster.control = cluster._worker("control-2", ["--control"])
                status.update(killed_at=time.monotonic())
                extra["parent_killed"] = True
            elif fault == "store":
                s3.pause(10)
                extra["store_paused_s"] = 10
            elif fault == "server":
                _stop(cluster.server)
                time.sleep(5)
                cluster.start_server()
                extra["server_down_s"] = 5
            return
        if fault == "kill" and "kill_to_rerun_s" not in extra:
            with contextlib.suppress(OSError):
                unit = flow_run(cluster.url, status["unit"])
                if unit["run_count"] > status["runs"] and unit["state"]["type"] in ("RUNNING", "COMPLETED"):
                    extra["kill_to_rerun_s"] = round(time.monotonic() - status["killed_at"], 1)
                    extra["rerun_state_history"] = unit["state"]["name"]

    return tick
