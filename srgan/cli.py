"""The ``srgan`` console script.

Exit status: 0 all pages done; 3 finished but some pages failed; 2 bad usage or configuration
(one line naming the option or key), or the output folder held by another run (one line naming
it); 1 anything else. This is the one library module that reaches
into ``flows/``, lazily, inside the commands that start flows.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from pathlib import Path

from srgan.atomic import atomic_write_bytes
from srgan.config import ConfigError, PipelineConfig, load_config, override
from srgan.pipeline.outlock import OutputBusyError, ensure_free
from srgan.storage.files import exists, normalise, scratch_root
from srgan.weights import WeightsError, load_generator

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PAGES_FAILED = 0, 1, 2, 3


class UsageError(Exception):
    """Bad command line (one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="srgan", description="Super-resolution for scanned documents.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    up = sub.add_parser("upscale", help="upscale pages (folders, archives, TIFF/PNG/JPEG, PDF)")
    up.add_argument("inputs", nargs="+")
    up.add_argument("--out", required=True)
    up.add_argument("--scale", type=int, choices=(2, 4, 8))
    up.add_argument("--config")
    up.add_argument("--weights", help="name in weights/ or a path to a .pt file")
    up.add_argument("--normalise", action=argparse.BooleanOptionalAction, default=None,
                    help="text-size normalisation on/off (default: upscale.normalise in pipeline.yaml)")
    up.add_argument("--no-progress", action="store_true")
    up.add_argument("--verbose", "-v", action="store_true",
                    help="also print Prefect's flow and task run lines and the pipeline's INFO lines")
    up.add_argument("--summary-json", help="also write the run's summary (seconds, pages/s, task runs) to this file")

    ev = sub.add_parser("evaluate", help="treat inputs as originals: bicubic-downscale, upscale, compare")
    ev.add_argument("inputs", nargs="+")
    ev.add_argument("--scale", type=int, choices=(2, 4, 8), default=2)
    ev.add_argument("--out", required=True)
    ev.add_argument("--config")
    ev.add_argument("--weights", default=None)
    ev.add_argument("--normalise", action=argparse.BooleanOptionalAction, default=None,
                    help="text-size normalisation on/off (default: upscale.normalise)")
    ev.add_argument("--json", help="also write the figures to this JSON file")
    ev.add_argument("--ocr", action="store_true",
                    help="OCR figures (CER, word F1) where a page has a sibling .txt ground truth")
    ev.add_argument("--ocr-engines", nargs="+", choices=("tesseract", "easyocr"), default=None,
                    help="engines that read with --ocr (default: both, a missing one is named and left out)")

    ms = sub.add_parser("make-sample", help="write a small RVL-CDIP-style sample archive and PDF")
    ms.add_argument("dir")
    ms.add_argument("--pages", type=int, default=6)

    tr = sub.add_parser("train", help="train generator weights (SRResNet then SRGAN)")
    tr.add_argument("--config")
    tr.add_argument("--data", nargs="+")
    tr.add_argument("--scale", type=int, choices=(2, 4, 8))
    tr.add_argument("--resume", help="checkpoint.pt of an interrupted run to continue")
    tr.add_argument("--init-weights", help="start from these weights (name in weights/ or a .pt path)")
    tr.add_argument("--flow", action="store_true", help="run as the Prefect flow 'train'")

    wk = sub.add_parser("worker", help="start a Prefect worker on the pool (foreground; Ctrl-C stops it)")
    wk.add_argument("--pool", default="srgan")
    wk.add_argument("--control", action="store_true",
                    help="serve the `control` queue (runs that wait on their units) instead of the units")
    wk.add_argument("--limit", type=int, help="runs at a time (default: 1 for units, 8 for --control)")
    wk.add_argument("--name", help="worker name (default: <host>-<pid>, control-<host>-<pid> with --control)")
    wk.add_argument("--dry-run", action="store_true", help="print the command instead of running it")

    rp = sub.add_parser("report", help="the night at a glance: summary and one HTML page from OUT's records")
    rp.add_argument("out", help="the output folder or URL (s3://bucket/prefix) of the runs")
    rp.add_argument("--html", help="where to write the HTML page (default: OUT/report.html)")
    rp.add_argument("--no-pictures", action="store_true",
                    help="leave out the pages to look at first (no input is read again)")

    dp = sub.add_parser("deploy", help="create the work pool, GPU concurrency limit and deployments on PREFECT_API_URL")
    dp.add_argument("--config", help="pipeline.yaml naming the GPU concurrency limit (flow.gpu_concurrency_limit)")
    dp.add_argument("--prefect-file", help="deployments file (default: the project's prefect.yaml)")
    return p


def _config(path: str | None, **overrides: object) -> PipelineConfig:
    cfg = load_config(path)
    for key, value in overrides.items():
        if value is not None:
            cfg = override(cfg, key.replace("__", "."), value)
    return cfg


def _progress_thread(out: str, stop: threading.Event) -> threading.Thread:
    """A tqdm bar fed by the flow's progress file (documents done / discovered)."""

    def run() -> None:
        from tqdm import tqdm

        bar = None
        while not stop.wait(0.5):
            files = sorted(scratch_root(out).glob("*.progress.json"), key=lambda p: p.stat().st_mtime)
            if not files:
                continue
            try:
                state = json.loads(files[-1].read_text())
            except (OSError, ValueError):
                continue
            if bar is None:
                bar = tqdm(total=state["docs_total"], unit="doc", file=sys.stderr)
            bar.n = state["docs_done"]
            bar.set_postfix(pages=state["pages"], errors=state["errors"])
            bar.refresh()
        if bar is not None:
            bar.close()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def quiet_run_logs(verbose: bool) -> None:
    """A one-off run speaks once: its progress bar, warnings and errors, and the closing summary.

    Prefect logs each task run at INFO (tens of thousands of lines for a large one-off); those, the flow
    run's and the pipeline's INFO lines appear only with ``--verbose``. Deployment runs are not started
    here and keep Prefect's logs in the UI."""
    level = logging.INFO if verbose else logging.WARNING
    os.environ["PREFECT_LOGGING_LEVEL"] = logging.getLevelName(level)  # read when prefect sets up its logging
    for name in ("prefect", "srgan"):  # and in effect if prefect was imported earlier in this process
        logging.getLogger(name).setLevel(level)
    # the flow names every error page once ("error: <file> page N: <reason>"); the reader's own warning
    # for a page it could not decode would say it a second time
    logging.getLogger("srgan.readers.read").setLevel(logging.NOTSET if verbose else logging.ERROR)


def cmd_upscale(args: argparse.Namespace) -> int:
    if os.environ.get("PREFECT_API_URL"):  # a run on a server (not ephemeral): its auth string, if it needs one
        check_api_auth("upscale")
    cfg = _config(args.config, upscale__scale=args.scale, upscale__weights=args.weights,
                  upscale__normalise=args.normalise)
    for inp in args.inputs:
        if not exists(inp):
            raise UsageError(f"srgan upscale: input not found: {inp}")
    load_generator(cfg.upscale.weights, cfg.upscale.weights_dir, cfg.upscale.scale)  # one line, exit 2, if unfit
    quiet_run_logs(args.verbose)
    from flows.upscale import upscale  # lazy: the library side reaches into flows/ only here
    from srgan.pipeline.summary import format_summary

    out = normalise(args.out)  # a local folder or a URL (s3://bucket/prefix)
    ensure_free(out)  # another run holds it: one line, exit 2, before any flow starts
    stop = threading.Event()
    bar = None if args.no_progress or not sys.stderr.isatty() else _progress_thread(out, stop)
    try:
        summary = upscale(input_path=[normalise(i) for i in args.inputs], output_dir=out,
                          scale=cfg.upscale.scale, config_path=args.config, weights=cfg.upscale.weights,
                          normalise=cfg.upscale.normalise)
    finally:
        stop.set()
        if bar is not None:
            bar.join(2)
    print(format_summary(summary))
    if args.summary_json:
        atomic_write_bytes(Path(args.summary_json), json.dumps(summary, indent=2, default=str).encode())
    return EXIT_PAGES_FAILED if summary["errors"] else EXIT_OK


def ocr_engines(asked: list[str] | None) -> list[str] | None:
    """The engines evaluate --ocr reads with: those asked for (None when one of them is missing: said
    on stderr), or every engine installed here (a missing one is named on stderr and left out)."""
    from srgan.fidelity.ocr import ENGINES, have_engine, missing_engines

    wanted = list(asked or ENGINES)
    missing = missing_engines(wanted)
    for line in missing:
        print(f"evaluate: OCR engine {line} is not installed", file=sys.stderr)
    if asked:
        return None if missing else wanted
    return [e for e in wanted if have_engine(e)]


def cmd_evaluate(args: argparse.Namespace) -> int:
    from srgan.fidelity.evaluate import format_table, run_evaluate

    cfg = _config(args.config, upscale__normalise=args.normalise)
    weights = args.weights or cfg.upscale.weights
    engines = ocr_engines(args.ocr_engines) if args.ocr else []
    if engines is None:
        return EXIT_FAILED
    result, manifest = run_evaluate(args.inputs, args.scale, Path(args.out), cfg, weights, ocr_engines=engines)
    if not result.rows:
        print("evaluate: no readable pages", file=sys.stderr)
        return EXIT_FAILED
    print(f"weights: {manifest['path']}  scale: {args.scale}  normalise: {cfg.upscale.normalise}")
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result.figures(), indent=2))
    return EXIT_OK


