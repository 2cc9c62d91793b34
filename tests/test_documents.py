"""output_format document (PDF in -> PDF out, multi-page TIFF -> TIFF), colour pages, labelled pictures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pypdf
import torch
from PIL import Image

from srgan.config import PipelineConfig, load_config, override
from srgan.imaging.colour import split_luma
from srgan.imaging.textsize import resize_to
from srgan.inference.engine import Engine
from srgan.models import Generator
from srgan.pipeline.captions import CAPTION_BG
from srgan.pipeline.records import read_records
from srgan.pipeline.run import run_pipeline
from srgan.pipeline.stages import compare_picture
from tests.conftest import text_like_page, tiny_generator, write_config

# (height, width) of the pages at 50 dpi: the third is landscape and larger than the others
SIZES = [(150, 120), (150, 120), (170, 240)]


def _pages() -> list[Image.Image]:
    return [Image.fromarray(text_like_page(h, w, seed)) for seed, (h, w) in enumerate(SIZES)]


def _pdf(path: Path) -> Path:
    pages = _pages()
    pages[0].save(path, save_all=True, append_images=pages[1:], resolution=50, title="Quarterly report",
                  author="J. Anderson")
    return path


def _tiff(path: Path) -> Path:
    pages = _pages()
    pages[0].save(path, save_all=True, append_images=pages[1:], dpi=(100, 100))
    return path


def _cfg(tmp_path: Path, **keys) -> PipelineConfig:
    cfg = override(override(load_config(write_config(tmp_path, tmp_path)), "engine.device", "cpu"),
                   "engine.precision", "fp32")  # exact: bf16 kernels may differ with the batch
    for key, value in keys.items():
        cfg = override(cfg, key.replace("__", "."), value)
    return cfg


def _residual_generator() -> Generator:
    """Tiny, random, residual over bicubic: its output stays in a page's range but is not bicubic."""
    torch.manual_seed(0)
    net = Generator(scale=2, num_feat=4, num_block=1, skip="bicubic").eval()
    torch.nn.init.normal_(net.tail.weight, std=0.02)  # zero at init: give it a residual of a few grey levels
    return net


def _run(inp: Path, out: Path, cfg: PipelineConfig, net: Generator | None = None) -> dict:
    return run_pipeline([str(inp)], out, cfg, Engine(net or tiny_generator(2), cfg.engine, cfg.tiling), "tiny",
                        "w" * 64, 9.0)


