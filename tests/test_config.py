from pathlib import Path

import pytest

from srgan.config import ConfigError, PipelineConfig, load_config, override

REPO = Path(__file__).resolve().parents[1]


def test_shipped_pipeline_yaml_loads_and_covers_every_key():
    cfg = load_config(REPO / "pipeline.yaml")
    assert isinstance(cfg, PipelineConfig)
    text = (REPO / "pipeline.yaml").read_text()
    import dataclasses

    for section in dataclasses.fields(PipelineConfig):
        for f in dataclasses.fields(getattr(cfg, section.name)):
            assert f"  {f.name}:" in text, f"pipeline.yaml lacks {section.name}.{f.name}"


@pytest.mark.parametrize(
    "yaml_text,key",
    [
        ("upscale:\n  scael: 2\n", "upscale.scael"),
        ("upscale:\n  scale: 3\n", "upscale.scale"),
        ("tiling:\n  tile: big\n", "tiling.tile"),
        ("engine:\n  precision: fp8\n", "engine.precision"),
        ("nonsense: 1\n", "nonsense"),
        ("pdf:\n  dpi: -5\n", "pdf.dpi"),
        ("upscale:\n  normalise: 'yes'\n", "upscale.normalise"),
        ("tiling:\n  overlap: 500\n", "tiling.overlap"),
        ("training:\n  mix:\n    rvl: -1\n", "training.mix"),
        ("training:\n  mix:\n    bicubic: 0\n    scan: 0\n    rvl: 0\n", "training.mix"),
        ("training:\n  mix:\n    jpeg: 1\n", "training.mix.jpeg"),
        ("training:\n  gap_weight: -1\n", "training.gap_weight"),
        ("training:\n  content_features: resnet\n", "training.content_features"),
        ("training:\n  content_layers: relu2_2\n", "training.content_layers"),
        ("training:\n  content_weight: -0.5\n", "training.content_weight"),
        ("training:\n  pixel_weight: -1\n", "training.pixel_weight"),
        ("training:\n  disc_feat: 0\n", "training.disc_feat"),
        ("training:\n  arch: espcn\n", "training.arch"),
        ("engine:\n  runtime: tensorrt\n", "engine.runtime"),
        ("engine:\n  runtime_cache: 5\n", "engine.runtime_cache"),
    ],
)
def test_bad_keys_and_values_name_the_key(tmp_path, yaml_text, key):
    p = tmp_path / "p.yaml"
    p.write_text(yaml_text)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    msg = str(exc.value)
    assert msg.startswith(key) and "\n" not in msg


def test_invalid_yaml_and_missing_file(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("upscale: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_override_revalidates():
    cfg = override(PipelineConfig(), "upscale.scale", 4)
    assert cfg.upscale.scale == 4
    with pytest.raises(ConfigError, match="upscale.scale"):
        override(cfg, "upscale.scale", 5)


def test_cpu_tiling_applies_only_on_the_cpu():
    from srgan.config import TilingConfig

    t = TilingConfig(tile=192, batch_size=8, cpu_tile=384, cpu_batch_size=2)
    assert t.for_device("cpu") == (384, 2) and t.for_device("cuda") == (192, 8)
    assert TilingConfig(tile=64, batch_size=4).for_device("cpu") == (64, 4)  # 0 = same as tile / batch_size


def test_shipped_config_tiles_larger_on_the_cpu():
    cfg = load_config()
    assert cfg.tiling.for_device("cpu")[0] > cfg.tiling.tile


def test_auto_pages_per_task_keeps_task_runs_bounded():
    from srgan.config import FlowConfig

    auto = FlowConfig()
    assert auto.pages_per_task == 0  # the shipped default is auto
    assert auto.per_task(400_000) == 800 and 4 * -(-400_000 // 800) + 2 == 2002
    assert auto.per_task(2_000) == 64 and auto.per_task(10) == 3 and auto.per_task(0) == 1
    assert FlowConfig(pages_per_task=8).per_task(400_000) == 8
    for docs in (1, 7, 255, 1_000, 33_333, 400_000, 1_000_000):
        assert -(-docs // auto.per_task(docs)) <= auto.max_batches


def test_engine_runtime_is_in_the_rerun_key_except_at_the_default():
    """int8 runtimes change pixels: another runtime redoes pages; torch keeps the key pages had before the key."""
    from srgan.config import output_config_hash

    cfg = PipelineConfig().validate()
    torch_cfg = override(cfg, "engine.runtime", "torch")
    assert output_config_hash(override(cfg, "engine.runtime", "onnxruntime-int8")) != output_config_hash(torch_cfg)
    assert output_config_hash(override(cfg, "engine.runtime_cache", "/tmp/x")) == output_config_hash(cfg)
