"""Idempotent reruns (srgan.pipeline.resume): done documents skipped, error pages retried, a killed run resumed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srgan.cli import main
from srgan.config import PipelineConfig, TilingConfig
from srgan.inference.engine import Engine
from srgan.pipeline.records import read_records, write_part
from srgan.pipeline.resume import claim_work_dir, clean_stale, doc_key, done_documents, done_pages, skip_done
from srgan.pipeline.run import run_pipeline
from srgan.readers import DocumentRef
from srgan.readers.refs import container_path
from tests import badfiles as bf
from tests.conftest import tiny_generator, write_config

SHA = "a" * 64
PAGES = 16  # with pages_per_task 2: 8 batches, so the first part file comes well before the end


def _row(member: str, page: int, count: int, status: str = "ok", sha: str = SHA, weights: str = "w",
         config: str = "c") -> dict:
    return {"run_id": "r", "started_at": datetime.now(UTC), "source": "/in", "member": member, "container": member,
            "content_sha256": sha,
            "page_index": page, "page_count": count, "status": status, "weights_sha256": weights,
            "config_hash": config, "error": None if status == "ok" else "boom"}


def _doc(member: str, sha: str = SHA) -> DocumentRef:
    return DocumentRef(source="/in", container="", member=member, rel_path=member.split(".")[0], kind="pdf",
                       content_sha256=sha)


def test_done_means_every_page_ok_with_the_same_weights_and_config(tmp_path: Path) -> None:
    records = tmp_path / "records"
    write_part([_row("whole.pdf", 0, 2), _row("whole.pdf", 1, 2),
                _row("part.pdf", 0, 3), _row("part.pdf", 1, 3, "error"),
                _row("failed.pdf", 0, 1, "error"),
                _row("otherw.pdf", 0, 1, weights="w2"), _row("otherc.pdf", 0, 1, config="c2"),
                _row("old.pdf", 0, 1, sha="b" * 64)], records, "r1")
    write_part([_row("part.pdf", 2, 3)], records, "r2")  # a later run finished one more page
    assert done_documents(records, "w", "c") == {doc_key("/in", "whole.pdf", "whole.pdf", SHA),
                                                 doc_key("/in", "old.pdf", "old.pdf", "b" * 64)}
    pages = done_pages(records, "w", "c")
    assert pages[doc_key("/in", "part.pdf", "part.pdf", SHA)] == (3, frozenset({0, 2}))
    docs = [_doc(m) for m in ("whole.pdf", "part.pdf", "failed.pdf", "otherw.pdf", "otherc.pdf", "old.pdf", "new.pdf")]
    todo = skip_done(docs, pages)
    assert [(d.member, d.skip_pages) for d in todo] == [
        ("part.pdf", (0, 2)), ("failed.pdf", ()), ("otherw.pdf", ()), ("otherc.pdf", ()), ("old.pdf", ()),
        ("new.pdf", ())]
    errors = [DocumentRef(source="/in", container="", member="x.tif", rel_path="x", kind="error", error="bad")]
    assert skip_done(errors, pages) == errors  # error refs have no hash: always tried again
    assert done_pages(tmp_path / "none", "w", "c") == {}


def test_non_utf8_names_match_their_records(tmp_path: Path) -> None:
    raw = os.fsdecode(b"caf\xe9.pdf")
    write_part([_row("caf\\xe9.pdf", 0, 1)], tmp_path / "records", "r")
    assert skip_done([_doc(raw)], done_pages(tmp_path / "records", "w", "c")) == []


def test_stale_work_folders_and_tmp_files_are_cleared(tmp_path: Path) -> None:
    out = tmp_path / "out"
    dead = out / ".work" / "dead-run"
    dead.mkdir(parents=True)
    (dead / "owner.json").write_text(json.dumps({"host": os.uname().nodename, "pid": 2**22 + 12345, "start": "1"}))
    (dead / "x.in.npy").write_bytes(b"0")
    (out / ".work" / "dead-run.progress.json").write_text("{}")
    (out / "pages" / "sub").mkdir(parents=True)
    (out / "pages" / "sub" / ".a.png.x1.tmp").write_bytes(b"half")
    (out / "records").mkdir()
    (out / "records" / ".part-1.tmp").write_bytes(b"half")
    (out / "pages" / "keep.png").write_bytes(b"whole")
    live = claim_work_dir(out, "live-run")  # this process: alive
    removed = clean_stale(out, "me", out / "records")
    assert not dead.exists() and not (out / ".work" / "dead-run.progress.json").exists() and live.exists()
    assert len(removed) == 2 and (out / "pages" / "sub" / ".a.png.x1.tmp").exists()  # another run is live
    clean_stale(out, "live-run", out / "records")
    assert not list(out.rglob("*.tmp")) and (out / "pages" / "keep.png").exists()


def _engine_and_cfg(tmp_path: Path) -> tuple[Engine, PipelineConfig]:
    cfg = PipelineConfig(tiling=TilingConfig(tile=48, overlap=8, batch_size=4))
    cfg.flow.pages_per_task = 2
    cfg.records.rows_per_part = 2
    return Engine(tiny_generator(2), cfg.engine, cfg.tiling), cfg


def test_run_pipeline_rerun_skips_done_and_redoes_changed(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    for i in range(4):
        (inp / f"p{i}.png").write_bytes(bf.good_png(i))
    (inp / "bad.png").write_bytes(b"")
    (inp / "two.pdf").write_bytes(bf.good_pdf(2))
    engine, cfg = _engine_and_cfg(tmp_path)
    out = tmp_path / "out"

    def run() -> dict:
        return run_pipeline([str(inp)], out, cfg, engine, "tiny", "w" * 64, 9.0)

    assert (run()["pages"], run()["pages"]) == (7, 1)  # the second run retries only the error page
    (inp / "p1.png").write_bytes(bf.good_png(11))  # changed content: processed again
    assert run()["pages"] == 2
    rows = read_records(out / "records").to_pylist()
    ok = [(r["member"], r["page_index"], r["content_sha256"]) for r in rows if r["status"] == "ok"]
    assert len(ok) == len(set(ok)) == 7  # 6 pages + p1.png's new content
    assert sum(r["member"] == "bad.png" for r in rows) == 3
    assert not (out / ".work").exists() or not any((out / ".work").iterdir())


def _corpus_of_pages(root: Path, n: int) -> None:
    root.mkdir()
    for i in range(n):
        (root / f"page{i:02d}.png").write_bytes(bf.good_png(i))


@pytest.mark.slow
def test_killed_run_resumes_every_page_once(prefect_harness, tmp_path: Path, tiny_weights) -> None:
    """SIGKILL `srgan upscale` (console script, ephemeral Prefect) mid-run, rerun: every page once, no partial file."""
    inp = tmp_path / "in"
    _corpus_of_pages(inp, PAGES)
    cfg = write_config(tmp_path, tiny_weights, "flow:\n  pages_per_task: 2\n")
    out = tmp_path / "out"
    argv = ["upscale", str(inp), "--out", str(out), "--config", str(cfg), "--no-progress"]
    exe = Path(sys.executable).parent / "srgan"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    log = tmp_path / "killed-run.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([str(exe), *argv], env=env, stdout=err, stderr=subprocess.STDOUT,
                                start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while not list((out / "records").glob("*.parquet")) and proc.poll() is None:
            assert time.monotonic() < deadline, "no part file in 240 s"
            time.sleep(0.02)
    finally:
        still_running = proc.poll() is None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert still_running, f"the run ended before it could be killed: {log.read_text()[-3000:]}"
    first = read_records(out / "records").to_pylist()
    assert 0 < len(first) < PAGES

    assert main(argv) == 0
    rows = read_records(out / "records").to_pylist()
    members = sorted(r["member"] for r in rows)
    assert [r["status"] for r in rows] == ["ok"] * PAGES and members == [f"page{i:02d}.png" for i in range(PAGES)]
    assert not list(out.rglob("*.tmp")) and not (out / ".work").exists()
    pngs = sorted((out / "pages").rglob("*.png"))
    assert len(pngs) == PAGES
    for png in pngs:
        with Image.open(png) as im:
            im.load()
            assert im.size == (200, 240)
    compare = list((out / "compare").rglob("*"))
    for pic in compare:
        Image.open(pic).load()

    (inp / "page05.png").write_bytes(bf.good_png(99))  # changed input: done again, alone
    assert main(argv) == 0
    rows = read_records(out / "records").to_pylist()
    assert len(rows) == PAGES + 1 and sum(r["member"] == "page05.png" for r in rows) == 2
    assert np.asarray(Image.open(out / "pages" / "page05.png")).shape == (240, 200)


def test_two_archives_with_the_same_member_are_told_apart(tmp_path: Path) -> None:
    """container names the archive: p0.tif of a.tar (done) does not make p0.tif of b.tar done."""
    def member(archive: str) -> DocumentRef:
        return DocumentRef(source="/in", container=f"/in/{archive}", member="p0.tif", rel_path=f"{archive}/p0",
                           kind="image", content_sha256=SHA)

    assert container_path(member("a.tar")) == "a.tar"
    row = {**_row("p0.tif", 0, 1), "container": "a.tar"}
    write_part([row], tmp_path / "records", "r")
    todo = skip_done([member("a.tar"), member("b.tar")], done_pages(tmp_path / "records", "w", "c"))
    assert [d.container for d in todo] == ["/in/b.tar"]


def test_rows_from_before_the_container_column_still_count_as_done(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    old = {k: v for k, v in _row("old.pdf", 0, 1).items() if k != "container"}
    (tmp_path / "records").mkdir()
    pq.write_table(pa.Table.from_pylist([old]), tmp_path / "records" / "part-old.parquet")
    assert skip_done([_doc("old.pdf")], done_pages(tmp_path / "records", "w", "c")) == []


def test_discovered_archive_members_name_their_archive(tmp_path: Path) -> None:
    import io
    import tarfile

    from srgan.config import load_config
    from srgan.readers import discover

    (tmp_path / "in" / "box").mkdir(parents=True)
    for name in ("box/damaged.tar", "hostile.tar"):
        with tarfile.open(tmp_path / "in" / name, "w") as tar:
            info = tarfile.TarInfo("p0.png")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
    (tmp_path / "in" / "plain.png").write_bytes(b"x")
    docs = list(discover([str(tmp_path / "in")], load_config(None).limits))
    assert sorted((container_path(d), d.member) for d in docs) == [
        ("box/damaged.tar", "p0.png"), ("hostile.tar", "p0.png"), ("plain.png", "plain.png")]
    (single,) = discover([str(tmp_path / "in" / "hostile.tar")], load_config(None).limits)
    assert container_path(single) == "hostile.tar"
