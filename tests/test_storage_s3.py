"""Inputs and outputs on object storage, against a real S3-compatible server process (moto's server
mode on localhost, reached through the standard AWS environment): archives read by ranges and
streams, records and rerun-skip from the store, whole-object writes, documents, overlap refusal and
leases that expire when their holder dies."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from srgan.atomic import atomic_target, atomic_write_bytes
from srgan.cli import main
from srgan.pipeline.records import read_records
from srgan.readers import RVL_CDIP_CLASSES
from srgan.storage import lease as lease_mod
from srgan.storage.fence import FencedError, fenced
from srgan.storage.files import filesystem, read_range, remove, walk_files
from srgan.storage.lease import Lease, LeaseBusyError, UnsafeLeaseError
from tests.conftest import REPO, text_like_page, write_config

pytestmark = pytest.mark.slow


def _forget_filesystems() -> None:
    """Drop every S3 filesystem object made so far: the project's cache and fsspec's instance cache, whose key
    leaves out the endpoint (read from the environment): another module's server on another port would
    otherwise be reached through an object made for this one."""
    import s3fs

    from srgan.storage.files import _filesystem, _write_filesystem

    _filesystem.cache_clear()
    _write_filesystem.cache_clear()
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory):
    """moto_server in its own process on a free port; its endpoint and credentials in os.environ."""
    import socket

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
    _forget_filesystems()
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
        _forget_filesystems()


@pytest.fixture
def bucket(s3_server, request) -> str:
    fs, _ = filesystem("s3://x")
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    with contextlib.suppress(FileExistsError):  # parametrised tests share one
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


def test_a_later_attempt_waits_out_its_own_fenced_attempts_lease_instead_of_failing(bucket):
    """A store outage fences a run; its last renewal may land as the link comes back. The unit's next attempt
    (same run key, next attempt) then finds a fresh lease of its own earlier attempt: it waits past that TTL
    and takes it over, rather than failing at once and burning the unit's retries (the 30 s store cut of the
    scale-out bench ended its night Failed this way)."""
    url = f"s3://{bucket}/w/.locks/shard-0-of-2.json"
    first = Lease(url, "unit 0, attempt 1", key="run-9", attempt=1, ttl_s=3)
    first.acquire()
    first._stop.set()  # fenced and silent from now on
    first._thread.join(5)
    t0 = time.monotonic()
    second = Lease(url, "unit 0, attempt 2", key="run-9", attempt=2, ttl_s=30)
    second.acquire()
    assert time.monotonic() - t0 > 2.0  # not before the earlier attempt's TTL had passed
    assert Lease(url, "probe").live()["holder"] == "unit 0, attempt 2"
    with pytest.raises(LeaseBusyError):  # another run does not wait: it is told at once who holds it
        Lease(url, "other run", key="run-10", attempt=1).acquire()
    second.release()


def test_lease_rules(bucket):
    url = f"s3://{bucket}/x/.locks/all.json"
    first = Lease(url, "first", key="run-1", attempt=1, ttl_s=4)
    first.acquire()
    with pytest.raises(LeaseBusyError, match="first"):
        Lease(url, "second", key="run-2").acquire()
    t0 = time.monotonic()
    with pytest.raises(LeaseBusyError, match="first"):  # alive and renewing: not even its own next attempt,
        Lease(url, "first, attempt 2", key="run-1", attempt=2, ttl_s=4).acquire()
    assert time.monotonic() - t0 > 2.0  # which waited out one TTL for it first
    first._stop.set()  # the first attempt goes silent (dead, or cut off: then it has fenced itself by now)
    first._thread.join(5)
    time.sleep(first.ttl_s + 1.2)  # past its TTL, not yet past TTL + SKEW_S (10 s)
    with pytest.raises(LeaseBusyError, match="first"):
        Lease(url, "second", key="run-2").acquire()
    again = Lease(url, "first, attempt 2", key="run-1", attempt=2, ttl_s=30)
    again.acquire()  # a later attempt of the same flow run takes its own silent attempt's lease
    with pytest.raises(FencedError):
        first.check()
    assert Lease(url, "probe").live()["holder"] == "first, attempt 2"
    again.release()
    assert Lease(url, "probe").live() is None
    renewed = Lease(url, "renewing", ttl_s=2)
    renewed.acquire()
    time.sleep(3)  # renewed every 0.5 s: never expires while it lives
    renewed.check()
    with pytest.raises(LeaseBusyError):
        Lease(url, "late").acquire()
    renewed.release()
    first.release()  # lost long ago: must not delete the newer holder's lease
    assert Lease(url, "probe").live() is None


def test_a_holder_that_cannot_renew_stops_writing_before_its_lease_can_be_taken(bucket, monkeypatch):
    """Fencing: past the renewal deadline every write under the output raises FencedError and lands
    nothing, while the lease cannot be taken over yet; once it can, the new holder writes."""
    monkeypatch.setattr(lease_mod, "SKEW_S", 0.0)
    out = f"s3://{bucket}/out"
    fs, _ = filesystem(out)
    holder = Lease(f"{out}/.locks/all.json", "cut off", ttl_s=4)
    holder.acquire()
    with fenced(out, holder.check):
        atomic_write_bytes(f"{out}/pages/a.png", b"a")
        holder._stop.set()  # its renewals stop reaching the store (a partition, seen from the holder)
        holder._thread.join(5)
        time.sleep(holder.renew_deadline_s + 0.3)
        with pytest.raises(FencedError, match="not renewed within 2 s"):
            atomic_write_bytes(f"{out}/pages/b.png", b"b")
        with pytest.raises(FencedError):
            with atomic_target(f"{out}/pages/c.png") as tmp:
                tmp.write_bytes(b"c")
        with pytest.raises(FencedError):
            remove(f"{out}/pages/a.png")
        atomic_write_bytes(f"s3://{bucket}/elsewhere/d.png", b"d")  # other outputs are not fenced
        with pytest.raises(LeaseBusyError):  # the deadline (2 s) comes before the takeover (4 s)
            Lease(f"{out}/.locks/all.json", "too early").acquire()
    assert sorted(p.rsplit("/", 1)[1] for p in fs.find(f"{bucket}/out/pages")) == ["a.png"]
    time.sleep(2.5)
    taker = Lease(f"{out}/.locks/all.json", "the next worker", ttl_s=4)
    taker.acquire()
    with fenced(out, taker.check):
        atomic_write_bytes(f"{out}/pages/b.png", b"b")
    taker.release()
    holder.release()  # lost: leaves the taker's lease alone (already released here)
    fs.invalidate_cache()
    assert fs.cat_file(f"{bucket}/out/pages/b.png") == b"b"


def test_leases_on_a_store_without_conditional_writes_are_refused_unless_accepted(tmp_path, monkeypatch):
    url = f"memory://{tmp_path.name}/out/.locks/all.json"
    monkeypatch.delenv(lease_mod.UNSAFE_ENV, raising=False)
    with pytest.raises(UnsafeLeaseError, match="SRGAN_UNSAFE_LEASES=accept"):
        Lease(url, "a run").acquire()
    monkeypatch.setenv(lease_mod.UNSAFE_ENV, "accept")
    taken = Lease(url, "a run", ttl_s=30)
    taken.acquire()
    with pytest.raises(LeaseBusyError):
        Lease(url, "another run").acquire()
    taken.release()


SKEWED_TAKER = """
import sys, time
from srgan.storage import lease
from srgan.storage.lease import Lease, LeaseBusyError
lease.SKEW_S = 0.0
print("ready", time.time(), flush=True)
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        Lease(sys.argv[1], "skewed taker", ttl_s=30).acquire()
    except LeaseBusyError:
        time.sleep(0.2)
        continue
    print("took", flush=True)
    sys.exit(0)
