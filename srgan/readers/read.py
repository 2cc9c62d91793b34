"""read_pages: documents -> Pages in order; archives read in one streaming pass per run of members."""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..config import LimitsConfig, PdfConfig
from ..storage.files import Location, is_url, read_bytes, size
from .decode import read_image
from .pdf import read_pdf
from .refs import DocumentRef, Page, error_page, one_line, where
from .sources import is_plain_tar, not_regular, plain_file, read_members, read_members_at

logger = logging.getLogger(__name__)


def read_pages(docs: Iterable[DocumentRef], pdf: PdfConfig, limits: LimitsConfig,
               color: str = "grey") -> Iterator[Page]:
    """Yield the Pages of each document in order; bad input becomes error Pages, never an exception.

    color: "grey" (every page grey) or "auto" (pages with colour stay RGB: upscale.color).
    Pages listed in a document's ``skip_pages`` (done by an earlier run) are not yielded.
    The first error page of each document is logged as a warning, later ones at debug level.
    """
    warned: DocumentRef | None = None
    for page in _pages(docs, pdf, limits, color):
        if page.error:
            level = logging.DEBUG if page.doc is warned else logging.WARNING
            logger.log(level, "%s", page.error)
            warned = page.doc
        yield page


def _pages(docs: Iterable[DocumentRef], pdf: PdfConfig, limits: LimitsConfig, color: str) -> Iterator[Page]:
    for container, group in itertools.groupby(docs, key=lambda d: d.container):
        if container:
            yield from _read_archive_run(list(group), pdf, limits, color)
        else:
            for doc in group:
                yield from _read_doc(doc, None, pdf, limits, color)


def _read_doc(doc: DocumentRef, data: bytes | None, pdf: PdfConfig, limits: LimitsConfig,
              color: str = "grey") -> Iterator[Page]:
    """Pages of one document from its bytes (archive member) or its file; never raises."""
    if doc.kind == "error":
        yield error_page(doc, doc.error or f"bad document ({where(doc)})")
        return
    produced = 0
    try:
        src: Path | bytes = data if data is not None else _local_or_bytes(plain_file(doc), limits)
        if doc.kind == "pdf":
            pages = read_pdf(doc, src, pdf, limits, color)
        elif doc.kind == "image":
            pages = read_image(doc, src, limits.max_pixels, color)
        else:
            raise ValueError(f"unknown document kind {doc.kind!r}")
        for page in pages:
            produced = page.page_index + 1
            if page.page_index not in doc.skip_pages:
                yield page
    except Exception as exc:  # noqa: BLE001 - one bad document must not stop the run
        yield error_page(doc, f"cannot read {doc.kind}: {one_line(exc)} ({where(doc, produced)})", produced,
                         produced + 1)


def _local_or_bytes(loc: Location, limits: LimitsConfig) -> Path | bytes:
    """A local file as its path (the decoders read it themselves); an object in a store as its bytes,
    fetched in one GET once its size is known to be within limits.max_member_bytes."""
    if not is_url(loc):
        return Path(loc)
    length = size(loc)
    if length > limits.max_member_bytes:
        raise ValueError(f"object too large: {length} bytes > limits.max_member_bytes={limits.max_member_bytes}")
    return read_bytes(loc)


def _read_archive_run(docs: list[DocumentRef], pdf: PdfConfig, limits: LimitsConfig,
                      color: str = "grey") -> Iterator[Page]:
    """Read the wanted members of one archive in a single pass, yielding pages in the docs' order.

    Members arriving out of order are held in memory until their turn (none when docs follow the
    archive order, as discover lists them).
    """
    slots: dict[str, deque[int]] = defaultdict(deque)
    for i, doc in enumerate(docs):
        if doc.kind != "error":
            slots[doc.member].append(i)
    ready: dict[int, bytes | Exception] = {}
    next_i = 0
    failure: str | None = None

    def emit(doc: DocumentRef, got: bytes | Exception | None) -> Iterator[Page]:
        if doc.kind == "error":
            yield error_page(doc, doc.error or f"bad document ({where(doc)})")
        elif isinstance(got, Exception):
            yield error_page(doc, f"cannot read member: {one_line(got)} ({where(doc)})")
        elif got is None:
            yield error_page(doc, f"{failure or 'member not found in archive'} ({where(doc)})")
        elif doc.content_sha256 and hashlib.sha256(got).hexdigest() != doc.content_sha256:
            yield error_page(doc, f"member changed since discovery ({where(doc)})")
        else:
            yield from _read_doc(doc, got, pdf, limits, color)

    def drain() -> Iterator[Page]:
        nonlocal next_i
        while next_i < len(docs) and (docs[next_i].kind == "error" or next_i in ready):
            next_i += 1
            yield from emit(docs[next_i - 1], ready.pop(next_i - 1, None))

    try:
        for name, got in _members(docs, limits):
            if slots.get(name):
                ready[slots[name].popleft()] = got
                yield from drain()
    except Exception as exc:  # noqa: BLE001 - damaged archive: what was read is kept
        failure = f"cannot read archive {docs[0].container}: {one_line(exc)}"
    for i in range(next_i, len(docs)):
        yield from emit(docs[i], ready.pop(i, None))


def _members(docs: list[DocumentRef], limits: LimitsConfig) -> Iterator[tuple[str, bytes | Exception]]:
    """(name, bytes or error) of the docs' members: by offset from an uncompressed tar (the container,
    or its spooled copy) when discovery recorded every offset, else one streaming pass."""
    wanted = [doc for doc in docs if doc.kind != "error"]
    if not wanted:
        return
    container, spool = docs[0].container, wanted[0].spool
    if all(d.offset >= 0 and d.spool == spool for d in wanted):
        seekable = spool or (container if is_plain_tar(container) else "")
        if seekable:
            yield from read_members_at(seekable, [(d.member, d.offset, d.size_bytes) for d in wanted], limits)
            return
    yield from read_members(container, [d.member for d in wanted], limits)


def document_bytes(doc: DocumentRef, limits: LimitsConfig) -> bytes:
    """One document's bytes again (a plain file, or its member read from the archive or its spool), checked
    against the sha256 that discovery recorded: what the output PDF is rebuilt from."""
    if doc.container:
        got: bytes | Exception | None = next((data for _, data in _members([doc], limits)), None)
        if got is None:
            raise FileNotFoundError(f"member not found in archive ({where(doc)})")
        if isinstance(got, Exception):
            raise got
        data = got
    else:
        path = plain_file(doc)
        reason = not_regular(path)
        if reason:
            raise OSError(f"{reason} ({where(doc)})")
        data = read_bytes(path)  # a local file or an object in a store
    if doc.content_sha256 and hashlib.sha256(data).hexdigest() != doc.content_sha256:
        raise ValueError(f"changed since discovery ({where(doc)})")
    return data
