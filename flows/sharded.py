"""Prefect flow ``upscale_sharded``: one night's documents split into units that every worker shares.

The documents are discovered (and hashed) once, here, and split into ``shards`` units by a hash of
their output name (``flows.upscale.shard_of``); each unit is a run of the ``upscale/upscale-folder``
deployment with ``shard_index`` and ``shard_count`` and ``documents``, its list written to
``OUT/.units/<parent run id>/`` (removed once every unit has settled), so no unit discovers again.
Unit workers take one run at a time (``srgan worker``: ``--limit 1`` on the pool's ``default`` queue),
so the units spread over every worker of the pool as each frees up; this parent run waits on the
``control`` queue and takes no unit worker's slot. ``shards: 0`` makes ``flow.units_per_worker`` units
per online unit worker.

Recovery is Prefect's (flows/deploy.py, flows/recovery.py): a unit whose run crashed (its worker or
machine died) or failed is scheduled again by ``srgan deploy``'s automation, at most
``flow.max_attempts`` times, and redoes only the pages not yet in the records; a unit the automation
has not scheduled again within ``RESUBMIT_S`` (its event lost in a server restart) is scheduled again by
this parent. The parent counts a unit as settled when it completed, gave up, or stayed Crashed/Failed
longer than ``settle_s``. If the parent itself dies, the same automation runs it again: it finds its units by
their idempotency keys (its own flow run id) instead of starting new ones, and waits on.
The run's table artifact names every unit, its attempts and its final state.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import prefect.runtime
from prefect import flow, get_client, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
    WorkerFilter,
    WorkerFilterStatus,
)
from prefect.deployments import run_deployment
from prefect.states import Failed, Scheduled

from flows.recovery import GAVE_UP, gives_up_after_max_attempts
from flows.upscale import attach_report, discover_documents, resolve_config, shard_of
from srgan.atomic import atomic_write_bytes
from srgan.config import to_dict
from srgan.readers.refs import refs_to_json
from srgan.storage.files import is_url, join, list_names, remove
from srgan.storage.files import normalise as location
from srgan.weights import resolve_weights

DEPLOYMENT = "upscale/upscale-folder"
RESUBMIT_S = 30.0  # a Crashed/Failed unit the automation has not scheduled again by then: the parent does
SETTLE_S = 300.0  # a Crashed/Failed unit still not running again after this long is taken as final


@dataclass
class Unit:
    index: int
    documents: int
    flow_run_id: UUID | None = None
    state: str = "SCHEDULED"  # state type, or the state name for GaveUp
    attempts: int = 0
    ended_at: float | None = None  # monotonic time it was first seen Crashed/Failed (None: not ended)

    def row(self) -> dict:
        return {"unit": self.index, "documents": self.documents, "flow_run_id": str(self.flow_run_id),
                "attempts": self.attempts, "state": self.state}


CONTROL_PREFIX = "control-"  # `srgan worker --control` names its workers so; they run parents, not units


def online_unit_workers(deployment: str) -> int:
    """Online workers of the deployment's pool that take units (0 when the server cannot tell)."""
    with get_client(sync_client=True) as client:
        try:
            pool = client.read_deployment_by_name(deployment).work_pool_name
            workers = client.read_workers_for_work_pool(
                pool, worker_filter=WorkerFilter(status=WorkerFilterStatus(any_=["ONLINE"])))
        except Exception:  # noqa: BLE001 - no pool or no worker status: the caller falls back to one worker
            return 0
    return sum(not w.name.startswith(CONTROL_PREFIX) for w in workers)


def unit_count(shards: int, documents: int, deployment: str, units_per_worker: int) -> int:
    """shards when given; else units_per_worker per online unit worker (at least 1, at most one per document)."""
    if shards > 0:
        return shards
    workers = max(1, online_unit_workers(deployment))
    return max(1, min(documents, workers * units_per_worker))


