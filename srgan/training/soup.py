"""Weights interpolated between two generators: ``python -m srgan.training.soup A B --alpha W --name N``.

Two weights of one architecture where B was refined from A (the shipped srgan_x2 and srgan_x2_small, its
small-print refinement) are good at different text sizes: A at 6-16 px, B at 2.5-5 px. Their parameters
averaged, ``(1 - alpha) x A + alpha x B`` (weight-space ensembling, Wortsman et al. 2022, "Robust fine-tuning
of zero-shot models"), give one generator between the two at no training cost; which sizes it validates is
measured as for any weights (``python -m srgan.fidelity``). Parameters are blended; integer buffers (none in
this generator) would be taken from A. The manifest names both parents by path and sha256 and the alpha.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from srgan.models import Generator
from srgan.weights import WeightsError, load_generator, save_weights

DROPPED_KEYS = ("path", "validated_xheight_px", "validated_estimate_px", "validated_range_evidence",
                "compared_with", "evaluation")  # measured on A, not the blend; save_weights writes name, file, sha256


def interpolate(net_a: Generator, net_b: Generator, alpha: float) -> Generator:
    """A new generator with every floating-point tensor (1 - alpha) x A + alpha x B; A and B untouched."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"soup: alpha must be in [0, 1], got {alpha}")
    if net_a.spec != net_b.spec:
        raise ValueError(f"soup: the two generators differ in architecture ({net_a.spec} against {net_b.spec})")
    state_a, state_b = net_a.state_dict(), net_b.state_dict()
    blended = {k: ((1 - alpha) * v.float() + alpha * state_b[k].float()).to(v.dtype) if v.is_floating_point() else v
               for k, v in state_a.items()}
    out = Generator.from_spec(net_a.spec)
    out.load_state_dict(blended, strict=True)
    return out.eval()


def soup_manifest(man_a: dict, man_b: dict, alpha: float) -> dict:
    """A's manifest without what was measured on A alone, plus ``soup``: both parents and alpha."""
    manifest = {k: v for k, v in man_a.items() if k not in DROPPED_KEYS}
    manifest["soup"] = {"a": {"path": man_a.get("path"), "sha256": man_a.get("sha256")},
                        "b": {"path": man_b.get("path"), "sha256": man_b.get("sha256")},
                        "alpha_b": alpha,
                        "rule": "(1 - alpha_b) x A + alpha_b x B, every floating-point tensor"}
    manifest["stage"] = "soup"
    return manifest


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m srgan.training.soup", description=__doc__.split("\n\n")[0])
    p.add_argument("a", help="weights A (a name in --weights-dir or a .pt path)")
    p.add_argument("b", help="weights B, same architecture and scale")
    p.add_argument("--alpha", type=float, required=True, help="share of B, 0..1")
    p.add_argument("--name", required=True, help="name of the written weights (<name>.pt and <name>.json)")
    p.add_argument("--out", default="runs/soup", help="folder the weights are written into")
    p.add_argument("--weights-dir", default="weights", help="where names A and B are looked up")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        net_a, man_a = load_generator(args.a, args.weights_dir)
        net_b, man_b = load_generator(args.b, args.weights_dir)
        net = interpolate(net_a, net_b, args.alpha)
    except (WeightsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pt = save_weights(net, out, args.name, soup_manifest(man_a, man_b, args.alpha))
    print(f"wrote {pt} ({args.alpha:g} of {args.b}, {1 - args.alpha:g} of {args.a})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
