"""Archive members read by offset: uncompressed tars in place, compressed tars from a spooled copy."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import pytest

from srgan.config import LimitsConfig, PdfConfig
from srgan.readers import discover, read_pages
from srgan.readers.sources import is_plain_tar
from srgan.readers.spool import spool_archives
from tests.test_readers import _png, gradient, write_tar

LIMITS = LimitsConfig()
PDF = PdfConfig(dpi=72)


def members(n: int = 6) -> list[tuple[str, bytes]]:
    """n distinct small PNG pages (and a long name, which tar stores in an extra header)."""
    out = [(f"scan/p{i:02d}.png", _png((gradient() + i).astype(np.uint8))) for i in range(n)]
    out.append(("scan/" + "long_" * 30 + "name.png", _png(gradient())))
    return out


def refuse_streaming(monkeypatch) -> None:
    """From here on, any streaming pass over an archive fails the test: members must be read by offset."""

    def refuse(*args, **kwargs):
        raise AssertionError("archive streamed")

    monkeypatch.setattr(tarfile, "open", refuse)


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_discovery_records_data_offsets(tmp_path: Path, mode: str) -> None:
    archive = write_tar(tmp_path / "a.tar", members(), mode)
    docs = list(discover([archive], LIMITS))
    assert len(docs) == 7 and all(d.offset > 0 for d in docs)
    assert is_plain_tar(archive) == (mode == "w")


def test_plain_tar_members_are_read_by_offset(tmp_path: Path, monkeypatch) -> None:
    archive = write_tar(tmp_path / "a.tar", members())
    docs = list(discover([archive], LIMITS))
    streamed = list(read_pages(docs[4:], PDF, LIMITS))
    refuse_streaming(monkeypatch)
    by_offset = list(read_pages(docs[4:], PDF, LIMITS))
    assert [p.error for p in by_offset] == [None, None, None]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(streamed, by_offset, strict=True))
    assert np.array_equal(by_offset[0].image, (gradient() + 4).astype(np.uint8))


@pytest.mark.parametrize("mode", ["w:gz", "w:xz"])
def test_compressed_tar_is_spooled_once_up_to_the_last_wanted_member(tmp_path: Path, mode: str,
                                                                     monkeypatch) -> None:
    archive = write_tar(tmp_path / "a.tar.gz", members(), mode)
    docs = list(discover([archive], LIMITS))  # discovery's own pass
    refuse_streaming(monkeypatch)
    spooled = spool_archives(docs[:3], tmp_path / "spool")
    assert len({d.spool for d in spooled}) == 1 and Path(spooled[0].spool).is_file()
    assert Path(spooled[0].spool).stat().st_size == docs[2].offset + docs[2].size_bytes  # not the whole archive
    pages = list(read_pages(spooled[1:], PDF, LIMITS))
    assert [p.error for p in pages] == [None, None]
    assert np.array_equal(pages[1].image, (gradient() + 2).astype(np.uint8))


def test_changed_spool_is_caught_by_the_checksum(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "a.tar.gz", members(), "w:gz")
    docs = spool_archives(list(discover([archive], LIMITS)), tmp_path / "spool")
    spool = Path(docs[0].spool)
    data = bytearray(spool.read_bytes())
    data[docs[1].offset + 40] ^= 0xFF
    spool.write_bytes(bytes(data))
    pages = list(read_pages(docs[:3], PDF, LIMITS))
    assert [p.error is None for p in pages] == [True, False, True]
    assert "changed since discovery" in pages[1].error and "scan/p01.png" in pages[1].error


def test_damaged_archive_is_left_to_the_streaming_reader(tmp_path: Path, caplog) -> None:
    archive = write_tar(tmp_path / "a.tar.gz", members(), "w:gz")
    docs = list(discover([archive], LIMITS))
    archive.write_bytes(archive.read_bytes()[:40])  # cut after discovery
    spooled = spool_archives(docs, tmp_path / "spool")
    assert all(d.spool == "" for d in spooled)
    assert "cannot spool" in caplog.text and str(archive) in caplog.text
    pages = list(read_pages(spooled, PDF, LIMITS))
    assert len(pages) == 7 and all(p.error for p in pages)  # one error row per document, none lost
