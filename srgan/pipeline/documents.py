"""Output documents (``upscale.output_format: document``): the upscaled pages put back together.

- A PDF in gives one PDF out, ``OUT/documents/<name>.pdf``: the input PDF itself with the upscaled
  pixels (srgan.pdf.rebuild): a scan page's image replaced in place, a rendered page's picture painted
  over it; text layers, annotations, links, outline, page labels and metadata stay. With
  ``upscale.ocr_layer: add`` pages without text get tesseract's hidden text layer. A PDF that pikepdf
  cannot open comes back as pictures only (img2pdf: page sizes in points and the metadata kept).
- A multi-page TIFF gives one multi-page TIFF, ``OUT/documents/<name>.tif`` (deflate, lossless).
- A single image is its own document: its page file in ``OUT/pages/`` in its own format family
  (TIFF -> TIFF, JPEG -> JPEG, PNG -> PNG).

The pages of PDFs and multi-page TIFFs are written first as page files in ``OUT/pages/`` (as in
``png``, in ``upscale.encoding``); a document is assembled from them once its last page is written, and only when
every page is ``ok`` (pages done by an earlier run are looked up in the records). It is written atomically, so
a run with a failed page leaves the page files and the error rows, and the rerun that completes the
pages writes the document. Rows of the run that writes a document carry its path (``document_path``).
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

from PIL import Image

from srgan.atomic import atomic_target
from srgan.pdf.rebuild import NotRebuildable, PageOut, rebuild_pdf
from srgan.pdf.textlayer import text_pdf_path
from srgan.storage.fence import FencedError
from srgan.storage.files import Location, exists, is_url, join, local_copy, read_bytes, remove, size

if TYPE_CHECKING:
    from srgan.pipeline.work import PageWork, RunContext
    from srgan.readers import DocumentRef

log = logging.getLogger(__name__)

Pair = tuple["PageWork", dict]  # a page's work item and its record row


def page_format(output_format: str, page_count: int, kind: str, source_format: str, encoding: str = "png8"
                ) -> str:
    """The encoder of one page's file in OUT/pages/: ``encoding`` (upscale.encoding: png8, png4, png2, bitonal,
    jp2; srgan.encoding.codecs) for PNG pages, or tiff | jpeg."""
    if output_format == "png":
        return encoding
    if output_format == "tiff":
        return "tiff"
    if kind == "pdf" or page_count > 1:  # a page of a document assembled later: in upscale.encoding
        return encoding
    return {"TIFF": "tiff", "JPEG": "jpeg"}.get(source_format.upper(), encoding)


def document_path(out_dir: Location, doc: DocumentRef, page_count: int) -> Location | None:
    """Where a document's assembled output goes; None when its one page file is the document."""
    if doc.kind == "pdf":
        return join(out_dir, "documents", f"{doc.rel_path}.pdf")
    if page_count > 1:
        return join(out_dir, "documents", f"{doc.rel_path}.tif")
    return None


# ------------------------------------------------------------------ assembling one document


def settle_document(pairs: list[Pair], ctx: RunContext) -> list[dict]:
    """One document's (work, row) pairs of this run, in page order -> its rows, after writing the
    document when every page is ok. A document that cannot be written turns its last row into an
    error (so a rerun redoes that page and tries again)."""
    rows = [row for _, row in pairs]
    if ctx.output_format != "document" or not pairs:
        return rows
    work = pairs[-1][0]
    doc, count = work.doc, work.page_count
    if any(row["status"] != "ok" for row in rows):
        bad = [row["page_index"] + 1 for row in rows if row["status"] != "ok"]
        if doc.kind != "error" and (doc.kind == "pdf" or count > 1):
            log.info("document %s not written: page(s) %s failed; a rerun that completes them writes it",
                     doc.rel_path, ", ".join(map(str, bad)))
        return rows
    target = document_path(ctx.out_dir, doc, count)
    if target is None:  # a single image: its page file is the document
        for row in rows:
            row["document_path"], row["document_bytes"] = row["output_path"], row.get("output_bytes")
        return rows
    try:
        pages = {w.page_index: EarlierPage(row["output_path"], w.page_size_pt, row["output_dpi"], w.pdf_path,
                                           row.get("text_layer")) for w, row in pairs}
        missing = sorted(set(range(count)) - pages.keys())
        if missing:
            pages.update(earlier_pages(ctx, doc, missing))
        still = sorted(set(range(count)) - pages.keys())
        if still:
            raise ValueError(f"no ok row for page(s) {', '.join(str(i + 1) for i in still)}")
        ordered = [pages[i] for i in range(count)]
        for i, page in enumerate(ordered):
            for path in (page.path, page.text_pdf):
                if path and not exists(path):
                    raise FileNotFoundError(f"page {i + 1}'s file {path} is missing")
        info = next((w.doc_info for w, _ in pairs if w.doc_info), None) or {}
        if doc.kind == "pdf":
            assemble_pdf(target, doc, ordered, info, ctx)
        else:
            write_tiff(target, [p.path for p in ordered], ordered[0].dpi)
    except FencedError:
        raise  # the output is no longer this run's: stop (srgan.storage.fence)
    except Exception as exc:  # noqa: BLE001 - the pages stay; the document is retried by a rerun
        last = rows[-1]
        last.update(status="error", error=f"document {target} not written: {type(exc).__name__}: {exc}"
                    .splitlines()[0])
        log.warning("%s", last["error"])
        return rows
    for page in ordered:  # the document holds each text layer now: no text-only PDF stays among the pages
        if page.text_pdf:
            remove(page.text_pdf)
    written = size(target)
    for row in rows:
        row["document_path"], row["document_bytes"] = str(target), written
    return rows


