"""Prefect flow ``upscale``: discover -> decode/normalise -> infer in batches -> write -> record.

Reads like the data path; every step is a function in ``srgan/``. Only paths and small records
travel between tasks; pages live in ``.npy`` files under ``OUT/.work/<run_id>/``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, create_table_artifact
from prefect.artifacts import update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from srgan.config import PipelineConfig, config_from_dict, load_config, override, to_dict
from srgan.engine import Engine
from srgan.readers import DocumentRef, discover, read_pages
from srgan.records import write_part
from srgan.stages import PageWork, RunContext, cleanup, finish_page, infer_pages, prepare_page
from srgan.summary import summarise
from srgan.weights import load_generator, read_manifest, resolve_weights


@functools.lru_cache(maxsize=2)
def cached_engine(weights_path: str, sha256: str, config_json: str) -> Engine:
    """The model is loaded once per process (per weights file and engine settings)."""
    cfg = config_from_dict(json.loads(config_json))
    net_g, _ = load_generator(weights_path, cfg.upscale.weights_dir, cfg.upscale.scale)
    return Engine(net_g, cfg.engine, cfg.tiling)


@task(cache_policy=NO_CACHE)
def discover_documents(inputs: list[str], config: dict) -> list[DocumentRef]:
    """List the documents (files and archive members) under the inputs."""
    cfg = config_from_dict(config)
    return list(discover(inputs, cfg.limits))


@task(cache_policy=NO_CACHE)
def decode_and_normalise(docs: list[DocumentRef], work_dir: str, text_height: float | None, config: dict) -> list[
    PageWork
]:
    """Decode the documents' pages and normalise their text size into work files."""
    cfg = config_from_dict(config)
    works = []
    t0 = time.perf_counter()
    for page in read_pages(docs, cfg.pdf, cfg.limits):
        page.seconds = time.perf_counter() - t0
        works.append(prepare_page(page, Path(work_dir), text_height, cfg.upscale))
        t0 = time.perf_counter()
    return works


@task(cache_policy=NO_CACHE)
def infer(works: list[PageWork], weights_path: str, sha256: str, config: dict) -> list[PageWork]:
    """Upscale the normalised pages, tiles of all pages batched together."""
    engine = cached_engine(weights_path, sha256, json.dumps(config, sort_keys=True))
    return infer_pages(engine, works)


@task(cache_policy=NO_CACHE)
def write_pages(works: list[PageWork], ctx: RunContext, compare_first: int) -> list[dict]:
    """Resample, measure and write each page; return one record row per page."""
    rows = []
    for i, work in enumerate(works):
        rows.append(finish_page(work, ctx, compare=i < compare_first))
        cleanup(work)
    return rows


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def record(rows: list[dict], records_dir: str, run_id: str) -> str | None:
    """Append the rows to the records dataset as one Parquet part file."""
    part = write_part(rows, Path(records_dir), run_id)
    return str(part) if part else None


def batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def resolve_config(config_path: str | None, scale: int | None, weights: str | None,
                   normalise: bool | None) -> PipelineConfig:
    cfg = load_config(config_path)
    if scale is not None:
        cfg = override(cfg, "upscale.scale", scale)
    if weights is not None:
        cfg = override(cfg, "upscale.weights", weights)
    if normalise is not None:
        cfg = override(cfg, "upscale.normalise", normalise)
    return cfg


