"""SRResNet / SRGAN training: ``python -m srgan.training`` (no Prefect needed) and ``train()``.

Stage 1 (``srresnet``) pre-trains the generator on L1 (PSNR-oriented). Stage 2 (``srgan``, when
``training.gan_steps > 0``) adds a discriminator: the generator minimises VGG19 content loss plus
``adv_weight`` x adversarial loss (Ledig et al. 2017). An EMA of the generator is what ships.

At the end the new generator is evaluated on held-out pages with the same code as ``srgan
evaluate`` and copied into ``weights/`` only when it beats the current weights for that scale.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import functools
import json
import logging
import math
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from srgan.config import ConfigError, DegradationMix, PipelineConfig, load_config, override, to_dict
from srgan.inference.engine import autocast_context, cpu_has_fast_bf16, pick_device
from srgan.models import Discriminator, Generator
from srgan.training.checkpoint import CHECKPOINT_NAME, load_checkpoint, restore_module, save_checkpoint
from srgan.training.data import (
    CropDataset,
    PageSets,
    batch_psnr,
    describe_training_data,
    fixed_crops,
    make_loader,
    prepare_pages,
    steps_per_epoch_hint,
)
from srgan.training.losses import ContentLoss, GANLoss, TextContentLoss, gap_weighted_l1, parse_layer_weights
from srgan.training.plot import write_losses

if TYPE_CHECKING:
    from srgan.fidelity.evaluate import EvalResult

log = logging.getLogger(__name__)

LOSS_KEYS = ("l1", "content", "adversarial", "d_real", "d_fake")
VAL_CROPS = 32  # crops of held-out pages in the validation batch behind val_psnr


@dataclass
class TrainResult:
    """What a training run did and decided."""

    promoted: bool
    reason: str
    eval: EvalResult | None  # the new generator on the held-out pages (None without any)
    new_weights: Path  # always saved into out_dir
    seconds: float
    steps: int
    checkpoint: Path
    stage: str = "srresnet"
    previous_eval: EvalResult | None = None  # the weights it was compared with, same pages
    previous_weights: Path | None = None
    promoted_to: Path | None = None
    content_loss: dict | None = None  # stage 2's content loss: network, file, sha256, layers, weight
    extra: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Small JSON-able dict for the CLI, the flow and logs."""

        def fig(ev: EvalResult | None) -> dict | None:
            if ev is None:
                return None
            return {"pages": len(ev.rows), "mean_psnr": _r(ev.mean_psnr), "mean_psnr_bicubic": _r(ev.mean_psnr_bicubic),
                    "mean_gain_db": _r(ev.mean_gain_db)}

        return {
            "promoted": self.promoted,
            "reason": self.reason,
            "new_weights": str(self.new_weights),
            "promoted_to": str(self.promoted_to) if self.promoted_to else None,
            "previous_weights": str(self.previous_weights) if self.previous_weights else None,
            "checkpoint": str(self.checkpoint),
            "stage": self.stage,
            "steps": self.steps,
            "seconds": round(self.seconds, 1),
            "content_loss": self.content_loss,
            "eval": fig(self.eval),
            "previous_eval": fig(self.previous_eval),
            **self.extra,
        }


def _r(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 3)


# ------------------------------------------------------------------------------------------- pieces


