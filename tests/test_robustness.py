"""Bad inputs, hostile archives, limits, weights and configuration: never a lost page, never a stopped run.

The corpus comes from tests/badfiles.py. Reader-level tests run it through discover/read_pages;
the end-to-end test runs it, mixed with good pages, through `srgan upscale` in-process.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import tarfile
import threading
import time
import types
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from srgan.cli import main
from srgan.config import ConfigError, LimitsConfig, PdfConfig, PipelineConfig, load_config
from srgan.pipeline.records import read_records
from srgan.readers import DocumentRef, Page, discover, printable, read_pages
from srgan.readers.sources import sha256_stream
from srgan.weights import WeightsError, load_generator, save_weights, sha256_of
from tests import badfiles as bf
from tests.conftest import text_like_page, tiny_generator, write_config

LIMITS = LimitsConfig()
PDF50 = PdfConfig(dpi=50)
IS_ROOT = os.geteuid() == 0


def pages_of(inputs, limits: LimitsConfig = LIMITS, pdf: PdfConfig = PDF50) -> list[Page]:
    return list(read_pages(list(discover(inputs, limits)), pdf, limits))


def by_member(pages: list[Page]) -> dict[str, list[Page]]:
    out: dict[str, list[Page]] = {}
    for page in pages:
        out.setdefault(printable(page.doc.member), []).append(page)
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[bf.Expect]]:
    root = tmp_path_factory.mktemp("corpus") / "bad"
    return root, bf.write_corpus(root)


@pytest.fixture(scope="module")
def corpus_pages(corpus) -> dict[str, list[Page]]:
    root, _ = corpus
    return by_member(pages_of([root]))


# ------------------------------------------------------------------ the corpus, case by case


@pytest.mark.parametrize("expect", bf.CORPUS, ids=lambda e: e.member)
def test_corpus_case(corpus_pages, expect: bf.Expect) -> None:
    """Each bad input: one page, processed correctly or an error page with a one-line reason."""
    pages = corpus_pages[expect.member]
    assert len(pages) == 1, [p.error for p in pages]
    page = pages[0]
    assert page.page_index == expect.page_index
    if expect.status == "ok":
        assert page.error is None, page.error
        assert page.image is not None and page.image.dtype == np.uint8 and page.image.ndim == 2
        assert page.doc.content_sha256 and len(page.doc.content_sha256) == 64
        if expect.label:
            assert page.doc.label == expect.label
    else:
        assert page.image is None and page.error
        assert expect.why in page.error and "\n" not in page.error and len(page.error) <= 300
        printable(page.error).encode("utf-8")  # storable as Parquet text


def test_corpus_modes_decode_to_the_right_grey(corpus_pages) -> None:
    def img(member: str) -> np.ndarray:
        return corpus_pages[member][0].image

    ink = text_like_page(120, 100, 7) < 128
    assert (img("rgba.png")[~ink] == 255).all() and (img("rgba.png")[ink] < 128).all()  # alpha on white
    assert np.array_equal(img("deep16.tif"), text_like_page(120, 100, 6))  # 16 bit scaled by 1/257
    assert np.abs(img("cmyk.jpg").astype(int) - text_like_page(120, 100, 5)).mean() < 8
    assert img("tiny.png").shape == (5, 7)
    assert (img("blank.png") == 255).all() and (img("black.png") == 0).all()


def test_damaged_gzip_keeps_the_members_before_the_damage(corpus_pages) -> None:
    kept = [m for m in ("n0.tif", "n1.tif", "n2.tif", "n3.tif") if m in corpus_pages]
    assert kept and kept == ["n0.tif", "n1.tif", "n2.tif", "n3.tif"][: len(kept)] and len(kept) < 4
    assert all(corpus_pages[m][0].error is None for m in kept)
    assert np.array_equal(corpus_pages["n0.tif"][0].image,
                          np.asarray(Image.open(io.BytesIO(bf.noise_tiff(0)))))
    archive_errors = [p for p in corpus_pages[""] if "damaged.tar.gz" in p.error]
    assert len(archive_errors) == 1 and "cannot read archive" in archive_errors[0].error


def test_text_and_blobs_in_archives_never_become_pages(corpus_pages) -> None:
    assert "notes.txt" not in corpus_pages and "blob.bin" not in corpus_pages
    assert "inner/ok.png" in corpus_pages and corpus_pages["blob.tif"][0].error


def test_malformed_label_lines_warn_and_the_run_goes_on(corpus, caplog) -> None:
    root, _ = corpus
    with caplog.at_level(logging.WARNING, logger="srgan.readers.labels"):
        docs = list(discover([root], LIMITS))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3 and all("malformed label line" in w for w in warnings)
    assert {d.member: d.label for d in docs}["images/labelled.png"] == "handwritten"


def test_hostile_tar_writes_nothing(tmp_path: Path) -> None:
    archive = tmp_path / "in" / "hostile.tar"
    archive.parent.mkdir()
    archive.write_bytes(bf.hostile_tar(bf.good_tiff()))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    pages = pages_of([archive])
    assert [p.doc.member for p in pages if p.error is None] == ["good.tif"]
    assert len(pages) == 7  # three plain members (one good), four special ones
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert not Path("/etc/x.tif").exists()


# ------------------------------------------------------------------ files that are not files


def _finishes(fn, seconds: float = 20.0):
    """Run fn in a thread: a reader that blocks (a fifo opened for reading) fails the test, not hangs it."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(fn()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "reader blocked"
    return result[0]


