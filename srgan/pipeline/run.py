"""The upscale data path in plain Python (no Prefect), with background threads.

Decoding runs in a background thread, and normalising and writing in a pool of worker threads
(``cpu_stage_workers``), while the main thread feeds the model, so the accelerator does not wait for
the CPU. Used by the benchmark and wherever Prefect is absent
(the GPU machine); the Prefect flow composes the same ``srgan.pipeline.stages`` steps as tasks.
"""

from __future__ import annotations

import functools
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from srgan.config import EngineConfig, PipelineConfig
from srgan.inference.engine import Engine
from srgan.pipeline.documents import DocumentAssembly
from srgan.pipeline.outlock import holds_output_folder
from srgan.pipeline.records import write_part
from srgan.pipeline.resume import pending_documents
from srgan.pipeline.stages import cleanup, finish_page, infer_pages, make_run_context, prepare_page
from srgan.pipeline.summary import RunTally
from srgan.pipeline.work import PageWork
from srgan.readers import DocumentRef, discover, read_pages
from srgan.storage.files import Location, is_url, join, normalise, scratch_root

_DONE = object()
PLAIN_BATCH_PAGES = 8  # pages fed to the model at once when flow.pages_per_task is auto (0)


def cpu_stage_workers(engine_cfg: EngineConfig, device_type: str) -> int:
    """Threads for the per-page CPU work (text height, metrics, PNG encoding) beside the model.

    ``engine.cpu_workers`` when set; else 2 when the model itself runs on the CPU (more would take
    cores from it), and one per core less one (at least 2) when it runs on an accelerator.
    """
    if engine_cfg.cpu_workers > 0:
        return engine_cfg.cpu_workers
    if device_type == "cpu":
        return 2
    return max(2, (os.cpu_count() or 2) - 1)


def _prepared(inputs: Sequence[str], cfg: PipelineConfig, work_dir: Path, text_height: float | None,
              depth: int, workers: ThreadPoolExecutor,
              select: Callable[[list[DocumentRef]], list[DocumentRef]] = list,
              validated_range: Sequence[float] | None = None) -> Iterator[PageWork]:
    """PageWorks in input order, at most `depth` ahead of the consumer.

    One background thread reads and decodes the pages in order (archives are streams); each page's
    normalisation (text-height estimate, resampling, work files) runs on ``workers``.
    ``select`` filters the discovered documents (the rerun-skip of srgan.pipeline.resume).
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    failure: list[BaseException] = []

    def produce() -> None:
        try:
            docs = select(list(discover(inputs, cfg.limits)))
            t0 = time.perf_counter()
            for page in read_pages(docs, cfg.pdf, cfg.limits, cfg.upscale.color):
                page.seconds = time.perf_counter() - t0
                q.put(workers.submit(prepare_page, page, work_dir, text_height, cfg.upscale, validated_range,
                                     in_memory=True))
                t0 = time.perf_counter()
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, re-raised there
            failure.append(exc)
        finally:
            q.put(_DONE)

    threading.Thread(target=produce, daemon=True).start()
    while (item := q.get()) is not _DONE:
        yield item.result()
    if failure:  # the decoding thread failed outside any one page: the run must not look finished
        raise failure[0]


@holds_output_folder("out_dir", lambda: f"srgan plain run (pid {os.getpid()})")
def run_pipeline(inputs: Sequence[str], out_dir: Location, cfg: PipelineConfig, engine: Engine,
                 weights_name: str, weights_sha256: str, text_height: float | None,
                 validated_range: Sequence[float] | None = None) -> dict:
    """discover -> decode -> normalise -> tiles -> infer -> reassemble -> metrics -> write (-> document) -> records.

    validated_range: ``weights.decision_range`` of the manifest (pages outside it: upscale.out_of_range;
    pages without a text-height estimate: upscale.no_estimate).
    """
    out_dir = normalise(out_dir) if is_url(out_dir) else Path(out_dir)  # a local folder or a URL
    ctx = make_run_context(cfg, out_dir, engine.info, weights_name, weights_sha256)
    run_id = ctx.run_id
    work_dir = scratch_root(out_dir) / run_id
    records_dir = join(out_dir, cfg.records.dir)
    started = time.perf_counter()
    tally = RunTally()  # counts and sums only: memory stays flat however many pages the run has
    pending_rows: list[dict] = []
    written: list[Future] = []
    batch_pages = cfg.flow.pages_per_task or PLAIN_BATCH_PAGES  # pages per model call (not Prefect tasks)
    with ThreadPoolExecutor(max_workers=cpu_stage_workers(cfg.engine, engine.device.type)) as workers:

        def write(works: list[PageWork], first: int) -> list[tuple[PageWork, dict]]:
            out = []
            for i, w in enumerate(works):
                out.append((w, finish_page(w, ctx, compare=first + i < cfg.upscale.compare_pages)))
                cleanup(w)
            return out

        documents = DocumentAssembly(ctx, submit=workers.submit)  # output_format document: assembled in the pool

        batch: list[PageWork] = []
        seen = 0

        def flush(batch: list[PageWork]) -> None:
            nonlocal seen
            infer_pages(engine, batch)
            written.append(workers.submit(write, batch, seen))
            seen += len(batch)

        skip_done = functools.partial(pending_documents, out_dir=out_dir, records_dir=records_dir, run_id=run_id,
                                      weights_sha256=weights_sha256, config_hash=ctx.config_hash)
        for work in _prepared(inputs, cfg, work_dir, text_height, depth=2 * batch_pages, workers=workers,
                              select=skip_done, validated_range=validated_range):
            batch.append(work)
            if len(batch) == batch_pages:
                flush(batch)
                batch = []
            while written and written[0].done():  # collect finished writes in order; records in parts
                pending_rows.extend(documents.add(written.pop(0).result()))
                if len(pending_rows) >= cfg.records.rows_per_part:
                    write_part(pending_rows, records_dir, run_id)
                    tally.add(pending_rows)
                    pending_rows = []
        if batch:
            flush(batch)
        for fut in written:
            pending_rows.extend(documents.add(fut.result()))
        pending_rows.extend(documents.finish())
    write_part(pending_rows, records_dir, run_id)
    tally.add(pending_rows)
    shutil.rmtree(work_dir, ignore_errors=True)
    summary = tally.summary(time.perf_counter() - started)
    summary.update(run_id=run_id, records_dir=str(records_dir), pages_dir=str(join(out_dir, "pages")))
    if cfg.upscale.output_format == "document":
        summary.update(documents_dir=str(join(out_dir, "documents")))
    return summary
