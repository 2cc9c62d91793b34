"""Training checkpoints: everything needed to resume, saved atomically, loaded with weights_only=True.

A checkpoint holds plain data only (state dicts, numbers, strings, lists, dicts), so
``torch.load(weights_only=True)`` can read it: the generator spec and the config travel as dicts
(nanoGPT saves ``model_args`` beside the state dict the same way).

Two kinds:

- ``full`` (the run folder's ``checkpoint.pt``): generator, discriminator, both optimisers, EMA.
- ``repository`` (``weights/checkpoints/<name>/checkpoint.pt``, kept in git so that the next
  session resumes a long CPU training): generator + its optimiser + EMA, no discriminator and no
  discriminator optimiser, with the Adam moments stored in bf16 (about two thirds of an fp32
  copy; Adam's ``load_state_dict`` casts them back to the parameters' fp32). A stage-2 run resumed
  from it starts a fresh discriminator.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from srgan.atomic import atomic_target

log = logging.getLogger(__name__)

FORMAT = 1
CHECKPOINT_NAME = "checkpoint.pt"
REPOSITORY_CHECKPOINTS = Path("weights/checkpoints")  # <name>/checkpoint.pt: resumable across sessions
KINDS = ("full", "repository")


def repository_checkpoint(name: str, root: Path = REPOSITORY_CHECKPOINTS) -> Path:
    """Where the repository checkpoint of weights ``name`` lives: ``weights/checkpoints/<name>/checkpoint.pt``."""
    return Path(root) / name / CHECKPOINT_NAME


def _compact(opt_state: dict) -> dict:
    """An optimiser state dict with its floating-point per-parameter tensors in bf16 (steps stay as they are)."""
    state = {k: {n: (v.detach().cpu().to(torch.bfloat16) if isinstance(v, torch.Tensor) and v.dtype.is_floating_point
                     and v.dim() > 0 else v) for n, v in per.items()}
             for k, per in opt_state["state"].items()}
    return {"state": state, "param_groups": opt_state["param_groups"]}


def _state(module: nn.Module | None) -> dict | None:
    return None if module is None else {k: v.detach().cpu() for k, v in module.state_dict().items()}


def save_checkpoint(
    path: Path,
    *,
    net_g: nn.Module,
    opt_g: torch.optim.Optimizer,
    step: int,
    stage: str,
    stage_step: int,
    config: dict,
    net_d: nn.Module | None = None,
    opt_d: torch.optim.Optimizer | None = None,
    ema_g: nn.Module | None = None,
    ema_updates: int = 0,
    history: list[dict] | None = None,
    extra: dict | None = None,
    kind: str = "full",
) -> Path:
    """Write a checkpoint to path atomically (srgan.atomic).

    ``kind='repository'`` leaves out the discriminator and its optimiser and stores the generator
    optimiser's moments in bf16 (see the module docstring).

    Args:
        step: optimisation steps done in all stages together.
        stage: ``'srresnet'`` (L1 pre-training) or ``'srgan'``.
        stage_step: steps done in that stage.
        config: the run's PipelineConfig as a plain dict.
    """
    if kind not in KINDS:
        raise ValueError(f"checkpoint kind must be one of {KINDS}, got {kind!r}")
    repository = kind == "repository"
    if repository:
        net_d, opt_d = None, None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ckpt = {
        "format": FORMAT,
        "kind": kind,
        "step": int(step),
        "stage": stage,
        "stage_step": int(stage_step),
        "spec": net_g.spec.to_dict() if hasattr(net_g, "spec") else None,
        "net_g": _state(net_g),
        "net_d": _state(net_d),
        "ema_g": _state(ema_g),
        "ema_updates": int(ema_updates),
        "opt_g": _compact(opt_g.state_dict()) if repository else opt_g.state_dict(),
        "opt_d": opt_d.state_dict() if opt_d is not None else None,
        "config": config,
        "history": list(history or []),
        "extra": dict(extra or {}),
    }
    with atomic_target(path) as tmp:
        torch.save(ckpt, tmp)
    log.debug("checkpoint: step %d (%s step %d) -> %s", step, stage, stage_step, path)
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint with ``torch.load(weights_only=True)``; ValueError (one line) when unusable."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"resume: checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is one line for the user
        raise ValueError(f"resume: {path} is not a readable checkpoint: {str(exc).splitlines()[0]}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"resume: {path} is not a checkpoint of this trainer (format {FORMAT})")
    return ckpt


def restore_module(module: nn.Module, state: dict | None, what: str) -> None:
    """Load a state dict saved by save_checkpoint with strict=True."""
    if state is None:
        raise ValueError(f"resume: the checkpoint has no {what}")
    module.load_state_dict(state, strict=True)
