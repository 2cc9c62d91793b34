"""The ``encoding`` case: bytes per page of each page encoding (``upscale.encoding``), and of output PDFs.

- pages (``--encoding-pages`` folders): each page is upscaled once as a run writes it by default (the model, or
  Lanczos where the weights' validated range says so), then stored in every encoding (srgan.encoding.codecs);
  a row per encoding gives the bytes per page, their share of png8's (today's 8-bit pages) and the encoder's
  milliseconds per page.
- PDFs (``--pdfs``): each PDF through the plain runner once (``output_format: document``, png8), then rebuilt
  from the same upscaled pages in every encoding (srgan.pdf.rebuild, as a run with that encoding writes it):
  a row per PDF and encoding with the input and output sizes and their ratio. With ``--pdf-crooked DEG`` each PDF's
  first page is also run as a one-page copy whose content is turned by DEG degrees about the page's centre (a
  crooked scan: its image placed with a rotated matrix, :func:`crooked_copy`).
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import pikepdf
from PIL import Image

from srgan.config import PipelineConfig, override
from srgan.encoding import codecs
from srgan.fidelity.rvl_paired import upscales
from srgan.inference.engine import Engine
from srgan.pdf.rebuild import PageOut, rebuild_pdf
from srgan.pipeline.records import read_records
from srgan.pipeline.run import run_pipeline
from srgan.weights import decision_range, load_generator

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


def page_rows(engine: Engine, rng: list[float] | None, cfg: PipelineConfig, files: list[Path], model: str
              ) -> list[dict]:
    """One row per encoding over the pages of ``files`` (see the module docstring)."""
    sizes: dict[str, list[int]] = {n: [] for n in codecs.NAMES}
    ms: dict[str, list[float]] = {n: [] for n in codecs.NAMES}
    for path in files:
        with Image.open(path) as im:
            tag = im.info.get("dpi")
            lr = np.asarray(im.convert("L"))
        dpi = float(tag[0]) if tag else cfg.upscale.assumed_dpi
        images, info = upscales(engine, lr, rng, cfg.upscale)
        out = images[info["default"]]
        for name in codecs.NAMES:
            t0 = time.perf_counter()
            sizes[name].append(len(codecs.encode(out, codecs.get(name), dpi * engine.scale,
                                                 cfg.upscale.png_compress_level)))
            ms[name].append(1e3 * (time.perf_counter() - t0))
    base = sum(sizes["png8"])
    return [{"case": "encoding", "kind": "pages", "encoding": n, "model": model, "scale": engine.scale,
             "pages": len(files), "kb_per_page": round(sum(sizes[n]) / len(files) / 1e3, 1),
             "share_of_png8": round(sum(sizes[n]) / base, 4), "encode_ms_per_page": round(float(np.mean(ms[n])), 1),
             "pages_from": sorted({str(f.parent) for f in files})} for n in codecs.NAMES]


def pdf_rows(engine: Engine, cfg: PipelineConfig, pdf: Path, model: str, sha256: str, text_height: float | None,
             tmp: Path) -> list[dict]:
    """One row per encoding for one PDF: its pages upscaled once (png8), the PDF rebuilt in each encoding."""
    run_cfg = override(override(cfg, "upscale.output_format", "document"), "upscale.encoding", "png8")
    out = tmp / pdf.stem
    run_pipeline([str(pdf)], out, run_cfg, engine, model, sha256, text_height)
    records = sorted(read_records(out / run_cfg.records.dir).to_pylist(), key=lambda r: r["page_index"])
    if not records or any(r["status"] != "ok" for r in records):
        raise RuntimeError(f"{pdf.name}: a page failed: {[r['error'] for r in records if r['error']]}")
    rows = []
    for name in codecs.NAMES:
        outs = []
        for r in records:
            page = codecs.decode(Path(r["output_path"]).read_bytes())
            file = tmp / f"{pdf.stem}_{name}_{r['page_index']}.{codecs.get(name).ext}"
            file.write_bytes(codecs.encode(page, codecs.for_page(name, page), r["output_dpi"]))
            outs.append(PageOut(r["pdf_path"], str(file)))
        target = tmp / f"{pdf.stem}_{name}.pdf"
        rebuild_pdf(pdf.read_bytes(), outs, target)
        kb_in, kb_out = pdf.stat().st_size / 1e3, target.stat().st_size / 1e3
        rows.append({"case": "encoding", "kind": "pdf", "pdf": pdf.name, "encoding": name, "model": model,
                     "scale": engine.scale, "pages": len(records), "paths": sorted({r["pdf_path"] for r in records}),
                     "pdf_in_kb": round(kb_in, 1), "pdf_out_kb": round(kb_out, 1),
                     "out_over_in": round(kb_out / kb_in, 2)})
    return rows


def crooked_copy(src: Path, dst: Path, degrees: float) -> Path:
    """A one-page PDF: src's first page with its content turned by ``degrees`` about the crop box's centre."""
    with pikepdf.open(src) as pdf:
        del pdf.pages[1:]
        page = pdf.pages[0]
        x0, y0, x1, y1 = (float(v) for v in page.cropbox)
        cx, cy, t = (x0 + x1) / 2, (y0 + y1) / 2, math.radians(degrees)
        c, s = math.cos(t), math.sin(t)
        turn = f"q {c:.6f} {s:.6f} {-s:.6f} {c:.6f} {cx - c * cx + s * cy:.4f} {cy - s * cx - c * cy:.4f} cm\n"
        page.contents_add(turn.encode(), prepend=True)
        page.contents_add(b"\nQ\n")
        pdf.remove_unreferenced_resources()
        pdf.save(dst)
    return dst


def bench_encoding(cfg: PipelineConfig, model: str, weights_dir: Path, folders: list[Path], pdfs: list[Path],
                   device: str, max_pages: int, crooked: float = 0.0) -> list[dict]:
    """The ``encoding`` case's rows: pages (at most max_pages per folder), then each PDF (and its crooked copy)."""
    net_g, manifest = load_generator(model, weights_dir)
    engine = Engine(net_g, dataclasses.replace(cfg.engine, device=device), cfg.tiling)
    files = [f for folder in folders for f in sorted(p for p in folder.iterdir()
                                                     if p.suffix.lower() in IMAGE_SUFFIXES)[:max_pages]]
    rows = page_rows(engine, decision_range(manifest), cfg, files, model) if files else []
    with tempfile.TemporaryDirectory() as tmp:
        for pdf in pdfs:
            copies = [crooked_copy(pdf, Path(tmp) / f"{pdf.stem}_crooked.pdf", crooked)] if crooked else []
            for one in ([] if crooked else [pdf]) + copies:
                rows += pdf_rows(engine, cfg, one, model, manifest.get("sha256", ""), manifest.get("text_height"),
                                 Path(tmp))
    for row in rows:
        print(row, flush=True)
    return rows