def test_fifo_named_like_a_page_or_archive_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.tif")
    os.mkfifo(tmp_path / "pipe.tar")
    (tmp_path / "ok.png").write_bytes(bf.good_png())
    pages = _finishes(lambda: pages_of([tmp_path]))
    assert [p.error is None for p in pages] == [True, False, False]
    assert all("fifo" in p.error for p in pages[1:])
    direct = _finishes(lambda: pages_of([tmp_path / "pipe.tif"]))
    assert len(direct) == 1 and "not a regular file" in direct[0].error


def test_dangling_symlink_is_an_error_row(tmp_path: Path) -> None:
    (tmp_path / "gone.tif").symlink_to(tmp_path / "nowhere.tif")
    (tmp_path / "ok.png").write_bytes(bf.good_png())
    pages = pages_of([tmp_path])
    assert [(printable(p.doc.member), p.error is None) for p in pages] == [("gone.tif", False), ("ok.png", True)]
    assert "cannot read" in pages[0].error


@pytest.mark.skipif(IS_ROOT, reason="tests run as root, where chmod 000 does not stop reads; "
                    "test_unreadable_file_via_oserror covers the same path by making the read fail")
def test_unreadable_permissions(tmp_path: Path) -> None:
    (tmp_path / "locked.png").write_bytes(bf.good_png())
    (tmp_path / "locked.png").chmod(0)
    (tmp_path / "ok.png").write_bytes(bf.good_png(1))
    pages = pages_of([tmp_path])
    assert [p.error is None for p in pages] == [False, True] and "ermission" in pages[0].error


def test_unreadable_file_via_oserror(tmp_path: Path, monkeypatch) -> None:
    """The chmod-000 case as root: the open itself fails with EACCES, whoever we are."""
    (tmp_path / "locked.png").write_bytes(bf.good_png())
    (tmp_path / "ok.png").write_bytes(bf.good_png(1))
    real_open = Path.open

    def deny(self, *args, **kwargs):
        if self.name == "locked.png":
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", deny)
    pages = pages_of([tmp_path])
    assert [p.error is None for p in pages] == [False, True]
    assert "Permission denied" in pages[0].error and "locked.png" in pages[0].error


def test_non_utf8_names_give_text_output_names(tmp_path: Path) -> None:
    raw = os.fsdecode(b"scan_\xff\xfe.png")
    (tmp_path / raw).write_bytes(bf.good_png())
    tar_path = tmp_path / "names.tar"
    with tarfile.open(tar_path, "w", encoding="utf-8", errors="surrogateescape") as tar:
        info = tarfile.TarInfo(os.fsdecode(b"in_tar_\xe9.png"))
        data = bf.good_png(1)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    pages = pages_of([tmp_path])
    assert [p.error for p in pages] == [None, None]
    for page in pages:
        page.doc.rel_path.encode("utf-8")  # an output name that is text
        assert "%" in page.doc.rel_path and "/" not in page.doc.rel_path.split("names/")[-1]
        assert "\\x" in printable(page.doc.member)


# ------------------------------------------------------------------ limits (pipeline.yaml `limits`, `pdf`)


