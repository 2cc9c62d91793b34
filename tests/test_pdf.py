"""PDFs as they came (srgan/pdf): pages read at their scan's own resolution, and a PDF back that keeps its text
layer, links, bookmarks and metadata; checked with real poppler (pdftotext, pdfimages, pdftoppm), qpdf,
pikepdf and tesseract on PDFs made in code (tests/scanpdf.py)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pikepdf
import pytest
import torch
from PIL import Image

from srgan.config import LimitsConfig, PdfConfig, override
from srgan.encoding.png import encode_grey_png
from srgan.inference.engine import Engine
from srgan.models import Generator
from srgan.pdf.placement import ImageDraw
from srgan.pdf.plan import Orientation, orientation_of, plan_page
from srgan.pdf.rebuild import PageOut, rebuild_pdf
from srgan.pipeline.records import read_records
from srgan.pipeline.run import run_pipeline
from srgan.readers import discover, read_pages
from tests import scanpdf
from tests.test_documents import _cfg

pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in ("tesseract", "pdftotext", "pdfimages", "qpdf")),
                                reason="needs tesseract, poppler-utils and qpdf (make system)")
LIMITS = LimitsConfig()


def bicubic_generator() -> Generator:
    """A tiny generator whose output is bicubic (residual tail at zero): pages stay readable for OCR."""
    torch.manual_seed(0)
    return Generator(scale=2, num_feat=4, num_block=1, skip="bicubic").eval()


def _run(inp: Path, out: Path, tmp_path: Path, **keys) -> dict:
    cfg = _cfg(tmp_path, **{"upscale__output_format": "document", "pdf__dpi": "native", "tiling__tile": 256, **keys})
    return run_pipeline([str(inp)], out, cfg, Engine(bicubic_generator(), cfg.engine, cfg.tiling), "tiny",
                        "w" * 64, 9.0)


def _rows(out: Path) -> list[dict]:
    return sorted(read_records(out / "records").to_pylist(), key=lambda r: (r["member"], r["page_index"],
                                                                            r["started_at"]))


def _structure(path: Path) -> dict:
    """What must come back unchanged: annotations, outline, page labels, title and author."""
    with pikepdf.open(path) as pdf:
        annots = [[(str(a.Subtype), [round(float(v), 2) for v in a.Rect], str(a.get("/A", {}).get("/URI", "")))
                   for a in page.get("/Annots", [])] for page in pdf.pages]
        with pdf.open_outline() as outline:
            marks = [(item.title, pdf.pages.index(pikepdf.Page(item.destination[0]))) for item in outline.root]
        labels = [page.label for page in pdf.pages]
        info = {k: str(pdf.docinfo.get(k, "")) for k in ("/Title", "/Author")}
    return {"annots": annots, "outline": marks, "labels": labels, "info": info}


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> Path:
    """The two-page scan at 100 ppi with an OCR layer, a link, two bookmarks, page labels and a title."""
    folder = tmp_path_factory.mktemp("scan") / "in"
    folder.mkdir()
    return scanpdf.scanned_pdf(folder / "papers.pdf")


# ------------------------------------------------------------------ geometry and plans


@pytest.mark.parametrize("transpose", [False, True])
@pytest.mark.parametrize("flip_rows", [False, True])
@pytest.mark.parametrize("flip_cols", [False, True])
def test_orientation_round_trip(transpose: bool, flip_rows: bool, flip_cols: bool) -> None:
    grid = np.arange(12, dtype=np.uint8).reshape(3, 4)
    o = Orientation(transpose, flip_rows, flip_cols)
    assert np.array_equal(o.from_display(o.to_display(grid)), grid)
    rgb = np.stack([grid, grid + 1, grid + 2], axis=-1)
    assert np.array_equal(o.from_display(o.to_display(rgb)), rgb)


def test_orientation_of_the_four_cardinal_placements() -> None:
    """cardinal.pdf's matrices: the image turned by 0, 90, 180 and 270 degrees on a page without /Rotate."""
    grid = np.arange(6).reshape(2, 3)  # rows, columns of the image
    turned = {(612, 0, 0, 792, 0, 0): grid, (0, -612, 792, 0, 0, 612): np.rot90(grid, -1),
              (-612, 0, 0, -792, 612, 792): np.rot90(grid, 2), (0, 612, -792, 0, 792, 0): np.rot90(grid, 1)}
    for ctm, shown in turned.items():
        o = orientation_of(ImageDraw(3, 2, tuple(map(float, ctm)), (1, 0)), 0)
        assert o is not None and np.array_equal(o.to_display(grid), shown), ctm
    # an upright image on a page with /Rotate 90 shows turned clockwise
    o = orientation_of(ImageDraw(3, 2, (612.0, 0, 0, 792.0, 0, 0), (1, 0)), 90)
    assert np.array_equal(o.to_display(grid), np.rot90(grid, -1))
    assert orientation_of(ImageDraw(3, 2, (600.0, 30.0, -30.0, 790.0, 0, 0), (1, 0)), 0) is None  # skewed


