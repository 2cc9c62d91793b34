"""Prefect flow ``upscale_sharded``: one folder split across workers on several machines.

The documents are split into ``shards`` by a hash of their output name (``flows.upscale.shard_of``);
each shard is a run of the ``upscale/upscale-folder`` deployment with ``shard_index`` and
``shard_count``, so any worker of the pool may take it, and all shards write into the one records
dataset under the same ``output_dir``. A failed shard is rerun alone with the same parameters.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from uuid import UUID

from prefect import flow, get_client, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.deployments import run_deployment

from flows.upscale import discover_documents, shard_of
from srgan.config import load_config, to_dict

DEPLOYMENT = "upscale/upscale-folder"


@flow(name="upscale-sharded")
def upscale_sharded(
    input_path: str | list[str],
    output_dir: str,
    shards: int = 2,
    scale: int | None = None,
    config_path: str | None = None,
    deployment: str = DEPLOYMENT,
    poll_s: float = 2.0,
    timeout_s: float | None = None,
) -> dict:
    """Run every non-empty shard of the documents under input_path as a run of `deployment`."""
    logger = get_run_logger()
    if shards < 1:
        raise ValueError(f"shards: must be >= 1, got {shards}")
    inputs = [input_path] if isinstance(input_path, str) else list(input_path)
    docs = discover_documents(inputs, to_dict(load_config(config_path)))
    sizes = Counter(shard_of(d, shards) for d in docs)
    logger.info("%d documents in %d shards: %s", len(docs), shards,
                ", ".join(f"{i}: {sizes.get(i, 0)}" for i in range(shards)))
    base = {"input_path": input_path, "output_dir": output_dir, "scale": scale, "config_path": config_path}
    launched: dict[int, UUID] = {}
    for i in range(shards):
        if not sizes.get(i):
            continue
        run = run_deployment(deployment, parameters={**base, "shard_index": i, "shard_count": shards},
                             flow_run_name=f"shard-{i}-of-{shards}", timeout=0, tags=["shard"])
        launched[i] = run.id
    states = wait_for_runs(launched, poll_s, timeout_s)
    rows = [{"shard": i, "documents": sizes.get(i, 0), "flow_run_id": str(launched[i]), "state": states[i]}
            for i in sorted(launched)]
    create_table_artifact(rows, key="upscale-shards", description=f"{len(docs)} documents into {output_dir}")
    failed = [r for r in rows if r["state"] != "COMPLETED"]
    for r in failed:
        logger.error("shard %d ended %s; rerun it alone: prefect deployment run %s --params '%s'", r["shard"],
                     r["state"], deployment, json.dumps({**base, "shard_index": r["shard"], "shard_count": shards}))
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(rows)} shards did not complete: "
                           + ", ".join(f"{r['shard']} ({r['state']})" for r in failed))
    return {"documents": len(docs), "shards": rows, "output_dir": output_dir}


def wait_for_runs(runs: dict[int, UUID], poll_s: float, timeout_s: float | None) -> dict[int, str]:
    """Poll the flow runs until each is in a final state; their state types (TIMED_OUT when waited too long)."""
    states: dict[int, str] = {}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while len(states) < len(runs):
            for i, run_id in runs.items():
                if i not in states and (state := client.read_flow_run(run_id).state) and state.is_final():
                    states[i] = state.type.value
            if len(states) < len(runs):
                if deadline is not None and time.monotonic() > deadline:
                    return {i: states.get(i, "TIMED_OUT") for i in runs}
                time.sleep(poll_s)
    return states


if __name__ == "__main__":
    import sys

    print(json.dumps(upscale_sharded(sys.argv[1], sys.argv[2], shards=int(sys.argv[3]) if len(sys.argv) > 3 else 2),
                     indent=2, default=str))
