"""Deployments against the real components.

One `prefect server start` subprocess for the module on Debian's PostgreSQL (started as `make
server` does, by scripts/server.sh, with a throw-away database per test session, dropped at the
end), the pool/limit/deployments/automation made by `srgan deploy`, two `prefect worker start
--pool srgan` process workers, and a Dask LocalCluster for the Dask option. Everything started
here is stopped in finally blocks, by process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest
from PIL import Image

from srgan.pipeline.records import read_records
from tests.conftest import REPO, text_like_page, tiny_generator, write_config

pytestmark = pytest.mark.slow

RUN_TIMEOUT_S = 150


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Proc:
    """A subprocess in its own process group, with its output in a log file."""

    popen: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, cmd: list[str], env: dict, log: Path) -> Proc:
        with log.open("wb") as out:
            popen = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return cls(popen, log)

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(5)

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


@dataclass
class Server:
    url: str
    env: dict
    home: Path
    proc: Proc | None = None

    def start(self) -> None:
        port = self.url.rsplit(":", 1)[1].split("/")[0]
        self.proc = Proc.start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port",
                                port], self.env, self.home / "server.log")
        _wait_healthy(self.url, self.proc, 120)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def _as_postgres(*cmd: str) -> list[str]:
    return ([] if os.geteuid() == 0 else ["sudo"]) + ["runuser", "-u", "postgres", "--", *cmd]


def _cluster_online() -> bool:
    out = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, timeout=30, check=True).stdout
    return bool(out.split()) and out.split()[3] == "online"


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """PostgreSQL up (scripts/server.sh pg, as `make server`), a throw-away database; dropped after."""
    import uuid

    if shutil.which("pg_lsclusters") is None:
        pytest.fail("PostgreSQL is not installed: `make system` installs Debian's postgresql")
    was_online = _cluster_online()
    name = f"srgan_test_{uuid.uuid4().hex[:8]}"
    made = subprocess.run([str(REPO / "scripts" / "server.sh"), "pg"], env={**os.environ, "PG_DB": name},
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stdout + made.stderr
    try:
        yield made.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run(_as_postgres("dropdb", "--if-exists", "--force", name), timeout=60, check=False)
        if not was_online:
            ver, cluster = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True,
                                          timeout=30).stdout.split()[:2]
            subprocess.run((["sudo"] if os.geteuid() else []) + ["pg_ctlcluster", ver, cluster, "stop"], timeout=60,
                           check=False)


def _wait_healthy(url: str, proc: Proc, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"prefect server exited {proc.popen.returncode}:\n{proc.tail()}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        time.sleep(0.5)
    raise RuntimeError(f"prefect server not healthy after {timeout_s} s:\n{proc.tail()}")


def _kill_leftover_flow_runs() -> None:
    """Flow-run processes of runs that never finished (a failed test): killed by their own pid."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs():
            if run.state and not run.state.is_final() and run.infrastructure_pid:
                pid = run.infrastructure_pid.rsplit(":", 1)[-1]
                if pid.isdigit():
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(int(pid), signal.SIGKILL)