def _one_page(build) -> pikepdf.Pdf:
    pdf = pikepdf.new()
    build(pdf)
    return pdf


def test_plans_native_fallback_forced_capped_and_why_not_in_place() -> None:
    scan = scanpdf.page_image(1)
    pdf = _one_page(lambda p: scanpdf.image_page(p, scan, 100))
    plan = plan_page(pdf, pdf.pages[0], PdfConfig(), LIMITS.max_pixels)
    assert (plan.path, plan.dpi, plan.dpi_reason, plan.has_text) == ("in_place", 100.0, "native", False)
    assert plan_page(pdf, pdf.pages[0], PdfConfig(dpi=72), LIMITS.max_pixels).dpi_reason == "forced"
    small = plan_page(pdf, pdf.pages[0], PdfConfig(), 500_000)  # the image's 754,000 pixels are over the limit
    assert (small.path, small.dpi_reason) == ("rasterised", "capped") and "limits.max_pixels" in small.note
    assert 500_000 * 0.97 < round(small.size_pt[0] * small.dpi / 72) * round(small.size_pt[1] * small.dpi / 72) \
        <= 500_000

    digital = _one_page(scanpdf.born_digital_page)
    plan = plan_page(digital, digital.pages[0], PdfConfig(), LIMITS.max_pixels)
    assert (plan.path, plan.dpi, plan.dpi_reason, plan.note, plan.has_text) == (
        "rasterised", 150.0, "fallback", "no images", True)

    def strips(p: pikepdf.Pdf) -> None:  # a scan stored as two strips: not one image to replace
        scanpdf.image_page(p, scan[:500], 100)
        top = p.pages[0]
        lower = pikepdf.Stream(p, scan[500:].tobytes(), Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image,
                               Width=754, Height=500, BitsPerComponent=8, ColorSpace=pikepdf.Name.DeviceGray)
        top.Resources.XObject.Im1 = lower
        top.MediaBox = [0, 0, 542.88, 720]
        top.Contents = pikepdf.Stream(p, b"q 542.88 0 0 360 0 360 cm /Im0 Do Q q 542.88 0 0 360 0 0 cm /Im1 Do Q")

    two = _one_page(strips)
    plan = plan_page(two, two.pages[0], PdfConfig(), LIMITS.max_pixels)
    assert (plan.path, plan.dpi, plan.dpi_reason) == ("rasterised", 100.0, "native")
    assert plan.note == "other images cover 50% of the page"


# ------------------------------------------------------------------ the issue's case


