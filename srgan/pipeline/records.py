"""Per-page records: one Parquet row per page, written as part files of a dataset.

Part files are written whole (``srgan.atomic``: temp file + rename, or one PUT on object storage)
under ``OUT/records/`` and read back as one table with ``pyarrow.dataset`` (through fsspec for a
URL). A part's name follows from the pages it holds and the weights and config that made them, so a
rerun that writes the same pages again (a rescheduled unit) replaces its part instead of adding a
second copy. The schema is fixed here and documented in docs/formats.md.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from srgan.atomic import atomic_target
from srgan.storage.files import Location, filesystem, is_url, join, list_names

SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("started_at", pa.timestamp("us", tz="UTC")),
        ("source", pa.string()),  # the input given (folder, archive or file)
        ("member", pa.string()),  # file relative to the input, or member inside the archive
        ("content_sha256", pa.string()),  # sha256 of the document's bytes (the rerun-skip key with source, member)
        ("page_index", pa.int32()),  # 0-based page of the document
        ("page_count", pa.int32()),
        ("label", pa.string()),  # RVL-CDIP class name, when label files name the page
        ("split", pa.string()),  # train / val / test
        ("input_width", pa.int32()),
        ("input_height", pa.int32()),
        ("input_dpi", pa.float64()),
        ("text_height_px", pa.float64()),  # estimated x-height of the body text, input pixels
        ("text_height_note", pa.string()),  # why there is no estimate (blank page...)
        ("normalise_factor", pa.float64()),  # page resampled by this before the model
        ("scale", pa.int32()),
        ("output_path", pa.string()),
        ("output_width", pa.int32()),
        ("output_height", pa.int32()),
        ("output_dpi", pa.float64()),
        ("weights_name", pa.string()),
        ("weights_sha256", pa.string()),
        ("device", pa.string()),
        ("precision", pa.string()),
        ("psnr_consistency", pa.float64()),  # output downscaled back vs input, dB
        ("psnr_consistency_bicubic", pa.float64()),  # the same for plain bicubic upscaling
        ("psnr", pa.float64()),  # against an original (evaluate only)
        ("ssim", pa.float64()),
        ("psnr_bicubic", pa.float64()),
        ("ssim_bicubic", pa.float64()),
        ("seconds_decode", pa.float64()),
        ("seconds_normalise", pa.float64()),
        ("seconds_infer", pa.float64()),  # this page's share of its batch
        ("seconds_write", pa.float64()),
        ("seconds_metrics", pa.float64()),
        ("config_hash", pa.string()),
        ("status", pa.string()),  # ok | error
        ("error", pa.string()),  # one-line reason when status is error
        ("color", pa.string()),  # grey | rgb: how the page was processed (upscale.color)
        ("page_width_pt", pa.float64()),  # PDF pages: page size in points as displayed
        ("page_height_pt", pa.float64()),
        ("document_path", pa.string()),  # the output document holding this page (output_format document)
        ("in_validated_range", pa.bool_()),  # model-side x-height inside the weights' validated range (null: unknown)
        ("validated_xheight_lo", pa.float64()),  # the range used (weights.decision_range of the manifest)
        ("validated_xheight_hi", pa.float64()),
        ("method", pa.string()),  # model | lanczos (upscale.out_of_range, upscale.no_estimate)
        ("container", pa.string()),  # the archive or document file the page came from, relative to source
        ("pdf_path", pa.string()),  # PDF pages: in_place (scan image's own pixels, replaced in place) | rasterised
        ("pdf_dpi_reason", pa.string()),  # PDF pages: why input_dpi: native | fallback | forced | capped
        ("pdf_path_note", pa.string()),  # PDF pages under pdf.dpi native: why the page was rasterised
        ("text_layer", pa.string()),  # PDF pages of output documents: kept | added | none
        ("seconds_ocr", pa.float64()),  # upscale.ocr_layer add: tesseract on the upscaled page
        ("dpi_assumed", pa.bool_()),  # input_dpi is upscale.assumed_dpi: the file had no dpi tag
        ("finished_at", pa.timestamp("us", tz="UTC")),  # when the write step took the page (the report's pace)
        ("runtime", pa.string()),  # engine.runtime that ran the model (torch, openvino-bf16, ...; null in older parts)
        ("encoding", pa.string()),  # the page file's: png8 | png4 | png2 | bitonal | jp2 (upscale.encoding), tiff, jpeg
        ("output_bytes", pa.int64()),  # bytes of the page file written
        ("document_bytes", pa.int64()),  # bytes of the output document (on the rows that carry document_path)
    ]
)

COLUMNS = SCHEMA.names


_PART_KEY = ("source", "container", "member", "page_index", "content_sha256", "weights_sha256", "config_hash")


def part_name(rows: list[dict]) -> str:
    """part-<hash of the rows' pages, weights and config>.parquet: the same pages, the same name."""
    keys = sorted("|".join(str(r.get(c)) for c in _PART_KEY) for r in rows)
    return f"part-{hashlib.sha256(chr(10).join(keys).encode()).hexdigest()[:24]}.parquet"


def write_part(rows: list[dict], records_dir: Location, run_id: str) -> Location | None:
    """Write rows as one Parquet part file (whole or absent); returns its location, or None for no rows.

    run_id is in every row already; the part's name comes from its pages (see part_name)."""
    if not rows:
        return None
    unknown = set().union(*rows) - set(COLUMNS)
    if unknown:
        raise ValueError(f"records: unknown columns {sorted(unknown)}")
    table = pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in rows], schema=SCHEMA)
    final = join(records_dir, part_name(rows))
    with atomic_target(final) as tmp:
        pq.write_table(table, tmp)
    return final


def records_dataset(records_dir: Location) -> ds.Dataset | None:
    """The part files under records_dir as a pyarrow dataset (None when there is none yet)."""
    parts = [n for n in list_names(records_dir, ".parquet") if not n.startswith(".")]
    if not parts:
        return None
    if is_url(records_dir):
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        fs, path = filesystem(str(records_dir))
        return ds.dataset([f"{path.rstrip('/')}/{n}" for n in parts], format="parquet", schema=SCHEMA,
                          filesystem=PyFileSystem(FSSpecHandler(fs)), exclude_invalid_files=True)
    return ds.dataset(Path(records_dir), format="parquet", schema=SCHEMA, exclude_invalid_files=True)


def read_records(records_dir: Location) -> pa.Table:
    """All part files under records_dir as one table (empty table with the schema if none)."""
    dataset = records_dataset(records_dir)
    return SCHEMA.empty_table() if dataset is None else dataset.to_table()