def test_max_pixels_checked_before_decoding(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "big.png").write_bytes(bf.image_bytes(np.zeros((200, 200), np.uint8), "PNG"))
    (tmp_path / "bomb.png").write_bytes(bf.png_bomb())

    def no_decode(im):
        raise AssertionError("decoded a page over limits.max_pixels")

    monkeypatch.setattr("srgan.readers.decode.to_grey", no_decode)
    start = time.perf_counter()
    pages = pages_of([tmp_path], limits=LimitsConfig(max_pixels=100 * 100))
    assert time.perf_counter() - start < 5
    assert all(p.image is None and "max_pixels" in p.error for p in pages) and len(pages) == 2


def test_max_pages_per_pdf_one_row_for_the_rest(tmp_path: Path) -> None:
    (tmp_path / "many.pdf").write_bytes(bf.many_pages_pdf(400))
    start = time.perf_counter()
    pages = pages_of([tmp_path / "many.pdf"], pdf=PdfConfig(dpi=50, max_pages=3))
    assert time.perf_counter() - start < 10
    assert [(p.page_index, p.page_count, p.error is None) for p in pages] == [
        (0, 400, True), (1, 400, True), (2, 400, True), (3, 400, False)]
    assert "pages 4-400 beyond pdf.max_pages=3" in pages[3].error


def test_render_timeout_stops_a_pdf_that_never_finishes(tmp_path: Path) -> None:
    (tmp_path / "a_forms.pdf").write_bytes(bf.nested_forms_pdf(depth=6, fanout=40))  # 40**6 form draws
    (tmp_path / "b_ok.pdf").write_bytes(bf.good_pdf(1))
    start = time.perf_counter()
    pages = pages_of([tmp_path], pdf=PdfConfig(dpi=50, render_timeout_s=1))
    assert time.perf_counter() - start < 15
    assert [p.error is None for p in pages] == [False, True]
    assert "pdf.render_timeout_s=1" in pages[0].error


def test_max_member_bytes_by_header_and_by_reading(tmp_path: Path) -> None:
    limits = LimitsConfig(max_member_bytes=64 * 1024)
    big = bf.image_bytes(np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8), "TIFF")
    small = bf.good_png()
    (tmp_path / "t.tar.gz").write_bytes(bf.tar_bytes([("big.tif", big), ("small.png", small)], "w:gz"))
    (tmp_path / "z.zip").write_bytes(bf.zip_bytes([("big.tif", big), ("small.png", small)]))
    (tmp_path / "lie.zip").write_bytes(bf.lying_zip(real_bytes=20 * 1024 * 1024, claimed=1000))
    (tmp_path / "lie2.zip").write_bytes(bf.lying_zip(real_bytes=20 * 1024 * 1024, claimed=60 * 1024))
    start = time.perf_counter()
    pages = pages_of([tmp_path], limits=limits)
    assert time.perf_counter() - start < 5
    got = [(p.doc.container.rsplit("/", 1)[-1], p.doc.member, p.error is None) for p in pages]
    assert got == [("lie.zip", "bomb.tif", False), ("lie2.zip", "bomb.tif", False), ("t.tar.gz", "big.tif", False),
                   ("t.tar.gz", "small.png", True), ("z.zip", "big.tif", False), ("z.zip", "small.png", True)]
    assert "max_member_bytes" in pages[2].error and "max_member_bytes" in pages[4].error


class _Endless(io.RawIOBase):
    """A stream that never ends, whatever its header said: reading must stop at the limit."""

    def __init__(self) -> None:
        self.served = 0

    def read(self, n: int = -1) -> bytes:
        assert n is not None and n >= 0, "unbounded read"
        self.served += n
        return bytes(n)


def test_member_reading_stops_at_the_limit_not_the_header() -> None:
    stream = _Endless()
    with pytest.raises(ValueError, match="max_member_bytes=100000"):
        sha256_stream(stream, 100_000)
    assert stream.served == 100_001


# ------------------------------------------------------------------ configuration and weights


def _wrong_value(typ: type) -> object:
    if isinstance(typ, types.UnionType):  # pdf.dpi: int | str ("native" or a number): a list is neither
        return [1, 2]
    return {bool: "maybe", int: "many", float: "lots", str: 12}[typ]


