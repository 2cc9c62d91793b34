"""The bench's runtimes case (srgan/bench/runtimes.py) on a tiny generator and one small page."""

import dataclasses

import numpy as np

from srgan.bench.runtimes import bench_runtimes, format_runtime_row
from srgan.config import PipelineConfig, TilingConfig
from tests.test_runtimes import page, tiny


def test_rows_compare_each_runtime_with_the_first(tmp_path):
    cfg = PipelineConfig()
    cfg = dataclasses.replace(cfg, tiling=TilingConfig(tile=32, overlap=8, cpu_tile=32, cpu_batch_size=2),
                              engine=dataclasses.replace(cfg.engine, runtime_cache=str(tmp_path)))
    hr = page(3, (96, 128))
    rows = list(bench_runtimes(cfg, [("tiny", tiny())], [hr], ("torch:fp32", "torch:bf16", "onnxruntime-int8"),
                               repeats=1))
    assert [r["asked"] for r in rows] == ["torch:fp32", "torch:bf16", "onnxruntime-int8"]
    assert rows[0]["psnr_vs_first"] == 0 and rows[0]["precision"] == "fp32"
    assert rows[1]["precision"] == "bf16" and abs(rows[1]["psnr_vs_first"]) < 0.5
    assert rows[2]["runtime"] == "torch"  # no int8 file: the fallback, and the row says so
    assert "(fell back)" in format_runtime_row(rows[2])
    assert all(r["seconds_per_page"] > 0 and np.isfinite(r["psnr"]) for r in rows)