@pytest.fixture(scope="module")
def server(tmp_path_factory, postgres_url) -> Iterator[Server]:
    """`prefect server start` on 127.0.0.1:<free port> on the PostgreSQL database, leases on disk."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_API_URL=url, PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_UI_ENABLED="false", PREFECT_UI_ENABLED="false", PREFECT_LOGGING_LEVEL="INFO",
               PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="5",
               PREFECT_SERVER_DATABASE_CONNECTION_URL=postgres_url,
               PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE="prefect.server.concurrency.lease_storage.filesystem")
    srv = Server(url, env, home)
    try:
        srv.start()
        with temporary_settings(updates={PREFECT_API_URL: url}):
            yield srv
    finally:
        srv.stop()


HEARTBEAT_S, CRASHED_AFTER_S = 30, 45  # Prefect's shortest heartbeat; the automation's window in these tests


@pytest.fixture(scope="module")
def deployed(server: Server) -> list[str]:
    """`srgan deploy` (the project's deploy command) against the server, with a short heartbeat window."""
    cfg = server.home / "deploy-pipeline.yaml"
    cfg.write_text(f"flow:\n  heartbeat_seconds: {HEARTBEAT_S}\n  crashed_after_seconds: {CRASHED_AFTER_S}\n")
    out = subprocess.run([sys.executable, "-m", "srgan.cli", "deploy", "--config", str(cfg)], env=server.env, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return [ln.removeprefix("deployment: ") for ln in out.stdout.splitlines() if ln.startswith("deployment: ")]


def start_worker(server: Server, name: str, control: bool = False) -> Proc:
    """`srgan worker` (a unit worker: one run at a time; or --control), with a home of its own."""
    home = server.home / "workers" / name
    home.mkdir(parents=True, exist_ok=True)
    env = {**server.env, "PREFECT_HOME": str(home)}
    args = ["--name", name, *(["--control"] if control else [])]
    return Proc.start([sys.executable, "-m", "srgan.cli", "worker", *args], env, server.home / f"{name}.log")


@pytest.fixture(scope="module")
def workers(server: Server, deployed) -> Iterator[list[Proc]]:
    """Two unit workers on the pool, as on two machines, and a control worker for the nights' parents."""
    procs = [start_worker(server, f"worker-{i}") for i in (1, 2)]
    control = start_worker(server, "control-1", control=True)
    try:
        yield procs
    finally:
        with contextlib.suppress(Exception):
            _kill_leftover_flow_runs()
        for p in [*procs, control]:
            p.stop()


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    from srgan.weights import save_weights

    wdir = tmp_path_factory.mktemp("weights")
    save_weights(tiny_generator(2), wdir, "srgan_x2", {"text_height": 9.0, "trained_on": "test"})
    return wdir


def make_inputs(root: Path, names: list[str]) -> Path:
    root.mkdir(parents=True)
    for i, name in enumerate(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".pdf"):
            pages = [Image.fromarray(text_like_page(150, 120, s)) for s in (i, i + 1)]
            pages[0].save(root / name, save_all=True, append_images=pages[1:], resolution=50)
        elif name.startswith("empty"):
            (root / name).write_bytes(b"")
        else:
            Image.fromarray(text_like_page(90, 80, i)).save(root / name, dpi=(100, 100))
    return root


def run_deployment_and_wait(name: str, parameters: dict, workers: list[Proc]) -> UUID:
    """Create a run of the deployment, wait until it is final, assert Completed; its flow run id."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name(name)
        run = client.create_flow_run_from_deployment(dep.id, parameters=parameters)
        return wait_completed(client, run.id, workers)


def wait_completed(client, run_id: UUID, workers: list[Proc]) -> UUID:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        state = client.read_flow_run(run_id).state
        if state and state.is_final():
            if not state.is_completed():
                logs = client.read_logs()
                text = "\n".join(f"{lg.level} {lg.message}" for lg in logs if lg.flow_run_id == run_id)
                pytest.fail(f"run {run_id} ended {state.type.value}: {state.message}\n{text[-3000:]}")
            return run_id
        time.sleep(0.5)
    pytest.fail(f"run {run_id} not final after {RUN_TIMEOUT_S} s\n" + "\n---\n".join(w.tail() for w in workers))


def artifacts_of(run_id: UUID) -> dict[str, object]:
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id])))
    return {a.key: a for a in arts}


def test_deploy_creates_pool_limit_and_deployments(server, deployed):
    from prefect import get_client

    assert sorted(deployed) == sorted(["upscale/upscale-folder", "upscale-sharded/nightly-upscale",
                                       "train/train-weights", "upscale-sharded/upscale-sharded"])
    with get_client(sync_client=True) as client:
        assert client.read_work_pool("srgan").type == "process"
        gcl = client.read_global_concurrency_limit_by_name("srgan-gpu")
        assert gcl.limit == 1 and gcl.active
        for full in deployed:
            dep = client.read_deployment_by_name(full)
            assert dep.work_pool_name == "srgan"
            (step,) = dep.pull_steps
            assert step["prefect.deployments.steps.set_working_directory"]["directory"] == str(REPO)
        nightly = client.read_deployment_by_name("upscale-sharded/nightly-upscale")
        assert nightly.work_queue_name == "control" and nightly.parameters["shards"] == 0  # units over the pool
        assert client.read_deployment_by_name("upscale/upscale-folder").work_queue_name == "default"
        (sched,) = nightly.schedules
        assert sched.schedule.cron == "0 2 * * *" and sched.schedule.timezone == "Europe/London" and sched.active
        assert nightly.parameters["input_path"] == "inbox"
        train = client.read_deployment_by_name("train/train-weights")
        assert set(train.parameter_openapi_schema["properties"]) >= {"data", "scale", "config_path", "resume"}
    # deploying again changes nothing and does not fail
        pool_env = client.read_work_pool("srgan").base_job_template["variables"]["properties"]["env"]
        assert pool_env["default"]["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == str(HEARTBEAT_S)
        (crash,) = client.read_automations_by_name("srgan: crash flow runs without heartbeat")
        assert crash.trigger.within.total_seconds() == CRASHED_AFTER_S and crash.enabled
        assert {"prefect.flow-run.Pending", "prefect.flow-run.Running"} <= crash.trigger.after  # before a heartbeat
        (again_,) = client.read_automations_by_name("srgan: reschedule crashed runs")
        assert again_.trigger.expect == {"prefect.flow-run.Crashed", "prefect.flow-run.Failed"} and again_.enabled
    again = subprocess.run([sys.executable, "-m", "flows.deploy", str(server.home / "deploy-pipeline.yaml")],
                           env=server.env, cwd=REPO, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr


def test_upscale_folder_run_records_artifacts_then_nightly_adds_nothing(workers, weights_dir, tmp_path):
    inputs = make_inputs(tmp_path / "inbox", ["a.png", "sub/b.png", "c.pdf", "empty.png"])
    cfg = write_config(tmp_path, weights_dir, "flow:\n  pages_per_task: 1\n")
    out = tmp_path / "out"
    params = {"input_path": str(inputs), "output_dir": str(out), "scale": 2, "config_path": str(cfg)}
    run_id = run_deployment_and_wait("upscale/upscale-folder", params, workers)

    rows = read_records(out / "records").to_pylist()
    assert len(rows) == 5 and sum(r["status"] == "error" for r in rows) == 1
    assert {(r["member"], r["page_index"]) for r in rows} == {("a.png", 0), ("sub/b.png", 0), ("c.pdf", 0),
                                                               ("c.pdf", 1), ("empty.png", 0)}
    arts = artifacts_of(run_id)
    assert arts["upscale-progress"].type == "progress" and float(arts["upscale-progress"].data) == 100.0
    assert arts["upscale-progress"].updated > arts["upscale-progress"].created  # updated while pages went by
    (table,) = json.loads(arts["upscale-summary"].data) if isinstance(arts["upscale-summary"].data, str) \
        else arts["upscale-summary"].data
    assert table["pages"] == 5 and table["errors"] == 1 and table["weights"] == "srgan_x2.pt"
    assert table["pages_per_s"] > 0 and table["mean_consistency_gain_db"] is not None
    md = arts["upscale-outputs"].data
    assert str(out / "records") in md and "side-by-side" in md
    pictures = sorted((out / "compare").glob("**/*.png"))
    assert pictures and all(str(p) in md for p in pictures)

    # the nightly deployment over the same inbox and output: nothing new, so no new ok rows (pages
    # that failed, here the empty file, are tried again on every run: srgan/pipeline/resume.py)
    nightly = {k: v for k, v in params.items() if k != "scale"}
    run_deployment_and_wait("upscale-sharded/nightly-upscale", nightly, workers)
    first_runs = {r["run_id"] for r in rows}
    new = [r for r in read_records(out / "records").to_pylist() if r["run_id"] not in first_runs]
    assert all(r["status"] == "error" and r["member"] == "empty.png" for r in new), new


def submitted_by(workers: list[Proc]) -> dict[str, str]:
    """{flow run id: worker name} from the workers' logs ("Worker 'w' submitting flow run 'id'")."""
    import re

    found = {}
    for w in workers:
        for m in re.finditer(r"Worker '([^']+)' submitting flow run '([0-9a-f-]+)'", w.log.read_text(errors="replace")):
            found[m.group(2)] = m.group(1)
    return found


def test_sharded_night_spreads_its_units_over_both_workers(workers, weights_dir, tmp_path):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    from flows.upscale import discover_documents, shard_of
    from srgan.config import load_config, to_dict

    inputs = make_inputs(tmp_path / "in", [f"doc{i}.png" for i in range(12)] + ["c.pdf"])
    cfg = write_config(tmp_path, weights_dir)
    out = tmp_path / "out"
    docs = discover_documents.fn([str(inputs)], to_dict(load_config(cfg)))
    assert {shard_of(d, 4) for d in docs} == {0, 1, 2, 3}  # the names above fall into every unit
    params = {"input_path": str(inputs), "output_dir": str(out), "shards": 4, "config_path": str(cfg)}
    parent = run_deployment_and_wait("upscale-sharded/upscale-sharded", params, workers)

    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])))
    assert sorted(r.parameters["shard_index"] for r in children) == [0, 1, 2, 3]  # each unit run once
    assert all(r.state.is_completed() and r.parameters["shard_count"] == 4 for r in children)
    by = submitted_by(workers)
    ran = {by[str(r.id)] for r in children}
    assert ran == {"worker-1", "worker-2"}, by  # one run at a time each: the units spread over both
    assert str(parent) not in {k for k, v in by.items() if v.startswith("worker-")}  # the parent is the control's
    rows = read_records(out / "records").to_pylist()
    keys = [(r["member"], r["page_index"]) for r in rows]
    assert len(keys) == len(set(keys)) == 14  # 12 pictures + 2 PDF pages, each once, one dataset
    assert len({r["run_id"] for r in rows}) == 4
    arts = artifacts_of(parent)
    table = arts["upscale-units"].data
    table = json.loads(table) if isinstance(table, str) else table
    assert sorted(r["unit"] for r in table) == [0, 1, 2, 3]
    assert all(r["state"] == "COMPLETED" and r["attempts"] == 1 for r in table)
    # one report for the night, from the parent; the units write none
    md = arts["night-report"].data
    assert str(out / "report.html") in md and "**14** pages: **14** ok, **0** failed" in md
    assert "](data:image/png;base64," in md and (out / "report.html").read_text().count("<img ") >= 3
    assert not any("upscale-report" in artifacts_of(r.id) for r in children)


