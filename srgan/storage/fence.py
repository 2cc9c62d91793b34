"""Fencing: writes under an output whose lease is no longer safely held are refused before they start.

A run on object storage holds its output by a lease (``srgan.storage.lease``). A worker cut off from
the store cannot renew it, and once its renewal deadline has passed another worker may take the output
over; from then on nothing the cut-off worker does may land there. So the run registers its output
with the lease's check (``fenced``) for as long as it holds it, and every write and delete under that
output (``srgan.atomic``, ``srgan.storage.files.remove``) calls ``check_write`` first, before each
attempt of a retried write too. The check raises ``FencedError``, which the per-page handlers do not
turn into an error row: the run stops and ends Failed, and its unit is run again elsewhere.

The registry is per process (a deployment run is one process; its task threads share it).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

_lock = threading.Lock()
_checks: dict[str, Callable[[], None]] = {}  # output prefix -> the check of the lease that holds it


class FencedError(RuntimeError):
    """This run no longer holds its output (lease lost or not renewed in time): it must stop writing."""


@contextlib.contextmanager
def fenced(prefix: str, check: Callable[[], None]) -> Iterator[None]:
    """While the block runs, every write under `prefix` calls `check()` first (it raises FencedError)."""
    prefix = prefix.rstrip("/") + "/"
    with _lock:
        _checks[prefix] = check
    try:
        yield
    finally:
        with _lock:
            _checks.pop(prefix, None)


def check_write(path: object) -> None:
    """FencedError if `path` lies under a fenced output whose holder may no longer write."""
    target = str(path)
    with _lock:
        checks = [check for prefix, check in _checks.items() if target.startswith(prefix)]
    for check in checks:
        check()