def cmd_make_sample(args: argparse.Namespace) -> int:
    from srgan.sample import make_sample

    written = make_sample(Path(args.dir), pages=args.pages)
    print(f"archive: {written['archive']}")
    print(f"pdf: {written['pdf']}")
    print(f"originals: {written['originals']} ({len(written['original_files'])} pages at full resolution)")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    cfg = _config(args.config, training__scale=args.scale)
    if args.flow:
        from flows.train import train as train_flow  # lazy, as above

        result = train_flow(data=args.data, scale=cfg.training.scale, config_path=args.config, resume=args.resume,
                            init_weights=args.init_weights)
        print(json.dumps(result, indent=2, default=str))
        return EXIT_OK
    from srgan.training.train import train

    result = train(cfg, args.data or [], Path(cfg.training.out_dir), resume=Path(args.resume) if args.resume else None,
                   init_weights=args.init_weights)
    print(json.dumps(result.summary() if hasattr(result, "summary") else str(result), indent=2, default=str))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from srgan.report.build import make_report

    out = normalise(args.out)
    if not exists(out):
        raise UsageError(f"srgan report: output not found: {args.out}")
    report = make_report(out, normalise(args.html) if args.html else None, pictures=not args.no_pictures)
    print(report.text)
    return EXIT_OK if report.summary["pages"] else EXIT_FAILED