def test_dask_option_runs_cpu_stages_on_a_local_cluster(workers, weights_dir, tmp_path):
    from distributed import LocalCluster

    inputs = make_inputs(tmp_path / "in", ["a.png", "b.png", "c.pdf"])
    out = tmp_path / "out"
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster:
        cfg = write_config(tmp_path, weights_dir, f"flow:\n  pages_per_task: 1\n  task_runner: dask\n"
                                                  f"  dask_address: {cluster.scheduler_address}\n")
        params = {"input_path": str(inputs), "output_dir": str(out), "scale": 2, "config_path": str(cfg)}
        run_deployment_and_wait("upscale/upscale-folder", params, workers)
        ran = set(cluster.scheduler.task_prefixes)
    rows = read_records(out / "records").to_pylist()
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    assert ran == {"decode_and_normalise", "write_pages"}  # the CPU stages; inference stays with the flow


GUARD_CHECK = """
from prefect import get_client
from prefect.concurrency.sync import concurrency
from flows.upscale import GpuLimitError, gpu_slot
try:
    with gpu_slot("no-such-limit", "cuda"):
        print("MISSING: ran unguarded")
except GpuLimitError as exc:
    print("MISSING:", exc)
with gpu_slot("no-such-limit", "cpu"):
    print("CPU: not guarded")
with get_client(sync_client=True) as client, gpu_slot("srgan-gpu", "cuda:0"):
    print("HELD:", client.read_global_concurrency_limit_by_name("srgan-gpu").active_slots)
    try:
        with concurrency("srgan-gpu", occupy=1, timeout_seconds=1, strict=True):
            print("SECOND: acquired")
    except TimeoutError:
        print("SECOND: waited")
with get_client(sync_client=True) as client:
    print("AFTER:", client.read_global_concurrency_limit_by_name("srgan-gpu").active_slots)
"""


