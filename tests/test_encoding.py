"""Page encodings (srgan/encoding, upscale.encoding): each decodes back to the quantisation it promises, in its page
file and in a PDF; a scan-only page whose image is placed skewed gets its image replaced in place; rows carry the
encoding and the bytes written."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pikepdf
import pytest
from PIL import Image

from srgan.config import ConfigError, PdfConfig, PipelineConfig, config_from_dict, output_config_hash, override
from srgan.encoding import codecs
from srgan.pdf.image import read_pixels, replace_image
from srgan.pdf.plan import plan_page
from srgan.pdf.rebuild import PageOut, rebuild_pdf
from srgan.pipeline.records import read_records
from tests import scanpdf
from tests.conftest import text_like_page
from tests.test_documents import _cfg, _run

LEVELS = {"png8": 256, "png4": 16, "png2": 4, "bitonal": 2}


def _page(h: int = 37, w: int = 29) -> np.ndarray:
    """Every grey level, and a letter-like page: odd sizes so packed rows end in padding."""
    ramp = np.arange(h * w, dtype=np.int64).reshape(h, w) % 256
    return np.where(text_like_page(h, w) < 128, ramp // 4, ramp).astype(np.uint8)


@pytest.mark.parametrize("name", list(LEVELS))
def test_each_lossless_encoding_decodes_to_its_levels(name: str) -> None:
    page, enc = _page(), codecs.get(name)
    data = codecs.encode(page, enc, 200.0)
    back = codecs.decode(data)
    want = codecs.intended(page, enc)
    assert np.array_equal(back, want)
    step = 255 // (LEVELS[name] - 1)
    assert set(np.unique(want)) <= {i * step for i in range(LEVELS[name])}
    assert np.abs(want.astype(int) - page).max() <= step // 2  # the nearest level
    with Image.open(io.BytesIO(data)) as im:  # a real PNG at the encoding's bit depth, tagged with its dpi
        assert im.format == "PNG" and round(im.info["dpi"][0]) == 200
        assert data[24] == enc.bits


def test_bitonal_is_a_threshold_at_mid_grey_and_jp2_is_near_the_page() -> None:
    ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert np.array_equal(codecs.intended(ramp, codecs.get("bitonal")), np.where(ramp < 128, 0, 255))
    page = np.repeat(np.repeat(text_like_page(64, 48), 2, 0), 2, 1)
    data = codecs.encode(page, codecs.get("jp2"), 300.0)
    back = codecs.decode(data)
    assert data[4:8] == b"jP  " and back.shape == page.shape
    mse = float(np.mean((back.astype(float) - page) ** 2))
    assert 10 * math.log10(255**2 / max(mse, 1e-9)) > codecs.JP2_DB - 3
    with Image.open(io.BytesIO(data)) as im:  # the resolution box
        assert round(im.info["dpi"][0]) == 300


def test_colour_pages_stay_8_bit_under_grey_level_encodings_and_bad_values_are_refused() -> None:
    rgb = np.zeros((4, 4, 3), np.uint8)
    assert codecs.for_page("png2", rgb).name == "png8" and codecs.for_page("jp2", rgb).name == "jp2"
    assert codecs.for_page("png2", rgb[..., 0]).name == "png2"
    assert codecs.decode(codecs.encode(rgb, codecs.get("png8"), None)).shape == (4, 4, 3)
    with pytest.raises(ConfigError, match=r"^upscale\.encoding: must be png8, png4, png2, bitonal or jp2"):
        config_from_dict({"upscale": {"encoding": "png3"}})
    assert config_from_dict({"upscale": {"encoding": "bitonal"}}).upscale.encoding == "bitonal"


@pytest.mark.parametrize("name", codecs.NAMES)
def test_each_encoding_goes_into_a_pdf_image_that_decodes_to_the_page_file(name: str, tmp_path: Path) -> None:
    page = _page(40, 33)
    file = tmp_path / f"page.{codecs.get(name).ext}"
    file.write_bytes(codecs.encode(page, codecs.get(name), 100.0))
    pdf = pikepdf.new()
    scanpdf.image_page(pdf, page, 100)
    objgen = pdf.pages[0].Resources.XObject.Im0.objgen
    pixels, _ = read_pixels(str(file))
    replace_image(pdf, objgen, pixels, "grey")
    pdf.save(tmp_path / "out.pdf")
    with pikepdf.open(tmp_path / "out.pdf") as out:
        image = out.pages[0].Resources.XObject.Im0
        filt = {"png8": "/FlateDecode", "png4": "/FlateDecode", "png2": "/FlateDecode",
                "bitonal": "/CCITTFaxDecode", "jp2": "/JPXDecode"}[name]
        assert str(image.Filter) == filt
        if name in LEVELS:
            assert int(image.BitsPerComponent) == codecs.get(name).bits
            got = np.asarray(pikepdf.PdfImage(image).as_pil_image().convert("L"))
            assert np.array_equal(got, codecs.intended(page, codecs.get(name)))
        else:  # JPEG 2000: the page file itself
            assert image.read_raw_bytes() == file.read_bytes()


def _skewed_scan_pdf(path: Path, with_text: bool = False) -> Path:
    """One page whose only content is a scan image placed rotated by 1.5 degrees (as a crooked scan is)."""
    scan = text_like_page(120, 90)
    pdf = pikepdf.new()
    page = scanpdf.image_page(pdf, scan, 100)
    w, h = 90 * 72 / 100, 120 * 72 / 100
    t = math.radians(1.5)
    cm = (w * math.cos(t), w * math.sin(t), -h * math.sin(t), h * math.cos(t), 10, 10)
    text = b" BT /F1 9 Tf 5 5 Td (x) Tj ET" if with_text else b""
    page.Contents = pikepdf.Stream(pdf, ("q " + " ".join(f"{v:.4f}" for v in cm) + " cm /Im0 Do Q").encode() + text)
    page.MediaBox = [0, 0, w + 20, h + 20]
    pdf.save(path)
    return path


@pytest.mark.skipif(not shutil.which("qpdf"), reason="needs qpdf (make system)")
def test_scan_only_page_placed_skewed_gets_its_image_replaced_in_place(tmp_path: Path) -> None:
    src = _skewed_scan_pdf(tmp_path / "crooked.pdf")
    with pikepdf.open(src) as pdf:
        plan = plan_page(pdf, pdf.pages[0], PdfConfig(), 10**8)
        old = pdf.pages[0].Resources.XObject.Im0.read_raw_bytes()
    assert plan.path == "in_place" and plan.orientation.upright and round(plan.dpi) == 100
    with pikepdf.open(_skewed_scan_pdf(tmp_path / "crooked_text.pdf", with_text=True)) as pdf:
        busy = plan_page(pdf, pdf.pages[0], PdfConfig(), 10**8)
    assert busy.path == "rasterised" and "shows more than the image" in busy.note
    big = np.repeat(np.repeat(text_like_page(120, 90), 2, 0), 2, 1)
    file = tmp_path / "p.png"
    file.write_bytes(codecs.encode(big, codecs.get("png2"), 200.0))
    out = tmp_path / "out.pdf"
    rebuild_pdf(src.read_bytes(), [PageOut("in_place", str(file))], out)
    subprocess.run(["qpdf", "--check", str(out)], check=True, capture_output=True)
    with pikepdf.open(out) as pdf:
        images = [o for o in pdf.objects if isinstance(o, pikepdf.Stream) and o.get("/Subtype") == "/Image"]
        assert len(images) == 1  # the new image only: the old one is not kept under it
        (image,) = images
        assert (int(image.Width), int(image.Height), int(image.BitsPerComponent)) == (180, 240, 2)
        assert image.read_raw_bytes() != old
        assert pdf.pages[0].Contents.read_bytes().startswith(b"q ")  # its placement untouched
    assert out.read_bytes().count(b"/Subtype /Image") == 1


def test_rows_carry_encoding_and_bytes_written(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    Image.fromarray(text_like_page(60, 50)).save(inp / "a.png")
    scan = text_like_page(80, 64)
    pdf = pikepdf.new()
    scanpdf.image_page(pdf, scan, 50)
    pdf.save(inp / "b.pdf")
    out = tmp_path / "out"
    _run(inp, out, _cfg(tmp_path, upscale__encoding="bitonal", upscale__output_format="document",
                        pdf__dpi="native"))
    rows = {r["member"]: r for r in read_records(out / "records").to_pylist()}
    for row in rows.values():
        assert row["status"] == "ok" and row["encoding"] == "bitonal"
        assert row["output_bytes"] == Path(row["output_path"]).stat().st_size
        assert row["document_bytes"] == Path(row["document_path"]).stat().st_size
    back = codecs.decode(Path(rows["a.png"]["output_path"]).read_bytes())
    assert set(np.unique(back)) <= {0, 255}
    with pikepdf.open(rows["b.pdf"]["document_path"]) as doc:
        (image,) = [o for o in doc.objects if isinstance(o, pikepdf.Stream) and o.get("/Subtype") == "/Image"]
        assert str(image.Filter) == "/CCITTFaxDecode" and (int(image.Width), int(image.Height)) == (128, 160)


def test_encoding_is_part_of_the_rerun_key_and_png8_keeps_the_key_of_pages_written_before() -> None:
    cfg = PipelineConfig().validate()
    eight = override(cfg, "upscale.encoding", "png8")
    assert output_config_hash(override(cfg, "upscale.encoding", "png2")) != output_config_hash(eight)
    shaping = {k: dataclasses.asdict(getattr(eight, k)) for k in ("upscale", "tiling", "engine", "pdf")}
    for section, key in (("upscale", "png_compress_level"), ("engine", "cpu_workers"), ("engine", "fold_tail"),
                         ("upscale", "encoding"), ("engine", "runtime"), ("engine", "runtime_cache")):
        shaping[section].pop(key)
    shaping["limits"] = {"max_pixels": eight.limits.max_pixels}
    before = hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]
    assert output_config_hash(eight) == before  # the hash as it was computed before the key existed