def test_pdf_in_one_pdf_out_same_pages_sizes_and_metadata(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    src = _pdf(inp / "report.pdf")
    summary = _run(inp, tmp_path / "out", _cfg(tmp_path, upscale__output_format="document", pdf__dpi="native"))
    assert summary["ok"] == 3
    doc = tmp_path / "out" / "documents" / "report.pdf"
    original, upscaled = pypdf.PdfReader(src), pypdf.PdfReader(doc)
    assert len(upscaled.pages) == 3
    for page_in, page_out, (h, w) in zip(original.pages, upscaled.pages, SIZES, strict=True):
        assert (float(page_out.mediabox.width), float(page_out.mediabox.height)) == pytest_approx(
            (float(page_in.mediabox.width), float(page_in.mediabox.height)))
        (image,) = page_out.images  # the scan image, replaced in place
        assert image.image.size == (2 * w, 2 * h)  # read at its native 50 ppi, then x2
    assert upscaled.metadata.title == "Quarterly report" and upscaled.metadata.author == "J. Anderson"
    rows = read_records(tmp_path / "out" / "records").to_pylist()
    assert {r["document_path"] for r in rows} == {str(doc)}
    assert [(r["page_width_pt"], r["page_height_pt"]) for r in rows] == [(w * 72 / 50, h * 72 / 50)
                                                                          for h, w in SIZES]
    # the embedded page images are the page files' pixels (lossless)
    (image,) = upscaled.pages[2].images
    assert np.array_equal(np.asarray(image.image), np.asarray(Image.open(rows[2]["output_path"])))


def pytest_approx(values):
    import pytest

    return pytest.approx(values, abs=0.01)


def test_multipage_tiff_in_one_tiff_out_and_single_images_keep_their_family(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    _tiff(inp / "scan.tif")
    Image.fromarray(text_like_page(80, 70)).save(inp / "single.jpg", quality=95)
    _run(inp, tmp_path / "out", _cfg(tmp_path, upscale__output_format="document"))
    with Image.open(tmp_path / "out" / "documents" / "scan.tif") as tif:
        assert tif.n_frames == 3
        for k, (h, w) in enumerate(SIZES):
            tif.seek(k)
            assert tif.size == (2 * w, 2 * h) and round(tif.info["dpi"][0]) == 200
    rows = {r["member"]: r for r in read_records(tmp_path / "out" / "records").to_pylist()}
    single = rows["single.jpg"]
    assert single["output_path"].endswith("pages/single.jpg") and single["document_path"] == single["output_path"]
    assert Image.open(single["output_path"]).format == "JPEG"


def test_document_with_a_failed_page_is_written_by_the_rerun(tmp_path: Path) -> None:
    """Page 3 is over limits.max_pixels: no document, the other pages written; a rerun with a larger
    limit (limits do not change the rerun key) redoes page 3 only and writes the document."""
    inp = tmp_path / "in"
    inp.mkdir()
    _pdf(inp / "report.pdf")
    _tiff(inp / "scan.tif")
    out = tmp_path / "out"
    summary = _run(inp, out, _cfg(tmp_path, upscale__output_format="document", limits__max_pixels=30_000))
    assert summary["ok"] == 4 and summary["errors"] == 2
    assert not (out / "documents").exists() or not list((out / "documents").iterdir())
    assert (out / "pages" / "report_p0001.png").exists() and (out / "pages" / "scan_p0002.png").exists()
    first = read_records(out / "records").to_pylist()
    assert all(r["document_path"] is None for r in first)

    summary = _run(inp, out, _cfg(tmp_path, upscale__output_format="document"))
    assert summary["pages"] == 2 and summary["ok"] == 2  # only the failed pages
    assert len(pypdf.PdfReader(out / "documents" / "report.pdf").pages) == 3
    with Image.open(out / "documents" / "scan.tif") as tif:
        assert tif.n_frames == 3
    rerun = [r for r in read_records(out / "records").to_pylist() if r["run_id"] == summary["run_id"]]
    assert {r["document_path"] for r in rerun} == {str(out / "documents" / "report.pdf"),
                                                   str(out / "documents" / "scan.tif")}
    sizes = [p.mediabox for p in pypdf.PdfReader(out / "documents" / "report.pdf").pages]
    assert [(round(float(b.width), 1), round(float(b.height), 1)) for b in sizes] == [
        (round(w * 72 / 50, 1), round(h * 72 / 50, 1)) for h, w in SIZES]


def _colour_page() -> np.ndarray:
    grey = text_like_page(120, 100, 7)
    rgb = np.stack([grey] * 3, axis=-1)
    rgb[5:30, 5:95] = (40, 70, 160)  # a blue letterhead band
    rgb[60:75, 10:80] = np.minimum(rgb[60:75, 10:80], (250, 240, 120))  # highlighted line
    return np.ascontiguousarray(rgb)


def test_colour_page_stays_rgb_with_luminance_from_the_model_grey_stays_grey(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    rgb = _colour_page()
    Image.fromarray(rgb).save(inp / "colour.png")
    Image.fromarray(text_like_page(90, 80, 3)).save(inp / "grey.png")
    Image.fromarray(np.stack([text_like_page(90, 80, 4)] * 3, -1)).save(inp / "grey_rgb.png")  # RGB, grey content
    cfg = _cfg(tmp_path)
    _run(inp, tmp_path / "out", cfg, _residual_generator())
    rows = {r["member"]: r for r in read_records(tmp_path / "out" / "records").to_pylist()}
    assert rows["colour.png"]["color"] == "rgb"
    assert rows["grey.png"]["color"] == "grey" and rows["grey_rgb.png"]["color"] == "grey"
    out = np.asarray(Image.open(rows["colour.png"]["output_path"]))
    assert out.shape == (240, 200, 3)
    assert Image.open(rows["grey.png"]["output_path"]).mode == "L"
    assert Image.open(rows["grey_rgb.png"]["output_path"]).mode == "L"
    # the output's luminance is the model's upscaled luminance (up to YCbCr <-> RGB rounding)
    y, _ = split_luma(rgb)
    (model_y,) = Engine(_residual_generator(), cfg.engine, cfg.tiling).upscale([y])
    expected = resize_to(model_y, (200, 240)).astype(np.int16)
    got, chroma = split_luma(out)
    diff = np.abs(got.astype(np.int16) - expected)
    neutral = (chroma == 128).all(axis=-1)
    assert neutral.mean() > 0.5 and diff[neutral].max() <= 1  # where there is no colour: the model's, to rounding
    assert (diff <= 2).mean() > 0.97  # colour areas: YCbCr <-> RGB rounding and gamut clipping aside
    bicubic_y = resize_to(y, (200, 240)).astype(np.int16)
    assert np.abs(got - bicubic_y).mean() > 3 * diff.mean()  # not a bicubic stand-in
    # and the letterhead is still blue
    band = out[12:58, 12:188].reshape(-1, 3).mean(axis=0)
    assert band[2] > band[0] + 60

    grey_only = _cfg(tmp_path, upscale__color="grey")
    _run(inp, tmp_path / "grey_out", grey_only, _residual_generator())
    rows = {r["member"]: r for r in read_records(tmp_path / "grey_out" / "records").to_pylist()}
    assert rows["colour.png"]["color"] == "grey" and Image.open(rows["colour.png"]["output_path"]).mode == "L"


def test_compare_picture_labels_each_panel() -> None:
    inp = text_like_page(64, 64)
    big = resize_to(inp, (128, 128))
    pic = compare_picture(inp, big, big, 2, 64, "srgan_x2")
    assert pic.shape[0] > 128  # a caption strip above the panels
    strip = pic[: pic.shape[0] - 128]
    for x0 in (0, 128 + 8, 2 * (128 + 8)):  # each panel's caption has dark text on the strip's grey
        caption = strip[:, x0 : x0 + 128]
        assert (caption < 100).sum() > 20 and (caption == CAPTION_BG).mean() > 0.5
    assert not np.array_equal(strip[:, :128], strip[:, 136:264])  # different words


def test_flow_writes_documents_and_the_rerun_completes_them(prefect_harness, tiny_weights, tmp_path: Path) -> None:
    """Through the Prefect flow: documents split across tasks; a failed page (over limits.max_pixels)
    keeps its document unwritten until the rerun that completes it."""
    from flows.upscale import upscale

    inp = tmp_path / "in"
    inp.mkdir()
    _pdf(inp / "report.pdf")
    _tiff(inp / "scan.tif")
    Image.fromarray(_colour_page()).save(inp / "letter.png")
    base = write_config(tmp_path, tiny_weights, "flow:\n  pages_per_task: 1\n").read_text()
    base = base.replace("upscale:\n", "upscale:\n  output_format: document\n", 1)
    strict, relaxed = tmp_path / "strict.yaml", tmp_path / "relaxed.yaml"
    strict.write_text(base + "limits:\n  max_pixels: 30000\n")
    relaxed.write_text(base)
    out = tmp_path / "out"
    summary = upscale(input_path=str(inp), output_dir=str(out), scale=2, config_path=str(strict))
    assert summary["ok"] == 5 and summary["errors"] == 2
    assert not (out / "documents" / "report.pdf").exists() and not (out / "documents" / "scan.tif").exists()
    letter = next(r for r in read_records(out / "records").to_pylist() if r["member"] == "letter.png")
    assert letter["color"] == "rgb" and letter["document_path"] == letter["output_path"]

    summary = upscale(input_path=str(inp), output_dir=str(out), scale=2, config_path=str(relaxed))
    assert summary["pages"] == 2 and summary["ok"] == 2
    pdf = pypdf.PdfReader(out / "documents" / "report.pdf")
    # forced pdf.dpi 50: each page rendered, its 2x picture painted over the page (the original underneath)
    assert all((2 * w, 2 * h) in [im.image.size for im in p.images] for p, (h, w) in zip(pdf.pages, SIZES, strict=True))
    with Image.open(out / "documents" / "scan.tif") as tif:
        assert tif.n_frames == 3
    pictures = list((out / "compare").glob("*.png"))
    assert pictures and all(Image.open(p).height > 2 * 32 for p in pictures)  # caption strip above the panels


def test_colour_rule_marks_and_tinted_paper() -> None:
    from srgan.imaging.colour import has_colour

    grey = text_like_page(200, 160)
    rgb = np.stack([grey] * 3, axis=-1)
    noisy = np.clip(rgb + np.random.default_rng(0).integers(-3, 4, rgb.shape), 0, 255).astype(np.uint8)
    assert not has_colour(noisy)  # a grey scan with JPEG-like chroma noise
    marked = rgb.copy()
    marked[50:53, 40:60] = (30, 50, 170)  # a short blue pen stroke: 60 of 32,000 pixels
    assert has_colour(marked)
    cream = np.minimum(rgb, np.array([250, 240, 220], np.uint8))  # cream paper, black text
    assert has_colour(cream)