def check_api_auth(command: str, env: dict[str, str] | None = None) -> None:
    """UsageError when the client would talk to a server beyond loopback without its auth string (the
    server of `make server HOST=...` refuses it), or with PREFECT_API_KEY too (Prefect sends the key
    instead, and a self-hosted server answers 401). Never prints the secrets themselves."""
    from urllib.parse import urlsplit

    env = os.environ if env is None else env
    url = env.get("PREFECT_API_URL", "")
    if not url:
        raise UsageError(f"srgan {command}: PREFECT_API_URL is not set (make server prints it)")
    host = urlsplit(url).hostname or ""
    loopback = host == "localhost" or host == "::1" or host.startswith("127.")
    if not loopback and not env.get("PREFECT_API_AUTH_STRING"):
        raise UsageError(f"srgan {command}: PREFECT_API_AUTH_STRING is not set for the server at {host} "
                         "(make server prints the line to export)")
    if env.get("PREFECT_API_AUTH_STRING") and env.get("PREFECT_API_KEY"):
        raise UsageError(f"srgan {command}: unset PREFECT_API_KEY (Prefect Cloud's): it takes precedence over "
                         "PREFECT_API_AUTH_STRING and the server refuses it")


def cmd_deploy(args: argparse.Namespace) -> int:
    from flows.deploy import PREFECT_FILE, deploy  # lazy, as above

    if os.environ.get("PREFECT_API_URL"):
        check_api_auth("deploy")

    for name in deploy(config_path=args.config, prefect_file=Path(args.prefect_file or PREFECT_FILE)):
        print(f"deployment: {name}")
    return EXIT_OK