print("never", flush=True)
"""


@pytest.mark.skipif(shutil.which("faketime") is None, reason="faketime (Debian package faketime) is not installed")
@pytest.mark.parametrize("offset", ["+30s", "-30s"])
def test_a_taker_with_a_skewed_clock_takes_over_neither_early_nor_never(bucket, offset, s3_server):
    """A worker whose clock is 30 s ahead or behind (faketime) judges a silent lease by the store's clock."""
    url = f"s3://{bucket}/skew{offset}/.locks/all.json"
    holder = Lease(url, "silent holder", ttl_s=6)
    holder.acquire()
    proc = subprocess.Popen(["faketime", "-f", offset, sys.executable, "-c", SKEWED_TAKER, url, "20"],
                            stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ})
    try:
        ready = proc.stdout.readline().split()
        assert ready and ready[0] == "ready", ready
        assert abs(float(ready[1]) - time.time() - float(offset[:-1])) < 5  # its clock is really skewed
        holder._stop.set()  # the holder dies now; its last renewal is at most 1.5 s old
        holder._thread.join(5)
        t0 = time.monotonic()
        said = proc.stdout.readline().strip()
        waited = time.monotonic() - t0
    finally:
        proc.kill()
        proc.wait(10)
    assert said == "took", said
    assert 6 - 1.5 - 1.0 <= waited <= 6 + 2.5, waited  # its TTL by the store's clock (1 s resolution)


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


def test_a_run_that_cannot_renew_its_lease_ends_failed_and_writes_nothing(prefect_harness, bucket, tiny_weights,
                                                                          tmp_path, capsys, monkeypatch):
    """The run's renewals never reach the store (its renewal thread silenced: the store's side of a cut);
    past the deadline its first write raises FencedError, the flow run ends Failed, and nothing lands."""
    from prefect import get_client

    local_in = _inputs(tmp_path / "in")
    _upload(local_in / "a.png", f"s3://{bucket}/in/a.png")
    cfg = write_config(tmp_path, tiny_weights)
    monkeypatch.setattr(lease_mod, "TTL_S", 0.002)  # renewal deadline 1 ms: passed before the first write
    monkeypatch.setattr(Lease, "_renew_loop", lambda self: self._stop.wait(60))
    out = f"s3://{bucket}/out"
    assert main(["upscale", f"s3://{bucket}/in", "--out", out, "--config", str(cfg), "--no-progress"]) == 1
    assert "FencedError" in capsys.readouterr().err
    fs, _ = filesystem(out)
    fs.invalidate_cache()
    assert not [p for p in fs.find(f"{bucket}/out") if "/.locks/" not in p]
    with get_client(sync_client=True) as client:
        (run,) = client.read_flow_runs(limit=1, sort="EXPECTED_START_TIME_DESC")
    assert run.state.is_failed(), run.state
