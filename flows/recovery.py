"""Bounded attempts for deployment runs, the part of recovery that lives in the flows.

`srgan deploy`'s automation (flows/deploy.py, ``RESCHEDULE_AUTOMATION``) puts a Crashed or Failed run of
a deployment tagged ``srgan`` back to Scheduled, so another worker runs it again with the same
parameters. The flows bound that loop: a run whose Prefect run count exceeds ``flow.max_attempts``
ends at once in a Failed state named ``GaveUp``, which the automation does not match.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable

import prefect.runtime
from prefect.states import Failed

from srgan.config import ConfigError, FlowConfig, load_config

GAVE_UP = "GaveUp"  # the final state name of a run out of attempts (not rescheduled)


def attempt() -> int:
    """This flow run's attempt: Prefect's run count (1 for the first; 1 outside a deployment run)."""
    return max(1, int(prefect.runtime.flow_run.run_count or 1))


def max_attempts(config_path: str | None) -> int:
    try:
        return load_config(config_path).flow.max_attempts
    except (ConfigError, OSError):  # a broken config fails inside the run; the bound still holds
        return FlowConfig().max_attempts


def gives_up_after_max_attempts(config_arg: str = "config_path") -> Callable:
    """Decorator for a flow function: past flow.max_attempts (of the config its `config_arg` names) the run
    returns a Failed state named GaveUp without doing anything, before it takes any lock."""

    def wrap(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run_bounded(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            limit = max_attempts(bound.arguments.get(config_arg))
            if attempt() > limit:
                return Failed(name=GAVE_UP, message=f"gave up: attempt {attempt()} of at most {limit} "
                                                    "(flow.max_attempts); see the earlier attempts' logs")
            return fn(*args, **kwargs)

        return run_bounded

    return wrap
