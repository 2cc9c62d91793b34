"""Keep the calling thread's alternate signal stack across a call into a native library that swaps it.

OpenVINO's CPU plugin sets its own alternate signal stack on the compiling thread when it compiles a model and,
when that compiled model is freed, puts back the stack it found. Two compiled models whose lives overlap
(compile A, compile B, free A, free B) leave the thread on A's stack after A's memory is gone; the next signal
the thread takes on that stack (Python's handlers run there, SA_ONSTACK: SIGCHLD from a finished child is
enough) kills the process with SIGSEGV. Around each compile and each free we put back the stack the thread had
before, so the library's saved stack is always one that still exists (faulthandler's, or none)."""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Iterator
from contextlib import contextmanager

SS_DISABLE = 2


class _StackT(ctypes.Structure):
    _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]


def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.sigaltstack.argtypes = [ctypes.POINTER(_StackT), ctypes.POINTER(_StackT)]
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def current_signal_stack() -> tuple[int | None, int, int]:
    """(ss_sp, ss_flags, ss_size) of the calling thread's alternate signal stack."""
    if _LIBC is None:
        return (None, SS_DISABLE, 0)
    now = _StackT()
    _LIBC.sigaltstack(None, ctypes.byref(now))
    return (now.ss_sp, now.ss_flags, now.ss_size)


@contextmanager
def keep_signal_stack() -> Iterator[None]:
    """Run the body, then give the calling thread back the alternate signal stack it had before."""
    if _LIBC is None:
        yield
        return
    sp, flags, size = current_signal_stack()
    before = (sp, flags & SS_DISABLE, size)  # SS_ONSTACK says where the thread runs, not which stack it has
    try:
        yield
    finally:
        sp, flags, size = current_signal_stack()
        if (sp, flags & SS_DISABLE, size) != before:
            _LIBC.sigaltstack(ctypes.byref(_StackT(*before)), None)
