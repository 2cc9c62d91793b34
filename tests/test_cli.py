"""CLI exit codes: 0 all pages done, 3 some failed, 2 bad usage or configuration, 1 anything else."""

import subprocess
import sys
from pathlib import Path

import pytest

from srgan.cli import main
from srgan.pipeline.records import read_records
from tests.conftest import write_config

REPO = Path(__file__).resolve().parents[1]


def test_bad_config_key_exits_2_with_one_line(tmp_path, tiny_weights, small_inputs, capsys):
    cfg = write_config(tmp_path, tiny_weights, "tiling:\n  tilesize: 3\n")
    cfg.write_text(cfg.read_text().replace("tiling:\n  tile: 48\n  overlap: 8\n  batch_size: 4\n", ""))
    assert main(["upscale", str(small_inputs), "--out", str(tmp_path / "o"), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["tiling.tilesize: unknown key"]


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["upscale", "missing-folder", "--out", "o"], "input not found"),
        (["upscale", ".", "--out", "o", "--scale", "3"], "--scale"),
        (["upscale", "."], "--out"),
        (["frobnicate"], "invalid choice"),
        (["upscale", ".", "--out", "o", "--weights", "nope"], "no weights named"),
    ],
)
def test_usage_errors_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_sha_mismatch_exits_2(tmp_path, tiny_weights, small_inputs, capsys):
    pt = tiny_weights / "srgan_x2.pt"
    pt.write_bytes(pt.read_bytes()[:-10])
    cfg = write_config(tmp_path, tiny_weights)
    assert main(["upscale", str(small_inputs / "a.png"), "--out", str(tmp_path / "o"), "--config", str(cfg)]) == 2
    assert "sha256 mismatch" in capsys.readouterr().err


def test_upscale_exit_3_when_a_page_fails_and_0_when_all_ok(prefect_harness, tmp_path, tiny_weights, small_inputs):
    cfg = write_config(tmp_path, tiny_weights)
    out = tmp_path / "o"
    assert main(["upscale", str(small_inputs), "--out", str(out), "--config", str(cfg), "--no-progress"]) == 3
    assert read_records(out / "records").num_rows == 5
    (small_inputs / "empty.png").unlink()
    out2 = tmp_path / "o2"
    assert main(["upscale", str(small_inputs), "--out", str(out2), "--config", str(cfg), "--no-progress"]) == 0


def test_legacy_flags_run_the_upscale(prefect_harness, tmp_path, tiny_weights, small_inputs):
    cfg = write_config(tmp_path, tiny_weights)
    out = tmp_path / "legacy"
    rc = main(["--mode", "test", "--SR_factor", "2", "--checkpoint", str(tiny_weights / "srgan_x2.pt"),
               "--save_folder", str(out), "--config", str(cfg), str(small_inputs / "a.png")])
    assert rc == 0
    assert (out / "pages" / "a.png").exists()


def test_console_script_in_ephemeral_mode_speaks_once_unless_verbose(tmp_path, tiny_weights, small_inputs):
    """The installed `srgan` command, as a user runs it: no server, Prefect's ephemeral mode. Without
    --verbose it prints the summary and one line per failed page, no per-task lines; with it, Prefect's."""
    cfg = write_config(tmp_path, tiny_weights)
    exe = Path(sys.executable).parent / "srgan"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path / "prefect")}
    proc = subprocess.run([str(exe), "upscale", str(small_inputs), "--out", str(tmp_path / "o"),
                           "--config", str(cfg)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "pages: 5  ok: 4  errors: 1" in proc.stdout
    said = proc.stdout + proc.stderr
    assert "Finished in state" not in said and "Beginning flow run" not in said and "INFO" not in said, said
    warned = [line for line in proc.stderr.splitlines() if "empty.png" in line]  # as it happens
    assert len(warned) == 1 and warned[0].startswith("WARNING") and "page 1" in warned[0], proc.stderr
    assert len([line for line in proc.stdout.splitlines() if "empty.png" in line]) == 1  # in the summary

    verbose = subprocess.run([str(exe), "upscale", str(small_inputs / "sub"), "--out", str(tmp_path / "v"),
                              "--config", str(cfg), "--verbose"], capture_output=True, text=True, env=env, timeout=300)
    assert verbose.returncode == 0, verbose.stderr[-2000:]
    assert "pages: 1  ok: 1  errors: 0" in verbose.stdout
    assert "Finished in state Completed" in verbose.stdout + verbose.stderr


def test_make_sample_prints_one_path_a_line(tmp_path, capsys):
    assert main(["make-sample", str(tmp_path / "s"), "--pages", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"archive: {tmp_path / 's' / 'rvl_sample.tar.gz'}", f"pdf: {tmp_path / 's' / 'sample.pdf'}",
                     f"originals: {tmp_path / 's' / 'originals'} (2 pages at full resolution)"]


def test_clients_of_a_server_beyond_loopback_need_its_auth_string():
    from srgan.cli import UsageError, check_api_auth

    check_api_auth("worker", {"PREFECT_API_URL": "http://127.0.0.1:4200/api"})  # loopback: no string needed
    check_api_auth("worker", {"PREFECT_API_URL": "http://server:4200/api", "PREFECT_API_AUTH_STRING": "a:b"})
    with pytest.raises(UsageError, match="PREFECT_API_AUTH_STRING is not set for the server at server"):
        check_api_auth("worker", {"PREFECT_API_URL": "http://server:4200/api"})
    with pytest.raises(UsageError, match="unset PREFECT_API_KEY") as both:
        check_api_auth("deploy", {"PREFECT_API_URL": "http://server:4200/api", "PREFECT_API_AUTH_STRING": "a:b",
                                  "PREFECT_API_KEY": "k"})
    assert "a:b" not in str(both.value)
    with pytest.raises(UsageError, match="PREFECT_API_URL is not set"):
        check_api_auth("worker", {})
