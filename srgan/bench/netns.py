"""Hosts apart on one machine: network namespaces joined by veth pairs, with delay, loss and cuts.

Used by the tests (tests/test_netns.py) and by the scale-out measurements. As root, with Debian's
iproute2 (``ip netns``, ``ip link``) and nftables (``nft``):

- one *hub* namespace for the services (the Prefect server with its own PostgreSQL, the S3 server) and
  one namespace per worker, each worker joined to the hub by its own veth pair (worker ``i``: hub side
  ``10.77.i.1``, worker side ``10.77.i.2``, a /30); every address is inside namespaces made here;
- **delay and jitter**: this kernel has no ``netem``, so a small asyncio TCP proxy (``DelayProxy``,
  run in the worker's namespace by ``python -m srgan.bench.netns proxy``) holds each chunk for
  ``delay +/- jitter`` ms in each direction, in order; a worker reaches a service through it;
- **loss**: an nftables rule in the worker's namespace drops that share of its packets at random
  (``numgen random``), both ways;
- **partition**: the worker's end of its link down for a set time, then up again (``cut``).

``Network`` cleans up on exit, also when the block raised: the processes it started (their process
groups), then the namespaces, which take their veth links and nftables rules with them. Every loop
here is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "10.77"  # worker i: 10.77.i.1 (hub side) <-> 10.77.i.2 (worker side)


def unavailable() -> str | None:
    """Why namespaces cannot be made here (a reason to skip), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian: iproute2, nftables; make system)"
    probe = f"srgan-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


