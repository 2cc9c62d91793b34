"""One typed configuration object, read from ``pipeline.yaml`` at the edge.

Library functions take the section they need (``cfg.tiling``, ``cfg.pdf``...), never a raw dict.
Every unknown key and every bad value is refused with one line naming the key
(:class:`ConfigError`), which the CLI turns into exit status 2.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from srgan.encoding.codecs import NAMES as ENCODING_NAMES

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "pipeline.yaml"


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message names the key."""


@dataclass
class UpscaleConfig:
    scale: int = 2  # 2, 4 or 8
    weights: str = "auto"  # name in weights/ (without .pt), a path, or "auto" (default for the scale)
    weights_dir: str = "weights"  # relative to the project root unless absolute
    normalise: bool = False  # text-size normalisation on/off (off: docs/fidelity.md, text-size table)
    normalise_tolerance: float = 0.15  # |log(factor)| below log(1+tol) -> factor 1
    normalise_min_factor: float = 1.0  # 1.0: never shrink (large text is left alone; see textsize_study)
    normalise_max_factor: float = 4.0  # enlarge small text at most this much before the model
    output_format: str = "png"  # png, tiff, or document (PDF in -> PDF out, multi-page TIFF -> TIFF)
    png_compress_level: int = 1  # zlib level of PNG pages (encoding/png.py, Z_RLE: level barely matters; 0 = stored)
    encoding: str = "png8"  # page (and PDF image) encoding: png8 | png4 | png2 | bitonal | jp2 (encoding/codecs.py)
    compare_pages: int = 3  # side-by-side pictures for the first N pages of a run
    compare_crop: int = 256  # size of the input crop shown in each picture
    color: str = "auto"  # auto (pages with colour stay colour: model on luminance) or grey (every page grey)
    out_of_range: str = "lanczos"  # pages outside the weights' validated x-height range: lanczos | model | model_warn
    no_estimate: str = "evidence"  # pages without a text-height estimate, when the weights have a range:
    #   evidence (text too small to measure: as the smallest size measured; blank / pictures: lanczos) | lanczos | model
    assumed_dpi: float = 100.0  # resolution given to pages whose file has no dpi tag (0: leave them untagged)
    ocr_layer: str = "none"  # none | add: output PDFs get tesseract's hidden text layer on pages without text
    ocr_language: str = "eng"  # tesseract language(s) of ocr_layer add, e.g. eng or eng+deu


@dataclass
class TilingConfig:
    tile: int = 128  # tile side in input pixels (without context)
    overlap: int = 16  # context pixels on each side of a tile, cropped after upscaling
    batch_size: int = 16  # tiles per forward pass (fixed shape; the last batch is padded)
    cpu_tile: int = 0  # tile side when the engine runs on the CPU; 0 = tile
    cpu_batch_size: int = 0  # batch when the engine runs on the CPU; 0 = batch_size

    def for_device(self, device_type: str) -> tuple[int, int]:
        """(tile, batch_size) for a device type: CPUs prefer fewer, larger tiles (less overlap work)."""
        if device_type == "cpu":
            return self.cpu_tile or self.tile, self.cpu_batch_size or self.batch_size
        return self.tile, self.batch_size


CPU_RUNTIMES = ("torch", "torch-compile", "onnxruntime", "onnxruntime-int8", "openvino", "openvino-bf16",
                "openvino-int8")  # engine.runtime's values beside auto (srgan/runtimes)


@dataclass
class EngineConfig:
    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto (CUDA: bf16/fp16; CPU: bf16 where native, else fp32) | fp32 | bf16 | fp16
    channels_last: bool = True
    compile: bool = False  # torch.compile the generator (falls back with one log line)
    threads: int = 0  # CPU threads for torch; 0 = torch's default
    cpu_workers: int = 0  # threads normalising and writing pages beside the model; 0 = auto (cpu_stage_workers)
    compile_mode: str = "default"  # torch.compile mode: default | reduce-overhead (CUDA graphs) | max-autotune
    fold_tail: bool = True  # the generator's exact inference form (inference/fold.py): last stage + tail at LR
    runtime: str = "torch"  # CPU runtime (srgan/runtimes): auto or one of CPU_RUNTIMES
    runtime_cache: str = ""  # runtime files and the auto choice; "" = the user's cache ($XDG_CACHE_HOME/srgan)


