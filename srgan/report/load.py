"""A night's records as one row per page: the latest row of each page, read column by column.

Every rerun of a page adds a row (an error row for a page that still fails, an ok row once it is done),
so counting rows overstates failures. Here each page (source, container, member, page_index) keeps only
its latest row (by run start, then by when the row was made, then by read order), found with pyarrow
compute over the columns the report needs: no Python loop over the rows, memory in those columns only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from srgan.pipeline.records import SCHEMA, records_dataset
from srgan.storage.files import Location

PAGE_KEY = ("source", "container", "member", "page_index")
ORDER = ("started_at", "finished_at")
WANTED = (*PAGE_KEY, *ORDER, "run_id", "label", "status", "error", "method", "text_height_px",
          "text_height_note", "normalise_factor", "in_validated_range", "validated_xheight_lo",
          "validated_xheight_hi", "psnr_consistency", "psnr_consistency_bicubic", "output_path", "scale",
          "weights_name", "color")


@dataclass
class Night:
    """The latest row of each page (``pages``) and how many rows the records held in all."""

    pages: pa.Table
    rows_read: int

    @property
    def superseded(self) -> int:
        """Rows of earlier attempts that a later row of the same page replaced."""
        return self.rows_read - self.pages.num_rows


def read_night(records_dir: Location) -> Night:
    """The records under records_dir reduced to one latest row per page (an empty table if none).

    Columns another version of the schema lacks come back as nulls (the dataset's schema is the
    current one; older parts simply miss the newer columns)."""
    dataset = records_dataset(records_dir)
    if dataset is None:
        return Night(pa.table({c: pa.array([], _type(c)) for c in WANTED}), 0)
    columns = [c for c in WANTED if c in dataset.schema.names]
    table = dataset.to_table(columns=columns)
    for name in WANTED:  # a column this schema does not have at all: nulls, so the report reads one shape
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, _type(name)))
    return Night(latest_per_page(table), table.num_rows)


def _type(column: str) -> pa.DataType:
    return SCHEMA.field(column).type if column in SCHEMA.names else pa.string()


def latest_per_page(table: pa.Table) -> pa.Table:
    """One row per PAGE_KEY: the last in (key, started_at, finished_at, read order) order."""
    if table.num_rows == 0:
        return table
    table = table.append_column("_read", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    sort_keys = [(k, "ascending") for k in (*PAGE_KEY, *ORDER, "_read")]
    ordered = table.take(pc.sort_indices(table, sort_keys=sort_keys))
    n = ordered.num_rows
    last = np.zeros(n, dtype=bool)
    last[-1] = True
    for key in PAGE_KEY:  # a row is its page's latest when the next row (in key order) is another page
        col = ordered.column(key)
        filled = pc.fill_null(col, "\x00" if pa.types.is_string(col.type) else -1)
        if n > 1:
            changed = pc.not_equal(filled.slice(0, n - 1), filled.slice(1)).to_numpy(zero_copy_only=False)
            last[:-1] |= changed
    return ordered.filter(pa.array(last)).drop_columns(["_read"])
