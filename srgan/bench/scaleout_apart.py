"""The ``scaleout_apart`` case of ``python -m srgan.bench``: the night with its machines apart.

As the ``scaleout`` case (srgan/bench/scaleout.py: the same nights, rows and checks), but every machine
in a network namespace of its own (srgan/bench/netns.py): the Prefect server (basic auth) with its own
PostgreSQL and the S3 server in the hub; each unit worker, the control worker and this driver each in
their own namespace. Every worker reaches the server and the store through a delaying proxy in its
namespace (``delay +/- jitter`` ms each way) and loses ``loss`` % of its packets at random (nftables).
Object storage only (a local folder would bypass the network).

Faults (one night each, at the largest worker count): ``cut-unit`` (the worker running a unit cut off
for ``cut_s`` seconds), ``cut-parent`` (the control worker, running the night's parent, cut off),
``cut-store`` (the store unreachable for ``store_cut_s`` seconds: its port dropped in the hub). Each row
says whether every page was done exactly once and the night Completed with no person, and the times of
the cut (``cut_start_s``, ``healed_s``: seconds into the night) and, for a unit, when it ran again.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from srgan.bench.netns import PG_BIN, Network, start_postgres, start_prefect, start_s3
from srgan.bench.scale import PROJECT, _api, _stop
from srgan.bench.scaleout import BUCKET, flow_run, make_inputs, night_row, start_night, units_of, wait_final
from srgan.models import Generator
from srgan.storage import files
from srgan.weights import save_weights

FAULTS_APART = ("cut-unit", "cut-parent", "cut-store")
API_PORT, S3_PORT = 4200, 5000
CLONE_NEWNET = 0x40000000


@dataclass
class Link:
    """What every worker's path to the hub does: delay +/- jitter (ms, each way) and random loss (%)."""

    delay_ms: float = 50.0
    jitter_ms: float = 10.0
    loss_pct: float = 0.5


