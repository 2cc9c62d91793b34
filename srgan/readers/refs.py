"""The two records the readers hand out: a document found on disk and one decoded page."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np


@dataclass(frozen=True)
class DocumentRef:
    """One input document: a plain file or a member of an archive."""

    source: str  # the input as given by the user (folder, archive or single file)
    container: str  # archive holding the member; "" for a plain file on disk
    member: str  # path relative to the input folder, name inside the archive, or the file name
    rel_path: str  # output name stem: POSIX, relative, no extension, no '..'
    kind: str  # "image" | "pdf" | "error"
    label: str | None = None  # RVL-CDIP class name, from label files
    split: str | None = None  # "train" | "val" | "test"
    size_bytes: int = 0
    error: str | None = None  # one-line reason when kind == "error"
    content_sha256: str = ""  # sha256 of the document's bytes, from discover ("" for error refs)
    skip_pages: tuple[int, ...] = ()  # page indexes read_pages leaves out (done by an earlier run)
    offset: int = -1  # tar members: where the data starts in the uncompressed tar stream (-1 = unknown)
    spool: str = ""  # an uncompressed copy of a compressed tar container to read it from by offset


def refs_to_json(docs: list[DocumentRef]) -> bytes:
    """A list of documents as JSON (a night's unit: discovered once by the parent, read by the unit run)."""
    return json.dumps([dataclasses.asdict(d) for d in docs]).encode()


def refs_from_json(data: bytes) -> list[DocumentRef]:
    return [DocumentRef(**{**d, "skip_pages": tuple(d.get("skip_pages") or ())}) for d in json.loads(data)]


@dataclass
class Page:
    """One decoded page: (H, W) uint8 grey, (H, W, 3) uint8 RGB (colour pages when colour is kept),
    or ``image=None`` and a one-line ``error``."""

    doc: DocumentRef
    page_index: int  # 0-based page within the document
    page_count: int  # pages in the document
    image: np.ndarray | None
    dpi: float | None  # horizontal dpi from the file (PDF: the raster's, across the displayed page)
    error: str | None = None
    format: str = ""  # the file's format: "PDF", "TIFF", "PNG", "JPEG"... (the output document's family)
    size_pt: tuple[float, float] | None = None  # PDF: the page's (width, height) in points, as displayed
    info: dict[str, str] | None = None  # PDF: the document's metadata (Title, Author...; raw PDF dates)
    pdf_path: str | None = None  # PDF: in_place (the scan image's own pixels) or rasterised (srgan.pdf.plan)
    dpi_reason: str | None = None  # PDF: why dpi: native | fallback | forced | capped
    pdf_note: str | None = None  # PDF: why a page under pdf.dpi native was rasterised
    has_text: bool | None = None  # PDF: the page shows text (an OCR layer included)


def where(doc: DocumentRef, page_index: int | None = None) -> str:
    """Human name of a document (and page) for error lines: 'archive.tar:member page 2'."""
    name = f"{doc.container}:{doc.member}" if doc.container else _plain_path(doc)
    return name if page_index is None else f"{name} page {page_index + 1}"


def container_path(doc: DocumentRef) -> str:
    """The file on disk a document's page came from, relative to its source (the records' `container`).

    An archive member: the archive's path under the source folder (its file name when the source is
    the archive itself). A plain file: the same as its member (its path under the source folder, or
    its name when the source is the file).
    """
    if not doc.container:
        return doc.member
    holder, source = PurePath(doc.container), PurePath(doc.source)
    if holder == source:
        return holder.name
    try:
        return holder.relative_to(source).as_posix()
    except ValueError:
        return holder.name


def _plain_path(doc: DocumentRef) -> str:
    if doc.member and doc.source.rstrip("/").endswith(doc.member):
        return doc.source
    return f"{doc.source.rstrip('/')}/{doc.member}" if doc.member else doc.source


def printable(text: str) -> str:
    """text safe to store, log and print: bytes of a non-UTF-8 file name (surrogate escapes) as \\xNN."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # lone surrogates that are not escaped bytes
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """An exception (or text) as one short, printable line."""
    text = printable(exc if isinstance(exc, str) else (str(exc) or type(exc).__name__))
    parts = [p.strip() for p in text.splitlines() if p.strip()]
    line = " | ".join(parts) or (type(exc).__name__ if not isinstance(exc, str) else "")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def error_page(doc: DocumentRef, reason: str, page_index: int = 0, page_count: int = 1) -> Page:
    return Page(doc=doc, page_index=page_index, page_count=page_count, image=None, dpi=None,
                error=one_line(reason))
