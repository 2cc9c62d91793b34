"""Where inputs and outputs live: a local path, or a URL any installed fsspec filesystem can open.

A *location* is a ``str`` or ``Path``. Local paths (no ``scheme://``) keep using the operating
system directly (flock, rename, fifo checks); URLs (``s3://bucket/prefix`` through s3fs, ``file://``,
``memory://``, any other fsspec protocol whose package is installed) go through fsspec. For S3, the
endpoint and credentials come from the standard AWS environment (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3``), so AWS, MinIO or Ceph work
unchanged. Paths inside a URL are joined with ``/``.

Object stores have no rename: a whole object is written by one PUT (``srgan.atomic``), so a reader
sees it whole or not at all.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from srgan.storage.fence import check_write

Location = str | Path

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_url(loc: Location) -> bool:
    """True for ``scheme://...`` (s3://, file://, memory://, ...); a plain path is local."""
    return isinstance(loc, str) and bool(_URL.match(loc))


def normalise(loc: Location) -> str:
    """A location as the string runs record: an absolute local path, or the URL without a trailing '/'."""
    if is_url(loc):
        return loc.rstrip("/") if not loc.endswith("://") else loc
    return str(Path(loc).resolve())


def join(base: Location, *parts: str) -> Location:
    """base / parts: a Path for a local base, a '/'-joined URL for a URL base."""
    if is_url(base):
        return posixpath.join(str(base).rstrip("/"), *parts)
    return Path(base).joinpath(*parts)


def name(loc: Location) -> str:
    return posixpath.basename(str(loc).rstrip("/")) if is_url(loc) else Path(loc).name


@functools.lru_cache(maxsize=16)
def _filesystem(protocol_root: str):
    import fsspec

    fs, _ = fsspec.core.url_to_fs(protocol_root)
    return fs


def filesystem(url: str):
    """(fsspec filesystem, path inside it) for a URL; one filesystem object per scheme and bucket."""
    import fsspec

    protocol = url.split("://", 1)[0]
    fs = _filesystem(f"{protocol}://")
    return fs, fsspec.core.strip_protocol(url) if protocol != "file" else url.split("://", 1)[1]


WRITE_CONNECT_S, WRITE_READ_S = 5, 15  # one write attempt to S3 ends (or fails) within about 20 s


@functools.cache
def _write_filesystem(protocol_root: str, endpoint: str):
    """endpoint: the AWS endpoint the environment names (a part of the key: tests change it)."""
    import fsspec

    if protocol_root != "s3://":
        return _filesystem(protocol_root)
    # one attempt, bounded: srgan.atomic retries, checking the output's fence before every attempt, so
    # that no attempt of a fenced run starts, and none still under way lands, after the output's lease can
    # be taken over (srgan.storage.lease: 40 s between the renewal deadline and the takeover)
    fs, _ = fsspec.core.url_to_fs(protocol_root, skip_instance_cache=True, config_kwargs={
        "connect_timeout": WRITE_CONNECT_S, "read_timeout": WRITE_READ_S, "retries": {"max_attempts": 1}})
    fs.retries = 1  # s3fs's own retry loop (a class attribute, 5): one try
    return fs


def write_filesystem(url: str):
    """filesystem(url) for whole-object writes: on S3 one bounded attempt per call (srgan.atomic retries)."""
    fs, path = filesystem(url)
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    return _write_filesystem(f"{url.split('://', 1)[0]}://", endpoint), path


def exists(loc: Location) -> bool:
    if is_url(loc):
        fs, path = filesystem(loc)
        return fs.exists(path)
    return Path(loc).exists()


def is_dir(loc: Location) -> bool:
    if is_url(loc):
        fs, path = filesystem(loc)
        return fs.isdir(path)
    return Path(loc).is_dir()


def size(loc: Location) -> int:
    if is_url(loc):
        fs, path = filesystem(loc)
        return int(fs.size(path))
    return Path(loc).stat().st_size


def open_read(loc: Location) -> IO[bytes]:
    """A binary, seekable file object (on object storage: ranged reads, read ahead in blocks)."""
    if is_url(loc):
        fs, path = filesystem(loc)
        return fs.open(path, "rb")
    return Path(loc).open("rb")


def read_bytes(loc: Location) -> bytes:
    if is_url(loc):
        fs, path = filesystem(loc)
        return fs.cat_file(path)
    return Path(loc).read_bytes()


def read_range(loc: Location, start: int, length: int) -> bytes:
    """Bytes [start, start + length) of an object: one ranged GET on object storage."""
    if is_url(loc):
        fs, path = filesystem(loc)
        return fs.cat_file(path, start=start, end=start + length)
    with Path(loc).open("rb") as fh:
        fh.seek(start)
        return fh.read(length)


def walk_files(root: Location) -> list[str]:
    """Every file under root as a sorted relative POSIX path (folders walked in sorted order)."""
    if is_url(root):
        fs, path = filesystem(root)
        base = path.rstrip("/") + "/"
        return sorted(p[len(base):] for p, info in fs.find(path, detail=True).items()
                      if info.get("type") != "directory" and p.startswith(base))
    files: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        files.extend(n if rel_dir == "." else f"{rel_dir}/{n}" for n in filenames)
    return sorted(files)


def list_names(folder: Location, suffix: str = "") -> list[str]:
    """Names of the files directly in folder that end with suffix (none when the folder is absent)."""
    if is_url(folder):
        fs, path = filesystem(folder)
        try:
            entries = fs.ls(path, detail=True, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(posixpath.basename(e["name"].rstrip("/")) for e in entries
                      if e.get("type") != "directory" and e["name"].endswith(suffix))
    folder = Path(folder)
    return sorted(p.name for p in folder.glob(f"*{suffix}") if p.is_file()) if folder.is_dir() else []


def remove(loc: Location) -> None:
    """Delete one file or object; absent is fine."""
    if is_url(loc):
        check_write(loc)  # a delete under a fenced output is a write (srgan.storage.fence)
        fs, path = filesystem(loc)
        try:
            fs.rm_file(path)
        except FileNotFoundError:
            pass
        return
    Path(loc).unlink(missing_ok=True)


def scratch_root(out: Location) -> Path:
    """Where runs on this output keep their work files (decoded pages as .npy, spools, progress): OUT/.work
    for a local output; for one on object storage, a folder of this machine's temp dir named after the
    output URL (work files never travel; only pages, records and documents go to the store)."""
    if not is_url(out):
        return Path(out) / ".work"
    import hashlib
    import tempfile

    return Path(tempfile.gettempdir()) / "srgan-work" / hashlib.sha256(normalise(out).encode()).hexdigest()[:16]


@contextlib.contextmanager
def local_copy(loc: Location) -> Iterator[Path]:
    """A local path to the file: itself for a local path; for a URL a temp copy (for tools that need a
    file: tesseract, pikepdf), removed on exit."""
    if not is_url(loc):
        yield Path(loc)
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="srgan-local-") as tmp:
        path = Path(tmp) / name(loc)
        path.write_bytes(read_bytes(loc))
        yield path


def with_suffix(loc: Location, suffix: str) -> Location:
    """loc with its last suffix replaced (a URL stays a URL)."""
    if is_url(loc):
        head, _, last = str(loc).rpartition("/")
        stem = last.rsplit(".", 1)[0] if "." in last else last
        return f"{head}/{stem}{suffix}"
    return Path(loc).with_suffix(suffix)
