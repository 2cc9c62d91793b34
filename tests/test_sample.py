"""srgan.sample: text page renderer, machine fonts, synthetic pages, the RVL-CDIP-style sample set."""

from __future__ import annotations

import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srgan.config import LimitsConfig, PdfConfig
from srgan.readers import discover, read_pages
from srgan.sample import find_fonts, make_sample, render_text_page, synthetic_page


@pytest.fixture(scope="module")
def font() -> str:
    fonts = find_fonts()
    if not fonts:
        pytest.skip("no TrueType fonts installed (make installs fonts-dejavu-core, fonts-liberation)")
    return fonts[0]


def test_find_fonts_sorted_existing_ttf() -> None:
    fonts = find_fonts()
    assert fonts == sorted(fonts) and fonts == find_fonts()
    assert all(Path(f).is_file() and f.lower().endswith(".ttf") for f in fonts)
    if any("DejaVu" in f or "Liberation" in f for f in fonts):
        assert all("DejaVu" in Path(f).name or "Liberation" in Path(f).name for f in fonts)


def test_render_text_page_shape_and_x_height(font: str) -> None:
    page, x_height = render_text_page("Hello world, the quick brown fox.\n---\nA\tB\tC", font, 12, 100)
    assert page.shape == (1100, 850) and page.dtype == np.uint8 and page.flags.c_contiguous
    assert page.min() == 0 and page[:100].min() == 255  # ink only inside the 1 inch margin
    # 12 pt at 100 dpi is 16.7 px; Latin x-heights are about 0.45-0.6 of the em
    assert 0.4 * 16.7 <= x_height <= 0.65 * 16.7
    _, double = render_text_page("x", font, 24, 100)
    assert double == pytest.approx(2 * x_height, abs=1.5)


def test_render_is_deterministic_and_wraps(font: str) -> None:
    text = " ".join(["wrapping"] * 200)
    a, _ = render_text_page(text, font, 10, 72, width_in=4, height_in=6, margin_in=0.5)
    b, _ = render_text_page(text, font, 10, 72, width_in=4, height_in=6, margin_in=0.5)
    assert np.array_equal(a, b) and a.shape == (432, 288)
    ink_cols = np.nonzero((a < 128).any(axis=0))[0]
    assert ink_cols.min() >= 36 and ink_cols.max() < 288 - 36 + 2
    ink_rows = np.nonzero((a < 128).any(axis=1))[0]
    assert ink_rows.max() - ink_rows.min() > 200  # many wrapped lines


def test_synthetic_page_deterministic_per_seed() -> None:
    a, xa = synthetic_page(1, dpi=100)
    b, xb = synthetic_page(1, dpi=100)
    c, _ = synthetic_page(2, dpi=100)
    assert np.array_equal(a, b) and xa == xb and not np.array_equal(a, c)
    assert a.shape == (1100, 850) and a.dtype == np.uint8
    # 8-14 pt at 100 dpi: x-height between ~4 and ~12 px
    assert 3 <= xa <= 13 and (a < 128).mean() > 0.005
    noisy, _ = synthetic_page(1, dpi=100, scan=True)
    assert noisy.shape == a.shape and not np.array_equal(noisy, a)


def test_make_sample_layout_and_readback(tmp_path: Path) -> None:
    start = time.perf_counter()
    paths = make_sample(tmp_path / "s", pages=6, seed=0)
    assert time.perf_counter() - start < 10
    archive, pdf, originals = paths["archive"], paths["pdf"], paths["originals"]
    assert archive.name == "rvl_sample.tar.gz" and pdf.name == "sample.pdf" and originals.is_dir()
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
    images = [n for n in names if n.startswith("images/")]
    assert len(images) == 6 and all(n.endswith(".tif") and n.count("/") == 3 for n in images)
    assert {"labels/train.txt", "labels/val.txt", "labels/test.txt"} <= set(names)
    assert len(paths["original_files"]) == 6
    for name in images:
        assert (originals / name.removeprefix("images/")).with_suffix(".png").is_file()

    limits = LimitsConfig()
    docs = list(discover([archive], limits))
    assert len(docs) == 6 and all(d.label is not None for d in docs)
    assert {d.split for d in docs} == {"train", "val", "test"}
    pages = list(read_pages(docs, PdfConfig(dpi=72), limits))
    for page in pages:
        assert page.error is None and max(page.image.shape) == 1000
        assert page.dpi == pytest.approx(300 * 1000 / 3300, abs=0.05)
    original = np.asarray(Image.open(paths["original_files"][0]))
    assert original.shape == (3300, 2550)

    pdf_pages = list(read_pages(list(discover([pdf], limits)), PdfConfig(dpi=72), limits))
    assert [p.page_count for p in pdf_pages] == [3, 3, 3] and all(p.error is None for p in pdf_pages)
    assert pdf_pages[0].image.shape == (792, 612)


def test_make_sample_deterministic(tmp_path: Path) -> None:
    a = make_sample(tmp_path / "a", pages=2, seed=3)
    b = make_sample(tmp_path / "b", pages=2, seed=3)
    assert a["archive"].read_bytes() == b["archive"].read_bytes()
