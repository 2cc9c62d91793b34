"""One run at a time per output folder: an advisory lock file, ``OUT/.lock``, held with flock(2).

Two runs on the same output folder would each decide from the records what is left and then both
process it (measured before this: 160 of 200 pages written and recorded twice). So a run holds the
folder for its whole length, and a second run refuses at once with one line naming the holder
(the CLI exits 2). The kernel drops the lock when the holding process dies, however it dies
(SIGKILL included), so a killed run never blocks the next one; the file itself stays, holding the
last holder's description, and is reused.

Shards of one folder (``flows/sharded.py``) run side by side: a shard holds ``OUT/.lock`` shared
and its own ``OUT/.lock.shard-<i>-of-<n>`` exclusively, so two runs of the same shard, or a whole-
folder run beside any shard, still exclude each other.

flock works between processes of one machine and, on Linux, on NFS (emulated with NFS byte-range
locks); on storage without working locks two machines writing into one folder are not guarded.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import functools
import inspect
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_NAME = ".lock"


class OutputBusyError(RuntimeError):
    """Another run holds the output folder (one line naming it)."""


def _describe(path: Path) -> str:
    try:
        held = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        held = {}
    if not held:
        return "another run (no description in the lock file)"
    return (f"{held.get('holder', 'a run')} (pid {held.get('pid', '?')} on {held.get('host', '?')}, "
            f"since {held.get('since', '?')})")


def _take(path: Path, mode: int) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise
    return fd


def _write_holder(fd: int, holder: str) -> None:
    info = {"holder": holder, "pid": os.getpid(), "host": socket.gethostname(),
            "since": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)


@contextlib.contextmanager
def hold_output(out_dir: Path, holder: str, shard_index: int | None = None,
                shard_count: int | None = None) -> Iterator[Path]:
    """Hold the output folder (or one shard of it) while the block runs; OutputBusyError if taken.

    holder: how the refusal names this run (e.g. 'srgan run 20261202T... ' or 'flow run tidy-cat (id)').
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folder = out_dir / LOCK_NAME
    sharded = shard_count is not None
    fds: list[int] = []
    try:
        try:
            fds.append(_take(folder, fcntl.LOCK_SH if sharded else fcntl.LOCK_EX))
        except BlockingIOError:
            raise OutputBusyError(f"output folder {out_dir} is in use by {_describe(folder)}; "
                                  f"wait for it to finish or choose another --out") from None
        mine = folder
        if sharded:
            mine = out_dir / f"{LOCK_NAME}.shard-{shard_index}-of-{shard_count}"
            try:
                fds.append(_take(mine, fcntl.LOCK_EX))
            except BlockingIOError:
                raise OutputBusyError(f"shard {shard_index} of {shard_count} of output folder {out_dir} is in use "
                                      f"by {_describe(mine)}") from None
        for fd in fds:  # shards each write the folder's file too: the last one names the sharded run
            _write_holder(fd, holder)
        yield mine
    finally:
        for fd in reversed(fds):
            os.close(fd)  # closing the descriptor releases the lock


def ensure_free(out_dir: Path) -> None:
    """OutputBusyError now if another run holds the folder (a check before starting; the run itself
    takes the lock, so a run that starts in between is still refused then)."""
    if Path(out_dir).is_dir():
        with hold_output(out_dir, "a check"):
            pass


def holds_output_folder(out_arg: str, holder: Callable[[], str]) -> Callable:
    """Decorator: the function runs holding the folder named by its argument `out_arg` (and the shard
    of its `shard_index`/`shard_count` arguments, when it has them); `holder()` describes the run."""

    def wrap(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run_holding(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            given = bound.arguments
            with hold_output(Path(given[out_arg]).resolve(), holder(), given.get("shard_index"),
                             given.get("shard_count")):
                return fn(*args, **kwargs)

        return run_holding

    return wrap
