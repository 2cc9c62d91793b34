"""Prefect flow ``upscale``: discover -> decode/normalise -> infer in batches -> write -> record.

Reads like the data path; every step is a function in ``srgan/``. Only paths and small records
travel between tasks; pages live in ``.npy`` files under ``OUT/.work/<run_id>/``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import prefect.runtime
from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError
from prefect.concurrency.sync import concurrency
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.recovery import attempt, gives_up_after_max_attempts
from srgan.config import (
    FlowConfig,
    PipelineConfig,
    config_from_dict,
    load_config,
    override,
    to_dict,
)
from srgan.inference.engine import Engine
from srgan.pipeline.documents import settle_documents
from srgan.pipeline.outlock import holds_output_folder
from srgan.pipeline.records import write_part
from srgan.pipeline.resume import pending_documents
from srgan.pipeline.stages import cleanup, finish_page, infer_pages, make_run_context, prepare_page
from srgan.pipeline.summary import RunTally
from srgan.pipeline.work import PageWork, RunContext
from srgan.readers import DocumentRef, discover, read_pages
from srgan.readers.refs import one_line, refs_from_json
from srgan.readers.spool import spool_archives
from srgan.report.build import make_report
from srgan.report.markdown import report_markdown
from srgan.runtimes.choose import build_engine
from srgan.storage.files import exists, join, read_bytes, scratch_root
from srgan.storage.files import normalise as location
from srgan.weights import decision_range, load_generator, read_manifest, resolve_weights


@functools.lru_cache(maxsize=2)
def cached_engine(weights_path: str, sha256: str, config_json: str) -> Engine:
    """The model is loaded once per process (per weights file and engine settings)."""
    cfg = config_from_dict(json.loads(config_json))
    net_g, _ = load_generator(weights_path, cfg.upscale.weights_dir, cfg.upscale.scale)
    return build_engine(net_g, cfg.engine, cfg.tiling)  # engine.runtime: PyTorch or a CPU runtime (srgan/runtimes)


@task(cache_policy=NO_CACHE)
def discover_documents(inputs: list[str], config: dict) -> list[DocumentRef]:
    """List the documents (files and archive members) under the inputs."""
    cfg = config_from_dict(config)
    return list(discover(inputs, cfg.limits))


@task(cache_policy=NO_CACHE)
def spool_compressed_archives(docs: list[DocumentRef], spool_dir: str) -> list[DocumentRef]:
    """Decompress each .tar.gz/.tbz/.txz once, so that every decode task seeks to its own members."""
    return spool_archives(docs, Path(spool_dir))


@task(cache_policy=NO_CACHE)
def decode_and_normalise(docs: list[DocumentRef], work_dir: str, text_height: float | None, config: dict,
                         validated_range: list[float] | None = None) -> list[PageWork]:
    """Decode the documents' pages and normalise their text size into work files; validated_range (the
    weights manifest's) marks each page in or out of it (upscale.out_of_range decides the method)."""
    cfg = config_from_dict(config)
    works = []
    t0 = time.perf_counter()
    for page in read_pages(docs, cfg.pdf, cfg.limits, cfg.upscale.color):
        page.seconds = time.perf_counter() - t0
        works.append(prepare_page(page, Path(work_dir), text_height, cfg.upscale, validated_range))
        t0 = time.perf_counter()
    return works


@task(cache_policy=NO_CACHE)
def infer(works: list[PageWork], weights_path: str, sha256: str, config: dict) -> list[PageWork]:
    """Upscale the normalised pages, tiles of all pages batched together, holding the GPU's slot."""
    engine = cached_engine(weights_path, sha256, json.dumps(config, sort_keys=True))
    with gpu_slot(config["flow"]["gpu_concurrency_limit"], engine.info.device):
        return infer_pages(engine, works)


def guards_gpu(limit: str, device: str) -> bool:
    """Whether a run holds the GPU's limit: on a CUDA device, when flow.gpu_concurrency_limit names one.

    The limit must exist for runs of a deployment (`srgan deploy` makes it; without it they fail with
    one line); one-off runs (`srgan upscale`, a direct call, the tests) create it with 1 slot if missing.
    CPU runs and an empty name hold nothing.
    """
    return bool(limit) and device.startswith("cuda")