class ModelEMA:
    """Exponential moving average of a generator's weights.

    The decay warms up as min(decay, (1 + n) / (10 + n)) after n updates, so a short run is not
    dominated by its random initialisation.

    Args:
        net_g: the generator to follow (copied).
        decay: EMA decay, e.g. 0.999.
    """

    def __init__(self, net_g: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(net_g).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = 0
        self._ema_tensors = _float_tensors(self.module)
        self._source: tuple[int, list[torch.Tensor]] | None = None

    @torch.no_grad()
    def update(self, net_g: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        if self._source is None or self._source[0] != id(net_g):
            self._source = (id(net_g), _float_tensors(net_g))
        # one multi-tensor kernel instead of one small kernel per weight
        torch._foreach_lerp_(self._ema_tensors, self._source[1], 1.0 - d)


def _float_tensors(net: nn.Module) -> list[torch.Tensor]:
    """The module's floating-point state (parameters and buffers) as tensors sharing its storage."""
    return [v for v in net.state_dict(keep_vars=False).values() if v.dtype.is_floating_point]


def training_precision(requested: str, device: torch.device) -> str:
    """The one place training precision is chosen: bf16 where the device runs it natively (CUDA with
    bf16; CPUs with AMX / AVX512-BF16), fp32 elsewhere.

    fp16 is not used for training (it would need loss scaling in both GAN steps): asked for, it
    becomes bf16, or fp32 where bf16 is not native.
    """
    if requested == "fp32":
        return "fp32"
    native = torch.cuda.is_bf16_supported() if device.type == "cuda" else cpu_has_fast_bf16()
    if native:
        if requested == "fp16":
            log.info("training.precision fp16: training uses bf16 instead (no loss scaling needed)")
        return "bf16"
    if requested != "auto":
        log.info("training.precision %s: this %s has no native bf16; training in fp32", requested, device.type)
    return "fp32"


@contextlib.contextmanager
def _seeded(seed: int):
    """Run a block (network initialisation) under a fixed seed without touching the caller's RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


@torch.no_grad()
def init_output_bias(net_g: Generator, pages: PageSets, crop: int, scale: int, seed: int, samples: int = 64) -> float:
    """Start the generator's last conv at the mean grey level of training crops.

    The generator has no bicubic skip, and a fresh one outputs about 0 (black) where pages are
    mostly white paper: starting from the data mean saves the first few hundred steps.
    """
    crops = iter(CropDataset(pages.train, crop, scale, seed=seed, offset=2**31))  # not a training stream
    mean = sum(float(next(crops)[1].mean()) for _ in range(samples)) / samples
    net_g.tail.bias.fill_(mean)
    return mean


def machine_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


# --------------------------------------------------------------------------------------------- steps


def pretrain_step(net_g: Generator, opt_g: torch.optim.Optimizer, lq: torch.Tensor, gt: torch.Tensor,
                  autocast: Callable[[], contextlib.AbstractContextManager], ema: ModelEMA | None,
                  gap_weight: float = 0.0) -> dict[str, float]:
    """One SRResNet step: L1 between SR and HR (the gaps between strokes weighted by 1 + gap_weight)."""
    with autocast():
        sr = net_g(lq)  # (N, C, h, w) -> (N, C, h*s, w*s)
    l_pix = gap_weighted_l1(sr.float(), gt, gap_weight)
    opt_g.zero_grad(set_to_none=True)
    l_pix.backward()
    opt_g.step()
    if ema is not None:
        ema.update(net_g)
    return {"l1": float(l_pix.detach())}


@dataclass
class GanLosses:
    """Stage 2's generator objective: pixel_weight x L1 + content (weighted module or None) + adversarial
    (weighted module, or None: no discriminator is trained)."""

    pixel_weight: float
    content: nn.Module | None
    adversarial: GANLoss | None


def gan_step(
    net_g: Generator,
    net_d: Discriminator | None,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer | None,
    losses: GanLosses,
    lq: torch.Tensor,
    gt: torch.Tensor,
    autocast: Callable[[], contextlib.AbstractContextManager],
    ema: ModelEMA | None,
) -> dict[str, float]:
    """One SRGAN step, top to bottom: G on L1 + content + adversarial, then D on real and fake."""
    use_d = net_d is not None and losses.adversarial is not None
    if use_d:
        _set_requires_grad(net_d, False)  # D is frozen so the adversarial loss moves only G
    zero = torch.zeros((), device=gt.device)
    with autocast():
        sr = net_g(lq)  # (N, C, h, w) -> (N, C, h*s, w*s)
        l_content = losses.content(sr, gt) if losses.content is not None else zero
        l_adv = losses.adversarial(net_d(sr), target_is_real=True) if use_d else zero  # G wants "real"
    l_pix = F.l1_loss(sr.float(), gt)
    l_g = losses.pixel_weight * l_pix + l_content + l_adv
    opt_g.zero_grad(set_to_none=True)
    l_g.backward()
    opt_g.step()
    row = {"l1": float(l_pix.detach()), "content": float(l_content.detach()), "adversarial": float(l_adv.detach())}

    if use_d:
        # discriminator: real HR crops vs SR; SR is detached so this step does not backpropagate into G
        _set_requires_grad(net_d, True)
        opt_d.zero_grad(set_to_none=True)
        with autocast():
            real_logits = net_d(gt)  # (N, C, crop, crop) -> (N, 1)
        l_d_real = losses.adversarial(real_logits, target_is_real=True, is_disc=True)
        l_d_real.backward()
        with autocast():
            fake_logits = net_d(sr.detach())
        l_d_fake = losses.adversarial(fake_logits, target_is_real=False, is_disc=True)
        l_d_fake.backward()
        opt_d.step()
        row.update(d_real=float(l_d_real.detach()), d_fake=float(l_d_fake.detach()))

    if ema is not None:
        ema.update(net_g)
    return row


def content_loss_for(tcfg) -> tuple[nn.Module | None, dict | None]:
    """The content loss ``training.content_features`` names, and what the manifest records of it.

    Random features are never a content loss: ``vgg19`` without its ImageNet file is refused.
    """
    if tcfg.content_features == "none" or tcfg.content_weight == 0:
        return None, None
    if tcfg.content_features == "craft":
        loss = TextContentLoss(parse_layer_weights(tcfg.content_layers), tcfg.content_weight)
        return loss, loss.describe()
    loss = ContentLoss(tcfg.vgg_layer, tcfg.content_weight, tcfg.vgg_weights or None)
    if loss.source != "imagenet":
        raise ValueError("training.content_features vgg19: no VGG19 ImageNet weights file (training.vgg_weights); "
                         "random features are never a content loss (use craft)")
    return loss, {"network": "vgg19_imagenet", "layers": {tcfg.vgg_layer: 1.0}, "weight": tcfg.content_weight,
                  "form": "L1 between features"}


@torch.inference_mode()
def validate(net_g: nn.Module, val: tuple[torch.Tensor, torch.Tensor] | None, device: torch.device,
             autocast: Callable[[], contextlib.AbstractContextManager], batch_size: int) -> float | None:
    """PSNR (dB, 8-bit) of net_g on the fixed validation crops, or None without held-out pages."""
    if val is None:
        return None
    lq_all, gt_all = val
    scores = []
    for i in range(0, len(lq_all), batch_size):
        lq = lq_all[i : i + batch_size].to(device)
        with autocast():
            sr = net_g(lq)
        scores.append(batch_psnr(sr, gt_all[i : i + batch_size].to(device)) * len(lq))
    return sum(scores) / len(lq_all)


# ------------------------------------------------------------------------------------------ the loop


@dataclass
class _Run:
    """State shared by the two stages of one train() call."""

    cfg: PipelineConfig
    out_dir: Path
    device: torch.device
    autocast: Callable[[], contextlib.AbstractContextManager]
    channels_last: bool
    net_g: Generator
    ema: ModelEMA | None
    val: tuple[torch.Tensor, torch.Tensor] | None
    pages: PageSets
    step: int = 0
    stage: str = "srresnet"
    stage_step: int = 0
    history: list[dict] = field(default_factory=list)
    net_d: Discriminator | None = None
    opt_g: torch.optim.Optimizer | None = None
    opt_d: torch.optim.Optimizer | None = None
    checkpoint: Path | None = None
    init_from: dict | None = None  # the weights this run started from (init_weights), for the manifest
    keep_checkpoint: Path | None = None  # also write a repository checkpoint (G + optimiser + EMA) here

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def save(self) -> Path:
        self.checkpoint = save_checkpoint(
            self.out_dir / CHECKPOINT_NAME, net_g=self.net_g, opt_g=self.opt_g, step=self.step, stage=self.stage,
            stage_step=self.stage_step, config=to_dict(self.cfg), net_d=self.net_d, opt_d=self.opt_d,
            ema_g=self.ema.module if self.ema else None, ema_updates=self.ema.updates if self.ema else 0,
            history=self.history,
        )
        if self.keep_checkpoint is not None:
            save_checkpoint(
                self.keep_checkpoint, net_g=self.net_g, opt_g=self.opt_g, step=self.step, stage=self.stage,
                stage_step=self.stage_step, config=to_dict(self.cfg), ema_g=self.ema.module if self.ema else None,
                ema_updates=self.ema.updates if self.ema else 0, history=self.history, kind="repository",
            )
        write_losses(self.history, self.out_dir)
        return self.checkpoint


def scheduled_lr(base_lr: float, lr_min: float, schedule: str, progress: float) -> float:
    """Learning rate at ``progress`` in [0, 1] of a stage's budget: constant, or cosine base_lr -> lr_min."""
    if schedule == "constant":
        return base_lr
    progress = min(max(progress, 0.0), 1.0)
    return lr_min + 0.5 * (base_lr - lr_min) * (1.0 + math.cos(math.pi * progress))


def run_stage(run: _Run, total: int, step_fn: Callable[[torch.Tensor, torch.Tensor], dict[str, float]],
              optimisers: Sequence[torch.optim.Optimizer] = (), base_lr: float = 0.0) -> None:
    """Run the current stage from run.stage_step to total steps (or until training.max_seconds).

    With ``training.lr_schedule: cosine`` the learning rate of ``optimisers`` falls from ``base_lr``
    to ``training.lr_min`` over this call's budget: the steps left or ``max_seconds``, whichever
    ends first (a resumed run starts the schedule again, a warm restart).
    """
    tcfg = run.cfg.training
    if run.stage_step >= total:
        return
    t_begin = time.monotonic()
    deadline = t_begin + tcfg.max_seconds if tcfg.max_seconds > 0 else math.inf
    first_step, steps_left = run.stage_step, total - run.stage_step
    log_every = max(1, min(50, tcfg.eval_every if tcfg.eval_every > 0 else 50))
    dataset = CropDataset(run.pages.train, tcfg.crop, tcfg.scale, tcfg.degradation, tcfg.seed,
                          offset=run.step, channels=tcfg.in_channels, mix=tcfg.mix.pairs())
    loader = make_loader(dataset, tcfg.batch_size, tcfg.workers, pin_memory=run.device.type == "cuda")
    log.info("stage %s: steps %d..%d (batch %d, crop %d; about %d steps cover the pages once)", run.stage,
             run.stage_step, total, tcfg.batch_size, tcfg.crop,
             steps_per_epoch_hint(run.pages.train, tcfg.crop, tcfg.batch_size))
    sums: dict[str, float] = {}
    count = 0
    t_window = time.monotonic()
    batches = iter(loader)
    try:
        while run.stage_step < total:
            lq, gt = next(batches)
            if optimisers and tcfg.lr_schedule != "constant":
                progress = (run.stage_step - first_step) / max(steps_left - 1, 1)  # the last step at lr_min
                if tcfg.max_seconds > 0:
                    progress = max(progress, (time.monotonic() - t_begin) / tcfg.max_seconds)
                lr = scheduled_lr(base_lr, tcfg.lr_min, tcfg.lr_schedule, progress)
                for opt in optimisers:
                    for group in opt.param_groups:
                        group["lr"] = lr
            losses = step_fn(run.to_device(lq), run.to_device(gt))
            run.step += 1
            run.stage_step += 1
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
            timed_out = time.monotonic() >= deadline
            last = run.stage_step >= total or timed_out
            do_eval = tcfg.eval_every > 0 and run.stage_step % tcfg.eval_every == 0
            do_save = tcfg.save_every > 0 and run.stage_step % tcfg.save_every == 0
            if count >= log_every or do_eval or do_save or last:
                row = {"step": run.step, "stage": run.stage, **{k: v / count for k, v in sums.items()}}
                if optimisers:
                    row["lr"] = optimisers[0].param_groups[0]["lr"]
                if do_eval or last:
                    row["val_psnr"] = validate(run.ema.module if run.ema else run.net_g, run.val, run.device,
                                               run.autocast, max(tcfg.batch_size, VAL_CROPS))
                run.history.append(row)
                rate = count / max(time.monotonic() - t_window, 1e-9)
                log.info("step %d %s %s (%.2f steps/s)", run.step, run.stage,
                         " ".join(f"{k}={v:.4g}" for k, v in row.items() if k in (*LOSS_KEYS, "val_psnr")
                                  and v is not None), rate)
                sums, count, t_window = {}, 0, time.monotonic()
            if do_save:
                run.save()
            if timed_out:
                log.info("stage %s: training.max_seconds (%.0f s) reached at stage step %d of %d",
                         run.stage, tcfg.max_seconds, run.stage_step, total)
                break
    except KeyboardInterrupt:
        log.warning("interrupted at step %d: saving a checkpoint", run.step)
        run.save()
        raise
    finally:
        del batches, loader  # shuts the data-loader workers down


# --------------------------------------------------------------------------------------------- train


def train(
    cfg: PipelineConfig,
    data: Sequence[str],
    out_dir: Path,
    resume: Path | None = None,
    device: str | None = None,
    *,
    eval_data: Sequence[str] | None = None,
    weights_dir: str | Path | None = None,
    weights_name: str | None = None,
    promote: bool = True,
    init_weights: str | Path | None = None,
    keep_checkpoint: str | Path | None = None,
    ocr_eval_data: Sequence[str] | None = None,
) -> TrainResult:
    """Train a generator on ``data`` (+ synthetic pages), evaluate it, and promote it if better.

    Args:
        cfg: the whole pipeline config; ``cfg.training`` drives training, ``cfg.pdf``/``cfg.limits``
            the readers, ``cfg.engine``/``cfg.tiling``/``cfg.upscale`` the final evaluation.
        data: inputs the upscale path reads (folders, archives, images, PDFs); may be empty.
        out_dir: run folder: checkpoint.pt, losses.csv/png, the new weights and a work folder.
        resume: a checkpoint.pt to continue from (same architecture).
        device: ``cpu``/``cuda``/``auto``; default ``cfg.engine.device``.
        eval_data: explicit held-out inputs (instead of a ``training.eval_fraction`` split).
        weights_dir: where the current weights live; default ``cfg.upscale.weights_dir``.
        weights_name: name of the promoted weights; default ``srgan_x{scale}``.
        promote: False to only train and evaluate.
        init_weights: start the generator from these weights (a name in the weights folder or a
            .pt path; same architecture) instead of from scratch: a fresh run that refines shipped
            weights. Excludes ``resume``.
        keep_checkpoint: a folder (or .pt path) for the repository checkpoint, written at every save
            beside the full one: generator + optimiser + EMA, no discriminator, optimiser moments in
            bf16 (``weights/checkpoints/<name>/``, kept in git; resume from it with ``resume``).
        ocr_eval_data: inputs whose pages have ground-truth text (a sibling .txt): the fidelity gate's
            evaluation pages (srgan.fidelity); default: those among eval_data.
    """
    t_start = time.monotonic()
    tcfg = cfg.training
    if resume is not None and init_weights is not None:
        raise ValueError("train: give either resume (a checkpoint) or init_weights, not both")
    weights_dir = weights_dir if weights_dir is not None else cfg.upscale.weights_dir
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = pick_device(device or cfg.engine.device)
    precision = training_precision(tcfg.precision, dev)
    autocast = functools.partial(autocast_context, dev, precision)
    # channels_last where it helps: CUDA, and bf16 on the CPU (oneDNN's bf16 convolutions want NHWC: the L1 step
    # runs 3.6x faster on a Zen 4, docs/measurements.md "Issue 33: training steps per second")
    channels_last = cfg.engine.channels_last and (dev.type == "cuda" or precision == "bf16")
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop shapes: let cuDNN pick its fastest kernels
    log.info("training on %s (%s, %s)", dev, machine_name(dev), precision)

    work = out_dir / ".work" / "train-pages"
    try:
        pages = prepare_pages(list(data), cfg, work, eval_data)
        val = fixed_crops(pages.eval, VAL_CROPS, tcfg.crop, tcfg.scale, tcfg.degradation, tcfg.seed, tcfg.in_channels,
                          tcfg.mix.pairs())
        if val is not None:  # the figure val_psnr has to beat
            bicubic = F.interpolate(val[0], scale_factor=tcfg.scale, mode="bicubic", align_corners=False)
            log.info("validation: %d held-out crops; bicubic upscaling gets %.2f dB", len(val[0]),
                     batch_psnr(bicubic, val[1]))

        with _seeded(tcfg.seed):
            net_g = Generator(tcfg.scale, tcfg.num_feat, tcfg.num_block, tcfg.in_channels, tcfg.skip, tcfg.arch)
        init_from = None
        if init_weights is not None:
            init_from = init_generator(net_g, init_weights, weights_dir, tcfg.scale)
        elif resume is None and tcfg.skip == "none":
            init_output_bias(net_g, pages, tcfg.crop, tcfg.scale, tcfg.seed)
        net_g = net_g.to(dev, memory_format=memory_format)
        ema = ModelEMA(net_g, tcfg.ema_decay) if tcfg.ema_decay > 0 else None
        keep = Path(keep_checkpoint) if keep_checkpoint is not None else None
        if keep is not None and keep.suffix != ".pt":
            keep = keep / CHECKPOINT_NAME
        run = _Run(cfg, out_dir, dev, autocast, channels_last, net_g, ema, val, pages, init_from=init_from,
                   keep_checkpoint=keep)
        run.opt_g = torch.optim.Adam(net_g.parameters(), lr=tcfg.lr, betas=(0.9, 0.99))

        ckpt = resume_run(run, Path(resume)) if resume is not None else None
        return _train_stages(run, ckpt, list(data), eval_data, t_start, weights_dir=weights_dir,
                             weights_name=weights_name, promote=promote, ocr_eval_data=ocr_eval_data)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # page copies; the checkpoint stays
        with contextlib.suppress(OSError):
            work.parent.rmdir()  # only when nothing else is in it


def init_generator(net_g: Generator, ref: str | Path, weights_dir: str | Path, scale: int) -> dict:
    """Load shipped weights (sha256-checked, weights_only) into net_g; returns what the manifest
    records of them. Raises ValueError when they are for another architecture."""
    from srgan.weights import load_generator

    src_g, src_manifest = load_generator(ref, weights_dir, scale)
    if src_g.spec.to_dict() != net_g.spec.to_dict():
        raise ValueError(f"init_weights: {src_manifest['path']} is a {src_g.spec.to_dict()} generator, "
                         f"the config asks for {net_g.spec.to_dict()}")
    net_g.load_state_dict(src_g.state_dict())
    prior = src_manifest.get("initialised_from")
    prior = prior if isinstance(prior, dict) else {}  # older manifests wrote a sentence here
    init_from = {
        "path": src_manifest["path"], "sha256": src_manifest.get("sha256"),
        "steps": src_manifest.get("steps"), "training_seconds": src_manifest.get("training_seconds"),
        "steps_total": prior.get("steps_total", 0) + (src_manifest.get("steps") or 0),
        "training_seconds_total": round(prior.get("training_seconds_total", 0.0)
                                        + (src_manifest.get("training_seconds") or 0.0), 1),
    }
    log.info("generator initialised from %s (%s steps)", init_from["path"], init_from["steps"])
    return init_from


def resume_run(run: _Run, path: Path) -> dict:
    """Load a checkpoint into run: generator, EMA, step counters, history (and stage-1 optimiser)."""
    ckpt = load_checkpoint(path)
    if ckpt["spec"] != run.net_g.spec.to_dict():
        raise ValueError(f"resume: checkpoint generator {ckpt['spec']} differs from the config's "
                         f"{run.net_g.spec.to_dict()}")
    restore_module(run.net_g, ckpt["net_g"], "generator")
    if run.ema is not None:
        if ckpt["ema_g"] is not None:
            restore_module(run.ema.module, ckpt["ema_g"], "EMA generator")
            run.ema.updates = ckpt["ema_updates"]
        else:  # a run without EMA before: start the average at the resumed weights
            run.ema.module.load_state_dict(run.net_g.state_dict())
    run.step, run.stage, run.stage_step = ckpt["step"], ckpt["stage"], ckpt["stage_step"]
    run.history = list(ckpt["history"])
    if run.stage == "srresnet":
        run.opt_g.load_state_dict(ckpt["opt_g"])
    log.info("resumed from %s: step %d (%s step %d)", path, run.step, run.stage, run.stage_step)
    return ckpt


def _train_stages(run: _Run, ckpt: dict | None, data: list[str], eval_data: Sequence[str] | None,
                  t_start: float, **promotion: object) -> TrainResult:
    tcfg, dev, net_g, ema, autocast = run.cfg.training, run.device, run.net_g, run.ema, run.autocast
    memory_format = torch.channels_last if run.channels_last else torch.contiguous_format

    # stage 1: SRResNet, L1
    if run.stage == "srresnet":
        run_stage(run, tcfg.pretrain_steps,
                  lambda lq, gt: pretrain_step(net_g, run.opt_g, lq, gt, autocast, ema, tcfg.gap_weight),
                  optimisers=(run.opt_g,), base_lr=tcfg.lr)
        run.save()

    # stage 2: SRGAN, L1 + content + adversarial
    content_info = None
    if tcfg.gan_steps > 0:
        if run.stage != "srgan":
            run.stage, run.stage_step = "srgan", 0
        content, content_info = content_loss_for(tcfg)
        if content is not None:
            content = content.to(dev, memory_format=memory_format)
        adversarial = GANLoss(tcfg.adv_weight) if tcfg.adv_weight > 0 else None
        if adversarial is not None:
            with _seeded(tcfg.seed + 1):
                net_d = Discriminator(tcfg.crop, tcfg.scale, tcfg.in_channels, tcfg.disc_feat)
            run.net_d = net_d.to(dev, memory_format=memory_format)
            run.opt_d = torch.optim.Adam(run.net_d.parameters(), lr=tcfg.gan_lr, betas=(0.9, 0.999))
        run.opt_g = torch.optim.Adam(net_g.parameters(), lr=tcfg.gan_lr, betas=(0.9, 0.999))
        if ckpt is not None and ckpt["stage"] == "srgan":
            run.opt_g.load_state_dict(ckpt["opt_g"])
            if run.net_d is not None and ckpt["net_d"] is None:  # a repository checkpoint: G, optimiser, EMA
                log.info("resume: the checkpoint has no discriminator (a repository checkpoint); a fresh one starts")
            elif run.net_d is not None:
                restore_module(run.net_d, ckpt["net_d"], "discriminator")
                run.opt_d.load_state_dict(ckpt["opt_d"])
        losses = GanLosses(tcfg.pixel_weight, content, adversarial)
        optimisers = (run.opt_g,) if run.opt_d is None else (run.opt_g, run.opt_d)
        run_stage(run, tcfg.gan_steps,
                  lambda lq, gt: gan_step(net_g, run.net_d, run.opt_g, run.opt_d, losses, lq, gt, autocast, ema),
                  optimisers=optimisers, base_lr=tcfg.gan_lr)
        run.save()
    train_seconds = time.monotonic() - t_start
    final_g = ema.module if ema is not None else net_g

    return evaluate_and_promote(final_g, run.pages, run.cfg, run.out_dir, dev, data, eval_data, run, content_info,
                                train_seconds, t_start=t_start, **promotion)


def evaluate_and_promote(
    net_g: Generator, pages: PageSets, cfg: PipelineConfig, out_dir: Path, dev: torch.device, data: list[str],
    eval_data: Sequence[str] | None, run: _Run, content_info: dict | None, train_seconds: float, *,
    weights_dir: str | Path, weights_name: str | None, promote: bool, t_start: float,
    ocr_eval_data: Sequence[str] | None = None,
) -> TrainResult:
    """Evaluate the new generator (and the current weights) on the held-out pages; promote if better by
    PSNR and if the fidelity gate (srgan.fidelity: CER on the pages with ground truth) passes."""
    from srgan.fidelity.evaluate import evaluate_images
    from srgan.weights import WeightsError, find_default, load_generator, resolve_weights_dir, save_weights

    tcfg = cfg.training
    scale = tcfg.scale
    eval_cfg = override(cfg, "engine.device", dev.type)
    default_name = f"srgan_x{scale}"
    name = weights_name or default_name
    wdir = resolve_weights_dir(weights_dir)

    net_g = copy.deepcopy(net_g).float().to(memory_format=torch.contiguous_format).eval()
    originals = pages.eval_originals()
    trained_height = tcfg.text_height if tcfg.normalise else None  # None: trained on every size, no target
    new_eval = evaluate_images(net_g, trained_height, originals, scale, eval_cfg) if originals else None
    if new_eval is not None:
        log.info("new generator on %d held-out page(s): %.2f dB (bicubic %.2f dB, gain %+.2f dB)",
                 len(new_eval.rows), new_eval.mean_psnr, new_eval.mean_psnr_bicubic, new_eval.mean_gain_db)

    current = find_default(wdir, scale) if name == default_name else (wdir / f"{name}.pt")
    current = current if current is not None and current.exists() else None
    prev_eval, prev_manifest, current_error = None, None, None
    if current is not None and originals and promote:
        try:
            old_g, prev_manifest = load_generator(current, wdir, scale)
            prev_eval = evaluate_images(old_g, prev_manifest.get("text_height"), originals, scale, eval_cfg)
            log.info("current %s on the same pages: %.2f dB", current.name, prev_eval.mean_psnr)
        except WeightsError as exc:
            current_error = str(exc)
            log.warning("current weights %s are unusable: %s", current, exc)

    new_psnr = new_eval.mean_psnr if new_eval is not None else math.nan
    if not promote:
        promoted, reason = False, "promotion disabled (--no-promote)"
    elif current is None:
        promoted = new_eval is None or math.isfinite(new_psnr)
        reason = (f"no current weights for scale {scale} in {wdir}" if promoted
                  else "the new generator could not be evaluated")
        if promoted and new_eval is not None and new_eval.mean_gain_db < 0:
            log.warning("promoting weights that are %.2f dB below bicubic (no current weights to keep)",
                        -new_eval.mean_gain_db)
            reason += f"; note: {-new_eval.mean_gain_db:.2f} dB below bicubic"
    elif current_error is not None:
        promoted, reason = True, f"current weights unusable ({current_error})"
    elif new_eval is None:
        promoted, reason = False, f"no held-out pages to compare with the current {current.name}; kept it"
    elif math.isfinite(new_psnr) and new_psnr > prev_eval.mean_psnr:
        promoted = True
        reason = f"new {new_psnr:.2f} dB > current {prev_eval.mean_psnr:.2f} dB on {len(new_eval.rows)} page(s)"
    else:
        promoted = False
        reason = (f"new {new_psnr:.2f} dB <= current {prev_eval.mean_psnr:.2f} dB on {len(new_eval.rows)} page(s);"
                  f" kept the current {current.name}")

    gate = _fidelity_gate(net_g, cfg, eval_cfg, ocr_eval_data if ocr_eval_data is not None else eval_data,
                          new_eval, prev_eval) if promote else None
    if gate is not None and not gate.passed:
        log.warning("%s", gate.reason())
        if promoted:
            promoted, reason = False, f"{gate.reason()}; kept the current weights"
        else:
            reason = f"{reason}; {gate.reason()}"

    manifest = {
        "text_height": trained_height,
        "trained_on": {
            "data": [str(d) for d in data],
            "eval_data": [str(d) for d in eval_data] if eval_data else None,
            "training_pages": len(pages.train),
            "synthetic_pages": sum(p.synthetic for p in pages.train),
            "held_out_pages": [p.name for p in pages.eval],
            "degradation": tcfg.degradation,
            **describe_training_data(pages, tcfg),
        },
        "stage": run.stage,
        "content_loss": content_info,  # the feature network, its file's sha256, layers and weights (stage 2)
        "stage2_weights": None if run.stage != "srgan" else {
            "pixel": tcfg.pixel_weight, "content": tcfg.content_weight if content_info else 0.0,
            "adversarial": tcfg.adv_weight, "disc_feat": tcfg.disc_feat},
        "training_seconds": round(train_seconds, 1),
        "machine": machine_name(dev),
        "steps": run.step,
        "batch": tcfg.batch_size,
        "crop": tcfg.crop,
        "ema_decay": tcfg.ema_decay,
        "gap_weight": tcfg.gap_weight,
        "initialised_from": run.init_from,
        "evaluation": new_eval.figures() if new_eval is not None else None,
        "compared_with": None if current is None else {
            "path": str(current),
            "sha256": prev_manifest.get("sha256") if prev_manifest else None,
            "evaluation": prev_eval.figures() if prev_eval is not None else None,
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "fidelity_gate": gate.to_dict() if gate is not None else None,
    }
    new_weights = save_weights(net_g, out_dir, name, manifest)
    promoted_to = None
    if promoted:
        wdir.mkdir(parents=True, exist_ok=True)
        promoted_to = save_weights(net_g, wdir, name, manifest)
        log.info("promoted: %s -> %s (%s)", new_weights, promoted_to, reason)
    else:
        log.info("not promoted: %s; new weights stay in %s", reason, new_weights)
    return TrainResult(
        promoted=promoted, reason=reason, eval=new_eval, new_weights=new_weights,
        seconds=time.monotonic() - t_start, steps=run.step, checkpoint=run.checkpoint or out_dir / CHECKPOINT_NAME,
        stage=run.stage, previous_eval=prev_eval, previous_weights=current, promoted_to=promoted_to,
        content_loss=content_info, extra={"fidelity_gate": gate.to_dict() if gate is not None else None},
    )


def _fidelity_gate(net_g: Generator, cfg: PipelineConfig, eval_cfg: PipelineConfig, ocr_inputs: Sequence[str] | None,
                   new_eval: EvalResult | None, prev_eval: EvalResult | None):
    """srgan.fidelity's gate: the paired words rule on tesseract and EasyOCR (both must pass) over every page with
    ground truth (the real ones under ``ocr_inputs`` and, when
    ``training.held_out_family_pages`` > 0, a text page per held-out type family), PSNR gain against the current
    weights."""
    from srgan.fidelity.gate import GateResult, fidelity_gate, load_ocr_pages, measure_pages
    from srgan.fidelity.ocr import ENGINES, missing_engines
    from srgan.training.heldout import held_out_ocr_pages

    pages = load_ocr_pages(list(ocr_inputs or []), cfg)
    if cfg.training.held_out_family_pages > 0:
        pages += held_out_ocr_pages(cfg.training.scale)
    missing = missing_engines(ENGINES)
    if pages and missing:  # pages to check but a reader missing: refuse rather than skip its rule
        return GateResult(passed=False, failures=[{"rule": "readers", "page": None,
                                                   "detail": f"OCR engine not installed: {'; '.join(missing)}"}])
    rows = measure_pages(net_g, cfg.training.text_height, pages, eval_cfg, ocr_engines=ENGINES) if pages else []
    return fidelity_gate(rows, new_eval.mean_gain_db if new_eval is not None else None,
                         prev_eval.mean_gain_db if prev_eval is not None else None)


def legacy_train(cfg: PipelineConfig, inputs: Sequence[str], checkpoint_dir: Path | None = None,
                 load_state_dict: bool = False, save_weights: bool = True) -> TrainResult:
    """The original script's ``--mode train``: --checkpoint is the run folder, --load_state_dict
    resumes from its checkpoint.pt, --save_weights false never touches weights/."""
    out_dir = Path(checkpoint_dir) if checkpoint_dir else Path(cfg.training.out_dir)
    resume = out_dir / CHECKPOINT_NAME if load_state_dict else None
    if resume is not None and not resume.exists():
        log.warning("--load_state_dict true: no %s yet; starting from scratch", resume)
        resume = None
    return train(cfg, list(inputs), out_dir, resume=resume, promote=save_weights)


# ----------------------------------------------------------------------------------------------- CLI

_OVERRIDES = {  # CLI option -> training key
    "scale": "scale", "pretrain_steps": "pretrain_steps", "gan_steps": "gan_steps", "max_seconds": "max_seconds",
    "num_feat": "num_feat", "num_block": "num_block", "batch_size": "batch_size", "crop": "crop",
    "workers": "workers", "synthetic_pages": "synthetic_pages", "degradation": "degradation", "seed": "seed",
    "save_every": "save_every", "eval_every": "eval_every", "vgg_weights": "vgg_weights", "precision": "precision",
    "lr": "lr", "gan_lr": "gan_lr", "lr_schedule": "lr_schedule", "lr_min": "lr_min", "ema_decay": "ema_decay",
    "text_height": "text_height", "skip": "skip", "x_height_min": "x_height_min", "x_height_max": "x_height_max",
    "synthetic_max_side": "synthetic_max_side", "held_out_family_pages": "held_out_family_pages",
    "normalise": "normalise", "gap_weight": "gap_weight", "content_features": "content_features",
    "content_layers": "content_layers", "content_weight": "content_weight", "pixel_weight": "pixel_weight",
    "adv_weight": "adv_weight", "disc_feat": "disc_feat", "arch": "arch",
}


def parse_mix(text: str) -> DegradationMix:
    """``bicubic=0.7,rvl=0.3`` -> DegradationMix(0.7, 0, 0.3); argparse reports a ValueError as a usage error."""
    weights = {f.name: 0.0 for f in dataclasses.fields(DegradationMix)}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name.strip() not in weights:
            raise ValueError(f"unknown chain {name.strip()!r} ({', '.join(weights)})")
        weights[name.strip()] = float(value)
    return DegradationMix(**weights)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m srgan.training", description=__doc__.splitlines()[0])
    p.add_argument("--config", help="pipeline.yaml (default: the project's)")
    p.add_argument("--data", nargs="*", action="extend", default=[], help="training inputs (folders, archives, files)")
    p.add_argument("--eval-data", nargs="+", action="extend", default=None, help="held-out inputs")
    p.add_argument("--out", help="run folder (default: training.out_dir)")
    p.add_argument("--weights-dir", help="current/promoted weights folder (default: upscale.weights_dir)")
    p.add_argument("--weights-name", help="name of the promoted weights (default: srgan_x{scale})")
    p.add_argument("--resume", help="checkpoint.pt to continue from")
    p.add_argument("--init-weights", help="start from these weights (name in the weights folder or .pt path)")
    p.add_argument("--no-promote", action="store_true", help="never copy the new weights into the weights folder")
    p.add_argument("--keep-checkpoint", help="also write a repository checkpoint (G + optimiser + EMA, no D) into "
                   "this folder at every save, e.g. weights/checkpoints/srgan_x8")
    p.add_argument("--ocr-eval-data", nargs="+", action="extend", default=None,
                   help="pages with ground-truth text (.txt beside them) for the fidelity gate "
                        "(default: those in --eval-data)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default: engine.device")
    for opt, typ in (("scale", int), ("pretrain_steps", int), ("gan_steps", int), ("max_seconds", float),
                     ("num_feat", int), ("num_block", int), ("batch_size", int), ("crop", int), ("workers", int),
                     ("synthetic_pages", int), ("degradation", str), ("seed", int), ("save_every", int),
                     ("eval_every", int), ("vgg_weights", str), ("precision", str), ("lr", float),
                     ("gan_lr", float), ("lr_schedule", str), ("lr_min", float), ("ema_decay", float),
                     ("text_height", float), ("skip", str), ("x_height_min", float), ("x_height_max", float),
                     ("synthetic_max_side", int), ("held_out_family_pages", int), ("gap_weight", float),
                     ("content_features", str), ("content_layers", str), ("content_weight", float),
                     ("pixel_weight", float), ("adv_weight", float), ("disc_feat", int), ("arch", str)):
        p.add_argument("--" + opt.replace("_", "-"), type=typ, help=f"training.{opt}")
    p.add_argument("--mix", type=parse_mix, metavar="bicubic=W,scan=W,rvl=W",
                   help="training.mix: the chains' weights for --degradation mix (chains left out weigh 0)")
    p.add_argument("--normalise", action=argparse.BooleanOptionalAction, default=None,
                   help="training.normalise: resample every page to --text-height (default off)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config)
        for opt, key in _OVERRIDES.items():
            value = getattr(args, opt)
            if value is not None:
                cfg = override(cfg, f"training.{key}", value)
        if args.mix is not None:
            cfg = override(cfg, "training.mix", args.mix)
        out = Path(args.out or cfg.training.out_dir)
        result = train(cfg, args.data, out, resume=Path(args.resume) if args.resume else None, device=args.device,
                       eval_data=args.eval_data, weights_dir=args.weights_dir, weights_name=args.weights_name,
                       promote=not args.no_promote, init_weights=args.init_weights,
                       keep_checkpoint=args.keep_checkpoint, ocr_eval_data=args.ocr_eval_data)
    except (ConfigError, ValueError) as exc:
        print(f"srgan.training: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.summary(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