def test_scanned_pdf_with_ocr_layer_link_and_bookmark_comes_back_whole(scanned: Path, tmp_path: Path) -> None:
    """Done-when of issue 25: 2x, page images 2x their native pixels, pdftotext's words kept, annotations,
    outline, page labels and title the input's; qpdf finds the file sound."""
    out = tmp_path / "out"
    summary = _run(scanned.parent, out, tmp_path)
    assert summary["ok"] == 2 and summary["errors"] == 0
    doc = out / "documents" / "papers.pdf"
    native = [(im["width"], im["height"]) for im in scanpdf.pdfimages_list(scanned)]
    assert native == [(853, 1100), (754, 1000)]
    upscaled = scanpdf.pdfimages_list(doc)
    assert [(im["width"], im["height"]) for im in upscaled] == [(2 * w, 2 * h) for w, h in native]
    assert all((im["x_ppi"], im["y_ppi"], im["bpc"], im["color"]) == (200, 200, 8, "gray") for im in upscaled)
    before, after = scanpdf.words(scanpdf.pdftotext(scanned)), scanpdf.words(scanpdf.pdftotext(doc))
    assert len(before) > 100 and after == before  # the OCR layer itself, untouched
    assert _structure(doc) == _structure(scanned)
    assert _structure(doc)["annots"][0] == [("/Link", [60.0, 700.0, 300.0, 730.0], scanpdf.LINK)]
    check = subprocess.run(["qpdf", "--check", str(doc)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    rows = _rows(out)
    assert [(r["input_width"], r["input_height"], r["input_dpi"], r["output_dpi"]) for r in rows] == [
        (853, 1100, 100.0, 200.0), (754, 1000, 100.0, 200.0)]
    assert {(r["pdf_path"], r["pdf_dpi_reason"], r["pdf_path_note"], r["text_layer"]) for r in rows} == {
        ("in_place", "native", None, "kept")}
    # the replaced image holds the page file's pixels, losslessly
    with pikepdf.open(doc) as pdf:
        image = pikepdf.PdfImage(next(iter(pdf.pages[0].images.values())))
        assert np.array_equal(np.asarray(image.as_pil_image()), np.asarray(Image.open(rows[0]["output_path"])))


def test_fixed_dpi_renders_pages_and_still_keeps_the_structure(scanned: Path, tmp_path: Path) -> None:
    """pdf.dpi 150 on the 100 ppi scan: poppler's 1.5x rendering, upscaled 2x (3x the scan's pixels),
    painted over each page; the text layer, link and outline stay."""
    out = tmp_path / "out"
    summary = _run(scanned.parent, out, tmp_path, pdf__dpi=150)
    assert summary["ok"] == 2
    rows = _rows(out)
    assert [(r["input_width"], r["input_height"], r["pdf_path"], r["pdf_dpi_reason"]) for r in rows] == [
        (1280, 1650, "rasterised", "forced"), (1131, 1500, "rasterised", "forced")]
    doc = out / "documents" / "papers.pdf"
    sizes = {(im["width"], im["height"]) for im in scanpdf.pdfimages_list(doc)}
    assert {(2560, 3300), (2262, 3000)} <= sizes
    assert scanpdf.words(scanpdf.pdftotext(doc)) == scanpdf.words(scanpdf.pdftotext(scanned))
    assert _structure(doc) == _structure(scanned)


# ------------------------------------------------------------------ mixed documents, rotation, OCR


def _mixed(path: Path) -> Path:
    """A scan with OCR text, a born-digital page with a link, a scan on a page turned by /Rotate 90 (no text)."""
    pdf = pikepdf.new()
    first = scanpdf.page_image(0)
    scanpdf.ocr_layer(scanpdf.image_page(pdf, first, 100), first, 100)
    scanpdf.add_link(pdf, scanpdf.born_digital_page(pdf))
    scanpdf.image_page(pdf, scanpdf.page_image(1), 100, rotate=90)
    pdf.docinfo[pikepdf.Name.Title] = "Mixed"
    pdf.save(path)
    return path


def test_mixed_document_each_page_its_own_path_and_ocr_where_text_is_missing(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    src = _mixed(inp / "mixed.pdf")
    out = tmp_path / "out"
    summary = _run(inp, out, tmp_path, upscale__ocr_layer="add")
    assert summary["ok"] == 3
    rows = _rows(out)
    assert [(r["pdf_path"], r["pdf_dpi_reason"], r["input_dpi"], r["text_layer"]) for r in rows] == [
        ("in_place", "native", 100.0, "kept"), ("rasterised", "fallback", 150.0, "kept"),
        ("in_place", "native", 100.0, "added")]
    assert (rows[2]["input_width"], rows[2]["input_height"]) == (1000, 754)  # as the turned page shows it
    assert rows[2]["seconds_ocr"] > 0 and rows[0]["seconds_ocr"] is None
    assert not Path(rows[0]["output_path"]).with_suffix(".text.pdf").exists()  # a page with text is not read
    assert not list((out / "pages").glob("*.text.pdf"))  # the added layer lives in the document, not beside pages
    doc = out / "documents" / "mixed.pdf"
    assert _structure(doc) == _structure(src)
    # each page looks as it did (poppler at 30 dpi): the turned scan replaced in its own orientation
    for page in (1, 2, 3):
        a, b = scanpdf.render(src, page).astype(float), scanpdf.render(doc, page).astype(float)
        assert a.shape == b.shape and np.abs(a - b).mean() < 3, page
    assert scanpdf.BORN_DIGITAL_TEXT.lower().split() == scanpdf.words(scanpdf.pdftotext(doc, 2))
    # the added text layer: tesseract's words of the upscaled page, upright where the page shows them
    wanted, got = scanpdf.words(scanpdf.TEXTS[1]), scanpdf.words(scanpdf.pdftotext(doc, 3))
    assert len(set(wanted) & set(got)) >= 0.9 * len(set(wanted))
    assert scanpdf.words(scanpdf.pdftotext(doc, 1)) == scanpdf.words(scanpdf.pdftotext(src, 1))


def test_rerun_after_a_failed_page_rebuilds_the_pdf_from_both_runs(scanned: Path, tmp_path: Path) -> None:
    """Page 2's file cannot be written (a folder stands in its place): no document, an error row naming it;
    the rerun redoes page 2 only and rebuilds the PDF with page 1 from the first run's records."""
    out = tmp_path / "out"
    blocker = out / "pages" / "papers_p0002.png"
    blocker.mkdir(parents=True)
    summary = _run(scanned.parent, out, tmp_path)
    assert summary["ok"] == 1 and summary["errors"] == 1
    assert not (out / "documents" / "papers.pdf").exists()
    blocker.rmdir()
    summary = _run(scanned.parent, out, tmp_path)
    assert summary["pages"] == 1 and summary["ok"] == 1
    doc = out / "documents" / "papers.pdf"
    assert [(im["width"], im["height"]) for im in scanpdf.pdfimages_list(doc)] == [(1706, 2200), (1508, 2000)]
    assert _structure(doc) == _structure(scanned)
    assert scanpdf.words(scanpdf.pdftotext(doc)) == scanpdf.words(scanpdf.pdftotext(scanned))


def test_turned_pages_keep_their_look_on_both_paths(tmp_path: Path) -> None:
    """/Rotate 0, 90, 180, 270: the in-place image lands as the page showed it; a painted-over picture
    lands upright on the crop box, to the pixel (a mark in its top-left corner is found there)."""
    src = tmp_path / "turned.pdf"
    pdf = pikepdf.new()
    scan = np.ascontiguousarray(scanpdf.page_image(1)[::4, ::4])  # small: 189x250 at 25 ppi
    for rotate in (0, 90, 180, 270, 0, 90, 180, 270):
        scanpdf.image_page(pdf, scan, 25, rotate)
    pdf.save(src)
    pages = list(read_pages(list(discover([src], LIMITS)), PdfConfig(), LIMITS))
    outs = []
    for page in pages:
        file = tmp_path / f"p{page.page_index}.png"
        assert page.pdf_path == "in_place"
        if page.page_index < 4:  # in place: the scan's own pixels as the page shows them, 2x nearest
            big = page.image.repeat(2, axis=0).repeat(2, axis=1)
        else:  # as if rasterised: a white picture at 50 dpi of the displayed page, a black mark top left
            big = np.full((500, 378) if page.page_index % 2 == 0 else (378, 500), 255, np.uint8)
            big[:50, :50] = 0
        file.write_bytes(encode_grey_png(np.ascontiguousarray(big)))
        outs.append(PageOut("in_place" if page.page_index < 4 else "rasterised", str(file)))
    doc = tmp_path / "out.pdf"
    rebuild_pdf(src.read_bytes(), outs, doc)
    for n in range(1, 5):
        a, b = scanpdf.render(src, n).astype(float), scanpdf.render(doc, n).astype(float)
        assert a.shape == b.shape and np.abs(a - b).mean() < 4, n
    for n in range(5, 9):
        shown = scanpdf.render(doc, n, 50)
        ys, xs = np.nonzero(shown < 128)
        assert (ys.min(), xs.min(), ys.max(), xs.max()) == (0, 0, 49, 49), n


@pytest.mark.shared_data
def test_real_pdfs_are_read_at_their_scans_resolution(shared_data: Path) -> None:
    """The shared PDFs (pdfimages -list: 2400, 230/200/1440, 300 JBIG2, 300 CCITT, 150/300/96/96/72/147 ppi)."""
    pdfs = sorted((shared_data / "pdfs").glob("*.pdf"))
    docs = list(discover(pdfs, LIMITS))
    plans = {}
    for doc in docs:
        with pikepdf.open(doc.source) as pdf:
            for i, page in enumerate(pdf.pages):
                plans[(Path(doc.source).name, i)] = plan_page(pdf, page, PdfConfig(), LIMITS.max_pixels)
    assert {k: (p.path, round(p.dpi)) for k, p in plans.items() if k[0] in ("ccitt.pdf", "jbig2.pdf")} == {
        ("ccitt.pdf", 0): ("in_place", 300), ("jbig2.pdf", 0): ("in_place", 300)}
    assert [round(plans[("multipage.pdf", i)].dpi) for i in range(6)] == [150, 298, 96, 96, 72, 147]
    assert plans[("multipage.pdf", 1)].dpi_reason == "capped"  # 9000x9000 at 300 ppi: over limits.max_pixels
    assert plans[("multipage.pdf", 5)].note == "the scan image has a SMask"
    assert [plans[("cardinal.pdf", i)].size_pt for i in range(4)] == [(612, 792), (792, 612)] * 2
    (ccitt,) = [p for p in read_pages([d for d in docs if d.source.endswith("ccitt.pdf")], PdfConfig(), LIMITS)]
    assert ccitt.image.shape == (3300, 2550) and ccitt.pdf_path == "in_place" and ccitt.dpi == 300.0


@pytest.mark.shared_data
def test_real_jbig2_scan_turned_four_ways_is_replaced_in_place(shared_data: Path, tmp_path: Path) -> None:
    """cardinal.pdf: one JBIG2 image shown turned four ways on four pages; replaced once by 8-bit Flate,
    each page still showing it as before."""
    src = shared_data / "pdfs" / "cardinal.pdf"
    pages = list(read_pages(list(discover([src], LIMITS)), PdfConfig(), LIMITS))
    outs = []
    for page in pages:
        file = tmp_path / f"p{page.page_index}.png"
        file.write_bytes(encode_grey_png(page.image.repeat(2, axis=0).repeat(2, axis=1)))
        outs.append(PageOut(page.pdf_path, str(file)))
    doc = tmp_path / "cardinal.pdf"
    rebuild_pdf(src.read_bytes(), outs, doc)
    images = scanpdf.pdfimages_list(doc)
    assert {(im["width"], im["height"], im["enc"], im["bpc"], im["x_ppi"]) for im in images} == {
        (5100, 6600, "image", 8, 600)}
    for n in range(1, 5):
        a, b = scanpdf.render(src, n, 20).astype(float), scanpdf.render(doc, n, 20).astype(float)
        assert a.shape == b.shape and np.abs(a - b).mean() < 3, n


def test_config_native_and_numbers() -> None:
    from srgan.config import ConfigError, PipelineConfig, config_from_dict, output_config_hash

    assert PdfConfig().native and not PdfConfig(dpi=150).native
    assert config_from_dict({"pdf": {"dpi": 200}}).pdf.dpi == 200
    for bad in ("native2", "150", 5):
        with pytest.raises(ConfigError, match="pdf.dpi"):
            config_from_dict({"pdf": {"dpi": bad}})
    with pytest.raises(ConfigError, match="upscale.ocr_layer"):
        config_from_dict({"upscale": {"ocr_layer": "yes"}})
    base = PipelineConfig()
    assert output_config_hash(override(base, "upscale.ocr_layer", "add")) != output_config_hash(base)
    assert output_config_hash(override(base, "pdf.fallback_dpi", 200)) != output_config_hash(base)
    # native: limits.max_pixels caps a page's resolution, so it is part of the rerun key; a forced dpi: not
    assert output_config_hash(override(base, "limits.max_pixels", 10**6)) != output_config_hash(base)
    forced = override(base, "pdf.dpi", 150)
    assert output_config_hash(override(forced, "limits.max_pixels", 10**6)) == output_config_hash(forced)
