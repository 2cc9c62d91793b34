"""``srgan deploy`` / ``make deploy``: everything the deployments need on the Prefect server.

Against the server at ``PREFECT_API_URL``, idempotently:

1. the work pool of ``prefect.yaml`` (``srgan``, type ``process``);
2. the GPU global concurrency limit named by ``flow.gpu_concurrency_limit`` (1 slot), which the
   ``infer`` task of ``flows/upscale.py`` holds on CUDA;
3. every deployment of ``prefect.yaml``, by running ``prefect deploy --all`` from the project root
   (so the file stays the one description of the deployments, and its build step records this
   checkout's path for the ``set_working_directory`` pull step);
4. dead-worker detection: the pool's runs get ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``
   (``flow.heartbeat_seconds``) in their environment, and the automation ``CRASH_AUTOMATION``
   marks a flow run Crashed when no heartbeat (nor a final state) came for
   ``flow.crashed_after_seconds`` (docs/v3/advanced/detect-zombie-flows; PrefectHQ/prefect#16746:
   without it a run whose worker was killed stays Running for ever). It arms on the run's Pending
   and Running states as well as on each heartbeat, so a run killed before its first heartbeat (a
   machine that dies while loading the model) is noticed too. A Crashed run gives its deployment
   concurrency slot back.
5. recovery without a person: the automation ``RESCHEDULE_AUTOMATION`` puts every Crashed or Failed
   run of a deployment tagged ``srgan`` back to Scheduled, so another worker runs it again (same flow
   run, same parameters; finished pages are skipped, srgan/pipeline/resume.py). The flows bound it
   (flows/recovery.py): past ``flow.max_attempts`` a run ends Failed under the state name ``GaveUp``,
   which the automation does not match.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import yaml
from prefect import get_client
from prefect.exceptions import ObjectNotFound
from prefect.settings import get_current_settings

from srgan.config import ConfigError, load_config

log = logging.getLogger(__name__)

PROJECT = Path(__file__).resolve().parents[1]
PREFECT_FILE = PROJECT / "prefect.yaml"
POOL_TYPE = "process"


class DeployError(RuntimeError):
    """A deployment step failed (one line)."""


def api_url() -> str:
    """The server to deploy to; the ephemeral API would vanish with this process, so it is refused."""
    url = get_current_settings().api.url
    if not url:
        raise ConfigError("PREFECT_API_URL: not set; start a server (`prefect server start`) and "
                          "export PREFECT_API_URL=http://127.0.0.1:4200/api")
    return url


def ensure_work_pool(name: str, pool_type: str = POOL_TYPE) -> bool:
    """Create the work pool unless it exists; True when created."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            pool = client.read_work_pool(name)
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template() if pool_type == "process" else {}
            client.create_work_pool(WorkPoolCreate(name=name, type=pool_type, base_job_template=template))
            log.info("work pool %s (%s) created", name, pool_type)
            return True
    if pool.type != pool_type:
        raise DeployError(f"work pool {name!r} exists with type {pool.type!r}, expected {pool_type!r}")
    return False


HEARTBEAT_ENV = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
CRASH_AUTOMATION = "srgan: crash flow runs without heartbeat"
RESCHEDULE_AUTOMATION = "srgan: reschedule crashed runs"
DEPLOYMENT_TAG = "srgan"  # every deployment of prefect.yaml carries it; the reschedule automation matches it


def ensure_heartbeat_env(pool_name: str, heartbeat_seconds: int) -> None:
    """Make the heartbeat frequency a default of the pool's job environment (runs of every deployment)."""
    import copy

    from prefect.client.schemas.actions import WorkPoolUpdate

    with get_client(sync_client=True) as client:
        pool = client.read_work_pool(pool_name)
        template = copy.deepcopy(pool.base_job_template)
        env = template.setdefault("variables", {}).setdefault("properties", {}).setdefault("env", {})
        defaults = dict(env.get("default") or {})
        if defaults.get(HEARTBEAT_ENV) == str(heartbeat_seconds):
            return
        defaults[HEARTBEAT_ENV] = str(heartbeat_seconds)
        env["default"] = defaults
        client.update_work_pool(pool_name, WorkPoolUpdate(base_job_template=template))
    log.info("work pool %s: flow runs send a heartbeat every %d s", pool_name, heartbeat_seconds)


def _delete_automations(name: str) -> None:
    """Remove the automations of that name (each ensure_* function then creates its one afresh)."""
    with get_client(sync_client=True) as client:
        for old in client.read_automations_by_name(name):
            client.delete_automation(old.id)


def ensure_crash_automation(silent_after_s: int, name: str = CRASH_AUTOMATION) -> None:
    """The automation that marks a flow run Crashed after `silent_after_s` without heartbeat or end (replaced)."""
    from datetime import timedelta

    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    _delete_automations(name)
    Automation(
        name=name,
        description="Marks a flow run Crashed when its heartbeats stop (its worker or machine died).",
        trigger=EventTrigger(
            # armed by Pending and Running too: a run killed before its first heartbeat is also noticed
            after={"prefect.flow-run.heartbeat", "prefect.flow-run.Pending", "prefect.flow-run.Running"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed", "prefect.flow-run.Cancelling",
                    "prefect.flow-run.Scheduled", "prefect.flow-run.AwaitingRetry", "prefect.flow-run.Paused",
                    "prefect.flow-run.Rescheduled", "prefect.flow-run.GaveUp", "prefect.flow-run.Incomplete"},
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=silent_after_s),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, name="Crashed",
                                    message=f"no heartbeat for {silent_after_s} s: its worker or machine died")],
    ).create()
    log.info("automation %r: runs silent for %d s are marked Crashed", name, silent_after_s)