@dataclass(frozen=True)
class EarlierPage:
    """A finished page of a document: its file, size in points as displayed, dpi, how it was read, text layer."""

    path: str
    size_pt: tuple[float, float] | None
    dpi: float | None
    pdf_path: str | None = None  # in_place | rasterised (PDF pages)
    text_layer: str | None = None  # kept | added | none (PDF pages)

    @property
    def text_pdf(self) -> str | None:
        """The page's tesseract text layer, when one was added (beside the page file)."""
        return str(text_pdf_path(self.path)) if self.text_layer == "added" else None


def assemble_pdf(target: Location, doc: DocumentRef, pages: list[EarlierPage], info: dict[str, str],
                 ctx: RunContext) -> None:
    """The output PDF: the input rebuilt around the upscaled pages (srgan.pdf.rebuild); pictures only
    (img2pdf) when pikepdf cannot open the input."""
    from srgan.config import LimitsConfig
    from srgan.readers import document_bytes

    source = document_bytes(doc, LimitsConfig(max_member_bytes=ctx.max_member_bytes))
    with contextlib.ExitStack() as stack:  # page files on object storage: local copies for pikepdf
        local = {p: str(stack.enter_context(local_copy(p))) for page in pages for p in (page.path, page.text_pdf)
                 if p}
        outs = [PageOut(p.pdf_path or "rasterised", local[p.path], local.get(p.text_pdf) if p.text_pdf else None)
                for p in pages]
        _rebuild_or_pictures(source, outs, target, doc, pages, info, ctx)


def _rebuild_or_pictures(source: bytes, outs: list[PageOut], target: Location, doc: DocumentRef,
                         pages: list[EarlierPage], info: dict[str, str], ctx: RunContext) -> None:
    try:
        rebuild_pdf(source, outs, target, producer=f"srgan-docs x{ctx.scale} {ctx.weights_name} (pikepdf)")
    except NotRebuildable as exc:
        log.warning("%s: not opened by pikepdf (%s); its output PDF holds the upscaled pages as pictures only",
                    doc.rel_path, exc)
        write_pdf(target, [p.path for p in pages], [p.size_pt for p in pages], info,
                  producer=f"srgan-docs x{ctx.scale} {ctx.weights_name} (img2pdf)")


def earlier_pages(ctx: RunContext, doc: DocumentRef, indexes: list[int]) -> dict[int, EarlierPage]:
    """{page index: EarlierPage} of a document's pages that earlier runs with the same weights and
    configuration finished (the latest ok row of each)."""
    import pyarrow.dataset as ds

    from srgan.pipeline.records import records_dataset
    from srgan.readers import printable

    dataset = records_dataset(ctx.records_dir)  # from the store itself (local folder or object storage)
    if dataset is None:
        return {}
    wanted = ((ds.field("status") == "ok") & (ds.field("source") == printable(doc.source))
              & (ds.field("member") == printable(doc.member)) & (ds.field("content_sha256") == doc.content_sha256)
              & (ds.field("weights_sha256") == ctx.weights_sha256) & (ds.field("config_hash") == ctx.config_hash)
              & ds.field("page_index").isin(indexes))
    cols = ["started_at", "page_index", "output_path", "page_width_pt", "page_height_pt", "output_dpi", "pdf_path",
            "text_layer"]
    table = dataset.to_table(columns=cols, filter=wanted)
    found: dict[int, EarlierPage] = {}
    for r in sorted(table.to_pylist(), key=lambda r: r["started_at"]):  # the latest row wins
        size = (r["page_width_pt"], r["page_height_pt"]) if r["page_width_pt"] and r["page_height_pt"] else None
        found[r["page_index"]] = EarlierPage(r["output_path"], size, r["output_dpi"], r["pdf_path"], r["text_layer"])
    return found


