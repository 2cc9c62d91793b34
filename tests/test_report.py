"""The night report from the records of real runs (error rows, reruns, a Lanczos fallback, archive members),
its HTML looked at in headless Chromium, the CLI on a local folder and on object storage (moto server)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from srgan.cli import main
from srgan.config import load_config, override
from srgan.inference.engine import Engine
from srgan.pipeline.records import read_records
from srgan.pipeline.run import run_pipeline
from srgan.report.build import make_report
from srgan.report.load import latest_per_page
from srgan.report.summary import error_causes
from srgan.storage.files import filesystem
from tests import badfiles as bf
from tests.browser import chromium_path, file_url, look_at
from tests.conftest import text_like_page, tiny_generator, write_config
from tests.test_storage_s3 import bucket, s3_server  # noqa: F401 - the storage tests' S3 server fixtures

RANGE = (4.0, 30.0)  # the validated range the runs are given: the text pages fall inside it


def _night_inputs(root: Path) -> Path:
    """Two text pages, a blank page (no estimate: Lanczos), a bad file, one to be fixed, an archive of 3."""
    root.mkdir(parents=True)
    Image.fromarray(text_like_page(200, 160, 0)).save(root / "a.png", dpi=(100, 100))
    Image.fromarray(text_like_page(190, 170, 1)).save(root / "b.png", dpi=(100, 100))
    Image.fromarray(np.full((70, 60), 255, np.uint8)).save(root / "blank.png", dpi=(100, 100))
    (root / "bad.png").write_bytes(b"not a picture at all")
    (root / "fixed.png").write_bytes(b"broken the first night")
    members = [(f"images/p{i}.png", bf.good_png(10 + i, 200, 150)) for i in range(3)]
    (root / "box.tar").write_bytes(bf.tar_bytes(members))
    return root


def _run_night(inputs: Path, out: str, tmp: Path) -> None:
    """Two runs into one output: the second after fixed.png was replaced by a good page (bad.png fails again)."""
    cfg = load_config(write_config(tmp, tmp, "upscale:\n  compare_pages: 1\n  no_estimate: lanczos\n"
                                   "  weights_dir: .\n  compare_crop: 32\n"))
    cfg = override(cfg, "engine.device", "cpu")
    engine = Engine(tiny_generator(2), cfg.engine, cfg.tiling)
    run_pipeline([str(inputs)], out, cfg, engine, "tiny", "w" * 64, 9.0, RANGE)
    Image.fromarray(text_like_page(180, 160, 5)).save(inputs / "fixed.png", dpi=(100, 100))
    run_pipeline([str(inputs)], out, cfg, engine, "tiny", "w" * 64, 9.0, RANGE)


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("night")
    out = tmp / "out"
    _run_night(_night_inputs(tmp / "in"), str(out), tmp)
    return out


def test_each_page_counts_once_by_its_latest_row(night: Path) -> None:
    rows = read_records(night / "records")
    assert rows.num_rows == 10  # 8 pages, then bad.png and fixed.png again
    report = make_report(night, pictures=False)
    s = report.summary
    assert (s["pages"], s["ok"], s["failed"], s["superseded_rows"]) == (8, 7, 1, 2)
    (group,) = s["failures"]
    assert group["count"] == 1 and group["files"] == ["bad.png p1"]
    assert s["retry"].startswith("srgan upscale ") and str(night.parent / "in") in s["retry"]
    assert f"--out {night}" in s["retry"] and "--weights tiny" in s["retry"] and "--scale 2" in s["retry"]
    methods = dict(s["by_method"])
    assert methods == {"model": 6, "lanczos: no text-height estimate (blank page: no contrast)": 1}
    assert dict(s["by_container"])["box.tar"] == 3
    assert s["validated_range"] == RANGE
    assert all(report.figures.values())  # text height, gain, pace: each drawn
    assert "failed: 1" in report.text and str(night / "report.html") in report.text


def test_latest_row_wins_on_ties_and_null_containers() -> None:
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    table = pa.table({
        "source": ["s", "s", "s", "s", "s"], "container": [None, None, "x.tar", "x.tar", None],
        "member": ["a", "a", "m", "m", "b"], "page_index": pa.array([0, 0, 0, 0, 0], pa.int32()),
        "started_at": [t1, t0, t0, t0, t0], "finished_at": [None, None, t0, t1, None],
        "status": ["ok", "error", "error", "ok", "error"]})
    latest = latest_per_page(table)
    got = {(r["container"], r["member"]): r["status"] for r in latest.to_pylist()}
    assert got == {(None, "a"): "ok", ("x.tar", "m"): "ok", (None, "b"): "error"}


def test_error_causes_mask_names_and_numbers() -> None:
    causes = error_causes(pa.chunked_array([["cannot read image: 'a.png' has 12 bytes", "cannot read image: 'b/c.png'"
                                            " has 3 bytes", None]]))
    assert causes.to_pylist()[0] == causes.to_pylist()[1] == "cannot read image: '…' has N bytes"


def test_pictures_are_made_for_pages_without_one_and_kept(night: Path) -> None:
    report = make_report(night)
    reasons = {p.reason for p in report.picks}
    assert "Lanczos fallback" in reasons
    assert all(p.picture for p in report.picks), [p.note for p in report.picks]
    made = [p for p in report.picks if p.made_now]
    assert made and len(made) < len(report.picks)  # a run drew its first page (compare_pages: 1); the rest now
    for p in report.picks:
        pic = np.asarray(Image.open(io.BytesIO(p.picture)).convert("L"))
        assert pic.shape[1] > 2 * pic.shape[0] > 0  # three square panels side by side, captions above
        if p.reason != "Lanczos fallback":  # (the blank page)
            assert (pic < 128).mean() > 0.02  # the inkiest crop: text, not paper
    assert [p.name for p in (night / "compare").glob("*.png")] == ["a.png"]  # the first run's own: nothing added
    runs_only = make_report(night, html=night.parent / "runs_only.html", make_missing=False)  # as the flows do
    assert {p.name for p in runs_only.picks if p.picture} == {"a.png p1"} & {p.name for p in runs_only.picks}
    assert all("srgan report OUT" in p.note for p in runs_only.picks if not p.picture)


@pytest.mark.slow
def test_the_html_opens_in_chromium_with_every_image_and_no_error(night: Path, tmp_path: Path) -> None:
    chromium = chromium_path()
    if chromium is None:
        pytest.skip("chromium is not installed (make system installs Debian's chromium)")
    html = tmp_path / "night.html"
    assert main(["report", str(night), "--html", str(html)]) == 0
    look = look_at(file_url(html), chromium)
    assert look.errors == []
    report = make_report(night, html=tmp_path / "again.html")
    expected = sum(1 for f in report.figures.values() if f) + len(report.picks)
    assert len(look.images) == expected
    assert all(i["complete"] and i["naturalWidth"] > 0 for i in look.images), look.images
    shot = np.asarray(Image.open(io.BytesIO(look.screenshot)).convert("L"))
    assert shot.shape[0] > 900  # the whole page, not the first screen
    assert (shot < 128).mean() > 0.01 and shot.std() > 20  # text and pictures, not a blank page


@pytest.mark.slow
def test_report_of_an_output_on_s3(bucket, tmp_path: Path, capsys) -> None:  # noqa: F811 - fixture
    out = f"s3://{bucket}/out"
    _run_night(_night_inputs(tmp_path / "in"), out, tmp_path)
    assert main(["report", out]) == 0
    printed = capsys.readouterr().out
    assert "pages: 8  ok: 7  failed: 1" in printed and f"report: {out}/report.html" in printed
    fs, path = filesystem(out)
    page = fs.cat(f"{path}/report.html").decode()
    assert page.startswith("<!DOCTYPE html>") and "bad.png p1" in page and "data:image/png;base64," in page
    assert page.count("(picture made for this report)") >= 1  # from the pages on the store and the local input


def test_report_of_a_folder_without_records_says_so(tmp_path: Path, capsys) -> None:
    (tmp_path / "out").mkdir()
    assert main(["report", str(tmp_path / "out")]) == 1
    assert "pages: 0" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 2
