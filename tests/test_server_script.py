"""scripts/server.sh (`make server`): PostgreSQL gets a generated password and refuses the old default;
the Prefect server with an auth string refuses API calls without it; no secret is printed or logged.

Each test uses a role and database of its own on Debian's cluster (dropped after), never the shared
role `prefect`, and stops only the Prefect server it started (never the cluster)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from base64 import b64encode
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.skipif(shutil.which("pg_lsclusters") is None,
                                reason="PostgreSQL is not installed (make system installs Debian's postgresql)")
SCRIPT = REPO / "scripts" / "server.sh"


def _as_postgres(*cmd: str) -> list[str]:
    return ([] if os.geteuid() == 0 else ["sudo"]) + ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture
def own_role(tmp_path):
    """A role and database name of this test's own, and STATE in tmp_path; both dropped after."""
    name = f"srgan_t_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PG_USER": name, "PG_DB": name, "STATE": str(tmp_path / "state")}
    env.pop("PG_PASSWORD", None)
    yield name, env
    subprocess.run(_as_postgres("dropdb", "--if-exists", "--force", name), capture_output=True, timeout=60)
    subprocess.run(_as_postgres("dropuser", "--if-exists", name), capture_output=True, timeout=60)


def _login(user: str, password: str, port: str) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", port, "-U", user, "-d", user, "-tAc", "SELECT 1"],
                          env={**os.environ, "PGPASSWORD": password}, capture_output=True, text=True, timeout=60)


def test_the_old_default_password_is_refused_and_a_generated_one_kept(own_role):
    name, env = own_role
    refused = subprocess.run([str(SCRIPT), "pg"], env={**env, "PG_PASSWORD": "prefect"}, capture_output=True,
                             text=True, timeout=120, cwd=REPO)
    assert refused.returncode != 0
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("server: PG_PASSWORD: the old default 'prefect' is refused"), line

    made = subprocess.run([str(SCRIPT), "pg"], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert made.returncode == 0, made.stderr
    kept = Path(env["STATE"]) / "pg_password"
    password = kept.read_text()
    assert len(password) >= 24 and kept.stat().st_mode & 0o077 == 0
    port = made.stdout.strip().splitlines()[-1].rsplit(":", 1)[1].split("/")[0]
    assert _login(name, password, port).stdout.strip() == "1"
    old = _login(name, "prefect", port)
    assert old.returncode != 0 and "password authentication failed" in old.stderr
    again = subprocess.run([str(SCRIPT), "pg"], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert again.returncode == 0 and kept.read_text() == password  # kept, not replaced, on the next start


def test_the_server_with_an_auth_string_refuses_calls_without_it(own_role, tmp_path):
    name, env = own_role
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    auth = f"admin:{uuid.uuid4().hex}"
    env = {**env, "PORT": str(port), "AUTH_STRING": auth, "PREFECT": str(REPO / ".venv" / "bin" / "prefect")}
    if not Path(env["PREFECT"]).exists():
        env["PREFECT"] = shutil.which("prefect") or "prefect"
    state = Path(env["STATE"])
    try:
        started = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=300,
                                 cwd=tmp_path)
        assert started.returncode == 0, started.stdout + started.stderr
        url = f"http://127.0.0.1:{port}/api"
        assert f"export PREFECT_API_URL={url}" in started.stdout
        assert f'export PREFECT_API_AUTH_STRING="$(cat {state}/auth_string)"' in started.stdout
        assert (state / "auth_string").read_text() == auth and (state / "auth_string").stat().st_mode & 0o077 == 0
        request = urllib.request.Request(f"{url}/flow_runs/count", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 401
        request.add_header("Authorization", "Basic " + b64encode(auth.encode()).decode())
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        said = started.stdout + started.stderr + (state / "prefect.log").read_text()
        secret = auth.split(":", 1)[1]
        assert secret not in said and (state / "pg_password").read_text() not in said
    finally:
        pid_file = state / "prefect.pid"
        if pid_file.exists():  # only the Prefect server this test started; the cluster stays up
            pid = int(pid_file.read_text())
            try:
                os.killpg(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def test_stop_leaves_running_a_cluster_it_did_not_start(own_role, tmp_path):
    """`make server-stop` stops PostgreSQL only where `make server` started it: a cluster that was
    already up (others may use it) is left running, with a line that says so."""
    _name, env = own_role
    up = subprocess.run([str(SCRIPT), "pg"], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert up.returncode == 0, up.stderr
    fresh = {**env, "STATE": str(tmp_path / "other-state")}  # a checkout whose `start` started nothing
    stopped = subprocess.run([str(SCRIPT), "stop"], env=fresh, capture_output=True, text=True, timeout=120,
                             cwd=REPO)
    assert stopped.returncode == 0, stopped.stderr
    assert "left running" in stopped.stdout
    status = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, timeout=30).stdout.split()
    assert status[3] == "online"