@contextlib.contextmanager
def inside(ns: str):
    """This thread (and the processes and threads it starts) in namespace ns while the block runs."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
    try:
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns}")
        yield
    finally:
        libc.setns(home, CLONE_NEWNET)
        os.close(there)
        os.close(home)


@dataclass
class Pool:
    """One hub (PostgreSQL, S3 server; a Prefect server per night), `units` unit-worker namespaces, one
    control-worker namespace and the driver's, under root."""

    root: Path
    config: Path
    units: int
    link: Link

    def __post_init__(self) -> None:
        self.net = Network(workers=self.units + 2)
        self.control_i, self.driver_i = self.units, self.units + 1
        self.auth = f"srgan:{secrets.token_urlsafe(18)}"
        self.pg_password = secrets.token_urlsafe(18)
        self.db_url = ""
        self.server: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.url = f"http://{self.net.hub_addr(self.driver_i)}:{API_PORT}/api"

    def start(self) -> None:
        """Namespaces, the hub's PostgreSQL and S3 server, a proxy pair and the loss rule per worker."""
        self.net.__enter__()
        self.db_url = start_postgres(self.net, self.root / "pg", self.pg_password)
        start_s3(self.net, self.root / "s3.log", S3_PORT)
        for i in [*range(self.units), self.control_i]:
            for port in (API_PORT, S3_PORT):
                self.net.proxy(i, port, port, self.link.delay_ms, self.link.jitter_ms, self.root / f"proxy-{i}.log")
            if self.link.loss_pct:
                self.net.loss(i, self.link.loss_pct)

    def driver_env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": f"http://{self.net.hub_addr(self.driver_i)}:{S3_PORT}",
                "PREFECT_API_AUTH_STRING": self.auth}

    def start_night_services(self, n: int, night: Path) -> None:
        """A fresh database and Prefect server, `srgan deploy`, n unit workers and the control worker."""
        db = f"night_{secrets.token_hex(4)}"
        env_pg = {"PGPASSWORD": self.pg_password, "PATH": "/usr/bin:/bin"}
        psql = [str(PG_BIN[-1] / "psql"), "-h", "127.0.0.1", "-U", "postgres", "-q"]
        self.net.run(self.net.hub, [*psql, "-c", f"CREATE DATABASE {db}"], env=env_pg)
        self.net.run(self.net.hub, [*psql, "-d", db, "-c", "CREATE EXTENSION IF NOT EXISTS pg_trgm"], env=env_pg)
        start_prefect(self.net, night / "server-home", self.db_url.rsplit("/", 1)[0] + f"/{db}", self.auth, API_PORT)
        self.server = self.net.procs[-1]
        base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_"))}
        base.update(PYTHONPATH=str(PROJECT), PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_WORKER_QUERY_SECONDS="2",
                    AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                    PREFECT_API_AUTH_STRING=self.auth)
        deployed = subprocess.run([sys.executable, "-m", "srgan.cli", "deploy", "--config", str(self.config)],
                                  env={**base, "PREFECT_API_URL": self.url, "PREFECT_HOME": str(night / "deploy")},
                                  cwd=PROJECT, capture_output=True, text=True, timeout=600)
        if deployed.returncode:
            raise RuntimeError(f"srgan deploy failed: {deployed.stderr.strip().splitlines()[-1:]}")
        cores = os.cpu_count() or 1
        self.workers = []
        for i, name in [*((i, f"unit-{i}") for i in range(n)), (self.control_i, "control-1")]:
            home = night / "workers" / name
            (home / "tmp").mkdir(parents=True, exist_ok=True)
            env = {**base, "PREFECT_API_URL": f"http://127.0.0.1:{API_PORT}/api", "PREFECT_HOME": str(home / "prefect"),
                   "AWS_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}", "TMPDIR": str(home / "tmp"), "HOME": str(home)}
            control = name.startswith("control")
            pin = [] if control else ["taskset", "-c", str(i % cores)]
            cmd = [*pin, sys.executable, "-m", "srgan.cli", "worker", "--name", name]
            cmd += ["--control"] if control else []
            self.workers.append(self.net.start(self.net.worker(i), cmd, home / "worker.log", env=env))
        deadline = time.monotonic() + 180
        while len(_api(self.url, "/work_pools/srgan/workers/filter",
                       {"workers": {"status": {"any_": ["ONLINE"]}}})) < n + 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"fewer than {n + 1} workers online after 180 s (logs in {night})")
            time.sleep(1)

    def stop_night_services(self) -> None:
        for proc in [*self.workers, self.server]:
            _stop(proc)
            with contextlib.suppress(ValueError):
                self.net.procs.remove(proc)
        self.workers, self.server = [], None

    def cut_for(self, i: int, seconds: float) -> threading.Thread:
        """Worker i's link down now, up again after `seconds` (a thread; bounded)."""
        self.net.link(i, False)
        thread = threading.Thread(target=lambda: (time.sleep(seconds), self.net.link(i, True)), daemon=True)
        thread.start()
        return thread

    def store_cut_for(self, seconds: float) -> threading.Thread:
        """The store unreachable for everyone: its port dropped in the hub, then allowed again."""
        rules = ("add table inet store\nadd chain inet store in { type filter hook input priority 0 ; }\n"
                 f"add rule inet store in tcp dport {S3_PORT} drop\n")
        subprocess.run(["ip", "netns", "exec", self.net.hub, "nft", "-f", "-"], input=rules, text=True, check=True,
                       timeout=30)

        def heal() -> None:
            time.sleep(seconds)
            subprocess.run(["ip", "netns", "exec", self.net.hub, "nft", "delete", "table", "inet", "store"], timeout=30)

        thread = threading.Thread(target=heal, daemon=True)
        thread.start()
        return thread


