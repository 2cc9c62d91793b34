"""The bench's ``layers`` case: where a generator's time goes, layer by layer, on this machine.

Each leaf module (convolution, PReLU, PixelShuffle) is timed with forward pre- and post-hooks around its
own call (eager PyTorch on the CPU runs synchronously, so the wall time between the two hooks is the
layer's), over ``repeats`` forwards of one batch of tiles after a warm-up; the time is the median
across repeats. Convolutions also get their multiply-adds and the rate they ran at. What runs between
leaf modules (the residual additions, the bicubic skip) is the row ``(between layers)``.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from collections.abc import Iterator

import torch
from torch import nn

from srgan.inference.engine import autocast_context

LEAVES = (nn.Conv2d, nn.PReLU, nn.PixelShuffle)


def leaf_modules(net: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    for name, mod in net.named_modules():
        if isinstance(mod, LEAVES):
            yield name, mod


def conv_macs(mod: nn.Conv2d, out: torch.Tensor) -> int:
    """Multiply-adds of one Conv2d call that produced ``out``."""
    return out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]


@torch.inference_mode()
def profile_layers(net: nn.Module, shape: tuple[int, int, int, int], precision: str = "fp32",
                   repeats: int = 5, channels_last: bool = True) -> list[dict]:
    """Per-layer milliseconds (median over ``repeats``), GFLOP and GFLOP/s of one forward of a
    ``shape`` batch on the CPU; the last rows are the layers' sum, the whole forward and what runs between."""
    device = torch.device("cpu")
    net = net.eval().to(device)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    x = torch.rand(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    times: dict[str, list[float]] = defaultdict(list)
    info: dict[str, dict] = {}
    started: dict[str, float] = {}
    handles = []
    for name, mod in leaf_modules(net):
        def pre(_m: nn.Module, _i: tuple, name: str = name) -> None:
            started[name] = time.perf_counter()

        def post(m: nn.Module, _i: tuple, out: torch.Tensor, name: str = name) -> None:
            times[name].append(time.perf_counter() - started[name])
            if name not in info:
                macs = conv_macs(m, out) if isinstance(m, nn.Conv2d) else 0
                what = (f"conv{m.kernel_size[0]}x{m.kernel_size[1]} {m.in_channels}->{m.out_channels}"
                        if isinstance(m, nn.Conv2d) else type(m).__name__)
                info[name] = {"layer": name, "op": what, "out_shape": list(out.shape), "gflop": 2 * macs / 1e9}

        handles += [mod.register_forward_pre_hook(pre), mod.register_forward_hook(post)]
    whole: list[float] = []
    try:
        with autocast_context(device, precision):
            net(x)  # warm-up: oneDNN builds its primitives on the first call
            times.clear()
            for _ in range(repeats):
                t0 = time.perf_counter()
                net(x)
                whole.append(time.perf_counter() - t0)
    finally:
        for h in handles:
            h.remove()
    calls = {name: len(v) // repeats for name, v in times.items()}  # a module called twice per forward
    rows = []
    for name, row in info.items():
        per_forward = [sum(times[name][i * calls[name]:(i + 1) * calls[name]]) for i in range(repeats)]
        ms = 1000 * statistics.median(per_forward)
        gflop = row["gflop"] * calls[name]
        rows.append({**row, "gflop": gflop, "ms": round(ms, 3),
                     "gflop_per_s": round(gflop / (ms / 1000), 1) if gflop and ms else None})
    total_ms = 1000 * statistics.median(whole)
    layers_ms = sum(r["ms"] for r in rows)
    total_gflop = sum(r["gflop"] for r in rows)
    for r in rows:
        r["share"] = round(r["ms"] / total_ms, 3)
    rows.append({"layer": "(between layers)", "op": "adds, bicubic skip, hooks", "ms": round(total_ms - layers_ms, 3),
                 "share": round((total_ms - layers_ms) / total_ms, 3), "gflop": 0.0, "gflop_per_s": None,
                 "out_shape": None})
    rows.append({"layer": "(forward)", "op": f"{precision}, batch {list(shape)}", "ms": round(total_ms, 3),
                 "share": 1.0, "gflop": total_gflop,
                 "gflop_per_s": round(total_gflop / (total_ms / 1000), 1), "out_shape": None})
    return rows


def format_layers(model: str, rows: list[dict]) -> str:
    """A markdown table of ``profile_layers`` rows."""
    out = [f"{model}:", "", "| layer | op | output | ms | share | GFLOP | GFLOP/s |",
           "|---|---|---|---:|---:|---:|---:|"]
    for r in rows:
        shape = "x".join(str(v) for v in r["out_shape"]) if r["out_shape"] else ""
        rate = "" if r["gflop_per_s"] is None else f"{r['gflop_per_s']:.0f}"
        out.append(f"| {r['layer']} | {r['op']} | {shape} | {r['ms']:.1f} | {100 * r['share']:.1f}% | "
                   f"{r['gflop']:.2f} | {rate} |")
    return "\n".join(out)