@dataclass
class PdfConfig:
    dpi: int | str = "native"  # native: each page at its scan's own resolution (srgan/pdf/plan.py); or a number
    fallback_dpi: int = 150  # native: pages without a scan image (born-digital) are rendered at this resolution
    max_pages: int = 500  # pages rendered per PDF at most; the rest become error rows
    render_timeout_s: int = 120  # per page

    @property
    def native(self) -> bool:
        """Whether each page is read at its scan's own resolution (dpi: native) rather than one forced dpi."""
        return self.dpi == "native"


@dataclass
class LimitsConfig:
    max_pixels: int = 80_000_000  # per page, checked from the header before decoding
    max_member_bytes: int = 512 * 1024 * 1024  # uncompressed bytes per archive member


@dataclass
class RecordsConfig:
    dir: str = "records"  # relative to the output directory
    rows_per_part: int = 500  # a Parquet part file is flushed every N rows


@dataclass
class FlowConfig:
    pages_per_task: int = 0  # documents handed to one decode/infer/write task; 0 = auto (per_task)
    gpu_concurrency_limit: str = "srgan-gpu"  # Prefect global concurrency limit name
    task_runner: str = "thread"  # thread | dask
    dask_address: str = ""  # scheduler address when task_runner is dask
    max_workers: int = 2  # bound of the thread task runner
    max_batches: int = 500  # auto: at most this many batches (4 task runs each) in one flow run
    heartbeat_seconds: int = 60  # flow-run heartbeat of deployment runs (srgan deploy: work pool env); >= 30
    crashed_after_seconds: int = 120  # a Pending/Running run silent this long is marked Crashed (srgan deploy)
    max_attempts: int = 3  # a deployment run (unit or night) is run at most this often: crashed runs are
    #                        rescheduled (srgan deploy's automation), failed ones retried by Prefect
    units_per_worker: int = 4  # upscale-sharded with shards 0: units = online unit workers x this

    def per_task(self, documents: int) -> int:
        """Documents per task for a run of `documents`: pages_per_task when set, else auto.

        Auto: at least AUTO_MIN_PER_TASK (fewer when that would leave under 4 batches to overlap
        decoding, the model and writing), and as many as keep the run at max_batches batches:
        a run makes 4 task runs per batch (decode, infer, write, record) plus 1-2 (discovery, spooling),
        so 400,000 documents make 500 batches of 800, 2,002 task runs (docs/performance.md).
        """
        if self.pages_per_task > 0:
            return self.pages_per_task
        small = min(AUTO_MIN_PER_TASK, -(-documents // 4))
        return max(1, small, -(-documents // self.max_batches))


AUTO_MIN_PER_TASK = 64  # auto batches: fewer task runs than with 8 (each costs the flow ~20-30 ms)


@dataclass
class DegradationMix:
    """What ``training.degradation: mix`` draws per crop: weights of the three chains (normalised to sum 1)."""

    bicubic: float = 0.3
    scan: float = 0.2
    rvl: float = 0.5

    def pairs(self) -> tuple[tuple[str, float], ...]:
        """(chain, probability) for every chain, the probabilities summing to 1."""
        weights = [(f.name, getattr(self, f.name)) for f in dataclasses.fields(self)]
        total = sum(w for _, w in weights)
        return tuple((name, w / total) for name, w in weights)


@dataclass
class TrainingConfig:
    scale: int = 2
    num_feat: int = 64
    num_block: int = 16
    in_channels: int = 1
    skip: str = "bicubic"  # generator output skip: none (the paper) or bicubic (residual over bicubic)
    arch: str = "srresnet"  # srresnet | lr_shuffle (every convolution at LR, PixelShuffle last; srgan.models)
    crop: int = 96  # HR crop side
    batch_size: int = 16
    pretrain_steps: int = 2000  # stage 1: L1 (PSNR-oriented)
    gan_steps: int = 0  # stage 2: SRGAN (0 = skip)
    lr: float = 2e-4
    gan_lr: float = 1e-4
    lr_schedule: str = "constant"  # constant | cosine (to lr_min over each stage's budget in one invocation)
    lr_min: float = 1e-6  # learning rate the cosine schedule ends at
    adv_weight: float = 1e-3
    gap_weight: float = 0.0  # extra L1 weight on the paper between strokes (losses.stroke_gaps); 0 = plain L1
    content_features: str = "craft"  # stage 2's content: craft (text-trained vgg16_bn), vgg19 (ImageNet file), none
    content_layers: str = "conv2_2,conv3_2"  # CRAFT layers (LAYER or LAYER:WEIGHT, comma-separated)
    content_weight: float = 1.0  # weight of the content loss in stage 2
    pixel_weight: float = 1.0  # weight of L1 in stage 2 (the SRGAN paper: 0)
    disc_feat: int = 64  # discriminator channels after its stem (doubling per block, at most 512)
    vgg_layer: str = "relu5_4"  # VGG19 layer for the content loss (content_features vgg19)
    vgg_weights: str = ""  # a file of torchvision VGG19 ImageNet weights; "" = torchvision cache
    ema_decay: float = 0.999  # 0 = no EMA
    text_height: float = 9.0  # LR x-height in pixels the crops are normalised to (when normalise is on)
    normalise: bool = False  # off: text sizes spread over x_height_min..x_height_max, as upscale sees them
    degradation: str = "mix"  # bicubic | scan | rvl (bitonal scan, area down, speckle, fax) | mix of the three
    mix: DegradationMix = field(default_factory=DegradationMix)  # the chains' weights when degradation is mix
    synthetic_pages: int = 16  # synthetic office documents (srgan.training.synth) mixed into the training set
    x_height_min: float = 2.5  # LR x-height range (px) the synthetic documents' body text is spread over
    x_height_max: float = 16.0
    synthetic_max_side: int = 2400  # longest side of a synthetic document in px
    held_out_family_pages: int = 0  # synthetic documents in the held-out families added to the evaluation
    eval_fraction: float = 0.2  # pages held out for evaluation
    workers: int = 2
    precision: str = "auto"
    save_every: int = 500
    eval_every: int = 250
    seed: int = 0
    max_seconds: float = 0.0  # wall-clock cap per stage, 0 = none
    out_dir: str = "runs/train"


@dataclass
class PipelineConfig:
    upscale: UpscaleConfig = field(default_factory=UpscaleConfig)
    tiling: TilingConfig = field(default_factory=TilingConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    pdf: PdfConfig = field(default_factory=PdfConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    records: RecordsConfig = field(default_factory=RecordsConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def validate(self) -> PipelineConfig:
        """Check values across keys; raise ConfigError naming the first bad key."""
        checks = [
            ("upscale.scale", self.upscale.scale in (2, 4, 8), "must be 2, 4 or 8"),
            ("training.scale", self.training.scale in (2, 4, 8), "must be 2, 4 or 8"),
            ("upscale.output_format", self.upscale.output_format in ("png", "tiff", "document"),
             "must be png, tiff or document"),
            ("upscale.color", self.upscale.color in ("auto", "grey"), "must be auto or grey"),
            ("upscale.normalise_min_factor", 0 < self.upscale.normalise_min_factor <= 1, "must be in (0, 1]"),
            ("upscale.normalise_max_factor", self.upscale.normalise_max_factor >= 1, "must be >= 1"),
            ("upscale.normalise_tolerance", 0 <= self.upscale.normalise_tolerance < 1, "must be in [0, 1)"),
            ("upscale.png_compress_level", 0 <= self.upscale.png_compress_level <= 9, "must be in [0, 9]"),
            ("upscale.encoding", self.upscale.encoding in ENCODING_NAMES, "must be " + ", ".join(ENCODING_NAMES[:-1])
             + " or " + ENCODING_NAMES[-1]),
            ("upscale.compare_pages", self.upscale.compare_pages >= 0, "must be >= 0"),
            ("upscale.compare_crop", self.upscale.compare_crop >= 16, "must be >= 16"),
            ("upscale.out_of_range", self.upscale.out_of_range in ("lanczos", "model", "model_warn"),
             "must be lanczos, model or model_warn"),
            ("upscale.no_estimate", self.upscale.no_estimate in ("evidence", "lanczos", "model"),
             "must be evidence, lanczos or model"),
            ("upscale.assumed_dpi", 0 <= self.upscale.assumed_dpi <= 10000, "must be in [0, 10000] (0: none)"),
            ("tiling.tile", self.tiling.tile >= 8, "must be >= 8"),
            ("tiling.overlap", 0 <= self.tiling.overlap < self.tiling.tile, "must be in [0, tile)"),
            ("tiling.batch_size", self.tiling.batch_size >= 1, "must be >= 1"),
            ("tiling.cpu_tile", self.tiling.cpu_tile == 0 or self.tiling.overlap < self.tiling.cpu_tile,
             "must be 0 or larger than overlap"),
            ("tiling.cpu_batch_size", self.tiling.cpu_batch_size >= 0, "must be >= 0"),
            ("training.content_features", self.training.content_features in ("craft", "vgg19", "none"),
             "must be craft, vgg19 or none"),
            ("training.content_layers",
             bool(re.fullmatch(r"conv[1-5]_[1-3](:[0-9.]+)?(,conv[1-5]_[1-3](:[0-9.]+)?)*",
                               self.training.content_layers.replace(" ", ""))),
             "must be CRAFT layers (conv1_1 .. conv5_3), each LAYER or LAYER:WEIGHT, comma-separated"),
            ("training.content_weight", self.training.content_weight >= 0, "must be >= 0"),
            ("training.pixel_weight", self.training.pixel_weight >= 0, "must be >= 0"),
            ("training.adv_weight", self.training.adv_weight >= 0, "must be >= 0"),
            ("training.disc_feat", self.training.disc_feat >= 1, "must be >= 1"),
            ("engine.device", self.engine.device in ("auto", "cpu", "cuda"), "must be auto, cpu or cuda"),
            ("engine.precision", self.engine.precision in ("auto", "fp32", "bf16", "fp16"),
             "must be auto, fp32, bf16 or fp16"),
            ("engine.threads", self.engine.threads >= 0, "must be >= 0"),
            ("engine.runtime", self.engine.runtime in ("auto", *CPU_RUNTIMES),
             "must be auto or one of " + ", ".join(CPU_RUNTIMES)),
            ("engine.cpu_workers", self.engine.cpu_workers >= 0, "must be >= 0"),
            ("engine.compile_mode", self.engine.compile_mode in ("default", "reduce-overhead", "max-autotune"),
             "must be default, reduce-overhead or max-autotune"),
            ("upscale.ocr_layer", self.upscale.ocr_layer in ("none", "add"), "must be none or add"),
            ("upscale.ocr_language", bool(re.fullmatch(r"[A-Za-z_]+(\+[A-Za-z_]+)*", self.upscale.ocr_language)),
             "must be tesseract language names joined by +, e.g. eng or eng+deu"),
            ("pdf.dpi", self.pdf.native or (isinstance(self.pdf.dpi, int) and 10 <= self.pdf.dpi <= 1200),
             "must be native or a number in [10, 1200]"),
            ("pdf.fallback_dpi", 10 <= self.pdf.fallback_dpi <= 1200, "must be in [10, 1200]"),
            ("pdf.max_pages", self.pdf.max_pages >= 1, "must be >= 1"),
            ("pdf.render_timeout_s", self.pdf.render_timeout_s >= 1, "must be >= 1"),
            ("limits.max_pixels", self.limits.max_pixels >= 64 * 64, "must be >= 4096"),
            ("limits.max_member_bytes", self.limits.max_member_bytes >= 1024, "must be >= 1024"),
            ("records.rows_per_part", self.records.rows_per_part >= 1, "must be >= 1"),
            ("flow.pages_per_task", self.flow.pages_per_task >= 0, "must be >= 0 (0 = auto)"),
            ("flow.max_batches", self.flow.max_batches >= 1, "must be >= 1"),
            ("flow.task_runner", self.flow.task_runner in ("thread", "dask"), "must be thread or dask"),
            ("flow.max_workers", self.flow.max_workers >= 1, "must be >= 1"),
            ("flow.heartbeat_seconds", self.flow.heartbeat_seconds >= 30, "must be >= 30 (Prefect's minimum)"),
            ("flow.crashed_after_seconds", self.flow.crashed_after_seconds > self.flow.heartbeat_seconds,
             "must be more than flow.heartbeat_seconds"),
            ("flow.max_attempts", self.flow.max_attempts >= 1, "must be >= 1"),
            ("flow.units_per_worker", self.flow.units_per_worker >= 1, "must be >= 1"),
            ("training.crop", self.training.crop % self.training.scale == 0 and self.training.crop >= 16,
             "must be >= 16 and divisible by training.scale"),
            ("training.in_channels", self.training.in_channels in (1, 3), "must be 1 or 3"),
            ("training.skip", self.training.skip in ("none", "bicubic"), "must be none or bicubic"),
            ("training.arch", self.training.arch in ("srresnet", "lr_shuffle"), "must be srresnet or lr_shuffle"),
            ("training.degradation", self.training.degradation in ("bicubic", "scan", "rvl", "mix"),
             "must be bicubic, scan, rvl or mix"),
            ("training.mix", min(self.training.mix.bicubic, self.training.mix.scan, self.training.mix.rvl) >= 0
             and self.training.mix.bicubic + self.training.mix.scan + self.training.mix.rvl > 0,
             "weights must be >= 0 and not all 0"),
            ("training.x_height_min", 0 < self.training.x_height_min <= self.training.x_height_max,
             "must be > 0 and <= training.x_height_max"),
            ("training.synthetic_max_side", self.training.synthetic_max_side >= 64, "must be >= 64"),
            ("training.held_out_family_pages", self.training.held_out_family_pages >= 0, "must be >= 0"),
            ("training.eval_fraction", 0 <= self.training.eval_fraction < 1, "must be in [0, 1)"),
            ("training.precision", self.training.precision in ("auto", "fp32", "bf16", "fp16"),
             "must be auto, fp32, bf16 or fp16"),
            ("training.gap_weight", self.training.gap_weight >= 0, "must be >= 0"),
            ("training.ema_decay", 0 <= self.training.ema_decay < 1, "must be in [0, 1)"),
            ("training.text_height", self.training.text_height > 0, "must be > 0"),
            ("training.lr_schedule", self.training.lr_schedule in ("constant", "cosine"),
             "must be constant or cosine"),
            ("training.lr_min", 0 <= self.training.lr_min <= min(self.training.lr, self.training.gan_lr),
             "must be in [0, min(lr, gan_lr)]"),
        ]
        for key, ok, why in checks:
            if not ok:
                raise ConfigError(f"{key}: {why} (got {_get(self, key)!r})")
        return self


def _get(obj: object, dotted: str) -> object:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def _coerce(key: str, value: object, typ: type) -> object:
    """Return value as typ (the first member of a union that takes it), or raise ConfigError naming the key."""
    if isinstance(typ, types.UnionType):
        for member in typing.get_args(typ):
            with contextlib.suppress(ConfigError):
                return _coerce(key, value, member)
        names = " or ".join(t.__name__ for t in typing.get_args(typ))
        raise ConfigError(f"{key}: expected {names}, got {value!r}")
    if typ is bool:
        if isinstance(value, bool):
            return value
    elif typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif typ is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{key}: expected {typ.__name__}, got {value!r}")


def _build(cls: type, data: object, prefix: str) -> object:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'pipeline.yaml'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(f"{prefix}{key}: unknown key")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        typ = hints[f.name]
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(typ):
            kwargs[f.name] = _build(typ, data[f.name], key + ".")
        else:
            kwargs[f.name] = _coerce(key, data[f.name], typ)
    return cls(**kwargs)


def config_from_dict(data: dict) -> PipelineConfig:
    """Build and validate a PipelineConfig from a parsed YAML mapping."""
    cfg = _build(PipelineConfig, data, "")
    assert isinstance(cfg, PipelineConfig)
    return cfg.validate()


def load_config(path: str | Path | None = None) -> PipelineConfig:
    """Read pipeline.yaml (the project's own when path is None) into a validated PipelineConfig."""
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    if not path.exists():
        if path == DEFAULT_CONFIG_PATH:
            return PipelineConfig().validate()
        raise ConfigError(f"config: file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {path} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    return config_from_dict(data)


def override(cfg: PipelineConfig, dotted: str, value: object) -> PipelineConfig:
    """Set one dotted key (e.g. 'upscale.scale') on a copy of cfg, re-validated."""
    section, name = dotted.split(".")
    new_section = dataclasses.replace(getattr(cfg, section), **{name: value})
    return dataclasses.replace(cfg, **{section: new_section}).validate()


def to_dict(cfg: PipelineConfig) -> dict:
    return dataclasses.asdict(cfg)


# left out of the hash; engine.fold_tail computes the same function (srgan/inference/fold.py), so it keeps the
# rerun key of pages written before it existed
NOT_PIXEL_SHAPING = (("upscale", "png_compress_level"), ("engine", "cpu_workers"), ("engine", "fold_tail"),
                     ("engine", "runtime_cache"))  # engine.runtime stays in the key: int8 changes pixels


def output_config_hash(cfg: PipelineConfig) -> str:
    """Hash of the settings that shape output pages (upscale, tiling, engine, pdf): the rerun-skip key.

    Training, flow, records and limits settings do not change a page's pixels, so changing them does
    not make a rerun redo finished pages; the one exception is ``limits.max_pixels`` under
    ``pdf.dpi: native``, which caps the resolution a large PDF page is read at.
    """
    import hashlib
    import json

    shaping = {k: dataclasses.asdict(getattr(cfg, k)) for k in ("upscale", "tiling", "engine", "pdf")}
    for section, key in NOT_PIXEL_SHAPING:
        shaping[section].pop(key, None)
    if shaping["upscale"].get("encoding") == "png8":  # the pages written before upscale.encoding existed keep their key
        shaping["upscale"].pop("encoding")
    if shaping["engine"].get("runtime") == "torch":  # likewise the pages written before engine.runtime existed
        shaping["engine"].pop("runtime")
    if cfg.pdf.native:  # the native resolution of a large page is capped by limits.max_pixels
        shaping["limits"] = {"max_pixels": cfg.limits.max_pixels}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]