def ensure_reschedule_automation(name: str = RESCHEDULE_AUTOMATION, tag: str = DEPLOYMENT_TAG) -> None:
    """The automation that puts a Crashed or Failed run of a deployment tagged `tag` back to Scheduled
    (replaced if it exists).

    Leaving Crashed or Failed for Scheduled is an ordinary transition for deployment runs (no force).
    The flows bound the attempts themselves (flow.max_attempts against the run count): a run out of
    attempts ends Failed under the state name GaveUp, whose event this automation does not match."""
    from prefect.automations import Automation
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    _delete_automations(name)
    Automation(
        name=name,
        description="Runs a crashed deployment run again on whichever worker of the pool is free.",
        trigger=EventTrigger(
            expect={"prefect.flow-run.Crashed", "prefect.flow-run.Failed"},  # state names, not GaveUp
            match=ResourceSpecification({"prefect.resource.id": ["prefect.flow-run.*"]}),
            match_related=ResourceSpecification({"prefect.resource.role": "tag",
                                                 "prefect.resource.id": [f"prefect.tag.{tag}"]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
        ),
        actions=[ChangeFlowRunState(state=StateType.SCHEDULED, name="Rescheduled",
                                    message="crashed or failed: scheduled again by srgan's automation")],
    ).create()
    log.info("automation %r: crashed or failed runs tagged %s are scheduled again", name, tag)


def ensure_concurrency_limit(name: str, limit: int = 1) -> None:
    """Create the global concurrency limit (or set its size back to `limit`) and make it active."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(name, limit)
        if not client.read_global_concurrency_limit_by_name(name).active:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active=True))
    log.info("global concurrency limit %s: %d slot(s)", name, limit)


def create_limit_if_missing(name: str, limit: int = 1) -> bool:
    """Create the global concurrency limit when it does not exist (an existing one is left as it is)."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
            return False
        except ObjectNotFound:
            pass
        with contextlib.suppress(ObjectAlreadyExists):  # another run made it meanwhile
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=limit))
    log.info("global concurrency limit %s created: %d slot(s)", name, limit)
    return True


def planned(prefect_file: Path = PREFECT_FILE) -> list[dict]:
    """The deployments prefect.yaml declares: name, entrypoint and work pool of each."""
    spec = yaml.safe_load(Path(prefect_file).read_text()) or {}
    out = []
    for d in spec.get("deployments") or []:
        pool = (d.get("work_pool") or {}).get("name")
        if not d.get("name") or not d.get("entrypoint") or not pool:
            raise DeployError(f"{prefect_file}: every deployment needs name, entrypoint and work_pool.name ({d!r})")
        out.append({"name": d["name"], "entrypoint": d["entrypoint"], "work_pool": pool})
    return out


def deploy(config_path: str | None = None, prefect_file: Path = PREFECT_FILE, timeout_s: float = 600) -> list[str]:
    """Work pool, GPU concurrency limit and deployments on PREFECT_API_URL; returns 'flow/deployment' names."""
    url = api_url()
    cfg = load_config(config_path)
    wanted = planned(prefect_file)
    for pool in sorted({d["work_pool"] for d in wanted}):
        ensure_work_pool(pool)
        ensure_heartbeat_env(pool, cfg.flow.heartbeat_seconds)
    ensure_crash_automation(cfg.flow.crashed_after_seconds)
    ensure_reschedule_automation()
    if cfg.flow.gpu_concurrency_limit:
        ensure_concurrency_limit(cfg.flow.gpu_concurrency_limit, 1)
    env = {**os.environ, "PREFECT_API_URL": url, "PREFECT_CLI_WRAP_LINES": "false", "PREFECT_CLI_COLORS": "false"}
    cmd = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", str(prefect_file)]
    try:
        proc = subprocess.run(cmd, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise DeployError(f"prefect deploy --all: no answer within {timeout_s:.0f} s") from exc
    output = (proc.stdout or "") + (proc.stderr or "")
    if proc.returncode != 0:
        log.warning("prefect deploy --all output:\n%s", output)
        last = [ln.strip(" │╭╮╰╯─") for ln in output.splitlines() if ln.strip(" │╭╮╰╯─")]
        raise DeployError(f"prefect deploy --all failed (exit {proc.returncode}): {last[-1] if last else 'no output'}")
    log.debug("prefect deploy --all output:\n%s", output)
    return _check_deployed([d["name"] for d in wanted])


def _check_deployed(names: list[str]) -> list[str]:
    """'flow/deployment' for every name, read back from the server (DeployError if one is missing)."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with get_client(sync_client=True) as client:
        by_name = DeploymentFilter(name=DeploymentFilterName(any_=names))
        found = client.read_deployments(deployment_filter=by_name)
        flows = {f.id: f.name for f in client.read_flows(deployment_filter=by_name)}
    have = {d.name: f"{flows.get(d.flow_id, '?')}/{d.name}" for d in found}
    missing = [n for n in names if n not in have]
    if missing:
        raise DeployError(f"deployments missing on the server after prefect deploy: {', '.join(missing)}")
    return [have[n] for n in names]


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    for full_name in deploy(sys.argv[1] if len(sys.argv) > 1 else None):
        print(full_name)