def bench_scaleout_apart(workers: list[int], pages: int, size: tuple[int, int] = (320, 240),
                         faults: list[str] | tuple[str, ...] = (), link: Link | None = None,
                         cut_s: float = 90.0, store_cut_s: float = 30.0, keep: Path | None = None,
                         night_timeout_s: float = 3600, model: tuple[int, int] = (8, 2),
                         units_per_worker: int | None = None, faults_only: bool = False) -> list[dict]:
    """One row per worker count (the same night), then one per fault at the largest count.
    units_per_worker: flow.units_per_worker of the night (None: the shipped default); faults_only: only
    the fault nights."""
    unknown = [f for f in faults if f not in FAULTS_APART]
    if unknown:
        raise ValueError(f"faults: unknown {unknown}; known: {', '.join(FAULTS_APART)}")
    link = link or Link()
    root = Path(keep or tempfile.mkdtemp(prefix="srgan-apart-"))
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)  # PostgreSQL's user reads its folder under it
    wdir = root / "weights"
    save_weights(Generator(scale=2, num_feat=model[0], num_block=model[1]).eval(), wdir, "srgan_x2",
                 {"text_height": 9.0, "trained_on": "bench scaleout_apart: untrained generator"})
    config = root / "pipeline.yaml"
    config.write_text(f"upscale:\n  weights_dir: {wdir}\n  compare_pages: 0\nengine:\n  threads: 1\n"
                      + (f"flow:\n  units_per_worker: {units_per_worker}\n" if units_per_worker else ""))
    pool = Pool(root, config, max(workers), link)
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                                            "AWS_ENDPOINT_URL", "PREFECT_API_AUTH_STRING")}
    rows: list[dict] = []
    try:
        pool.start()
        os.environ.update(pool.driver_env())  # this process reads the records and talks to the server too
        files._filesystem.cache_clear()
        files._write_filesystem.cache_clear()
        with inside(pool.net.worker(pool.driver_i)):
            inputs = make_inputs(root / "inputs", pages, size, _Store())
            common = {"case": "scaleout_apart", "storage": "s3", "delay_ms": link.delay_ms,
                      "jitter_ms": link.jitter_ms, "loss_pct": link.loss_pct, "page_size": f"{size[0]}x{size[1]}",
                      "model": f"{model[1]} x {model[0]}", "units_per_worker": units_per_worker or 4}
            one = None
            for n in [] if faults_only else sorted(workers):
                row = run_night_apart(pool, root / f"w{n}", n, inputs, f"s3://{BUCKET}/out-w{n}", pages, None,
                                      night_timeout_s, cut_s, store_cut_s)
                one = row["pages_per_s"] if n == 1 else one
                row.update(common, workers=n, speedup_vs_one=round(row["pages_per_s"] / one, 2)
                           if one and row["pages_per_s"] else None)
                rows.append(row)
                print(json.dumps(row), flush=True)
            for fault in faults:
                n = max(workers)
                row = run_night_apart(pool, root / f"fault-{fault}", n, inputs, f"s3://{BUCKET}/out-{fault}", pages,
                                      fault, night_timeout_s, cut_s, store_cut_s)
                row.update(common, workers=n)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        pool.net.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        files._filesystem.cache_clear()
        files._write_filesystem.cache_clear()
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return rows


class _Store:
    """make_inputs' S3 marker: the store is the hub's, reached through this process's environment."""


def run_night_apart(pool: Pool, night: Path, n: int, inputs: str, out: str, pages: int, fault: str | None,
                    timeout_s: float, cut_s: float, store_cut_s: float) -> dict:
    night.mkdir(parents=True, exist_ok=True)
    try:
        pool.start_night_services(n, night)
        params = {"input_path": inputs, "output_dir": out, "shards": 0, "config_path": str(pool.config)}
        started = time.monotonic()
        parent_id = start_night(pool, "upscale-sharded/upscale-sharded", params)
        extra: dict = {}
        parent = wait_final(pool.url, parent_id, timeout_s, fault_tick_apart(pool, parent_id, fault, started,
                                                                             cut_s, store_cut_s, extra))
        row = {"fault": fault, **night_row(_Night(pool, night), parent, out, pages, started), **extra}
        row["every_page_once"] = row["pages_done"] == pages and row["pages_twice"] == 0
        return row
    finally:
        pool.stop_night_services()


@dataclass
class _Night:
    """What night_row reads of a cluster: the server's URL and the folder with the workers' logs."""

    pool: Pool
    root: Path

    @property
    def url(self) -> str:
        return self.pool.url


def fault_tick_apart(pool: Pool, parent_id: str, fault: str | None, started: float, cut_s: float,
                     store_cut_s: float, extra: dict):
    """Run every poll of the night: cuts once, at the right moment, and follows the cut unit."""
    if fault is None:
        return None
    status: dict = {"done": False}

    def tick() -> None:
        now = time.monotonic()
        if not status["done"]:
            units = units_of(pool.url, parent_id)
            running = [u for u in units if u["state"] and u["state"]["type"] == "RUNNING"]
            if not running or len(units) < 2:
                return
            time.sleep(3)  # a few seconds into the unit
            status["done"] = True
            extra["cut_start_s"] = round(time.monotonic() - started, 1)
            if fault == "cut-store":
                pool.store_cut_for(store_cut_s)
                extra["healed_s"] = round(extra["cut_start_s"] + store_cut_s, 1)
                return
            if fault == "cut-parent":
                i = pool.control_i
            else:
                unit = running[0]
                pid = int(unit["infrastructure_pid"].rsplit(":", 1)[-1])
                ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                i = next((k for k, w in enumerate(pool.workers) if w.pid == ppid), 0)
                status.update(unit=unit["id"], runs=unit["run_count"])
            pool.cut_for(i, cut_s)
            extra["healed_s"] = round(extra["cut_start_s"] + cut_s, 1)
            return
        if fault == "cut-unit" and "unit_ran_again_s" not in extra:
            with contextlib.suppress(OSError):
                unit = flow_run(pool.url, status["unit"])
                if unit["run_count"] > status["runs"] and unit["state"]["type"] in ("RUNNING", "COMPLETED"):
                    extra["unit_ran_again_s"] = round(now - started, 1)

    return tick
