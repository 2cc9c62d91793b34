"""One run per output folder (srgan/pipeline/outlock.py), between real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from srgan.pipeline.outlock import OutputBusyError, hold_output
from tests.conftest import REPO

HOLD = """
import sys, time
from srgan.pipeline.outlock import hold_output
shard = None if sys.argv[3] == "-" else int(sys.argv[3])
count = None if sys.argv[4] == "-" else int(sys.argv[4])
with hold_output(sys.argv[1], sys.argv[2], shard, count):
    print("held", flush=True)
    time.sleep(float(sys.argv[5]))
"""


def hold_in_process(out: Path, holder: str, shard: int | None = None, count: int | None = None,
                    seconds: float = 60) -> subprocess.Popen:
    """A second process holding the folder (or a shard of it); returns once it holds it."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out), holder, "-" if shard is None else str(shard),
                             "-" if count is None else str(count), str(seconds)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "held", f"holder did not start (exit {proc.poll()})"
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def test_a_second_run_is_refused_naming_the_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = hold_in_process(out, "srgan run A")
    try:
        with pytest.raises(OutputBusyError) as caught, hold_output(out, "srgan run B"):
            pytest.fail("took a folder another process holds")
        message = str(caught.value)
        assert "\n" not in message and str(out) in message
        assert f"srgan run A (pid {first.pid} on " in message
        with pytest.raises(OutputBusyError), hold_output(out, "shard", 0, 2):
            pytest.fail("a shard ran beside a whole-folder run")
    finally:
        stop(first)
    with hold_output(out, "srgan run B"):  # free once the holder has ended
        pass


def test_a_killed_holder_does_not_block_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    holder = hold_in_process(out, "killed run")
    holder.send_signal(signal.SIGKILL)
    holder.wait(10)
    assert (out / ".lock").exists()  # the file stays; the kernel dropped the lock with the process
    with hold_output(out, "next run") as lock:
        assert "next run" in lock.read_text()


def test_shards_run_side_by_side_but_not_twice(tmp_path: Path) -> None:
    out = tmp_path / "out"
    shard0 = hold_in_process(out, "shard 0 run", 0, 2)
    try:
        with hold_output(out, "shard 1 run", 1, 2):  # another shard: fine
            pass
        with pytest.raises(OutputBusyError, match="shard 0 of 2 .* in use by shard 0 run"), \
                hold_output(out, "again", 0, 2):
            pytest.fail("the same shard ran twice")
        with pytest.raises(OutputBusyError, match=r"is in use by shard [01] run"), hold_output(out, "whole"):
            pytest.fail("a whole-folder run ran beside a shard")
    finally:
        stop(shard0)


def test_the_plain_runner_holds_the_folder(tmp_path: Path) -> None:
    """srgan.pipeline.run.run_pipeline refuses while another process holds the folder, before touching it."""
    from srgan.pipeline.run import run_pipeline

    out = tmp_path / "out"
    holder = hold_in_process(out, "the nightly run")
    try:
        started = time.monotonic()
        with pytest.raises(OutputBusyError, match="the nightly run"):
            run_pipeline([str(tmp_path)], out, None, None, "w", "sha", None)  # refused before any of them is used
        assert time.monotonic() - started < 5
        assert not (out / ".work").exists() and not (out / "records").exists()
    finally:
        stop(holder)
