"""Hosts apart on one machine (srgan/bench/netns.py): the services in one network namespace, each worker
in its own, joined by veth pairs. A worker cut off from the store fences itself before its lease can be
taken over and lands nothing after; a client in another namespace without the auth string is refused
by the Prefect server (with its own PostgreSQL) that listens beyond loopback. Skipped where network
namespaces cannot be made (not root, no iproute2/nftables)."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from srgan.bench.netns import PG_BIN, Network, start_postgres, start_prefect, start_s3, unavailable
from tests.conftest import REPO

pytestmark = pytest.mark.skipif(bool(unavailable()), reason=str(unavailable()))

S3_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}

# The lease holder in worker 0: holds the output's lease (TTL 4 s: renewal deadline 2 s) and writes a
# numbered object under the output every 0.2 s through the fenced writes; prints one JSON line per
# attempt ({"n", "t", "ok"}), for at most `seconds`.
HOLDER = """
import json, sys, time
from srgan.atomic import atomic_write_bytes
from srgan.storage import lease
from srgan.storage.fence import FencedError, fenced
lease.SKEW_S = 0.0
out, seconds = sys.argv[1], float(sys.argv[2])
held = lease.Lease(out + "/.locks/all.json", "worker 0", ttl_s=4)
held.acquire()
print(json.dumps({"acquired": time.time()}), flush=True)
with fenced(out, held.check):
    end, n = time.monotonic() + seconds, 0
    while time.monotonic() < end:
        n += 1
        try:
            atomic_write_bytes(f"{out}/pages/w0-{n:04d}", str(time.time()).encode())
            print(json.dumps({"n": n, "t": time.time(), "ok": True}), flush=True)
        except FencedError:
            print(json.dumps({"n": n, "t": time.time(), "ok": False}), flush=True)
        except Exception:  # the store out of reach (s3fs gives up with botocore's errors)
            print(json.dumps({"n": n, "t": time.time(), "ok": None}), flush=True)
        time.sleep(0.2)
"""

# The taker in worker 1: tries to take the same lease every 0.2 s; once it has, writes one object.
TAKER = """
import json, sys, time
from srgan.atomic import atomic_write_bytes
from srgan.storage import lease
lease.SKEW_S = 0.0
out, seconds = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + seconds
while time.monotonic() < end:
    try:
        lease.Lease(out + "/.locks/all.json", "worker 1", ttl_s=4).acquire()
    except lease.LeaseBusyError:
        time.sleep(0.2)
        continue
    print(json.dumps({"took": time.time()}), flush=True)
    atomic_write_bytes(out + "/pages/w1-after", b"1")
    sys.exit(0)