@flow(name="upscale", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=True)
def upscale(
    input_path: str | list[str],
    output_dir: str,
    scale: int | None = None,
    config_path: str | None = None,
    weights: str | None = None,
    normalise: bool | None = None,
) -> dict:
    """Upscale every page under input_path into output_dir; returns the run's summary."""
    logger = get_run_logger()
    cfg = resolve_config(config_path, scale, weights, normalise)
    config = to_dict(cfg)
    inputs = [input_path] if isinstance(input_path, str) else list(input_path)
    out = Path(output_dir).resolve()
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    started = time.perf_counter()
    pt = resolve_weights(cfg.upscale.weights, cfg.upscale.weights_dir, cfg.upscale.scale)
    manifest = read_manifest(pt)
    engine = cached_engine(str(pt), manifest.get("sha256", ""), json.dumps(config, sort_keys=True))
    ctx = RunContext(
        run_id=run_id,
        started_at=datetime.now(UTC),
        out_dir=str(out),
        scale=cfg.upscale.scale,
        weights_name=pt.stem,
        weights_sha256=manifest.get("sha256", ""),
        device=engine.info.device,
        precision=engine.info.precision,
        config_hash=hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16],
        output_format=cfg.upscale.output_format,
        compare_crop=cfg.upscale.compare_crop,
    )
    work_dir = out / ".work" / run_id
    records_dir = out / cfg.records.dir
    docs = discover_documents(inputs, config)
    logger.info("run %s: %d documents under %s, weights %s on %s/%s", run_id, len(docs), ", ".join(inputs),
                pt.name, ctx.device, ctx.precision)
    progress_id = create_progress_artifact(0.0, key="upscale-progress", description=f"run {run_id}")
    progress = Progress(out / ".work" / f"{run_id}.progress.json", len(docs))

    text_height = manifest.get("text_height")
    doc_batches = batches(docs, cfg.flow.pages_per_task)
    futures = []
    for i, chunk in enumerate(doc_batches):
        decoded = decode_and_normalise.submit(chunk, str(work_dir), text_height, config)
        inferred = infer.submit(decoded, str(pt), ctx.weights_sha256, config)
        written = write_pages.submit(inferred, ctx, cfg.upscale.compare_pages if i == 0 else 0)
        futures.append((chunk, written, record.submit(written, str(records_dir), run_id)))
    rows: list[dict] = []
    for chunk, written, recorded in futures:
        batch_rows = written.result()
        recorded.result()
        rows.extend(batch_rows)
        progress.advance(len(chunk), batch_rows)
        update_progress_artifact(progress_id, 100.0 * progress.docs_done / max(progress.docs_total, 1))
    shutil.rmtree(work_dir, ignore_errors=True)
    progress.path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (out / ".work").rmdir()  # only when no other run is using it
    summary = summarise(rows, time.perf_counter() - started)
    summary.update(run_id=run_id, output_dir=str(out), records_dir=str(records_dir),
                   pages_dir=str(out / "pages"), compare_dir=str(out / "compare"), weights=pt.name)
    for err in (r for r in rows if r["status"] == "error"):
        logger.warning("error: %s page %s: %s", err["member"] or err["source"], err["page_index"] + 1, err["error"])
    create_table_artifact([{k: v for k, v in summary.items() if not isinstance(v, (list, dict))}],
                          key="upscale-summary", description=f"run {run_id}")
    create_markdown_artifact(
        f"# Upscale run {run_id}\n\n- records: `{records_dir}`\n- pages: `{out / 'pages'}`\n"
        f"- side-by-side pictures: `{out / 'compare'}`\n",
        key="upscale-outputs",
    )
    logger.info("run %s done: %d pages, %d errors", run_id, summary["pages"], summary["errors"])
    return summary


class Progress:
    """Progress of a run written to a small JSON file the CLI's progress bar reads."""

    def __init__(self, path: Path, docs_total: int) -> None:
        self.path, self.docs_total, self.docs_done, self.pages, self.errors = path, docs_total, 0, 0, 0
        self._write()

    def advance(self, docs: int, rows: list[dict]) -> None:
        self.docs_done += docs
        self.pages += len(rows)
        self.errors += sum(r["status"] == "error" for r in rows)
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"docs_total": self.docs_total, "docs_done": self.docs_done,
                                   "pages": self.pages, "errors": self.errors}))
        tmp.replace(self.path)


if __name__ == "__main__":
    import sys

    print(json.dumps(upscale(sys.argv[1], sys.argv[2]), indent=2, default=str))
