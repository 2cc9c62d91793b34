"""The ``train_speed`` case: training steps per second of each objective on this machine.

Three objectives on the same generator, batch and crops (``srgan.training.train``'s own step functions):
``l1`` (stage 1), ``l1+content`` (stage 2 without a discriminator: L1 + CRAFT content) and
``l1+content+adv`` (the full SRGAN stage: L1 + content + 1e-3 adversarial, one discriminator step per
generator step). Crops are random tensors of the training shapes: the figure is the step's compute, not
the data loader's (which runs in its own workers while training). Each combination of precision
(fp32 / bf16 autocast) and memory format (contiguous / channels_last) that is asked for gets one row.
"""

from __future__ import annotations

import contextlib
import functools
import time

import torch

from srgan.inference.engine import autocast_context
from srgan.models import Discriminator, Generator
from srgan.training.losses import GANLoss, TextContentLoss, parse_layer_weights
from srgan.training.train import GanLosses, gan_step, pretrain_step

OBJECTIVES = ("l1", "l1+content", "l1+content+adv")


def _steps_per_second(step, batches: list[tuple[torch.Tensor, torch.Tensor]], steps: int, warmup: int) -> float:
    for i in range(warmup):
        step(*batches[i % len(batches)])
    t0 = time.perf_counter()
    for i in range(steps):
        step(*batches[i % len(batches)])
    return steps / (time.perf_counter() - t0)


def bench_training_speed(scale: int, *, num_feat: int = 32, num_block: int = 8, batch: int = 8, crop: int = 96,
                         content_layers: str = "conv2_2,conv3_2", disc_feat: int = 64,
                         precisions: tuple[str, ...] = ("fp32", "bf16"),
                         channels_last: tuple[bool, ...] = (False, True),
                         objectives: tuple[str, ...] = OBJECTIVES, steps: int = 10, warmup: int = 3) -> list[dict]:
    """One row per (objective, precision, memory format): steps/s on the CPU with torch's current threads."""
    dev = torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    batches = [(torch.rand(batch, 1, crop // scale, crop // scale, generator=gen),
                torch.rand(batch, 1, crop, crop, generator=gen)) for _ in range(2)]
    content = TextContentLoss(parse_layer_weights(content_layers))
    rows = []
    for objective in objectives:
        for precision in precisions:
            for cl in channels_last:
                fmt = torch.channels_last if cl else torch.contiguous_format
                torch.manual_seed(0)
                net_g = Generator(scale, num_feat, num_block).to(memory_format=fmt)
                opt_g = torch.optim.Adam(net_g.parameters(), lr=1e-4)
                autocast = functools.partial(autocast_context, dev, precision)
                data = [(lq.contiguous(memory_format=fmt), gt.contiguous(memory_format=fmt)) for lq, gt in batches]
                if objective == "l1":
                    step = functools.partial(pretrain_step, net_g, opt_g, autocast=autocast, ema=None)
                else:
                    net_d = opt_d = adversarial = None
                    if objective.endswith("+adv"):
                        net_d = Discriminator(crop, scale, 1, disc_feat).to(memory_format=fmt)
                        opt_d = torch.optim.Adam(net_d.parameters(), lr=1e-4)
                        adversarial = GANLoss(1e-3)
                    losses = GanLosses(1.0, content.to(memory_format=fmt), adversarial)
                    step = functools.partial(gan_step, net_g, net_d, opt_g, opt_d, losses, autocast=autocast,
                                             ema=None)
                with contextlib.suppress(RuntimeError):  # a precision this CPU cannot run leaves no row
                    rate = _steps_per_second(lambda lq, gt, s=step: s(lq=lq, gt=gt), data, steps, warmup)
                    rows.append({
                        "case": "train_speed", "scale": scale, "objective": objective, "precision": precision,
                        "channels_last": cl, "generator": f"{num_block}x{num_feat}", "batch": batch,
                        "hr_crop": crop, "lr_crop": crop // scale, "content_layers": content_layers,
                        "disc_feat": disc_feat, "threads": torch.get_num_threads(),
                        "steps_per_s": round(rate, 3),
                    })
    return rows
