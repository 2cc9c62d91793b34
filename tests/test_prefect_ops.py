"""Operations pieces that need no server: shards, task runners, deployments file, deploy's refusal."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from flows.upscale import gpu_slot, outputs_markdown, select_shard, shard_of, stage_runner
from srgan.config import FlowConfig
from srgan.readers import DocumentRef


def refs(n: int) -> list[DocumentRef]:
    return [DocumentRef(source="in", container="", member=f"p{i}.png", rel_path=f"p{i}", kind="image")
            for i in range(n)]


def test_shards_partition_the_documents_deterministically():
    docs = refs(40)
    parts = [select_shard(docs, i, 3) for i in range(3)]
    assert sorted(d.rel_path for p in parts for d in p) == sorted(d.rel_path for d in docs)  # each exactly once
    assert all(parts)  # 40 names spread over all three shards
    assert parts[1] == select_shard(list(reversed(docs)), 1, 3)[::-1]  # order of discovery does not matter
    assert all(shard_of(d, 3) == 2 for d in parts[2])
    assert select_shard(docs, None, None) == docs


@pytest.mark.parametrize(("index", "count"), [(0, None), (None, 2), (2, 2), (-1, 2)])
def test_bad_shard_parameters_are_refused(index, count):
    with pytest.raises(ValueError, match="shard_index/shard_count"):
        select_shard(refs(2), index, count)


def test_every_stage_runner_is_bounded():
    from prefect.task_runners import ThreadPoolTaskRunner

    runner = stage_runner(FlowConfig(max_workers=3))
    assert isinstance(runner, ThreadPoolTaskRunner) and runner._max_workers == 3
    with pytest.raises(ValueError, match="flow.dask_address"):
        stage_runner(FlowConfig(task_runner="dask"))
    dask = stage_runner(FlowConfig(task_runner="dask", dask_address="tcp://127.0.0.1:8786"))
    assert type(dask).__name__ == "DaskTaskRunner" and dask.address == "tcp://127.0.0.1:8786"


def test_gpu_guard_applies_to_cuda_only():
    with gpu_slot("srgan-gpu", "cpu"):  # no server needed: CPU runs take no slot
        pass
    with gpu_slot("", "cuda"):  # an empty limit name turns the guard off
        pass


def test_outputs_markdown_names_pictures_and_records():
    summary = {"run_id": "r1", "pages": 3, "errors": 1, "mean_consistency_gain_db": 1.234, "pages_per_s": 2.5,
               "weights": "srgan_x2.pt", "records_dir": "/o/records", "pages_dir": "/o/pages",
               "compare_dir": "/o/compare"}
    md = outputs_markdown(summary, [Path("/o/compare/a.png")])
    assert "/o/records" in md and "`/o/compare/a.png`" in md and "1.23 dB" in md and "srgan_x2.pt" in md
    assert "none this run" in outputs_markdown({**summary, "mean_consistency_gain_db": None}, [])


def test_prefect_yaml_declares_the_deployments_of_the_flows():
    from prefect.flows import load_flow_from_entrypoint

    from flows.deploy import planned

    plan = {d["name"]: d for d in planned()}
    assert set(plan) == {"upscale-folder", "nightly-upscale", "train-weights", "upscale-sharded"}
    assert {d["work_pool"] for d in plan.values()} == {"srgan"}
    flows = {name: load_flow_from_entrypoint(d["entrypoint"]) for name, d in plan.items()}
    assert flows["upscale-folder"].name == "upscale"
    assert flows["nightly-upscale"].name == flows["upscale-sharded"].name == "upscale-sharded"  # units over the pool
    assert {"input_path", "output_dir", "scale", "config_path", "shard_index", "shard_count", "documents"} <= set(
        inspect.signature(flows["upscale-folder"].fn).parameters)
    assert {"input_path", "output_dir", "shards", "config_path"} <= set(  # the names users and schedules use
        inspect.signature(flows["upscale-sharded"].fn).parameters)
    train_params = list(inspect.signature(flows["train-weights"].fn).parameters)
    assert train_params == ["data", "scale", "config_path", "resume", "init_weights", "ocr_eval_data"]
    assert flows["upscale-sharded"].name == "upscale-sharded"


def test_srgan_deploy_without_a_server_is_one_line_exit_2(capsys):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from srgan.cli import main

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        assert main(["deploy"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("PREFECT_API_URL: not set") and "\n" not in err