def _type_name(typ: type) -> str:
    return " or ".join(t.__name__ for t in typing.get_args(typ)) if isinstance(typ, types.UnionType) else typ.__name__


def _every_key() -> list[tuple[str, str, type]]:
    """(section, key, type) for every leaf key of every pipeline.yaml section; a nested mapping's keys are dotted
    (``mix.bicubic``)."""
    import typing

    def leaves(cls: type, prefix: str = "") -> list[tuple[str, type]]:
        out = []
        for key, typ in typing.get_type_hints(cls).items():
            out += leaves(typ, f"{prefix}{key}.") if dataclasses.is_dataclass(typ) else [(prefix + key, typ)]
        return out

    return [(section, key, typ) for section, cls in typing.get_type_hints(PipelineConfig).items()
            for key, typ in leaves(cls)]


@pytest.mark.parametrize("section,key,typ", _every_key(), ids=lambda v: v if isinstance(v, str) else _type_name(v))
def test_every_config_key_with_a_wrong_type_is_refused(tmp_path: Path, capsys, section, key, typ) -> None:
    cfg = tmp_path / "p.yaml"
    value = _wrong_value(typ)
    tree: dict = {}
    *parents, leaf = [section, *key.split(".")]
    node = tree
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = value
    cfg.write_text(yaml.safe_dump(tree))
    with pytest.raises(ConfigError) as exc:
        load_config(cfg)
    assert str(exc.value).startswith(f"{section}.{key}: expected {_type_name(typ)}") and "\n" not in str(exc.value)
    assert main(["upscale", str(tmp_path), "--out", str(tmp_path / "o"), "--config", str(cfg)]) == 2
    assert capsys.readouterr().err.strip() == str(exc.value)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("section", [f.name for f in dataclasses.fields(PipelineConfig)])
def test_a_section_that_is_not_a_mapping_is_refused(tmp_path: Path, section: str) -> None:
    cfg = tmp_path / "p.yaml"
    cfg.write_text(f"{section}: [1, 2]\n")
    with pytest.raises(ConfigError, match="expected a mapping") as exc:
        load_config(cfg)
    assert str(exc.value).startswith(section) and "\n" not in str(exc.value)


def test_weights_pickle_payload_never_runs(tmp_path: Path) -> None:
    """weights_only=True: a .pt whose pickle would run code is refused, even with a matching sha256."""
    import json

    wdir = tmp_path / "w"
    wdir.mkdir()
    save_weights(tiny_generator(2), wdir, "srgan_x2", {"text_height": 9.0})
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    torch.save({"x": Payload()}, wdir / "srgan_x2.pt")
    manifest = json.loads((wdir / "srgan_x2.json").read_text())
    manifest["sha256"] = sha256_of(wdir / "srgan_x2.pt")  # the attacker rewrites the manifest too
    (wdir / "srgan_x2.json").write_text(json.dumps(manifest))
    with pytest.raises(Exception, match="Weights only load failed"):  # noqa: B017 - torch's UnpicklingError
        load_generator("srgan_x2", wdir, scale=2)
    assert not marker.exists()


@pytest.mark.parametrize("case", ["other_scale", "other_architecture"])
def test_wrong_weights_exit_2_with_one_line(prefect_harness, tmp_path: Path, tiny_weights, capsys, case) -> None:
    import json

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(bf.good_png())
    cfg = write_config(tmp_path, tiny_weights)
    argv = ["upscale", str(tmp_path / "in"), "--out", str(tmp_path / "o"), "--config", str(cfg), "--no-progress"]
    if case == "other_scale":
        argv += ["--scale", "2", "--weights", str(tiny_weights / "srgan_x4.pt")]
        needle = "is for scale 4, not 2"
    else:
        man = tiny_weights / "srgan_x2.json"
        data = json.loads(man.read_text())
        data["spec"]["num_feat"] = 8
        man.write_text(json.dumps(data))
        needle = "does not fit its manifest's architecture"
    assert main(argv) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert needle in last and last.startswith("weights: ")
    with pytest.raises(WeightsError, match=needle):
        load_generator(argv[-1] if case == "other_scale" else "srgan_x2", tiny_weights, scale=2)


# ------------------------------------------------------------------ the whole corpus through `srgan upscale`


