"""Bounded fuzzing of the readers: random and mutated files never raise, only pages or error pages.

Valid TIFF/PNG/JPEG/PDF/tar/tar.gz/zip bytes are mutated (bytes flipped, cut, spliced) and fed
through discover + read_pages under small limits. Examples are derandomized under CI (CI=true) so
a run there is repeatable; locally each run explores new inputs (SRGAN_FUZZ_EXAMPLES=2000 for a long
hunt). No example database is written.
"""

from __future__ import annotations

import os
import tempfile
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from srgan.config import LimitsConfig, PdfConfig
from srgan.readers import discover, read_pages
from tests import badfiles as bf

pytestmark = pytest.mark.slow

LIMITS = LimitsConfig(max_pixels=2_000_000, max_member_bytes=256 * 1024)
PDF = PdfConfig(dpi=20, max_pages=3, render_timeout_s=2)
FUZZ = settings(max_examples=int(os.environ.get("SRGAN_FUZZ_EXAMPLES", "200")), deadline=None, database=None,
                derandomize=bool(os.environ.get("CI")),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@cache
def seeds() -> dict[str, bytes]:
    """One small valid file per format the readers take (the name's extension picks the reader)."""
    page = bf.good_png(0, 40, 30)
    return {
        "a.tif": bf.good_tiff(1, 40, 30),
        "a.png": page,
        "a.jpg": bf.image_bytes(np.full((40, 30), 90, np.uint8), "JPEG"),
        "a.pdf": bf.good_pdf(1),
        "a.tar": bf.tar_bytes([("x/p.png", page), ("labels/train.txt", b"p.png 1\n"),
                               ("q.tif", bf.good_tiff(2, 20, 20))]),
        "a.tar.gz": bf.tar_bytes([("p.png", page), ("q.pdf", bf.good_pdf(1))], "w:gz"),
        "a.zip": bf.zip_bytes([("p.png", page), ("d/q.tif", bf.good_tiff(3, 20, 20))]),
    }


def _mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """Apply (kind, position, value) edits: 0 flip a byte, 1 cut there, 2 insert a byte, 3 zero a run."""
    out = bytearray(data)
    for kind, pos, value in edits:
        if not out:
            break
        i = pos % len(out)
        if kind == 0:
            out[i] ^= value or 1
        elif kind == 1:
            del out[i:]
        elif kind == 2:
            out[i:i] = bytes([value])
        else:
            out[i : i + value] = bytes(len(out[i : i + value]))
    return bytes(out)


EDITS = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.integers(0, 255)), min_size=1, max_size=6)


def _check(name: str, data: bytes) -> None:
    """Write data as name and read it: every page an image or a one-line error; nothing raised."""
    with tempfile.TemporaryDirectory(prefix="srgan-fuzz-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        docs = list(discover([path], LIMITS))
        pages = list(read_pages(docs, PDF, LIMITS))
        if not name.endswith((".tar", ".tgz", ".tar.gz", ".zip")):  # an archive may hold no page at all
            assert pages, "every file yields at least one page or error page"
        assert len(pages) <= 20
        for page in pages:
            if page.error is None:
                assert page.image is not None and page.image.dtype == np.uint8 and page.image.ndim == 2
                assert 0 < page.image.size <= LIMITS.max_pixels
            else:
                assert page.image is None and "\n" not in page.error and page.error.encode("utf-8")
        assert sorted(p.name for p in Path(tmp).iterdir()) == [name]  # nothing extracted beside it


@FUZZ
@given(name=st.sampled_from(sorted(seeds())), edits=EDITS)
def test_mutated_files_never_raise(name: str, edits) -> None:
    _check(name, _mutate(seeds()[name], edits))


@FUZZ
@given(name=st.sampled_from(["r.tif", "r.png", "r.jpeg", "r.pdf", "r.tar", "r.tgz", "r.zip"]),
       data=st.binary(max_size=4096))
def test_random_bytes_never_raise(name: str, data: bytes) -> None:
    _check(name, data)


@FUZZ
@given(name=st.sampled_from(sorted(seeds())), other=st.sampled_from(sorted(seeds())), edits=EDITS)
def test_wrong_extension_never_raises(name: str, other: str, edits) -> None:
    """A valid (or mutated) file of one format under another format's name."""
    _check("w" + other, _mutate(seeds()[name], edits) if edits[0][0] else seeds()[name])