@dataclass
class Network:
    """A hub namespace and `workers` worker namespaces; use as a context manager."""

    workers: int
    tag: str = field(default_factory=lambda: f"s{os.getpid() % 100000}")
    procs: list[subprocess.Popen] = field(default_factory=list)
    made: list[str] = field(default_factory=list)

    @property
    def hub(self) -> str:
        return f"{self.tag}-hub"

    def worker(self, i: int) -> str:
        return f"{self.tag}-w{i}"

    @staticmethod
    def hub_addr(i: int) -> str:
        """The hub's address as worker i sees it."""
        return f"{SUBNET}.{i}.1"

    @staticmethod
    def worker_addr(i: int) -> str:
        return f"{SUBNET}.{i}.2"

    def __enter__(self) -> Network:
        try:
            for ns in (self.hub, *(self.worker(i) for i in range(self.workers))):
                _ip("netns", "add", ns)
                self.made.append(ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            for i in range(self.workers):
                hub_end, worker_end = f"h{i}", "eth0"
                _ip("link", "add", f"{self.tag}h{i}", "netns", self.hub, "type", "veth",
                    "peer", "name", f"{self.tag}w{i}", "netns", self.worker(i))
                _ip("-n", self.hub, "link", "set", f"{self.tag}h{i}", "name", hub_end)
                _ip("-n", self.worker(i), "link", "set", f"{self.tag}w{i}", "name", worker_end)
                _ip("-n", self.hub, "addr", "add", f"{self.hub_addr(i)}/30", "dev", hub_end)
                _ip("-n", self.worker(i), "addr", "add", f"{self.worker_addr(i)}/30", "dev", worker_end)
                _ip("-n", self.hub, "link", "set", hub_end, "up")
                _ip("-n", self.worker(i), "link", "set", worker_end, "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every process started here (its group), then delete the namespaces (links and rules go
        with them)."""
        for proc in reversed(self.procs):
            stop_group(proc)
        self.procs.clear()
        for ns in reversed(self.made):
            # a process that escaped its group would keep the namespace's network alive: none is left here
            subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.made.clear()

    # ------------------------------------------------------------------ processes

    def start(self, ns: str, cmd: list[str], log: Path, env: dict[str, str] | None = None,
              user: str | None = None) -> subprocess.Popen:
        """cmd in namespace ns (as `user` if given), its own process group, output to log."""
        prefix = ["ip", "netns", "exec", ns] + (["runuser", "-u", user, "--"] if user else [])
        with log.open("ab") as out:
            proc = subprocess.Popen(prefix + cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        self.procs.append(proc)
        return proc

    def run(self, ns: str, cmd: list[str], env: dict[str, str] | None = None, timeout: float = 120,
            user: str | None = None) -> subprocess.CompletedProcess:
        prefix = ["ip", "netns", "exec", ns] + (["runuser", "-u", user, "--"] if user else [])
        return subprocess.run(prefix + cmd, env=env, capture_output=True, text=True, timeout=timeout)

    def proxy(self, i: int, listen_port: int, to_port: int, delay_ms: float, jitter_ms: float,
              log: Path) -> str:
        """A DelayProxy in worker i's namespace to the hub's to_port; returns the URL host:port to use."""
        self.start(self.worker(i), [sys.executable, "-m", "srgan.bench.netns", "proxy",
                                    "--listen", f"127.0.0.1:{listen_port}", "--to", f"{self.hub_addr(i)}:{to_port}",
                                    "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms)], log)
        wait_port(self, self.worker(i), "127.0.0.1", listen_port)
        return f"127.0.0.1:{listen_port}"

    # ------------------------------------------------------------------ faults

    def loss(self, i: int, percent: float) -> None:
        """Drop `percent` % of worker i's packets at random, in and out (nftables in its namespace)."""
        per_mille = int(round(percent * 10))
        rules = (f"add table inet fault\n"
                 f"add chain inet fault out {{ type filter hook output priority 0 ; }}\n"
                 f"add chain inet fault in {{ type filter hook input priority 0 ; }}\n"
                 f"add rule inet fault out oifname \"eth0\" numgen random mod 1000 < {per_mille} drop\n"
                 f"add rule inet fault in iifname \"eth0\" numgen random mod 1000 < {per_mille} drop\n")
        subprocess.run(["ip", "netns", "exec", self.worker(i), "nft", "-f", "-"], input=rules, text=True,
                       check=True, capture_output=True, timeout=30)

    def link(self, i: int, up: bool) -> None:
        _ip("-n", self.worker(i), "link", "set", "eth0", "up" if up else "down")

    def hub_link(self, i: int, up: bool) -> None:
        """The hub's end of worker i's link (cutting every hub link cuts the services off)."""
        _ip("-n", self.hub, "link", "set", f"h{i}", "up" if up else "down")

    @contextlib.contextmanager
    def cut(self, i: int, seconds: float) -> Iterator[threading.Thread]:
        """Worker i cut off for `seconds` (its link down, then up) in the background; the link is up
        again when the block ends, however it ends."""
        done = threading.Event()

        def heal() -> None:
            done.wait(seconds)
            self.link(i, True)

        self.link(i, False)
        thread = threading.Thread(target=heal, name=f"cut w{i}", daemon=True)
        thread.start()
        try:
            yield thread
        finally:
            done.set()
            thread.join(30)


def stop_group(proc: subprocess.Popen, grace_s: float = 10) -> None:
    """SIGTERM the process group of proc (started with start_new_session), SIGKILL after grace_s."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def wait_port(net: Network, ns: str, host: str, port: int, timeout_s: float = 60) -> None:
    """Until host:port accepts a TCP connection from namespace ns (bounded)."""
    probe = f"import socket; socket.create_connection(('{host}', {port}), timeout=2).close()"
    deadline = time.monotonic() + timeout_s
    while True:
        if net.run(ns, [sys.executable, "-c", probe], timeout=10).returncode == 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{host}:{port} not reachable from {ns} within {timeout_s:.0f} s")
        time.sleep(0.3)


# ---------------------------------------------------------------------- the hub's services

PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def start_postgres(net: Network, root: Path, password: str, port: int = 5432) -> str:
    """A PostgreSQL of its own in the hub (initdb into root, scram passwords, listening on the hub's
    addresses); returns its database URL for the Prefect server in the hub."""
    if not PG_BIN:
        raise FileNotFoundError("PostgreSQL's programs are not installed (make system installs postgresql)")
    bin_dir = PG_BIN[-1]
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    data, pwfile = root / "pgdata", root / "pw"
    pwfile.write_text(password)
    shutil.chown(root, "postgres")
    shutil.chown(pwfile, "postgres")
    pwfile.chmod(0o600)
    subprocess.run(["runuser", "-u", "postgres", "--", str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres",
                    "-A", "scram-sha-256", f"--pwfile={pwfile}"], check=True, capture_output=True, timeout=120)
    pwfile.unlink()
    net.start(net.hub, [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root),
                        "-c", "listen_addresses=*"], root / "postgres.log", user="postgres")
    env = {**os.environ, "PGPASSWORD": password}
    deadline = time.monotonic() + 60
    while net.run(net.hub, [str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-qc",
                            "CREATE DATABASE prefect"], env=env).returncode != 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"PostgreSQL in {net.hub} did not answer: {(root / 'postgres.log').read_text()[-500:]}")
        time.sleep(0.5)
    net.run(net.hub, [str(bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "prefect",
                      "-qc", "CREATE EXTENSION IF NOT EXISTS pg_trgm"], env=env)
    return f"postgresql+asyncpg://postgres:{password}@127.0.0.1:{port}/prefect"


def start_prefect(net: Network, home: Path, db_url: str, auth_string: str, port: int = 4200) -> None:
    """`prefect server start` in the hub on db_url, listening on the hub's addresses, with basic auth
    (the secrets through the environment only); returns once /api/health answers from the hub."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_DATABASE_CONNECTION_URL": db_url,
           "PREFECT_SERVER_API_AUTH_STRING": auth_string, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE": "prefect.server.concurrency.lease_storage.filesystem"}
    proc = net.start(net.hub, [sys.executable, "-m", "prefect", "server", "start", "--host", "0.0.0.0",
                               "--port", str(port)], home / "server.log", env=env)
    probe = f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/api/health', timeout=5)"
    deadline = time.monotonic() + 240
    while net.run(net.hub, [sys.executable, "-c", probe], timeout=30).returncode != 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"prefect server in {net.hub} not healthy: {(home / 'server.log').read_text()[-800:]}")
        time.sleep(1)


