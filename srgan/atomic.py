"""Atomic writes: a reader sees a whole file or object, or none.

- Local paths: a temp file in the destination's folder, then one rename. A writer killed midway
  leaves at most a hidden ``.NAME.*.tmp`` file that nothing reads.
- URLs (object storage through fsspec, ``srgan.storage.files``): the whole object in one PUT
  (``pipe_file``; larger temp files through ``put_file``, whose multipart upload also appears only
  once complete). A store that does not answer for a while (a restart, a network blip) is retried
  for up to ``RETRY_FOR_S`` seconds before the write fails.

Before every attempt of a write to a URL the output's fence is checked (``srgan.storage.fence``): a run
whose lease on the output is lost or overdue raises ``FencedError`` instead of writing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from srgan.storage.fence import check_write
from srgan.storage.files import Location, is_url, write_filesystem

log = logging.getLogger(__name__)

_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK  # mkstemp makes 0600 files; outputs are ordinary files for their readers
RETRY_FOR_S = 60.0


def retrying(what: str, call: Callable[[], object], retry_for_s: float = RETRY_FOR_S) -> object:
    """call(), again after 1, 2, 4... s while it raises OSError (network, 5xx), for up to retry_for_s."""
    deadline, delay = time.monotonic() + retry_for_s, 1.0
    while True:
        try:
            return call()
        except (FileNotFoundError, PermissionError, FileExistsError):
            raise  # answers, not outages
        except Exception as exc:
            if not _outage(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise
            log.warning("%s: %s; retrying in %.0f s", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _outage(exc: BaseException) -> bool:
    """A store that did not answer: OSError (fsspec's translation), or botocore's and aiohttp's own
    connection and timeout errors, which s3fs passes through untranslated."""
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in ("botocore", "aiobotocore", "aiohttp")


@contextlib.contextmanager
def atomic_target(path: Location) -> Iterator[Path]:
    """Yield a local temp path; on a clean exit it becomes ``path`` (rename, or one upload for a URL),
    otherwise it is removed."""
    if is_url(path):
        with tempfile.TemporaryDirectory(prefix="srgan-upload-") as tmp_dir:
            tmp = Path(tmp_dir) / Path(str(path)).name
            yield tmp
            fs, key = write_filesystem(str(path))

            def upload() -> None:
                check_write(path)  # before every attempt: a retried write may outlast the lease
                fs.put_file(str(tmp), key)

            retrying(f"upload {path}", upload)
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.chmod(FILE_MODE)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Location, data: bytes) -> None:
    """Write data to path whole: temp file and rename, or one PUT of the object."""
    if is_url(path):
        fs, key = write_filesystem(str(path))

        def put() -> None:
            check_write(path)
            fs.pipe_file(key, data)

        retrying(f"write {path}", put)
        return
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)