def test_gpu_guard_holds_the_limit_and_fails_clearly_without_it(server, deployed):
    """gpu_slot against the server, in a process of its own (as a flow run would be)."""
    out = subprocess.run([sys.executable, "-c", GUARD_CHECK], env=server.env, cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(ln.split(": ", 1) for ln in out.stdout.splitlines() if ": " in ln)
    assert lines["MISSING"].startswith("GPU concurrency limit 'no-such-limit' does not exist on the Prefect server: "
                                       "create it with `srgan deploy`")
    assert lines["CPU"] == "not guarded"
    assert lines["HELD"] == "1"  # the slot is held while the model runs
    assert lines["SECOND"] == "waited"  # a second run on the same GPU has to wait
    assert lines["AFTER"] == "0"


@pytest.mark.gpu
def test_deployment_run_on_cuda_without_the_limit_fails_in_one_line(workers, weights_dir, tmp_path):
    """Runs of a deployment never create the limit: with it gone they fail, naming it, and run nothing."""
    import torch
    from prefect import get_client

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device: CPU runs take no GPU slot")
    inputs = make_inputs(tmp_path / "in", ["a.png"])
    cfg = write_config(tmp_path, weights_dir)
    params = {"input_path": str(inputs), "output_dir": str(tmp_path / "out"), "config_path": str(cfg)}
    with get_client(sync_client=True) as client:
        client.delete_global_concurrency_limit_by_name("srgan-gpu")
        try:
            run = client.create_flow_run_from_deployment(
                client.read_deployment_by_name("upscale/upscale-folder").id, parameters=params)
            deadline = time.monotonic() + RUN_TIMEOUT_S
            while not ((state := client.read_flow_run(run.id).state) and state.is_final()):
                assert time.monotonic() < deadline, "run not final"
                time.sleep(0.5)
        finally:
            from flows.deploy import ensure_concurrency_limit

            ensure_concurrency_limit("srgan-gpu", 1)
    assert state.is_failed()
    assert "GPU concurrency limit 'srgan-gpu' does not exist" in state.message
    assert read_records(tmp_path / "out" / "records").num_rows == 0


# ------------------------------------------------------------------ overlap, dead worker, server restart

def _final_state(client, run_id: UUID, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = client.read_flow_run(run_id).state
        if state and state.is_final():
            return state
        time.sleep(1)
    return client.read_flow_run(run_id).state


def _one_task_per_page_run(tmp_path: Path, weights_dir: Path, names: list[str]) -> tuple[Path, Path, Path, dict]:
    """Pages named `names`, a config with one page per task (a run long enough to interrupt), the
    output folder and the deployment parameters of a run over them."""
    inputs = make_inputs(tmp_path / "in", names)
    cfg = write_config(tmp_path, weights_dir, "flow:\n  pages_per_task: 1\n")
    out = tmp_path / "out"
    return inputs, cfg, out, {"input_path": str(inputs), "output_dir": str(out), "scale": 2, "config_path": str(cfg)}


def _wait_running_with_records(client, run_id: UUID, records: Path, timeout_s: float = RUN_TIMEOUT_S) -> None:
    """Until the run is Running and has written at least one records part (so it is mid-run)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state = client.read_flow_run(run_id).state
        assert not (state and state.is_final()), f"run ended {state.type.value} before it could be interrupted"
        if state and state.is_running() and records.is_dir() and any(records.glob("part-*.parquet")):
            return
        time.sleep(0.2)
    pytest.fail(f"run {run_id} wrote no records within {timeout_s} s")


def _each_page_once(out: Path, expected: set[tuple[str, int]]) -> None:
    """ok rows: every expected page exactly once; its page file whole; no partial (.tmp) files anywhere."""
    ok = [(r["member"], r["page_index"]) for r in read_records(out / "records").to_pylist() if r["status"] == "ok"]
    assert sorted(ok) == sorted(expected), f"{len(ok)} ok rows for {len(expected)} pages"
    assert not [p for p in out.rglob("*.tmp")], "partial files left"
    for page in (out / "pages").glob("*.png"):
        Image.open(page).verify()


def _deployment_slots(client, name: str) -> int:
    dep = client.read_deployment_by_name(name)
    return client.read_global_concurrency_limit_by_name(dep.global_concurrency_limit.name).active_slots


def _pid_of(run) -> int:
    return int(run.infrastructure_pid.rsplit(":", 1)[-1])


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _units(client, parent_id: UUID) -> list:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    return client.read_flow_runs(flow_run_filter=FlowRunFilter(
        parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent_id])))


def test_unit_killed_in_its_first_second_is_crashed_run_again_and_the_night_completes(
        server, workers, weights_dir, tmp_path):
    """A night of 2 units on the 2 unit workers. One unit's worker and flow-run process are SIGKILLed
    as soon as the unit runs (before any heartbeat): the automation armed on Running marks it Crashed,
    the reschedule automation runs it again, and the night completes with no person: every page once,
    no partial files. Meanwhile a one-off run on the same folder is refused, naming the unit holding it."""
    from prefect import get_client

    names = [f"p{i:02d}.png" for i in range(80)]
    inputs, cfg, out, params = _one_task_per_page_run(tmp_path, weights_dir, names)
    night = {"input_path": str(inputs), "output_dir": str(out), "config_path": str(cfg), "shards": 2}
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("upscale-sharded/nightly-upscale")
        parent = client.create_flow_run_from_deployment(dep.id, parameters=night)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while not (running := [u for u in _units(client, parent.id) if u.state.is_running() and u.infrastructure_pid]):
            assert time.monotonic() < deadline, "no unit started"
            time.sleep(0.1)
        victim = running[0]
        flow_pid = _pid_of(victim)
        holder = next(w for w in workers if w.popen.pid == _parent(flow_pid))
        os.killpg(holder.popen.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(flow_pid, signal.SIGKILL)
        holder.popen.wait(10)
        killed_at = time.monotonic()
        workers[workers.index(holder)] = start_worker(server, f"{Path(holder.log).stem}-2")

        second = subprocess.run([sys.executable, "-m", "srgan.cli", "upscale", str(inputs), "--out", str(out),
                                 "--config", str(cfg), "--no-progress"], env=server.env, cwd=REPO,
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 2, second.stdout + second.stderr
        (line,) = second.stderr.strip().splitlines()
        assert "is in use by flow run unit-" in line, line

        deadline = time.monotonic() + HEARTBEAT_S + CRASHED_AFTER_S + 60
        while client.read_flow_run(victim.id).run_count < 2 or not client.read_flow_run(victim.id).state.is_running():
            state = client.read_flow_run(victim.id).state
            if state.is_completed():
                break
            assert time.monotonic() < deadline, f"unit not run again: {state.type.value} {state.message}"
            time.sleep(1)
        print(f"unit running again {time.monotonic() - killed_at:.0f} s after the kill")
        history = [s.name for s in client.read_flow_run_states(victim.id)]
        assert "Crashed" in history and "Rescheduled" in history, history
        final = _final_state(client, parent.id, RUN_TIMEOUT_S + 60)
        assert final.is_completed(), (final.type.value, final.message)
        units = _units(client, parent.id)
        assert sorted(u.parameters["shard_index"] for u in units) == [0, 1] and all(u.state.is_completed()
                                                                                    for u in units)
        assert client.read_flow_run(victim.id).run_count == 2
        assert _deployment_slots(client, "upscale-sharded/nightly-upscale") == 0
    _each_page_once(out, {(n, 0) for n in names})


def test_server_restart_mid_night_and_the_night_completes_every_page_once(server, workers, weights_dir, tmp_path):
    """The server stops (SIGTERM) while a night runs and comes back on the same database: the night
    ends Completed with no person (units that failed or crashed meanwhile are run again by the
    automation), every page once, and the deployment's concurrency slot is free again."""
    from prefect import get_client

    names = [f"q{i:02d}.png" for i in range(30)]
    inputs, cfg, out, params = _one_task_per_page_run(tmp_path, weights_dir, names)
    night = {"input_path": str(inputs), "output_dir": str(out), "config_path": str(cfg), "shards": 2}
    with get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("upscale-sharded/nightly-upscale")
        parent = client.create_flow_run_from_deployment(dep.id, parameters=night)
        _wait_running_with_records(client, parent.id, out / "records")
    assert list((server.home / "concurrency_leases").glob("*.json")), "the night's slot lease is not on disk"
    server.stop()
    time.sleep(5)
    server.start()
    with get_client(sync_client=True) as client:
        state = _final_state(client, parent.id, 3 * (HEARTBEAT_S + CRASHED_AFTER_S) + RUN_TIMEOUT_S)
        print(f"night after the server restart: {state.type.value} {state.message}")
        assert state.is_completed(), (state.type.value, state.message)
        deadline = time.monotonic() + 60
        while _deployment_slots(client, "upscale-sharded/nightly-upscale") and time.monotonic() < deadline:
            time.sleep(1)
        assert _deployment_slots(client, "upscale-sharded/nightly-upscale") == 0
    _each_page_once(out, {(n, 0) for n in names})