def write_pdf(target: Location, page_files: list[str], sizes_pt: list[tuple[float, float] | None],
              info: dict[str, str], producer: str = "srgan-docs") -> None:
    """One PDF page per PNG, each the given size in points (None: the image's own dpi), atomically.

    img2pdf embeds PNG data as it is (lossless, no re-encoding)."""
    import img2pdf

    sizes = iter(sizes_pt)

    def layout(width_px: int, height_px: int, ndpi: tuple[float, float]) -> tuple[float, float, float, float]:
        size = next(sizes)  # img2pdf lays out the images once each, in order
        if size is None:
            return img2pdf.default_layout_fun(width_px, height_px, ndpi)
        w, h = size
        return w, h, w, h

    meta: dict = {"producer": producer}
    for key, name in (("Title", "title"), ("Author", "author"), ("Subject", "subject"), ("Creator", "creator")):
        if info.get(key):
            meta[name] = info[key]
    if info.get("Keywords"):
        meta["keywords"] = [info["Keywords"]]
    created = pdf_date(info.get("CreationDate", ""))
    if created is not None:
        meta["creationdate"] = created
    with atomic_target(target) as tmp, tmp.open("wb") as fh:
        img2pdf.convert([read_bytes(p) if is_url(p) else p for p in page_files], layout_fun=layout,
                        outputstream=fh, **meta)


def write_tiff(target: Location, page_files: list[str], dpi: float | None) -> None:
    """One multi-page TIFF (deflate) from the page files, in order, atomically."""
    frames = [Image.open(io.BytesIO(read_bytes(p)) if is_url(p) else p) for p in page_files]
    try:
        kwargs = {"dpi": (dpi, dpi)} if dpi else {}
        with atomic_target(target) as tmp:
            frames[0].save(tmp, format="TIFF", save_all=True, append_images=frames[1:],
                           compression="tiff_deflate", **kwargs)
    finally:
        for frame in frames:
            frame.close()


_PDF_DATE = re.compile(r"(?:D:)?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?\s*(Z|[+-]\d{2}'?\d{2}'?)?")


def pdf_date(text: str) -> datetime | None:
    """A PDF date string (D:YYYYMMDDHHmmSSOHH'mm') as a datetime, or None when it is not one."""
    match = _PDF_DATE.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    tz = UTC
    if zone and zone != "Z":
        digits = zone.replace("'", "")
        offset = timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5] or 0))
        tz = timezone(offset if digits[0] == "+" else -offset)
    try:
        return datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                        int(second or 0), tzinfo=tz)
    except ValueError:
        return None


# ------------------------------------------------------------------ a run's stream of pages


def _doc_key(work: PageWork) -> tuple[str, str, str]:
    return work.doc.source, work.doc.container, work.doc.member


def document_groups(pairs: Iterable[Pair]) -> Iterator[list[Pair]]:
    """Consecutive pairs of one document (pages of a document come together and in order)."""
    group: list[Pair] = []
    for pair in pairs:
        if group and _doc_key(pair[0]) != _doc_key(group[0][0]):
            yield group
            group = []
        group.append(pair)
    if group:
        yield group


def settle_documents(pairs: Iterable[Pair], ctx: RunContext) -> list[dict]:
    """All documents of a batch that holds whole documents (a flow task): their rows, documents written."""
    return [row for group in document_groups(pairs) for row in settle_document(group, ctx)]


def _now(fn: Callable, *args) -> Future:
    fut: Future = Future()
    fut.set_result(fn(*args))
    return fut


class DocumentAssembly:
    """Pairs of a run in page order in (batches may split a document); rows out once their document is
    settled. ``submit`` runs each document's assembly (a thread pool's submit, or now)."""

    def __init__(self, ctx: RunContext, submit: Callable[..., Future] = _now) -> None:
        self.ctx, self.submit = ctx, submit
        self.open: list[Pair] = []
        self.settling: deque[Future] = deque()

    def add(self, pairs: Iterable[Pair]) -> list[dict]:
        """Feed the next pairs; returns the rows that are ready, in order."""
        if self.ctx.output_format != "document":
            return [row for _, row in pairs]
        for pair in pairs:
            if self.open and _doc_key(pair[0]) != _doc_key(self.open[0][0]):
                self.settling.append(self.submit(settle_document, self.open, self.ctx))
                self.open = []
            self.open.append(pair)
        rows: list[dict] = []
        while self.settling and self.settling[0].done():
            rows.extend(self.settling.popleft().result())
        return rows

    def finish(self) -> list[dict]:
        """Settle the last document and wait for all: the remaining rows."""
        if self.open:
            self.settling.append(self.submit(settle_document, self.open, self.ctx))
            self.open = []
        rows: list[dict] = []
        while self.settling:
            rows.extend(self.settling.popleft().result())
        return rows
