"""The plain runner: page order with a pool of CPU workers, PNG compression level, worker count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srgan.config import EngineConfig, PipelineConfig, load_config, output_config_hash, override
from srgan.inference.engine import Engine
from srgan.pipeline.records import read_records
from srgan.pipeline.run import cpu_stage_workers, run_pipeline
from tests.conftest import text_like_page, tiny_generator, write_config


def _cfg(tmp_path: Path, extra: str) -> PipelineConfig:
    return override(load_config(write_config(tmp_path, tmp_path, extra)), "engine.device", "cpu")


def _inputs(tmp_path: Path, n: int) -> Path:
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(n):
        Image.fromarray(text_like_page(70 + 6 * i, 60, seed=i)).save(inp / f"p{i:02d}.png")
    return inp


def test_many_workers_keep_every_page_in_order(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, "engine:\n  cpu_workers: 5\nflow:\n  pages_per_task: 3\n")
    inp = _inputs(tmp_path, 9)
    engine = Engine(tiny_generator(2), cfg.engine, cfg.tiling)
    summary = run_pipeline([str(inp)], tmp_path / "out", cfg, engine, "tiny", "w" * 64, 9.0)
    assert summary["pages"] == 9 and summary["ok"] == 9
    rows = read_records(tmp_path / "out" / "records").to_pylist()
    assert [r["member"] for r in rows] == [f"p{i:02d}.png" for i in range(9)]
    for i, r in enumerate(rows):  # each output belongs to its own input (sizes differ page by page)
        assert Image.open(r["output_path"]).size == (120, 2 * (70 + 6 * i))


def test_png_compress_level_changes_bytes_not_pixels(tmp_path: Path) -> None:
    sizes, pixels = {}, {}
    inp = _inputs(tmp_path, 1)
    for level in (0, 9):
        cfg = override(_cfg(tmp_path, ""), "upscale.png_compress_level", level)
        engine = Engine(tiny_generator(2), cfg.engine, cfg.tiling)
        out = tmp_path / f"out{level}"
        run_pipeline([str(inp)], out, cfg, engine, "tiny", "w" * 64, 9.0)
        (page,) = (out / "pages").glob("*.png")
        sizes[level], pixels[level] = page.stat().st_size, np.asarray(Image.open(page))
    assert sizes[9] < sizes[0]
    assert np.array_equal(pixels[0], pixels[9])


def test_compress_level_and_workers_do_not_change_the_rerun_key() -> None:
    cfg = PipelineConfig()
    base = output_config_hash(cfg)
    assert output_config_hash(override(override(cfg, "upscale.png_compress_level", 9), "engine.cpu_workers", 7)) == base
    assert output_config_hash(override(cfg, "tiling.tile", 64)) != base


def test_cpu_stage_workers() -> None:
    assert cpu_stage_workers(EngineConfig(cpu_workers=3), "cuda") == 3
    assert cpu_stage_workers(EngineConfig(), "cpu") == 2
    assert cpu_stage_workers(EngineConfig(), "cuda") >= 2


def test_bicubic_baseline_figure_is_that_of_its_upscale(tmp_path: Path) -> None:
    from srgan.imaging.colour import split_luma
    from srgan.imaging.metrics import bicubic_upscale, consistency_psnr
    from srgan.sample import colour_page

    inp = _inputs(tmp_path, 2)
    rgb = np.ascontiguousarray(colour_page(3, dpi=40)[:120, :160])  # the letterhead: a colour page
    Image.fromarray(rgb).save(inp / "p02.png")
    cfg = override(_cfg(tmp_path, ""), "upscale.compare_pages", 1)
    engine = Engine(tiny_generator(2), cfg.engine, cfg.tiling)
    run_pipeline([str(inp)], tmp_path / "out", cfg, engine, "tiny", "w" * 64, 9.0)
    rows = {r["member"]: r for r in read_records(tmp_path / "out" / "records").to_pylist()}
    assert rows["p02.png"]["color"] == "rgb"
    for name in ("p00.png", "p01.png", "p02.png"):
        page = np.asarray(Image.open(inp / name))
        luma = page if page.ndim == 2 else split_luma(page)[0]  # metrics are on luminance
        h, w = luma.shape
        expected = consistency_psnr(bicubic_upscale(luma, (2 * w, 2 * h)), luma)
        assert rows[name]["psnr_consistency_bicubic"] == pytest.approx(expected, abs=1e-9)
    assert len(list((tmp_path / "out" / "compare").glob("*.png"))) == 1  # its bicubic panel still made


@pytest.mark.parametrize("assumed", [100, 0])
def test_pages_without_a_dpi_tag_get_the_assumed_dpi(tmp_path: Path, assumed: int) -> None:
    cfg = override(_cfg(tmp_path, ""), "upscale.assumed_dpi", assumed)
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(text_like_page(60, 60, seed=1)).save(inp / "untagged.png")
    Image.fromarray(text_like_page(60, 60, seed=2)).save(inp / "tagged.png", dpi=(150, 150))
    engine = Engine(tiny_generator(2), cfg.engine, cfg.tiling)
    run_pipeline([str(inp)], tmp_path / "out", cfg, engine, "tiny", "w" * 64, 9.0)
    rows = {r["member"]: r for r in read_records(tmp_path / "out" / "records").to_pylist()}
    tagged, untagged = rows["tagged.png"], rows["untagged.png"]
    assert round(tagged["input_dpi"]) == 150 and round(tagged["output_dpi"]) == 300 and not tagged["dpi_assumed"]
    assert round(Image.open(tagged["output_path"]).info["dpi"][0]) == 300
    if assumed:  # recorded as assumed and written on the output x scale
        assert (untagged["input_dpi"], untagged["output_dpi"], untagged["dpi_assumed"]) == (100, 200, True)
        assert round(Image.open(untagged["output_path"]).info["dpi"][0]) == 200
    else:
        assert (untagged["input_dpi"], untagged["output_dpi"], untagged["dpi_assumed"]) == (None, None, False)
        assert "dpi" not in Image.open(untagged["output_path"]).info


def test_assumed_dpi_is_part_of_the_output_config_hash() -> None:
    cfg = PipelineConfig()
    assert output_config_hash(cfg) != output_config_hash(override(cfg, "upscale.assumed_dpi", 0))
