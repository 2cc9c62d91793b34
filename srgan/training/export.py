"""Weights from a training checkpoint: ``python -m srgan.training.export CHECKPOINT --name N --out DIR``.

A long CPU run (hours, over several sessions) is judged before it ends: this writes the checkpoint's EMA
generator (its generator where it has no EMA) as weights with a manifest, which the fidelity gate and the
sweeps read like any shipped weights. The manifest says it is a checkpoint export: the checkpoint's path
and sha256, its step counters and stage, and the stage-2 objective of its config (content network and
layers, the weights of L1, content and adversarial terms).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from srgan.models import Generator
from srgan.training.checkpoint import load_checkpoint, restore_module
from srgan.weights import save_weights, sha256_of


def checkpoint_generator(ckpt: dict, use_ema: bool = True) -> Generator:
    """The checkpoint's EMA generator (or its generator), rebuilt from the stored spec, in eval mode."""
    net = Generator.from_spec(ckpt["spec"])
    state = ckpt["ema_g"] if use_ema and ckpt.get("ema_g") is not None else ckpt["net_g"]
    restore_module(net, state, "generator")
    return net.eval()


def export_manifest(ckpt: dict, path: Path, used_ema: bool) -> dict:
    """What the weights manifest records of a checkpoint export."""
    tcfg = (ckpt.get("config") or {}).get("training", {})
    stage2 = ckpt["stage"] == "srgan"
    return {
        "stage": ckpt["stage"],
        "steps": ckpt["step"],
        "stage_steps": ckpt["stage_step"],
        "text_height": None if not tcfg.get("normalise") else tcfg.get("text_height"),
        "batch": tcfg.get("batch_size"),
        "crop": tcfg.get("crop"),
        "degradation": tcfg.get("degradation"),
        "ema_decay": tcfg.get("ema_decay") if used_ema else 0.0,
        "content_loss": {"network": tcfg.get("content_features"), "layers": tcfg.get("content_layers"),
                         "weight": tcfg.get("content_weight")} if stage2 else None,
        "stage2_weights": {"pixel": tcfg.get("pixel_weight"), "content": tcfg.get("content_weight"),
                           "adversarial": tcfg.get("adv_weight"), "disc_feat": tcfg.get("disc_feat")}
        if stage2 else None,
        "exported_from": {"checkpoint": str(path), "sha256": sha256_of(path), "ema": used_ema,
                          "date": datetime.now(UTC).isoformat(timespec="seconds")},
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m srgan.training.export", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a checkpoint.pt (full or repository)")
    p.add_argument("--name", required=True, help="name of the written weights (<name>.pt and <name>.json)")
    p.add_argument("--out", default="runs/export", help="folder the weights are written into")
    p.add_argument("--no-ema", action="store_true", help="the generator itself instead of its EMA")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = Path(args.checkpoint)
    try:
        ckpt = load_checkpoint(path)
        net = checkpoint_generator(ckpt, use_ema=not args.no_ema)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    used_ema = not args.no_ema and ckpt.get("ema_g") is not None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pt = save_weights(net, out, args.name, export_manifest(ckpt, path, used_ema))
    print(f"wrote {pt} ({'EMA of ' if used_ema else ''}{ckpt['stage']} step {ckpt['step']} of {path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