@contextlib.contextmanager
def gpu_slot(limit: str, device: str) -> Iterator[None]:
    """Hold one slot of the GPU's global concurrency limit (1 slot: one run on the GPU at a time).

    strict: a missing limit fails the run with one line instead of running unguarded.
    """
    if not guards_gpu(limit, device):
        yield
        return
    try:
        with concurrency(limit, occupy=1, strict=True):
            yield
    except ConcurrencySlotAcquisitionError as exc:
        why = "does not exist" if "must be created" in str(exc) else f"cannot be acquired: {one_line(exc)}"
        raise GpuLimitError(
            f"GPU concurrency limit {limit!r} {why} on the Prefect server: create it with `srgan deploy` "
            f"or `prefect gcl create {limit} --limit 1`, or set flow.gpu_concurrency_limit to \"\" to run unguarded"
        ) from None


class GpuLimitError(RuntimeError):
    """The GPU's global concurrency limit is missing on the Prefect server (one line)."""


@task(cache_policy=NO_CACHE)
def write_pages(works: list[PageWork], ctx: RunContext, compare_first: int) -> list[dict]:
    """Resample, measure and write each page, then the documents (whole in each task); one row per page."""
    pairs = []
    for i, work in enumerate(works):
        pairs.append((work, finish_page(work, ctx, compare=i < compare_first)))
        cleanup(work)
    return settle_documents(pairs, ctx)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def record(rows: list[dict], records_dir: str, run_id: str) -> str | None:
    """Append the rows to the records dataset as one Parquet part file."""
    part = write_part(rows, records_dir, run_id)
    return str(part) if part else None


def batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def shard_of(doc: DocumentRef, shard_count: int) -> int:
    """The shard a document belongs to: a hash of its output name, so every run agrees."""
    digest = hashlib.sha256(doc.rel_path.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shard_count


def select_shard(docs: list[DocumentRef], shard_index: int | None, shard_count: int | None) -> list[DocumentRef]:
    """The documents of one shard (all of them when no shard is given)."""
    if shard_index is None and shard_count is None:
        return docs
    if shard_index is None or shard_count is None or not 0 <= shard_index < shard_count:
        raise ValueError(f"shard_index/shard_count: need 0 <= index < count, got {shard_index}/{shard_count}")
    return [d for d in docs if shard_of(d, shard_count) == shard_index]


def stage_runner(fcfg: FlowConfig) -> TaskRunner:
    """The task runner of the CPU stages (decode/normalise, write): a bounded thread pool, or an
    existing Dask cluster (flow.task_runner: dask, flow.dask_address) through prefect-dask."""
    if fcfg.task_runner == "dask":
        if not fcfg.dask_address:
            raise ValueError("flow.dask_address: needed when flow.task_runner is dask (e.g. tcp://host:8786)")
        from prefect_dask import DaskTaskRunner  # lazy: only this option needs dask

        return DaskTaskRunner(address=fcfg.dask_address)
    return ThreadPoolTaskRunner(max_workers=fcfg.max_workers)


def process_batches(stages: TaskRunner, doc_batches: list[list[DocumentRef]], ctx: RunContext, weights_path: str,
                    text_height: float | None, config: dict, records_dir: str, compare_pages: int,
                    ahead: int, validated_range: list[float] | None = None
                    ) -> Iterator[tuple[list[DocumentRef], list[dict]]]:
    """decode/normalise (stage runner) -> infer (this process, one batch at a time) -> write (stage runner)
    -> record; at most `ahead` batches are decoded ahead of the model. Yields (documents, rows) in order."""
    todo, decoded, pending = iter(doc_batches), deque(), deque()

    def decode_next() -> None:
        if (chunk := next(todo, None)) is not None:
            decoded.append((chunk, stages.submit(decode_and_normalise, {
                "docs": chunk, "work_dir": str(scratch_root(ctx.out_dir) / ctx.run_id),
                "text_height": text_height, "config": config, "validated_range": validated_range})))

    for _ in range(ahead):
        decode_next()
    first = True
    while decoded:
        chunk, works = decoded.popleft()
        decode_next()
        inferred = infer(works, weights_path, ctx.weights_sha256, config)
        written = stages.submit(write_pages, {"works": inferred, "ctx": ctx,
                                              "compare_first": compare_pages if first else 0})
        pending.append((chunk, written, record.submit(written, records_dir, ctx.run_id)))
        first = False
        while pending and pending[0][2].wrapped_future.done():
            chunk, written, recorded = pending.popleft()
            yield chunk, _written_and_recorded(written, recorded)
    for chunk, written, recorded in pending:
        yield chunk, _written_and_recorded(written, recorded)


def _written_and_recorded(written, recorded) -> list[dict]:
    """The rows of a written batch once recorded. The write's own failure (a fenced lease, a full disk) is the
    one raised, never the record task's 'upstream not completed' that follows from it."""
    rows = written.result()
    recorded.result()
    return rows


def compare_pictures(rows: list[dict], out: str, first: int) -> list[str]:
    """The side-by-side pictures a run wrote: one per page that succeeded among its first pages."""
    pages = str(join(out, "pages")) + "/"
    paths = []
    for r in rows[:first]:
        if r["status"] == "ok" and r.get("output_path", "").startswith(pages):
            stem = r["output_path"][len(pages):].rsplit(".", 1)[0] + ".png"
            paths.append(str(join(out, "compare", stem)))
    return [p for p in paths if exists(p)]


def outputs_markdown(summary: dict, pictures: list[str]) -> str:
    """Where a run's outputs are: records dataset, pages, side-by-side pictures (input | bicubic | model)."""
    gain = summary.get("mean_consistency_gain_db")
    lines = [
        f"# Upscale run {summary['run_id']}",
        "",
        f"{summary['pages']} pages, {summary['errors']} errors, "
        f"mean PSNR gain over bicubic {'n/a' if gain is None else f'{gain:.2f} dB'}, "
        f"{summary.get('pages_per_s')} pages/s, weights `{summary['weights']}`",
        "",
        f"- records (Parquet dataset, `srgan.pipeline.records.read_records`): `{summary['records_dir']}`",
        f"- pages: `{summary['pages_dir']}`",
        f"- side-by-side pictures (input | bicubic | model) in `{summary['compare_dir']}`:",
        *[f"  - `{p}`" for p in pictures],
    ]
    if summary.get("documents_dir"):
        lines.insert(-len(pictures) - 1, f"- documents (PDF, multi-page TIFF; output_format document): "
                                         f"`{summary['documents_dir']}`")
    if not pictures:
        lines.append("  - none this run")
    return "\n".join(lines) + "\n"


def attach_report(out: str, records: str, title: str, key: str) -> str | None:
    """Write OUT/report.html (srgan.report: every page's latest row, all runs into OUT) and attach it to
    this run as a markdown artifact; returns where the HTML is. Pages to look at first get the runs' own
    side-by-side pictures only (`srgan report OUT` draws the others: that reads inputs again). A report
    that cannot be made is one warning: the pages and records are written already."""
    try:
        report = make_report(out, records=records, make_missing=False)
    except Exception as exc:  # noqa: BLE001 - the run's work is done; the report is said to be missing
        get_run_logger().warning("report of %s not written: %s", out, one_line(exc))
        return None
    create_markdown_artifact(report_markdown(report.summary, report.figures, report.html_path, title), key=key,
                             description=f"{report.summary['pages']} pages, {report.summary['failed']} failed")
    return report.html_path


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


def flow_run_identity() -> tuple[str, int]:
    """(flow run id, attempt) for leases on object storage: a later attempt takes its own dead one's lease."""
    run_id = prefect.runtime.flow_run.id
    return (str(run_id) if run_id else "", attempt())


def flow_run_name() -> str:
    """How a refused run names the one holding the output folder: the flow run, or this process."""
    run_id = prefect.runtime.flow_run.id
    return f"flow run {prefect.runtime.flow_run.name} ({run_id})" if run_id else f"a run (pid {os.getpid()})"


@flow(name="upscale", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=True)
@gives_up_after_max_attempts("config_path")  # rescheduled after a crash: bounded (flows/recovery.py)
@holds_output_folder("output_dir", flow_run_name, flow_run_identity)  # one run per output (shards: per shard)
def upscale(
    input_path: str | list[str],
    output_dir: str,
    scale: int | None = None,
    config_path: str | None = None,
    weights: str | None = None,
    normalise: bool | None = None,
    shard_index: int | None = None,
    shard_count: int | None = None,
    documents: str | None = None,
) -> dict:
    """Upscale every page under input_path into output_dir; returns the run's summary.

    shard_index/shard_count: process only the documents of that shard (see flows/sharded.py).
    documents: a unit's document list written by the night's parent (flows/sharded.py), read instead of
    discovering input_path again (the parent discovered, and hashed, every document once).
    """
    logger = get_run_logger()
    cfg = resolve_config(config_path, scale, weights, normalise)
    config = to_dict(cfg)
    inputs = [input_path] if isinstance(input_path, str) else list(input_path)
    out = location(output_dir)  # a local folder or a URL (s3://bucket/prefix): srgan/storage/files.py
    started = time.perf_counter()
    pt = resolve_weights(cfg.upscale.weights, cfg.upscale.weights_dir, cfg.upscale.scale)
    manifest = read_manifest(pt)
    engine = cached_engine(str(pt), manifest.get("sha256", ""), json.dumps(config, sort_keys=True))
    ctx = make_run_context(cfg, out, engine.info, pt.stem, manifest.get("sha256", ""))
    run_id = ctx.run_id
    work_dir = scratch_root(out) / run_id  # local scratch, also for an output on object storage
    records_dir = str(join(out, cfg.records.dir))
    found = refs_from_json(read_bytes(documents)) if documents else discover_documents(inputs, config)
    docs = select_shard(found, shard_index, shard_count)
    docs = pending_documents(docs, out, records_dir, run_id, ctx.weights_sha256, ctx.config_hash)  # rerun-skip
    per_task = cfg.flow.per_task(len(docs))  # flow.pages_per_task, or auto from the run's size
    task_runs = 1  # discover_documents
    if len(docs) > per_task:  # several decode tasks: none should stream an archive from its start
        docs = spool_compressed_archives(docs, str(work_dir / "spool"))
        task_runs += 1
    logger.info("run %s: %d documents under %s in tasks of %d, weights %s on %s/%s", run_id, len(docs),
                ", ".join(inputs), per_task, pt.name, ctx.device, ctx.precision)
    progress_id = create_progress_artifact(0.0, key="upscale-progress", description=f"run {run_id}")
    progress = Progress(scratch_root(out) / f"{run_id}.progress.json", len(docs))

    if guards_gpu(cfg.flow.gpu_concurrency_limit, ctx.device) and not prefect.runtime.deployment.id:
        from flows.deploy import create_limit_if_missing  # one-off runs make it; deployment runs need srgan deploy

        create_limit_if_missing(cfg.flow.gpu_concurrency_limit)
    tally = RunTally()  # counts and sums only: memory stays flat however many pages the run has
    first_rows: list[dict] | None = None
    with stage_runner(cfg.flow) as stages:
        doc_batches = batches(docs, per_task)
        task_runs += 4 * len(doc_batches)  # decode, infer, write, record per batch
        for chunk, batch_rows in process_batches(stages, doc_batches, ctx, str(pt),
                                                 manifest.get("text_height"), config, records_dir,
                                                 cfg.upscale.compare_pages, ahead=max(2, cfg.flow.max_workers),
                                                 validated_range=decision_range(manifest)):
            first_rows = batch_rows if first_rows is None else first_rows
            tally.add(batch_rows)
            for err in (r for r in batch_rows if r["status"] == "error"):
                logger.warning("error: %s page %s: %s", err["member"] or err["source"], err["page_index"] + 1,
                               err["error"])
            progress.advance(len(chunk), batch_rows)
            update_progress_artifact(progress_id, 100.0 * progress.docs_done / max(progress.docs_total, 1))
    if not docs:
        update_progress_artifact(progress_id, 100.0)
    shutil.rmtree(work_dir, ignore_errors=True)
    progress.path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        scratch_root(out).rmdir()  # only when no other run is using it
    summary = tally.summary(time.perf_counter() - started)
    summary.update(run_id=run_id, output_dir=out, records_dir=records_dir,
                   pages_dir=str(join(out, "pages")), compare_dir=str(join(out, "compare")), weights=pt.name,
                   pages_per_task=per_task, task_runs=task_runs)
    if cfg.upscale.output_format == "document":
        summary.update(documents_dir=str(join(out, "documents")))
    if shard_count:
        summary.update(shard_index=shard_index, shard_count=shard_count)
    create_table_artifact([{k: v for k, v in summary.items() if not isinstance(v, (list, dict))}],
                          key="upscale-summary", description=f"run {run_id}")
    pictures = compare_pictures(first_rows or [], out, cfg.upscale.compare_pages)
    create_markdown_artifact(outputs_markdown(summary, pictures), key="upscale-outputs", description=f"run {run_id}")
    if shard_count is None:  # a unit of a night: the night's parent writes the one report (flows/sharded.py)
        summary.update(report=attach_report(out, cfg.records.dir, f"Upscale report: {out}", "upscale-report"))
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
