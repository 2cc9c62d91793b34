"""Spool compressed tar archives once, so that many readers can each fetch their members by offset.

A flow splits an archive's documents over many tasks. Streaming a .tar.gz from its start in every
task costs O(tasks x archive): for RVL-CDIP's 400,000 pages in tasks of 8 that is hopeless. Instead
the archive is decompressed once into the run's work folder (only as far as its last wanted member)
and each task seeks to its members' data offsets, which discovery recorded. Uncompressed tars need
no copy: they are read by offset in place.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import logging
import lzma
import os
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from ..storage.files import Location, is_url, open_read
from .refs import DocumentRef, one_line
from .sources import is_plain_tar

logger = logging.getLogger(__name__)

CHUNK = 1 << 20


def _open_decompressed(path: Location):
    """The decompressed stream of a .tar.gz/.tbz/.txz, read in one pass (from object storage too)."""
    with open_read(path) as fh:
        head = fh.read(6)
    raw = open_read(path)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw, "rb")
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw, "rb")
    raw.close()
    raise ValueError(f"not a gzip, bzip2 or xz file: {path}")


def spool_archive(container: Location, dest_dir: Path, upto: int) -> Path:
    """Decompress the first ``upto`` bytes of a compressed tar into ``dest_dir`` (temp file + rename).

    Returns the spooled file's path. Raises OSError/ValueError/EOFError on a damaged archive.
    """
    key = str(container) if is_url(container) else str(Path(container).resolve())
    dest_dir.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(key.encode()).hexdigest()[:16] + ".tar"
    dest = dest_dir / name
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=dest_dir)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with _open_decompressed(container) as src, tmp.open("wb") as out:
            left = upto
            while left > 0:
                block = src.read(min(CHUNK, left))
                if not block:
                    break
                out.write(block)
                left -= len(block)
        tmp.replace(dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def spool_archives(docs: Sequence[DocumentRef], dest_dir: Path) -> list[DocumentRef]:
    """The docs, with members of compressed tars pointed at a spooled copy (``DocumentRef.spool``).

    Only archives whose every member has a recorded offset are spooled, up to the end of the last
    wanted member. An archive that cannot be spooled is logged in one line and left to the
    streaming reader: no document is lost.
    """
    extent: dict[str, int] = {}
    unusable: set[str] = set()
    for doc in docs:
        if not doc.container or doc.kind == "error" or doc.container.lower().endswith(".zip"):
            continue
        if doc.offset < 0:
            unusable.add(doc.container)
        extent[doc.container] = max(extent.get(doc.container, 0), doc.offset + doc.size_bytes)
    spools: dict[str, str] = {}
    for container, upto in extent.items():
        if container in unusable:
            continue
        try:
            if is_plain_tar(container):
                continue  # read in place
            spools[container] = str(spool_archive(container, dest_dir, upto))
        except (OSError, ValueError, EOFError, lzma.LZMAError) as exc:
            logger.warning("cannot spool %s (%s); its members will be streamed from the archive", container,
                           one_line(exc))
    if spools:
        logger.info("spooled %d compressed archive(s) into %s", len(spools), dest_dir)
    return [replace(d, spool=spools[d.container]) if d.container in spools and d.kind != "error" else d
            for d in docs]