print(json.dumps({"took": None}), flush=True)
"""

LIST = "import json, sys, s3fs; print(json.dumps([p.rsplit('/', 1)[1] for p in s3fs.S3FileSystem().ls(sys.argv[1])]))"


@pytest.fixture
def scratch():
    root = Path(tempfile.mkdtemp(prefix="srgan-netns-"))
    root.chmod(0o755)  # PostgreSQL's own user reads its data folder under it
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_a_cut_off_worker_fences_itself_before_its_lease_is_taken_and_lands_nothing_after(scratch):
    with Network(workers=2) as net:
        start_s3(net, scratch / "moto.log")
        envs = [{**S3_ENV, "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
                 "AWS_ENDPOINT_URL": f"http://{net.hub_addr(i)}:5000"} for i in (0, 1)]
        made = net.run(net.worker(0), [sys.executable, "-c", "import s3fs; s3fs.S3FileSystem().mkdir('fence')"],
                       env=envs[0])
        assert made.returncode == 0, made.stderr[-1000:]
        out = "s3://fence/out"
        holder = subprocess.Popen(["ip", "netns", "exec", net.worker(0), sys.executable, "-c", HOLDER, out, "16"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=envs[0],
                                  start_new_session=True)
        net.procs.append(holder)
        first = holder.stdout.readline()
        assert "acquired" in first, first + holder.stderr.read()[-2000:]
        time.sleep(2)  # a few writes land while the link is up
        taker = subprocess.Popen(["ip", "netns", "exec", net.worker(1), sys.executable, "-c", TAKER, out, "20"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=envs[1],
                                 start_new_session=True)
        net.procs.append(taker)
        with net.cut(0, 7):  # worker 0's link down for 7 s: past its deadline (2 s) and its TTL (4 s)
            cut_at = time.time()
            took = _lines(taker.communicate(timeout=60)[0])
        held_out, held_err = holder.communicate(timeout=60)
        listed = net.run(net.worker(1), [sys.executable, "-c", LIST, "fence/out/pages"], env=envs[1])
        assert listed.returncode == 0, listed.stderr[-1000:]
    listing = json.loads(listed.stdout)
    attempts = _lines(held_out)
    # what a failure prints: the holder's attempts relative to the cut, the takeover, the holder's errors
    story = (f"cut at {cut_at:.2f}; took {took}; attempts (t - cut, ok): "
             f"{[(a['n'], round(a['t'] - cut_at, 2), a['ok']) for a in attempts]}; holder stderr: {held_err[-1500:]}")
    took_at = took[-1]["took"] if took else None
    assert took_at is not None, "the other worker never took the lease; " + story
    fenced = [a for a in attempts if a.get("ok") is False]
    assert fenced, story
    assert fenced[0]["t"] < took_at, story  # it stopped writing before the lease could be taken
    assert took_at - cut_at > 2.0, story  # not before its renewal deadline, counted from the cut (TTL 4 s from
    #                                       its last renewal, up to 1 s before the cut, by the store's 1 s clock)
    healed = [a for a in attempts if a["t"] > cut_at + 7.5]
    assert healed and all(a["ok"] is False for a in healed), story  # after the link is back: still fenced
    written = {int(name.split("-")[1]) for name in listing if name.startswith("w0-")}
    assert written == {a["n"] for a in attempts if a.get("ok") is True}, f"listed {sorted(written)}; " + story
    assert "w1-after" in listing, story


# A Prefect client call from a worker's namespace: count the flow runs; prints the status or the error.
CLIENT = """
import asyncio
from prefect.client.orchestration import get_client
async def main():
    async with get_client() as client:
        print("runs", await client.count_flow_runs(), flush=True)
try:
    asyncio.run(main())
except Exception as exc:
    print("refused", type(exc).__name__, str(exc).splitlines()[0], flush=True)
"""


def test_the_pool_refuses_a_client_without_the_auth_string_from_another_namespace(scratch):
    """The Prefect server (its own PostgreSQL, generated password) in the hub, listening on the hub's
    addresses with basic auth: a client in a worker's namespace is refused without the string and served
    with it; neither secret is in the server's or PostgreSQL's log."""
    auth, pg_password = f"srgan:{secrets.token_urlsafe(18)}", secrets.token_urlsafe(18)
    with Network(workers=1) as net:
        db_url = start_postgres(net, scratch / "pg", pg_password)
        start_prefect(net, scratch / "prefect", db_url, auth)
        base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(scratch),
                "PREFECT_HOME": str(scratch / "client"), "PREFECT_API_URL": f"http://{net.hub_addr(0)}:4200/api"}
        client = [sys.executable, "-c", CLIENT]
        without = net.run(net.worker(0), client, env=base)
        wrong = net.run(net.worker(0), client, env={**base, "PREFECT_API_AUTH_STRING": "srgan:x"})
        right = net.run(net.worker(0), client, env={**base, "PREFECT_API_AUTH_STRING": auth})
        old_pg = net.run(net.hub, [str(PG_BIN[-1] / "psql"), "-h", "127.0.0.1", "-U", "postgres", "-d", "prefect",
                                   "-c", "SELECT 1"], env={"PGPASSWORD": "prefect", "PATH": "/usr/bin:/bin"})
        worker_cli = net.run(net.worker(0), [sys.executable, "-m", "srgan.cli", "worker"], env=base)
    assert without.stdout.startswith("refused") and "401" in without.stdout, without.stdout + without.stderr[-1500:]
    assert wrong.stdout.startswith("refused") and "401" in wrong.stdout, wrong.stdout + wrong.stderr[-1500:]
    assert right.stdout.startswith("runs 0"), right.stdout + right.stderr[-1500:]
    assert old_pg.returncode != 0 and "password authentication failed" in old_pg.stderr
    assert worker_cli.returncode == 2 and "PREFECT_API_AUTH_STRING is not set" in worker_cli.stderr
    logs = (scratch / "prefect" / "server.log").read_text() + (scratch / "pg" / "postgres.log").read_text()
    assert auth.split(":", 1)[1] not in logs and pg_password not in logs