def _good_inputs(root: Path) -> list[str]:
    """Good pages under root (names unlike the corpus's); returns their member names."""
    (root / "sub").mkdir(parents=True)
    (root / "g1.png").write_bytes(bf.good_png(31, 140, 110))
    (root / "sub" / "g2.tif").write_bytes(bf.good_tiff(32, 100, 150))
    (root / "g3.pdf").write_bytes(bf.good_pdf(2, seed=33))
    (root / "g4.tar.gz").write_bytes(bf.tar_bytes([("in/g5.png", bf.good_png(34))], "w:gz"))
    return ["g1.png", "sub/g2.tif", "g3.pdf", "in/g5.png"]


def _tree(root: Path, skip: Path | None = None) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in root.rglob("*")
            if skip is None or not p.is_relative_to(skip)}


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_corpus_through_srgan_upscale(prefect_harness, tmp_path: Path, tiny_weights, monkeypatch) -> None:
    good = tmp_path / "good"
    good_members = _good_inputs(good)
    bad = tmp_path / "bad"
    expect = bf.write_corpus(bad)
    cfg = write_config(tmp_path, tiny_weights)
    args = ["--config", str(cfg), "--no-progress"]
    assert main(["upscale", str(good), "--out", str(tmp_path / "clean"), *args]) == 0

    scratch, cwd = tmp_path / "systmp", tmp_path / "cwd"
    scratch.mkdir()
    cwd.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    monkeypatch.chdir(cwd)
    out = tmp_path / "mixed"
    before = _tree(tmp_path)
    assert main(["upscale", str(good), str(bad), "--out", str(out), *args]) == 3
    assert _tree(tmp_path, skip=out) == before  # nothing written outside the output folder...
    assert not any(scratch.iterdir()) and not any(cwd.iterdir())  # ...nor left in temp or the cwd

    rows = read_records(out / "records").to_pylist()
    keys = [(r["member"], r["page_index"]) for r in rows]
    assert len(keys) == len(set(keys)), "a page recorded twice"
    got = {(r["member"], r["page_index"]): r for r in rows}
    for e in expect:
        row = got.pop((e.member, e.page_index))
        assert row["status"] == e.status, (e, row["error"])
        if e.status == "error":
            assert row["error"] and e.why in row["error"] and "\n" not in row["error"]
    for member in good_members:
        for index in range(2 if member.endswith(".pdf") else 1):
            assert got.pop((member, index))["status"] == "ok"
    damaged = [r for k, r in list(got.items()) if k[0].startswith("n") or "damaged" in (r["error"] or "")]
    for r in damaged:
        got.pop((r["member"], r["page_index"]))
    assert not got, f"unexpected rows: {list(got)}"
    assert [r["status"] for r in damaged].count("error") == 1 and len(damaged) >= 2
    for r in rows:
        assert r["content_sha256"] or r["status"] == "error"

    blank = next(r for r in rows if r["member"] == "blank.png")
    assert blank["normalise_factor"] == 1.0 and blank["text_height_px"] is None and blank["text_height_note"]
    tiny = next(r for r in rows if r["member"] == "tiny.png")
    assert (tiny["output_width"], tiny["output_height"]) == (14, 10)

    clean = tmp_path / "clean" / "pages"
    clean_pages = sorted(p.relative_to(clean) for p in clean.rglob("*.png"))
    assert len(clean_pages) == 5
    for rel in clean_pages:  # the good pages come out byte for byte as in a run without the bad files
        assert (clean / rel).read_bytes() == (out / "pages" / rel).read_bytes(), rel
    for path in (out / "pages").rglob("*"):
        assert path.is_dir() or path.resolve().is_relative_to(out / "pages")
    assert not list(out.rglob("*.tmp")) and not (out / ".work").exists()


def test_docref_carries_content_hash(tmp_path: Path) -> None:
    import hashlib

    data = bf.good_png()
    (tmp_path / "a.png").write_bytes(data)
    (tmp_path / "t.tar").write_bytes(bf.tar_bytes([("m.png", data)]))
    (tmp_path / "z.zip").write_bytes(bf.zip_bytes([("m.png", data)]))
    docs = list(discover([tmp_path], LIMITS))
    assert [d.content_sha256 for d in docs] == [hashlib.sha256(data).hexdigest()] * 3
    err = DocumentRef(source="s", container="", member="x", rel_path="x", kind="error", error="e")
    assert err.content_sha256 == "" and err.skip_pages == ()
