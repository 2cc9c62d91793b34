"""Idempotent reruns: skip what an earlier run finished, clear what a killed run left behind.

A document is known across runs by ``source|container|member|content_sha256`` (the records'
columns; the hash is of the document's bytes, so a changed file is processed again; ``container``
tells apart two archives under one folder holding the same member with the same bytes). Rows
written before the ``container`` column existed (null there) match on ``source|member|content_sha256``.
An earlier run counts only when it used the same weights (``weights_sha256``) and the same
configuration (``config_hash``).

- A page is done when the records hold an ``ok`` row for it. Error rows are never "done": those
  pages are tried again on every rerun (and get a new error row if they fail again).
- A document whose every page is done is dropped from the run; one with some pages done is read
  with those pages in ``DocumentRef.skip_pages``, so an ok page is never recorded twice.
- Records are append-only: rows of earlier runs stay; the latest row of a page is its state.

Pages and part files are written atomically (temp file + rename), so a killed run leaves whole
files or hidden ``.*.tmp`` files, never half-written ones. Each run marks its scratch folder
``OUT/.work/<run_id>/`` with an ``owner.json`` (host, pid, process start time); the next run removes
the scratch folders of owners that are gone, and the ``.tmp`` leftovers once no other run is live.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import pyarrow.dataset as ds

from srgan.pipeline.records import records_dataset
from srgan.readers import DocumentRef, printable
from srgan.readers.refs import container_path
from srgan.storage.files import Location, is_url, scratch_root

log = logging.getLogger(__name__)

_KEY_COLUMNS = ["source", "container", "member", "content_sha256", "page_index", "page_count"]
_ANY_CONTAINER = "\x00any"  # rows from before the container column: they match any container
_OWNER = "owner.json"
_UNOWNED_STALE_S = 24 * 3600  # a scratch folder without owner.json (older code) is left this long


def doc_key(source: str, container: str, member: str, content_sha256: str) -> str:
    """The rerun-skip key of a document: source|container|member|content_sha256 (as the records store them)."""
    return f"{printable(source)}|{printable(container)}|{printable(member)}|{content_sha256}"


def ref_key(doc: DocumentRef) -> str:
    return doc_key(doc.source, container_path(doc), doc.member, doc.content_sha256)


def _legacy_key(doc: DocumentRef) -> str:
    return doc_key(doc.source, _ANY_CONTAINER, doc.member, doc.content_sha256)


def done_pages(records_dir: Path, weights_sha256: str, config_hash: str) -> dict[str, tuple[int, frozenset[int]]]:
    """{document key: (page_count, page indexes with an ok row)} for runs with these weights and config."""
    dataset = records_dataset(records_dir)  # read from the store itself: local folder or object storage
    if dataset is None:
        return {}
    wanted = ((ds.field("status") == "ok") & (ds.field("weights_sha256") == weights_sha256)
              & (ds.field("config_hash") == config_hash) & ds.field("content_sha256").is_valid())
    cols = dataset.to_table(columns=_KEY_COLUMNS, filter=wanted).to_pydict()
    found: dict[str, tuple[int, set[int]]] = {}
    for source, container, member, sha, index, count in zip(*(cols[c] for c in _KEY_COLUMNS), strict=True):
        key = doc_key(source or "", _ANY_CONTAINER if container is None else container, member or "", sha)
        seen = found.setdefault(key, (count or 1, set()))
        seen[1].add(index)
    return {key: (count, frozenset(pages)) for key, (count, pages) in found.items()}


def done_documents(records_dir: Path, weights_sha256: str, config_hash: str) -> set[str]:
    """Keys of the documents whose every page has an ok row (same weights, same config)."""
    return {key for key, (count, pages) in done_pages(records_dir, weights_sha256, config_hash).items()
            if pages >= set(range(count))}


def skip_done(docs: Iterable[DocumentRef], done: dict[str, tuple[int, frozenset[int]]]) -> list[DocumentRef]:
    """docs without the finished ones; partly finished ones get their done pages in skip_pages."""
    todo = []
    for doc in docs:
        count, pages = (done.get(ref_key(doc)) or done.get(_legacy_key(doc), (0, frozenset()))
                        if doc.content_sha256 else (0, frozenset()))
        if count and pages >= set(range(count)):
            continue
        todo.append(replace(doc, skip_pages=tuple(sorted(pages))) if pages else doc)
    return todo


def pending_documents(docs: Sequence[DocumentRef], out_dir: Location, records_dir: Location, run_id: str,
                      weights_sha256: str, config_hash: str) -> list[DocumentRef]:
    """The run's documents less what earlier runs finished; claims its scratch folder (OUT/.work/<run_id>,
    storage.files.scratch_root), clears stale leftovers."""
    claim_work_dir(out_dir, run_id)
    clean_stale(out_dir, run_id, records_dir)
    todo = skip_done(docs, done_pages(records_dir, weights_sha256, config_hash))
    skipped = len(docs) - len(todo)
    partial = sum(1 for d in todo if d.skip_pages)
    if skipped or partial:
        log.info("resume: %d of %d documents already done by an earlier run (same weights and config), "
                 "%d partly done", skipped, len(docs), partial)
    return todo


# ------------------------------------------------------------------ scratch folders of killed runs


def _start_ticks(pid: int) -> str | None:
    """The process's start time (Linux /proc), to tell a reused pid from the original; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22, counted after the command name


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_work_dir(out_dir: Location, run_id: str) -> Path:
    """Create the run's scratch folder (OUT/.work/<run_id>/ for a local output) with owner.json naming
    this process."""
    work = scratch_root(out_dir) / run_id
    work.mkdir(parents=True, exist_ok=True)
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_ticks(os.getpid())}
    (work / _OWNER).write_text(json.dumps(owner))
    return work


def _owner_alive(work: Path) -> bool:
    """False when the run owning the scratch folder is certainly gone; True when live or unknown."""
    try:
        owner = json.loads((work / _OWNER).read_text())
    except FileNotFoundError:
        with contextlib.suppress(OSError):
            return time.time() - work.stat().st_mtime < _UNOWNED_STALE_S
        return False
    except (OSError, ValueError):
        return True
    if owner.get("host") != socket.gethostname():
        return True  # another machine's run (shared output folder): cannot tell, leave it
    pid = int(owner.get("pid") or 0)
    if pid <= 0 or not _pid_alive(pid):
        return False
    return owner.get("start") is None or _start_ticks(pid) == owner.get("start")


def clean_stale(out_dir: Location, run_id: str, records_dir: Location) -> list[Path]:
    """Remove scratch folders of dead runs, and the .tmp files of interrupted writes when no other run is live
    (a local output's: on object storage an interrupted PUT leaves nothing)."""
    work_root = scratch_root(out_dir)
    removed: list[Path] = []
    others_live = False
    for work in sorted(work_root.iterdir()) if work_root.is_dir() else []:
        if not work.is_dir() or work.name == run_id:
            continue
        if _owner_alive(work):
            others_live = True
            continue
        shutil.rmtree(work, ignore_errors=True)
        removed.append(work)
        for leftover in work_root.glob(f"{work.name}.progress.*"):
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    if not others_live and not is_url(out_dir):
        out_dir = Path(out_dir)
        for folder in (out_dir / "pages", out_dir / "compare", Path(records_dir)):
            for tmp in folder.rglob(".*.tmp") if folder.is_dir() else []:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                    removed.append(tmp)
    if removed:
        log.info("resume: removed %d leftovers of interrupted runs under %s", len(removed), out_dir)
    return removed