def worker_command(pool: str, control: bool, limit: int | None, name: str | None) -> list[str]:
    """The `prefect worker start` command line of a unit worker (queue default, one run at a time, so
    the units of a night spread over every worker) or a control worker (queue control)."""
    import socket

    queue, default_limit = ("control", 8) if control else ("default", 1)
    name = name or f"{'control-' if control else ''}{socket.gethostname()}-{os.getpid()}"
    return [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool, "--type", "process",
            "--work-queue", queue, "--limit", str(limit or default_limit), "--name", name]


def cmd_worker(args: argparse.Namespace) -> int:
    cmd = worker_command(args.pool, args.control, args.limit, args.name)
    if args.dry_run:
        print(" ".join(cmd))
        return EXIT_OK
    check_api_auth("worker")
    os.execv(cmd[0], cmd)  # the worker replaces this process: signals and exit status are its own


def legacy_main(argv: list[str]) -> int:
    """The original script's flags: --mode test|train --SR_factor N --checkpoint ... --save_folder ..."""
    p = _Parser(prog="srgan", description="original SRGAN script flags")
    p.add_argument("--mode", choices=("test", "train"), required=True)
    p.add_argument("--SR_factor", type=int, choices=(2, 4, 8), default=2)
    p.add_argument("--checkpoint", help="test: weights file; train: checkpoint folder")
    p.add_argument("--save_folder", help="test: output folder")
    p.add_argument("--load_state_dict", choices=("true", "false"), default="false")
    p.add_argument("--save_weights", choices=("true", "false"), default="true")
    p.add_argument("--config")
    p.add_argument("inputs", nargs="*")
    a = p.parse_args(argv)
    if a.mode == "test":
        if not a.save_folder or not a.inputs:
            raise UsageError("srgan --mode test: needs --save_folder OUT and at least one INPUT")
        new = ["upscale", *a.inputs, "--out", a.save_folder, "--scale", str(a.SR_factor)]
        if a.checkpoint:
            new += ["--weights", a.checkpoint]
        if a.config:
            new += ["--config", a.config]
        return dispatch(build_parser().parse_args(new))
    from srgan.training.train import legacy_train

    cfg = _config(a.config, training__scale=a.SR_factor)
    legacy_train(cfg, a.inputs, checkpoint_dir=Path(a.checkpoint) if a.checkpoint else None,
                 load_state_dict=a.load_state_dict == "true", save_weights=a.save_weights == "true")
    return EXIT_OK


def dispatch(args: argparse.Namespace) -> int:
    commands = {"upscale": cmd_upscale, "evaluate": cmd_evaluate, "make-sample": cmd_make_sample, "train": cmd_train,
                "deploy": cmd_deploy, "worker": cmd_worker, "report": cmd_report}
    return commands[args.command](args)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("srgan").setLevel(logging.INFO)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Without PREFECT_API_URL a flow starts a temporary server; Prefect waits 20 s for it, which a
    # busy 2-core machine can exceed (seen: a CI run failed with "Timed out ... ephemeral ... server").
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    try:
        if "--mode" in argv or any(a.startswith("--mode=") for a in argv):
            return legacy_main(argv)
        return dispatch(build_parser().parse_args(argv))
    except (UsageError, ConfigError, WeightsError, OutputBusyError) as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - anything else: one line, exit 1
        logging.getLogger("srgan").debug("failure", exc_info=True)
        print(f"srgan: {type(exc).__name__}: {exc}".splitlines()[0], file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