def start_s3(net: Network, log: Path, port: int = 5000) -> None:
    """moto's S3-compatible server in the hub, listening on the hub's addresses."""
    net.start(net.hub, [str(Path(sys.executable).with_name("moto_server")), "-H", "0.0.0.0", "-p", str(port)], log)
    wait_port(net, net.hub, "127.0.0.1", port)


# ---------------------------------------------------------------------- the delaying proxy

@dataclass
class DelayProxy:
    """TCP proxy that delivers each chunk `delay_ms +/- jitter_ms` after it arrived, in order."""

    listen: tuple[str, int]
    to: tuple[str, int]
    delay_ms: float = 50.0
    jitter_ms: float = 10.0

    def delay_s(self) -> float:
        return max(0.0, self.delay_ms + random.uniform(-self.jitter_ms, self.jitter_ms)) / 1000

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # chunks queued with their due time; a sender delivers them in order, each no earlier than due
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def send() -> None:
            last_due = 0.0
            while True:
                due, data = await queue.get()
                due = max(due, last_due)  # jitter never reorders a byte stream
                last_due = due
                await asyncio.sleep(max(0.0, due - loop.time()))
                if data is None:
                    break
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError):
                writer.close()

        sender = asyncio.create_task(send())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((loop.time() + self.delay_s(), data))
        except OSError:
            pass
        queue.put_nowait((loop.time() + self.delay_s(), None))
        with contextlib.suppress(OSError):
            await sender

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.to)
        except OSError:
            writer.close()
            return
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def serve(self, seconds: float | None = None) -> None:
        server = await asyncio.start_server(self._handle, *self.listen)
        async with server:
            if seconds is None:
                await server.serve_forever()
            else:
                await asyncio.sleep(seconds)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m srgan.bench.netns")
    sub = p.add_subparsers(dest="command", required=True)
    px = sub.add_parser("proxy", help="a delaying TCP proxy (runs until stopped, at most --max-s)")
    px.add_argument("--listen", required=True, help="host:port")
    px.add_argument("--to", required=True, help="host:port")
    px.add_argument("--delay-ms", type=float, default=50.0)
    px.add_argument("--jitter-ms", type=float, default=10.0)
    px.add_argument("--max-s", type=float, default=6 * 3600.0, help="stops by itself after this long")
    a = p.parse_args(argv)
    host, port = a.listen.rsplit(":", 1)
    to_host, to_port = a.to.rsplit(":", 1)
    proxy = DelayProxy((host, int(port)), (to_host, int(to_port)), a.delay_ms, a.jitter_ms)
    asyncio.run(proxy.serve(a.max_s))
    return 0


if __name__ == "__main__":
    sys.exit(main())