@flow(name="upscale-sharded")
@gives_up_after_max_attempts("config_path")
def upscale_sharded(
    input_path: str | list[str],
    output_dir: str,
    shards: int = 2,
    scale: int | None = None,
    config_path: str | None = None,
    weights: str | None = None,
    normalise: bool | None = None,
    deployment: str = DEPLOYMENT,
    poll_s: float = 2.0,
    timeout_s: float | None = None,
    settle_s: float = SETTLE_S,
) -> dict:
    """Run every non-empty unit of the documents under input_path as a run of `deployment`; wait for all.

    shards: the number of units; 0 = flow.units_per_worker per online worker of the pool.
    scale, config_path, weights, normalise: the choices of the folder deployment, handed to every unit
    (the weights are resolved here first, so a wrong name fails the night before any unit starts)."""
    logger = get_run_logger()
    if shards < 0:
        raise ValueError(f"shards: must be >= 0 (0 = one unit per online worker x flow.units_per_worker), got {shards}")
    cfg = resolve_config(config_path, scale, weights, normalise)
    resolve_weights(cfg.upscale.weights, cfg.upscale.weights_dir, cfg.upscale.scale)
    inputs = [input_path] if isinstance(input_path, str) else list(input_path)
    docs = discover_documents(inputs, to_dict(cfg))
    parent = prefect.runtime.flow_run.id
    adopted = existing_units(parent) if parent else {}
    count = next(iter(adopted.values()))[1] if adopted else unit_count(
        shards, len(docs), deployment, cfg.flow.units_per_worker)
    by_unit: dict[int, list] = defaultdict(list)  # each document hashed to its unit once
    for d in docs:
        by_unit[shard_of(d, count)].append(d)
    logger.info("%d documents in %d units%s: %s", len(docs), count, " (adopted after a restart)" if adopted else "",
                ", ".join(f"{i}: {len(by_unit.get(i, ()))}" for i in range(count)))
    base = {"input_path": input_path, "output_dir": output_dir, "scale": scale, "config_path": config_path,
            "weights": weights, "normalise": normalise}
    units = {i: Unit(i, len(by_unit[i])) for i in sorted(by_unit)}
    lists = join(location(output_dir), ".units", str(parent or uuid.uuid4()))
    for i, unit in units.items():
        if i in adopted:
            unit.flow_run_id = adopted[i][0]
            continue
        # the unit's documents, discovered (and hashed) once here: the unit run reads them instead of
        # streaming every archive of the night again
        listing = str(join(lists, f"unit-{i}-of-{count}.json"))
        atomic_write_bytes(listing, refs_to_json(by_unit[i]))
        run = run_deployment(deployment, parameters={**base, "shard_index": i, "shard_count": count,
                                                     "documents": listing},
                             flow_run_name=f"unit-{i}-of-{count}", timeout=0, tags=["unit"],
                             idempotency_key=f"{parent}:{i}-of-{count}" if parent else None)
        unit.flow_run_id = run.id
    wait_for_units(units, cfg.flow.max_attempts, poll_s, timeout_s, settle_s)
    # one report for the whole night (the units write none), failed units or not
    report = attach_report(location(output_dir), cfg.records.dir, f"Night report: {output_dir}", "night-report")
    for name in list_names(lists, ".json"):  # every unit has settled: its list is no longer read
        remove(join(lists, name))
    if not is_url(lists):
        with contextlib.suppress(OSError):
            Path(lists).rmdir()
            Path(lists).parent.rmdir()
    rows = [u.row() for u in sorted(units.values(), key=lambda u: u.index)]
    create_table_artifact(rows, key="upscale-units",
                          description=f"{len(docs)} documents in {count} units into {output_dir}")
    failed = [r for r in rows if r["state"] != "COMPLETED"]
    if failed:
        for r in failed:
            logger.error("unit %d ended %s after %d attempt(s): prefect deployment run %s --params '%s'", r["unit"],
                         r["state"], r["attempts"], deployment,
                         json.dumps({**base, "shard_index": r["unit"], "shard_count": count}))
        # not "Failed": the automation reschedules Failed runs, and the units already had their attempts
        return Failed(name="Incomplete", message=f"{len(failed)} of {len(rows)} units did not complete: "
                      + ", ".join(f"{r['unit']} ({r['state']})" for r in failed))
    return {"documents": len(docs), "units": rows, "output_dir": output_dir,
            "unit_attempts": sum(r["attempts"] for r in rows), "report": report}


def existing_units(parent: UUID) -> dict[int, tuple[UUID, int]]:
    """Units this parent started in an earlier attempt: shard_index -> (flow run id, shard_count)."""
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent])))
    return {r.parameters["shard_index"]: (r.id, r.parameters["shard_count"]) for r in runs
            if r.parameters.get("shard_index") is not None}


def wait_for_units(units: dict[int, Unit], max_attempts: int, poll_s: float, timeout_s: float | None,
                   settle_s: float) -> None:
    """Poll the unit runs until each is settled (see the module docstring); TIMED_OUT past timeout_s."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    open_units = dict(units)
    with get_client(sync_client=True) as client:
        while open_units:
            now = time.monotonic()
            for i, unit in list(open_units.items()):
                run = client.read_flow_run(unit.flow_run_id)
                state = run.state
                unit.attempts = max(unit.attempts, run.run_count)
                if state is None or not state.is_final():
                    unit.ended_at = None
                    continue
                if state.is_completed() or state.is_cancelled() or state.name == GAVE_UP:
                    unit.state = GAVE_UP if state.name == GAVE_UP else state.type.value
                    del open_units[i]
                    continue
                # Crashed or Failed: the automation schedules it again while attempts remain; if it has
                # not within RESUBMIT_S (its event lost, e.g. in a server restart), this parent does the same
                unit.ended_at = unit.ended_at or now
                if run.run_count >= max_attempts or now - unit.ended_at > settle_s:
                    unit.state = state.type.value
                    del open_units[i]
                elif now - unit.ended_at > RESUBMIT_S:
                    client.set_flow_run_state(run.id, Scheduled(
                        name="Rescheduled", message="crashed or failed: scheduled again by the night's parent"))
                    unit.ended_at = None
            if open_units:
                if deadline is not None and time.monotonic() > deadline:
                    for unit in open_units.values():
                        unit.state = "TIMED_OUT"
                    return
                time.sleep(poll_s)


if __name__ == "__main__":
    import sys

    print(json.dumps(upscale_sharded(sys.argv[1], sys.argv[2], shards=int(sys.argv[3]) if len(sys.argv) > 3 else 2),
                     indent=2, default=str))
