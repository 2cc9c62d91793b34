from datetime import UTC, datetime

import pyarrow.dataset as ds
import pytest

from srgan.pipeline.records import COLUMNS, SCHEMA, read_records, write_part


def test_parts_read_back_as_one_table(tmp_path):
    now = datetime.now(UTC)
    for i in range(3):
        write_part([{"run_id": "r", "started_at": now, "source": "s", "page_index": i, "status": "ok"}],
                   tmp_path / "records", "r")
    (tmp_path / "records" / ".part-junk.tmp").write_bytes(b"partial")  # a crashed write's leftover
    table = read_records(tmp_path / "records")
    assert table.num_rows == 3 and table.schema == SCHEMA
    assert sorted(table.column("page_index").to_pylist()) == [0, 1, 2]
    assert ds.dataset(tmp_path / "records").to_table().num_rows == 3


def test_schema_has_the_documented_columns():
    for col in ["run_id", "started_at", "source", "member", "page_index", "label", "split", "input_width",
                "input_height", "input_dpi", "text_height_px", "normalise_factor", "scale", "output_path",
                "output_width", "output_height", "output_dpi", "weights_name", "weights_sha256", "device",
                "precision", "psnr_consistency", "psnr_consistency_bicubic", "status", "error"]:
        assert col in COLUMNS


def test_unknown_column_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown columns"):
        write_part([{"nope": 1}], tmp_path, "r")
    assert read_records(tmp_path / "missing").num_rows == 0


def test_parts_written_before_the_runtime_column_still_read(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    now = datetime.now(UTC)
    records = tmp_path / "records"
    write_part([{"run_id": "new", "started_at": now, "source": "s", "page_index": 0, "status": "ok",
                 "runtime": "openvino-bf16"}], records, "new")
    old_schema = pa.schema([f for f in SCHEMA if f.name != "runtime"])  # a part of an earlier release
    pq.write_table(pa.Table.from_pylist([{"run_id": "old", "started_at": now, "source": "s", "page_index": 1,
                                          "status": "ok"}], schema=old_schema), records / "part-old.parquet")
    rows = {r["run_id"]: r["runtime"] for r in read_records(records).to_pylist()}
    assert rows == {"new": "openvino-bf16", "old": None}
