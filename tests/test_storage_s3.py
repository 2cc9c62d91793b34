"""Inputs and outputs on object storage, against a real S3-compatible server process (moto's server
mode on localhost, reached through the standard AWS environment): archives read by ranges and
streams, records and rerun-skip from the store, whole-object writes, documents, overlap refusal and
leases that expire when their holder dies."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from srgan.cli import main
from srgan.pipeline.records import read_records
from srgan.readers import RVL_CDIP_CLASSES
from srgan.storage import lease as lease_mod
from srgan.storage.files import filesystem, read_range, walk_files
from srgan.storage.lease import Lease, LeaseBusyError
from tests.conftest import REPO, text_like_page, write_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """moto_server in its own process on a free port; its endpoint and credentials in os.environ."""
    import socket

    from srgan.storage.files import _filesystem

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("s3") / "moto.log"
    exe = Path(sys.executable).with_name("moto_server")
    with log.open("wb") as out:
        proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    _filesystem.cache_clear()
    try:
        import urllib.request

        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(env["AWS_ENDPOINT_URL"], timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        yield env
    finally:
        proc.terminate()
        proc.wait(10)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _filesystem.cache_clear()


@pytest.fixture
def bucket(s3_server, request) -> str:
    fs, _ = filesystem("s3://x")
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    fs.mkdir(name)
    return name


def _inputs(root: Path) -> Path:
    """A folder, a plain tar (read by offset), a tar.gz (streamed or spooled) with a label file, a PDF."""
    root.mkdir(parents=True)
    Image.fromarray(text_like_page(120, 100, 0)).save(root / "a.png", dpi=(100, 100))
    (root / "sub").mkdir()
    Image.fromarray(text_like_page(90, 130, 1)).save(root / "sub" / "b.tif", dpi=(150, 150))
    for name, mode in (("box.tar", "w"), ("box2.tar.gz", "w:gz")):
        with tarfile.open(root / name, mode) as tar:
            for i in range(3):
                buf = io.BytesIO()
                Image.fromarray(text_like_page(80, 70, 10 + i)).save(buf, format="PNG", dpi=(100, 100))
                info = tarfile.TarInfo(f"images/p{i}.png")
                info.size = buf.tell()
                buf.seek(0)
                tar.addfile(info, buf)
            labels = b"images/p0.png 3\nimages/p1.png 5\n"
            info = tarfile.TarInfo("labels/train.txt")
            info.size = len(labels)
            tar.addfile(info, io.BytesIO(labels))
    pages = [Image.fromarray(text_like_page(150, 120, s)) for s in (2, 3)]
    pages[0].save(root / "c.pdf", save_all=True, append_images=pages[1:], resolution=50)
    return root


def _upload(local: Path, url: str) -> None:
    fs, path = filesystem(url)
    fs.put(str(local), path, recursive=True)


def _rows(records) -> set[tuple]:
    return {(r["container"], r["member"], r["page_index"], r["status"], r["label"], round(r["psnr_consistency"], 6))
            for r in read_records(records).to_pylist()}


def test_upscale_s3_to_s3_gives_the_rows_of_a_local_run_and_reruns_skip(prefect_harness, bucket, tiny_weights,
                                                                        tmp_path, capsys):
    local_in = _inputs(tmp_path / "in")
    _upload(local_in, f"s3://{bucket}/in")
    cfg = write_config(tmp_path, tiny_weights, "flow:\n  pages_per_task: 2\n")  # the tar.gz spans tasks: spooled
    assert main(["upscale", str(local_in), "--out", str(tmp_path / "local"), "--config", str(cfg),
                 "--no-progress"]) == 0
    out = f"s3://{bucket}/out"
    assert main(["upscale", f"s3://{bucket}/in", "--out", out, "--config", str(cfg), "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert f"pages: {out}/pages" in said and "pages: 10  ok: 10  errors: 0" in said

    s3_rows = _rows(f"{out}/records")
    assert s3_rows == _rows(tmp_path / "local" / "records") and len(s3_rows) == 10
    assert {r[4] for r in s3_rows if r[1] == "images/p1.png"} == {RVL_CDIP_CLASSES[5]}  # label file inside
    stored = walk_files(out)
    assert not [k for k in stored if k.endswith(".tmp") or "/." in k.replace("/.locks", "")], stored
    assert sum(k.startswith("pages/") for k in stored) == 10
    assert all(k.endswith(".parquet") for k in stored if k.startswith("records/"))
    page = Image.open(io.BytesIO(filesystem(f"{out}/pages/a.png")[0].cat_file(f"{bucket}/out/pages/a.png")))
    assert page.size == (200, 240) and round(page.info["dpi"][0]) == 200
    assert not [k for k in stored if k.startswith(".locks/")]  # the lease is gone with its run

    # a rerun reads the records from the store and does nothing again
    assert main(["upscale", f"s3://{bucket}/in", "--out", out, "--config", str(cfg), "--no-progress"]) == 0
    assert "pages: 0  ok: 0" in capsys.readouterr().out
    assert len(read_records(f"{out}/records")) == 10


def test_document_output_on_s3(prefect_harness, bucket, tiny_weights, tmp_path):
    local_in = _inputs(tmp_path / "in")
    _upload(local_in / "c.pdf", f"s3://{bucket}/in/c.pdf")
    cfg = write_config(tmp_path, tiny_weights)
    cfg.write_text(cfg.read_text().replace("upscale:\n", "upscale:\n  output_format: document\n", 1))
    out = f"s3://{bucket}/out"
    assert main(["upscale", f"s3://{bucket}/in/c.pdf", "--out", out, "--config", str(cfg), "--no-progress"]) == 0
    import pypdf

    fs, path = filesystem(f"{out}/documents/c.pdf")
    reader = pypdf.PdfReader(io.BytesIO(fs.cat_file(path)))
    assert len(reader.pages) == 2
    rows = read_records(f"{out}/records").to_pylist()
    assert {r["document_path"] for r in rows} == {f"{out}/documents/c.pdf"}


def test_a_live_lease_refuses_a_second_run_and_a_dead_one_expires(prefect_harness, bucket, tiny_weights, tmp_path,
                                                                  capsys, monkeypatch):
    local_in = _inputs(tmp_path / "in")
    _upload(local_in / "a.png", f"s3://{bucket}/in/a.png")
    cfg = write_config(tmp_path, tiny_weights)
    out = f"s3://{bucket}/out"
    holder = Lease(f"{out}/.locks/all.json", "flow run busy-bee (1234)", ttl_s=2)
    holder.acquire()
    try:
        rc = main(["upscale", f"s3://{bucket}/in", "--out", out, "--config", str(cfg), "--no-progress"])
        assert rc == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert "is in use by flow run busy-bee (1234)" in line, line
    finally:
        holder._stop.set()  # the holder dies: no more renewals, no release
        holder._thread.join(5)
    monkeypatch.setattr(lease_mod, "SKEW_S", 0.0)
    time.sleep(3)  # past its 2 s
    assert main(["upscale", f"s3://{bucket}/in", "--out", out, "--config", str(cfg), "--no-progress"]) == 0
    assert len(read_records(f"{out}/records")) == 1


def test_lease_rules(bucket):
    url = f"s3://{bucket}/x/.locks/all.json"
    first = Lease(url, "first", key="run-1", attempt=1, ttl_s=30)
    first.acquire()
    with pytest.raises(LeaseBusyError, match="first"):
        Lease(url, "second", key="run-2").acquire()
    again = Lease(url, "first, attempt 2", key="run-1", attempt=2, ttl_s=30)
    again.acquire()  # a later attempt of the same flow run takes its own dead attempt's lease at once
    time.sleep(first.ttl_s / 4 + 1)
    assert first.lost or first.etag != again.etag
    assert Lease(url, "probe").live()["holder"] == "first, attempt 2"
    again.release()
    assert Lease(url, "probe").live() is None
    renewed = Lease(url, "renewing", ttl_s=2)
    renewed.acquire()
    time.sleep(3)  # renewed every 0.5 s: never expires while it lives
    with pytest.raises(LeaseBusyError):
        Lease(url, "late").acquire()
    renewed.release()
    first.release()  # lost long ago: must not delete the newer holder's lease
    assert Lease(url, "probe").live() is None


def test_ranged_reads_and_concurrent_takers(bucket):
    fs, _ = filesystem("s3://x")
    fs.pipe_file(f"{bucket}/blob", bytes(range(256)) * 4)
    assert read_range(f"s3://{bucket}/blob", 250, 10) == bytes([250, 251, 252, 253, 254, 255, 0, 1, 2, 3])
    url = f"s3://{bucket}/race/.locks/all.json"
    won, lost = [], []

    def take(i: int) -> None:
        lease = Lease(url, f"taker {i}", ttl_s=30)
        try:
            lease.acquire()
            won.append(lease)
        except LeaseBusyError:
            lost.append(i)

    threads = [threading.Thread(target=take, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 5
    won[0].release()  # its renewal thread would outlive the test


def test_console_script_on_s3_in_a_fresh_process(s3_server, bucket, tiny_weights, tmp_path):
    """The installed command with only the AWS environment: no in-process state from these tests."""
    _upload(_inputs(tmp_path / "in") / "a.png", f"s3://{bucket}/in/a.png")
    cfg = write_config(tmp_path, tiny_weights)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path / "prefect"), **s3_server}
    proc = subprocess.run([str(Path(sys.executable).parent / "srgan"), "upscale", f"s3://{bucket}/in",
                           "--out", f"s3://{bucket}/out", "--config", str(cfg)], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pages: 1  ok: 1  errors: 0" in proc.stdout
