"""Shipped weights: ``<name>.pt`` (generator state dict) beside ``<name>.json`` (manifest).

The manifest rebuilds the architecture (``spec``), names the scale and the text height the
weights were trained on, and carries the sha256 of the .pt file, checked on every load.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import torch

from srgan.atomic import atomic_target, atomic_write_bytes
from srgan.models import Generator

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class WeightsError(ValueError):
    """Weights missing, corrupted or not what was asked for (one line)."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_weights_dir(weights_dir: str | Path) -> Path:
    p = Path(weights_dir)
    return p if p.is_absolute() else PROJECT_ROOT / p


def save_weights(net_g: Generator, weights_dir: Path, name: str, manifest: dict) -> Path:
    """Save net_g's state dict as weights_dir/name.pt and its manifest as name.json (both atomic)."""
    weights_dir = Path(weights_dir)
    pt = weights_dir / f"{name}.pt"
    state = {k: v.detach().cpu().float().contiguous() for k, v in net_g.state_dict().items()}
    with atomic_target(pt) as tmp:
        torch.save(state, tmp)
    full = dict(manifest)
    full.update(
        name=name,
        file=pt.name,
        sha256=sha256_of(pt),
        spec=net_g.spec.to_dict(),
        scale=net_g.scale,
    )
    full.setdefault("text_height", None)
    atomic_write_bytes(weights_dir / f"{name}.json", (json.dumps(full, indent=2, sort_keys=True) + "\n").encode())
    return pt


def resolve_weights(ref: str | Path, weights_dir: str | Path, scale: int | None = None) -> Path:
    """Turn 'auto', a name in weights_dir, or a path into the .pt path (existence checked)."""
    wdir = resolve_weights_dir(weights_dir)
    ref = str(ref)
    if ref == "auto":
        if scale is None:
            raise WeightsError("weights: 'auto' needs a scale")
        found = find_default(wdir, scale)
        if found is None:
            raise WeightsError(f"weights: no weights for scale {scale} in {wdir}")
        return found
    p = Path(ref)
    if p.suffix == ".pt" or p.exists():
        if not p.exists():
            raise WeightsError(f"weights: file not found: {p}")
        return p
    candidate = wdir / f"{ref}.pt"
    if not candidate.exists():
        names = sorted(x.stem for x in wdir.glob("*.pt"))
        raise WeightsError(f"weights: no weights named {ref!r} in {wdir} (have: {', '.join(names) or 'none'})")
    return candidate


def find_default(weights_dir: Path, scale: int) -> Path | None:
    """The default weights for a scale: weights_dir/srgan_x{scale}.pt when present."""
    p = Path(weights_dir) / f"srgan_x{scale}.pt"
    return p if p.exists() else None


def read_manifest(pt: Path) -> dict:
    man = pt.with_suffix(".json")
    if not man.exists():
        raise WeightsError(f"weights: manifest missing for {pt} (expected {man.name})")
    try:
        return json.loads(man.read_text())
    except json.JSONDecodeError as exc:
        raise WeightsError(f"weights: manifest {man} is not valid JSON: {exc}") from exc


def decision_range(manifest: dict) -> list[float] | None:
    """The text range a run compares each page's x-height *estimate* with: the manifest's
    ``validated_estimate_px`` (the validated sizes as the estimator reads them, srgan.fidelity), else its
    ``validated_xheight_px`` (true sizes; manifests measured before 2026-12-05), else None (no range)."""
    return manifest.get("validated_estimate_px") or manifest.get("validated_xheight_px")


def load_generator(
    ref: str | Path, weights_dir: str | Path = "weights", scale: int | None = None
) -> tuple[Generator, dict]:
    """Load a generator with torch.load(weights_only=True) after checking its sha256.

    Raises WeightsError (one line) when the file is missing, its sha256 differs from the manifest,
    its scale differs from the one asked for, or its state dict does not fit the architecture.
    """
    pt = resolve_weights(ref, weights_dir, scale)
    manifest = read_manifest(pt)
    actual = sha256_of(pt)
    if manifest.get("sha256") != actual:
        raise WeightsError(f"weights: sha256 mismatch for {pt}: manifest {manifest.get('sha256')}, file {actual}")
    if scale is not None and manifest.get("scale") != scale:
        raise WeightsError(f"weights: {pt.name} is for scale {manifest.get('scale')}, not {scale}")
    try:
        net_g = Generator.from_spec(manifest["spec"])
        state = torch.load(pt, map_location="cpu", weights_only=True)
        net_g.load_state_dict(state, strict=True)
    except (KeyError, TypeError, RuntimeError, pickle.UnpicklingError) as exc:
        raise WeightsError(f"weights: {pt.name} does not fit its manifest's architecture: "
                           f"{str(exc).splitlines()[0]}") from exc
    manifest["path"] = str(pt)
    return net_g.eval(), manifest
