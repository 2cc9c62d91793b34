"""The pages to look at first, each with its side-by-side picture (input | bicubic | model).

Picked from the latest rows with numpy over the gain column: the largest drops below bicubic, the
smallest gains, and the Lanczos fallbacks. A page whose run wrote no picture (only a run's first
``upscale.compare_pages`` pages get one) has it made here, from its input read again and its written
output page; it goes into the report only (``OUT/compare/`` stays the runs' own pictures).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image

from srgan.config import LimitsConfig, PdfConfig
from srgan.readers.refs import DocumentRef, one_line
from srgan.readers.sources import page_kind
from srgan.report.summary import gains, is_ok, page_names
from srgan.storage.files import Location, exists, join, read_bytes

log = logging.getLogger(__name__)

PER_KIND = 4  # pages shown for each reason
CROP = 160  # input pixels of the crop an on-demand picture shows


@dataclass
class Pick:
    """One page to look at: why, its name, its figures, and its picture (PNG bytes) or why there is none."""

    reason: str
    name: str
    row: dict
    picture: bytes | None = None
    note: str = ""
    made_now: bool = False
    figures: dict = field(default_factory=dict)


def pick_pages(pages: pa.Table, per_kind: int = PER_KIND) -> list[Pick]:
    """Largest drops below bicubic, smallest gains (at or above 0), and Lanczos fallbacks (in read order)."""
    done = pages.filter(is_ok(pages))
    if done.num_rows == 0:
        return []
    gain = gains(done)
    model = pc.fill_null(pc.equal(done.column("method"), "model"), False).to_numpy(zero_copy_only=False)
    finite = np.isfinite(gain) & model
    drops = np.flatnonzero(finite & (gain < 0))
    drops = drops[np.argsort(gain[drops], kind="stable")[:per_kind]]
    small = np.flatnonzero(finite & (gain >= 0))
    small = small[np.argsort(gain[small], kind="stable")[:per_kind]]
    lanczos = np.flatnonzero(pc.fill_null(pc.equal(done.column("method"), "lanczos"), False)
                             .to_numpy(zero_copy_only=False))[:per_kind]
    picks = []
    for reason, idx in (("largest drop below bicubic", drops), ("smallest gain over bicubic", small),
                        ("Lanczos fallback", lanczos)):
        if idx.size == 0:
            continue
        chosen = done.take(pa.array(idx))
        for row, name, g in zip(chosen.to_pylist(), page_names(chosen), gain[idx], strict=True):
            picks.append(Pick(reason, name, row, figures={"gain_db": None if not np.isfinite(g) else float(g)}))
    return picks


def page_stem(output_path: str | None) -> str | None:
    """The page's output name stem (what follows .../pages/, without the extension)."""
    if not output_path or "/pages/" not in output_path.replace("\\", "/"):
        return None
    return output_path.replace("\\", "/").rsplit("/pages/", 1)[1].rsplit(".", 1)[0]


def attach_pictures(picks: list[Pick], out: Location, make_missing: bool = True) -> None:
    """Each pick's side-by-side picture: the run's own under OUT/compare/, else one made now (make_missing:
    the input is read again, an archive streamed to its member; the flows leave that to `srgan report`)."""
    for pick in picks:
        stem = page_stem(pick.row.get("output_path"))
        if stem is None:
            pick.note = "no output page recorded"
            continue
        target = join(out, "compare", f"{stem}.png")
        try:
            if exists(target):
                pick.picture = read_bytes(target)
                continue
            if not make_missing:
                pick.note = "no side-by-side picture from the run: `srgan report OUT` draws it from the input"
                continue
            pick.picture = make_picture(pick.row, join(out, "pages", pick.row["output_path"].replace("\\", "/")
                                                      .rsplit("/pages/", 1)[1]))
            pick.made_now = True
        except Exception as exc:  # noqa: BLE001 - one page without a picture: said beside it, the report goes on
            pick.picture = None
            pick.note = f"no picture: {one_line(exc)}"
            log.warning("report: %s: %s", pick.name, pick.note)


def input_ref(row: dict) -> DocumentRef:
    """The record's document as the readers take it (source, its archive, the member)."""
    source, container, member = row["source"], row.get("container") or "", row["member"]
    kind = page_kind(member) or "image"
    if not container or container == member:  # a plain file: under the source folder, or the source itself
        return DocumentRef(source=source, container="", member=member, rel_path="report", kind=kind)
    # the records name the archive relative to the source, or by its name when the source is the archive
    holder = source if source.rstrip("/").rsplit("/", 1)[-1] == container else str(join(source, container))
    return DocumentRef(source=source, container=holder, member=member, rel_path="report", kind=kind)


def make_picture(row: dict, output_page: Location) -> bytes:
    """input (nearest) | bicubic | output for the page's inkiest crop, grey, as PNG bytes."""
    # here, not at the top: the readers and the metrics bring torch, which a report without pictures never needs
    from srgan.imaging.metrics import bicubic_upscale
    from srgan.pipeline.stages import compare_picture, encode_image
    from srgan.readers import read_pages

    scale = int(row.get("scale") or 2)
    page = next((p for p in read_pages([input_ref(row)], PdfConfig(), LimitsConfig(), "grey")
                 if p.page_index == row["page_index"]), None)
    if page is None or page.image is None:
        raise ValueError(page.error if page is not None else "input page not found")
    out = np.asarray(Image.open(io.BytesIO(read_bytes(output_page))).convert("L"))
    inp = page.image
    if (inp.shape[0] * scale, inp.shape[1] * scale) != out.shape:
        raise ValueError(f"input read again at {inp.shape[1]}x{inp.shape[0]}, output {out.shape[1]}x{out.shape[0]} "
                         f"is not x{scale} of it (other pdf.dpi?)")
    size = (out.shape[1], out.shape[0])
    picture = compare_picture(inp, bicubic_upscale(inp, size), out, scale, CROP, row.get("weights_name") or "")
    return encode_image(picture, "png", None)
