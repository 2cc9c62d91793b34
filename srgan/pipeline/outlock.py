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
locks). An output on object storage (an ``s3://`` URL) has no flock: there the same rules hold with
leases that expire by themselves (``srgan.storage.lease``): ``OUT/.locks/all.json`` for a whole-
folder run, ``OUT/.locks/shard-<i>-of-<n>.json`` for a shard; a run takes its own lease, then checks
that no conflicting live lease exists (else it lets go and refuses), so of two conflicting runs at
least one refuses and none ever writes beside the other. While it holds the lease, every write under
the output checks it first (``srgan.storage.fence``): a run cut off from the store past its renewal
deadline raises ``FencedError`` instead of writing, before anyone can take the output over.
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

from srgan.storage.fence import fenced
from srgan.storage.files import Location, is_dir, is_url, join, list_names, normalise
from srgan.storage.lease import Lease, LeaseBusyError, UnsafeLeaseError, describe

LOCK_NAME = ".lock"
LOCKS_DIR = ".locks"  # on object storage: the leases (see the module docstring)


class OutputBusyError(RuntimeError):
    """Another run holds the output folder (one line naming it)."""


def _describe(path: Path) -> str:
    try:
        held = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        held = {}
    return describe(held) if held else "another run (no description in the lock file)"


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
def hold_output(out_dir: Location, holder: str, shard_index: int | None = None,
                shard_count: int | None = None, key: str = "", attempt: int = 1) -> Iterator[Location]:
    """Hold the output folder (or one shard of it) while the block runs; OutputBusyError if taken.

    holder: how the refusal names this run (e.g. 'srgan run 20261202T... ' or 'flow run tidy-cat (id)').
    key, attempt: the Prefect flow run and its attempt; on object storage a later attempt of the same run
    takes its dead earlier attempt's lease at once (srgan.storage.lease).
    """
    if is_url(out_dir):
        with _hold_leases(normalise(out_dir), holder, shard_index, shard_count, key, attempt) as mine:
            yield mine
        return
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


def ensure_free(out_dir: Location) -> None:
    """OutputBusyError now if another run holds the folder (a check before starting; the run itself
    takes the lock, so a run that starts in between is still refused then)."""
    if is_url(out_dir):
        locks = join(normalise(out_dir), LOCKS_DIR)
        for name in list_names(locks, ".json"):
            held = Lease(str(join(locks, name)), "a check").live()
            if held is not None:
                raise OutputBusyError(f"output {out_dir} is in use by {describe(held)}; "
                                      f"wait for it to finish or choose another --out")
        return
    if is_dir(out_dir):
        with hold_output(out_dir, "a check"):
            pass


@contextlib.contextmanager
def _hold_leases(out: str, holder: str, shard_index: int | None, shard_count: int | None, key: str,
                 attempt: int) -> Iterator[str]:
    """hold_output on object storage: this run's lease, then no conflicting live lease (see the module)."""
    locks = join(out, LOCKS_DIR)
    sharded = shard_count is not None
    name = f"shard-{shard_index}-of-{shard_count}.json" if sharded else "all.json"
    mine = Lease(str(join(locks, name)), holder, key, attempt)
    what = f"shard {shard_index} of {shard_count} of output {out}" if sharded else f"output {out}"
    try:
        mine.acquire()
    except LeaseBusyError as exc:
        raise OutputBusyError(f"{what} is in use by {describe(exc.holder)}; wait for it to finish or choose "
                              "another --out") from None
    except UnsafeLeaseError as exc:
        raise OutputBusyError(str(exc)) from None
    try:
        others = ["all.json"] if sharded else [n for n in list_names(locks, ".json") if n.startswith("shard-")]
        for other in others:
            held = Lease(str(join(locks, other)), holder).live()
            if held is not None:
                raise OutputBusyError(f"{what} cannot be taken: {out} is in use by {describe(held)}")
        with fenced(out, mine.check):
            yield str(join(locks, name))
    finally:
        mine.release()


def holds_output_folder(out_arg: str, holder: Callable[[], str],
                        identity: Callable[[], tuple[str, int]] | None = None) -> Callable:
    """Decorator: the function runs holding the folder named by its argument `out_arg` (and the shard
    of its `shard_index`/`shard_count` arguments, when it has them); `holder()` describes the run,
    `identity()` gives its (run key, attempt) for leases on object storage."""

    def wrap(fn: Callable) -> Callable:
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def run_holding(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            given = bound.arguments
            run_key, attempt = identity() if identity else ("", 1)
            with hold_output(normalise(given[out_arg]), holder(), given.get("shard_index"),
                             given.get("shard_count"), run_key, attempt):
                return fn(*args, **kwargs)

        return run_holding

    return wrap
