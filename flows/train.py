"""Prefect flow ``train``: one task that runs ``srgan.training.train.train`` and reports what it decided.

Training is a single long GPU job, so the flow adds only run tracking, logs and a summary; the
same run without Prefect is ``python -m srgan.training``.
"""

from __future__ import annotations

import json
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.recovery import gives_up_after_max_attempts
from srgan.config import config_from_dict, load_config, override, to_dict


@task(cache_policy=NO_CACHE)
def run_training(data: list[str], config: dict, resume: str | None, init_weights: str | None = None,
                 ocr_eval_data: list[str] | None = None) -> dict:
    """Train (SRResNet, then SRGAN if configured), evaluate and promote; return the summary."""
    from srgan.training.train import train as train_generator

    cfg = config_from_dict(config)
    result = train_generator(cfg, data, Path(cfg.training.out_dir), resume=Path(resume) if resume else None,
                             init_weights=init_weights, ocr_eval_data=ocr_eval_data)
    return result.summary()


@flow(name="train")
@gives_up_after_max_attempts("config_path")  # rescheduled after a crash or failure: bounded (flows/recovery.py)
def train(data: list[str] | None = None, scale: int = 2, config_path: str | None = None,
          resume: str | None = None, init_weights: str | None = None, ocr_eval_data: list[str] | None = None) -> dict:
    """Train generator weights for one scale on data (plus synthetic pages).

    init_weights (a name in weights/ or a .pt path) starts from those weights: the nightly refresh
    of the shipped generator; resume continues an interrupted run from its checkpoint. ocr_eval_data:
    pages with ground-truth text (.txt beside them) for the fidelity gate (srgan.fidelity).
    """
    logger = get_run_logger()
    cfg = override(load_config(config_path), "training.scale", scale)
    logger.info("training x%d on %s (+%d synthetic pages)", scale, data or "no data",
                cfg.training.synthetic_pages)
    summary = run_training(list(data or []), to_dict(cfg), resume, init_weights, ocr_eval_data)
    ev = summary.get("eval") or {}
    prev = summary.get("previous_eval") or {}
    result = {
        "promoted": summary["promoted"],
        "reason": summary["reason"],
        "new_weights": summary["new_weights"],
        "gain_db": ev.get("mean_gain_db"),
        "mean_psnr": ev.get("mean_psnr"),
        "previous_mean_psnr": prev.get("mean_psnr"),
        "steps": summary["steps"],
        "fidelity_gate": summary.get("fidelity_gate"),
    }
    for failure in (summary.get("fidelity_gate") or {}).get("failures", []):
        logger.warning("fidelity gate: rule %s failed%s: %s", failure["rule"],
                       f" on {failure['page']}" if failure.get("page") else "", failure["detail"])
    logger.info("%s: %s", "promoted" if result["promoted"] else "not promoted", result["reason"])
    return result


if __name__ == "__main__":
    import sys

    print(json.dumps(train(data=sys.argv[1:] or None), indent=2, default=str))
