"""srgan.readers: discovery (folders, streamed archives), decoding of every image mode, PDFs, bad input."""

from __future__ import annotations

import io
import os
import struct
import tarfile
import time
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srgan.config import LimitsConfig, PdfConfig
from srgan.readers import DocumentRef, Page, discover, read_pages

LIMITS = LimitsConfig()
PDF72 = PdfConfig(dpi=72)
DATA = Path(__file__).parents[1].parent / "shared" / "data"


def gradient(h: int = 40, w: int = 60) -> np.ndarray:
    return (np.arange(h * w).reshape(h, w) % 256).astype(np.uint8)


def tiff_bytes(im: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="TIFF", **kw)
    return buf.getvalue()


def pages_of(inputs, limits: LimitsConfig = LIMITS, pdf: PdfConfig = PDF72) -> list[Page]:
    return list(read_pages(list(discover(inputs, limits)), pdf, limits))


def ok(pages: list[Page]) -> list[Page]:
    return [p for p in pages if p.error is None]


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


@pytest.fixture
def no_extract(monkeypatch):
    """Any attempt to extract an archive to disk fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("archive member extracted to disk")

    monkeypatch.setattr(tarfile.TarFile, "extract", refuse)
    monkeypatch.setattr(tarfile.TarFile, "extractall", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "extract", refuse)
    monkeypatch.setattr(zipfile.ZipFile, "extractall", refuse)


# ------------------------------------------------------------------ modes


def test_every_mode_becomes_uint8_grey(tmp_path: Path) -> None:
    g = gradient()
    u16 = g.astype(np.uint16) * 257
    bits = Image.fromarray(g > 127).convert("1")
    rgba = np.zeros((40, 60, 4), np.uint8)  # black, fully transparent -> white
    Image.fromarray(g).save(tmp_path / "a_l8.tif", dpi=(200, 200))
    bits.save(tmp_path / "b_1bit.tif", compression="group4")
    Image.fromarray(u16).save(tmp_path / "c_16.tif")
    Image.fromarray(g).convert("P").save(tmp_path / "d_pal.tif")
    Image.fromarray(np.dstack([g, g, g])).save(tmp_path / "e_rgb.tif")
    Image.fromarray(rgba).save(tmp_path / "f_rgba.png")
    Image.fromarray(u16).save(tmp_path / "g_16.png")
    Image.fromarray(np.dstack([g, g, g])).save(tmp_path / "h.jpg", quality=95, dpi=(150, 150))
    Image.fromarray(np.dstack([g, g, g])).convert("CMYK").save(tmp_path / "i_cmyk.tif")
    Image.fromarray(g.astype(np.float32) / 255).save(tmp_path / "j_float.tif")
    pages = pages_of([tmp_path])
    assert [p.doc.rel_path for p in pages] == ["a_l8", "b_1bit", "c_16", "d_pal", "e_rgb", "f_rgba",
                                              "g_16", "h", "i_cmyk", "j_float"]
    for page in pages:
        assert page.error is None, page.error
        assert page.image.dtype == np.uint8 and page.image.shape == (40, 60)
        assert page.image.flags.c_contiguous and (page.page_index, page.page_count) == (0, 1)
    by = {p.doc.rel_path: p for p in pages}
    assert np.array_equal(by["a_l8"].image, g) and by["a_l8"].dpi == 200
    assert set(np.unique(by["b_1bit"].image)) <= {0, 255}
    assert np.array_equal(by["b_1bit"].image == 255, g > 127)
    assert np.array_equal(by["c_16"].image, g) and np.array_equal(by["g_16"].image, g)
    assert np.abs(by["d_pal"].image.astype(int) - g).max() <= 8
    assert np.abs(by["e_rgb"].image.astype(int) - g).max() <= 1
    assert (by["f_rgba"].image == 255).all()
    assert np.abs(by["h"].image.astype(int) - g).mean() < 4 and by["h"].dpi == 150
    assert np.abs(by["i_cmyk"].image.astype(int) - g).max() <= 2
    assert np.abs(by["j_float"].image.astype(int) - g).max() <= 1
    assert by["e_rgb"].dpi is None


def test_multipage_tiff_yields_each_frame(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((30 + i, 20), 50 * i, np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / "multi.tiff", save_all=True, append_images=frames[1:], dpi=(300, 300))
    pages = pages_of([tmp_path / "multi.tiff"])
    assert [(p.page_index, p.page_count) for p in pages] == [(0, 3), (1, 3), (2, 3)]
    assert [p.image.shape for p in pages] == [(30, 20), (31, 20), (32, 20)]
    assert [int(p.image[0, 0]) for p in pages] == [0, 50, 100]
    assert pages[0].doc.rel_path == "multi" and pages[0].doc.member == "multi.tiff"
    assert pages[0].doc.container == "" and pages[0].doc.source == str(tmp_path / "multi.tiff")


def test_pdf_pages_max_pages_and_pixel_cap(tmp_path: Path) -> None:
    pics = [Image.fromarray(np.full((200, 150), v, np.uint8)) for v in (0, 128, 255)]
    pics[0].save(tmp_path / "doc.pdf", save_all=True, append_images=pics[1:], resolution=100.0)
    pages = pages_of([tmp_path / "doc.pdf"])
    assert [(p.page_index, p.page_count, p.error) for p in pages] == [(0, 3, None), (1, 3, None), (2, 3, None)]
    assert pages[0].image.shape == (144, 108) and pages[0].dpi == 72.0  # 2 x 1.5 inch at 72 dpi
    assert pages[0].image.mean() < 10 and pages[2].image.mean() > 245
    capped = pages_of([tmp_path / "doc.pdf"], pdf=PdfConfig(dpi=72, max_pages=2))
    assert [p.error is None for p in capped] == [True, True, False]
    assert "max_pages" in capped[2].error and capped[2].page_index == 2
    small = LimitsConfig(max_pixels=100 * 100)
    big = pages_of([tmp_path / "doc.pdf"], limits=small)
    assert all(p.image is None and "max_pixels" in p.error for p in big) and len(big) == 3


# ------------------------------------------------------------------ discovery


def test_folder_recursion_sorted_and_filtered(tmp_path: Path) -> None:
    g = Image.fromarray(gradient())
    (tmp_path / "b" / "c").mkdir(parents=True)
    g.save(tmp_path / "b" / "c" / "deep.PNG")
    g.save(tmp_path / "a.TIF", format="TIFF")
    g.save(tmp_path / "b" / "x.jpeg")
    (tmp_path / "notes.txt").write_text("not a page")
    (tmp_path / "b" / "data.csv").write_text("1,2")
    docs = list(discover([tmp_path], LIMITS))
    assert [d.member for d in docs] == ["a.TIF", "b/c/deep.PNG", "b/x.jpeg"]
    assert [d.rel_path for d in docs] == ["a", "b/c/deep", "b/x"]
    assert all(d.source == str(tmp_path) and d.container == "" and d.kind == "image" for d in docs)
    assert all(d.size_bytes > 0 for d in docs)


def test_same_stem_gets_unique_output_names(tmp_path: Path) -> None:
    g = Image.fromarray(gradient())
    g.save(tmp_path / "p.png")
    g.save(tmp_path / "p.tif")
    assert [d.rel_path for d in discover([tmp_path], LIMITS)] == ["p", "p_tif"]


def test_missing_input_and_unsupported_file(tmp_path: Path) -> None:
    (tmp_path / "x.docx").write_bytes(b"zz")
    docs = list(discover([tmp_path / "nope", tmp_path / "x.docx"], LIMITS))
    assert [d.kind for d in docs] == ["error", "error"]
    assert "not found" in docs[0].error and "unsupported" in docs[1].error
    pages = list(read_pages(docs, PDF72, LIMITS))
    assert [p.image for p in pages] == [None, None] and all(p.error for p in pages)


def _sample_members() -> list[tuple[str, bytes]]:
    g = gradient()
    return [("scan/one.tif", tiff_bytes(Image.fromarray(g), dpi=(100, 100))),
            ("readme.txt", b"ignored"),
            ("scan/sub/two.png", _png(g)),
            ("three.jpg", _jpeg(g))]


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


def write_tar(path: Path, members: list[tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_zip(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize("name,mode", [("set.tar", "w"), ("set.tar.gz", "w:gz"), ("set.tgz", "w:gz"),
                                       ("set.zip", None)])
def test_archives_stream_without_extraction(tmp_path: Path, no_extract, name: str, mode: str | None) -> None:
    box = tmp_path / "box"
    box.mkdir()
    archive = box / name
    write_zip(archive, _sample_members()) if mode is None else write_tar(archive, _sample_members(), mode)
    before = files_under(tmp_path)
    docs = list(discover([archive], LIMITS))
    stem = name.split(".")[0]
    assert [d.member for d in docs] == ["scan/one.tif", "scan/sub/two.png", "three.jpg"]
    assert [d.rel_path for d in docs] == [f"{stem}/scan/one", f"{stem}/scan/sub/two", f"{stem}/three"]
    assert all(d.container == str(archive) and d.source == str(archive) for d in docs)
    pages = list(read_pages(docs, PDF72, LIMITS))
    assert [p.error for p in pages] == [None, None, None]
    assert all(np.array_equal(p.image, gradient()) for p in pages[:2]) and pages[0].dpi == 100
    assert files_under(tmp_path) == before


def test_archive_inside_folder_is_opened(tmp_path: Path, no_extract) -> None:
    Image.fromarray(gradient()).save(tmp_path / "a.png")
    (tmp_path / "sub").mkdir()
    write_tar(tmp_path / "sub" / "pack.tar.gz", _sample_members(), "w:gz")
    docs = list(discover([tmp_path], LIMITS))
    assert [d.rel_path for d in docs] == ["a", "sub/pack/scan/one", "sub/pack/scan/sub/two", "sub/pack/three"]
    assert docs[1].container == str(tmp_path / "sub" / "pack.tar.gz") and docs[1].source == str(tmp_path)
    assert len(ok(list(read_pages(docs, PDF72, LIMITS)))) == 4


def test_read_pages_keeps_doc_order_across_archive(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "s.tar", _sample_members())
    docs = list(discover([archive], LIMITS))
    shuffled = [docs[2], docs[0], docs[1]]
    pages = list(read_pages(shuffled, PDF72, LIMITS))
    assert [p.doc for p in pages] == shuffled and all(p.error is None for p in pages)


def test_pdf_inside_archive(tmp_path: Path) -> None:
    buf = io.BytesIO()
    pics = [Image.fromarray(np.full((100, 100), v, np.uint8)) for v in (20, 220)]
    pics[0].save(buf, format="PDF", save_all=True, append_images=pics[1:], resolution=72.0)
    archive = write_zip(tmp_path / "p.zip", [("docs/x.pdf", buf.getvalue())])
    pages = pages_of([archive])
    assert [(p.page_index, p.page_count, p.error) for p in pages] == [(0, 2, None), (1, 2, None)]
    assert pages[0].image.shape == (100, 100) and pages[1].image.mean() > 200


# ------------------------------------------------------------------ hostile and broken input


def test_bad_tar_members_refused_nothing_written(tmp_path: Path, no_extract) -> None:
    data = tiff_bytes(Image.fromarray(gradient()))
    archive = tmp_path / "in" / "evil.tar"
    archive.parent.mkdir()
    with tarfile.open(archive, "w") as tar:
        for name in ("../x.tif", "/etc/x.tif", "ok.tif", "a/../../y.tif"):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link.tif")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
        hard = tarfile.TarInfo("hard.tif")
        hard.type, hard.linkname = tarfile.LNKTYPE, "ok.tif"
        tar.addfile(hard)
        dev = tarfile.TarInfo("dev.tif")
        dev.type = tarfile.CHRTYPE
        tar.addfile(dev)
    before = files_under(tmp_path)
    docs = list(discover([archive], LIMITS))
    kinds = {d.member: d.kind for d in docs}
    assert kinds == {"../x.tif": "error", "/etc/x.tif": "error", "ok.tif": "image", "a/../../y.tif": "error",
                     "link.tif": "error", "hard.tif": "error", "dev.tif": "error"}
    for doc in docs:
        assert ".." not in doc.rel_path.split("/") and not doc.rel_path.startswith("/")
    errors = {d.member: d.error for d in docs if d.error}
    assert "'..'" in errors["../x.tif"] and "absolute" in errors["/etc/x.tif"]
    assert "symlink" in errors["link.tif"] and "hard link" in errors["hard.tif"] and "device" in errors["dev.tif"]
    pages = list(read_pages(docs, PDF72, LIMITS))
    assert len(pages) == 7 and [p.doc.member for p in ok(pages)] == ["ok.tif"]
    assert files_under(tmp_path) == before
    assert not (tmp_path / "x.tif").exists() and not Path("/etc/x.tif").exists()


def test_bad_zip_members_refused(tmp_path: Path, no_extract) -> None:
    data = _png(gradient())
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../x.png", data)
        z.writestr("/abs/x.png", data)
        z.writestr("..\\win.png", data)
        link = zipfile.ZipInfo("link.png")
        link.external_attr = (0o120777 << 16)
        z.writestr(link, "/etc/passwd")
        z.writestr("fine.png", data)
    before = files_under(tmp_path)
    docs = list(discover([archive], LIMITS))
    assert {d.member: d.kind for d in docs} == {"../x.png": "error", "/abs/x.png": "error", "..\\win.png": "error",
                                                "link.png": "error", "fine.png": "image"}
    pages = list(read_pages(docs, PDF72, LIMITS))
    assert [p.doc.member for p in ok(pages)] == ["fine.png"]
    assert files_under(tmp_path) == before


def test_member_over_size_limit(tmp_path: Path) -> None:
    limits = LimitsConfig(max_member_bytes=2048)
    big = tiff_bytes(Image.fromarray(gradient(100, 100)))
    small = _png(np.zeros((8, 8), np.uint8))
    archive = write_tar(tmp_path / "s.tar.gz", [("big.tif", big), ("small.png", small)], "w:gz")
    docs = list(discover([archive], limits))
    assert [d.kind for d in docs] == ["error", "image"] and "max_member_bytes" in docs[0].error
    zarchive = write_zip(tmp_path / "s.zip", [("big.tif", big), ("small.png", small)])
    assert [d.kind for d in discover([zarchive], limits)] == ["error", "image"]


def test_zero_byte_truncated_and_next_document(tmp_path: Path) -> None:
    (tmp_path / "a_empty.tif").write_bytes(b"")
    full = tiff_bytes(Image.fromarray(gradient(200, 200)))
    (tmp_path / "b_trunc.tif").write_bytes(full[: len(full) // 2])
    (tmp_path / "c_garbage.png").write_bytes(b"not a png at all")
    (tmp_path / "d_empty.pdf").write_bytes(b"")
    (tmp_path / "e_bad.pdf").write_bytes(b"%PDF-1.4 nonsense")
    Image.fromarray(gradient()).save(tmp_path / "z_good.png")
    pages = pages_of([tmp_path])
    by = {p.doc.rel_path: p for p in pages}
    assert len(pages) == 6
    assert "empty file" in by["a_empty"].error and "empty file" in by["d_empty"].error
    assert "truncated" in by["b_trunc"].error and "b_trunc.tif" in by["b_trunc"].error
    assert by["c_garbage"].error and by["e_bad"].error
    for page in pages[:-1]:
        assert page.image is None and "\n" not in page.error
    assert by["z_good"].error is None and np.array_equal(by["z_good"].image, gradient())


def _bomb_png(width: int, height: int) -> bytes:
    data = bytearray(_png(np.zeros((4, 4), np.uint8)))
    # IHDR data starts at byte 16: width, height (big-endian); its CRC covers type + 13 data bytes
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_decompression_bomb_header_refused(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(_bomb_png(100_000, 100_000))
    (tmp_path / "mid.png").write_bytes(_bomb_png(9_000, 10_000))  # 9e7 px: over 80e6, under 2x
    Image.fromarray(gradient()).save(tmp_path / "z.png")
    start = time.perf_counter()
    pages = pages_of([tmp_path])
    assert time.perf_counter() - start < 5
    assert [p.doc.rel_path for p in pages] == ["bomb", "mid", "z"]
    assert pages[0].image is None and pages[1].image is None and pages[2].error is None
    assert "max_pixels" in pages[1].error
    assert "too large" in pages[0].error and "bomb.png" in pages[0].error


def test_corrupt_gzip_keeps_members_before_damage(tmp_path: Path, no_extract) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8)
    members = [(f"p{i}.tif", tiff_bytes(Image.fromarray(noise))) for i in range(4)]
    whole = write_tar(tmp_path / "w.tar.gz", members, "w:gz").read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: int(len(whole) * 0.6)])
    docs = list(discover([cut], LIMITS))
    good = [d for d in docs if d.kind != "error"]
    assert 1 <= len(good) < 4 and docs[-1].kind == "error" and "cannot read archive" in docs[-1].error
    pages = list(read_pages(docs, PDF72, LIMITS))
    assert len(pages) == len(docs) and pages[-1].error
    assert np.array_equal(pages[0].image, noise)


def test_garbage_archive_is_an_error_doc(tmp_path: Path) -> None:
    (tmp_path / "junk.tar").write_bytes(os.urandom(3000))
    (tmp_path / "junk.zip").write_bytes(b"PK\x03\x04 broken")
    docs = list(discover([tmp_path / "junk.tar", tmp_path / "junk.zip"], LIMITS))
    assert [d.kind for d in docs] == ["error", "error"]
    assert all(p.error for p in read_pages(docs, PDF72, LIMITS))


def test_archive_removed_after_discovery(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "s.tar", _sample_members())
    docs = list(discover([archive], LIMITS))
    archive.unlink()
    pages = list(read_pages(docs, PDF72, LIMITS))
    assert len(pages) == 3 and all(p.error for p in pages)


def test_dataclasses_shape() -> None:
    ref = DocumentRef(source="in", container="", member="a.tif", rel_path="a", kind="image")
    assert ref.label is None and ref.split is None and ref.size_bytes == 0 and ref.error is None
    with pytest.raises(AttributeError):
        ref.kind = "pdf"  # frozen


# ------------------------------------------------------------------ real scans


def _real_data() -> Path:
    if not DATA.is_dir():
        pytest.skip("../shared/data not present: real-scan tests need the shared data folder")
    return DATA


def test_real_scans_decode() -> None:
    scans = sorted(p for p in (_real_data() / "scans").iterdir() if p.suffix != ".txt")
    assert scans
    pages = list(read_pages(list(discover(scans, LIMITS)), PDF72, LIMITS))
    for scan in scans:
        mine = [p for p in pages if p.doc.source == str(scan)]
        assert ok(mine), [p.error for p in mine]
        for page in ok(mine):
            h, w = page.image.shape
            assert 0 < h * w <= LIMITS.max_pixels and page.image.dtype == np.uint8


def test_real_pdfs_render_bounded() -> None:
    pdfs = sorted((_real_data() / "pdfs").glob("*.pdf"))
    assert pdfs
    limits = LimitsConfig(max_pixels=4_000_000)
    start = time.perf_counter()
    pages = list(read_pages(list(discover(pdfs, limits)), PDF72, limits))
    assert time.perf_counter() - start < 60
    for pdf in pdfs:
        mine = [p for p in pages if p.doc.source == str(pdf)]
        assert ok(mine), [p.error for p in mine]
        assert [p.page_index for p in mine] == list(range(mine[0].page_count))
        for page in mine:
            assert page.error or (page.image.size <= limits.max_pixels and page.dpi == 72.0)


def test_duplicate_member_names_read_in_turn(tmp_path: Path) -> None:
    first, second = _png(np.zeros((4, 4), np.uint8)), _png(np.full((4, 4), 200, np.uint8))
    tar = write_tar(tmp_path / "d.tar", [("p.png", first), ("p.png", second)])
    with pytest.warns(UserWarning, match="Duplicate name"):
        zip_ = write_zip(tmp_path / "d.zip", [("p.png", first), ("p.png", second)])
    for archive in (tar, zip_):
        docs = list(discover([archive], LIMITS))
        assert [d.rel_path for d in docs] == ["d/p", "d/p_png"]
        pages = list(read_pages(docs, PDF72, LIMITS))
        assert [int(p.image[0, 0]) for p in pages] == [0, 200]


def test_subset_of_archive_and_generator_input(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "s.tar.gz", _sample_members(), "w:gz")
    docs = list(discover([archive], LIMITS))
    (page,) = read_pages(iter(docs[1:2]), PDF72, LIMITS)
    assert page.doc == docs[1] and page.error is None
    mixed = [docs[2], DocumentRef(source="x", container="", member="x.png", rel_path="x", kind="image"), docs[0]]
    pages = list(read_pages(mixed, PDF72, LIMITS))
    assert [p.doc for p in pages] == mixed and [p.error is None for p in pages] == [True, False, True]


def test_archive_name_with_dots_keeps_its_stem(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "batch.v2.tar.gz", _sample_members()[:1], "w:gz")
    assert [d.rel_path for d in discover([archive], LIMITS)] == ["batch.v2/scan/one"]


def test_skip_pages_leaves_out_done_pages(tmp_path: Path) -> None:
    """Pages an earlier run finished (DocumentRef.skip_pages) are not read again."""
    from dataclasses import replace

    frames = [Image.fromarray(np.full((20, 20), 40 * i, np.uint8)) for i in range(3)]
    frames[0].save(tmp_path / "m.tif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "m.pdf", save_all=True, append_images=frames[1:], resolution=72.0)
    docs = [replace(d, skip_pages=(0, 2)) for d in discover([tmp_path], LIMITS)]
    pages = list(read_pages(docs, PDF72, LIMITS))
    assert [(p.doc.member, p.page_index, p.page_count, p.error) for p in pages] == [
        ("m.pdf", 1, 3, None), ("m.tif", 1, 3, None)]
    archive = write_tar(tmp_path / "a.tar", [("m.tif", (tmp_path / "m.tif").read_bytes())])
    (doc,) = discover([archive], LIMITS)
    assert [p.page_index for p in read_pages([replace(doc, skip_pages=(1,))], PDF72, LIMITS)] == [0, 2]


def test_member_changed_since_discovery_is_an_error_page(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "a.tar", [("p.png", _png(gradient()))])
    (doc,) = discover([archive], LIMITS)
    write_tar(archive, [("p.png", _png(gradient()[::-1].copy()))])
    (page,) = read_pages([doc], PDF72, LIMITS)
    assert page.image is None and "changed since discovery" in page.error


def test_document_lists_round_trip_through_json(tmp_path):
    """A night's unit list (flows/sharded.py) comes back as the same DocumentRefs, offsets and skips too."""
    import dataclasses

    from srgan.config import LimitsConfig
    from srgan.readers import discover
    from srgan.readers.refs import refs_from_json, refs_to_json

    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / "a.png")
    with tarfile.open(tmp_path / "box.tar", "w") as tar:
        tar.add(tmp_path / "a.png", arcname="in/b.png")
    docs = list(discover([str(tmp_path)], LimitsConfig()))
    docs[0] = dataclasses.replace(docs[0], skip_pages=(0, 2))
    back = refs_from_json(refs_to_json(docs))
    assert back == docs and any(d.offset > 0 for d in back) and back[0].skip_pages == (0, 2)
