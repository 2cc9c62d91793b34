"""RVL-CDIP label files: parsing, matching member paths, attaching labels in folders and archives."""

from __future__ import annotations

import io
import logging
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from srgan.config import LimitsConfig
from srgan.readers import RVL_CDIP_CLASSES, discover
from srgan.readers.labels import LabelIndex, label_file_split, parse_label

LIMITS = LimitsConfig()


def _tif() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, format="TIFF")
    return buf.getvalue()


def test_sixteen_classes_in_order() -> None:
    assert len(RVL_CDIP_CLASSES) == 16
    assert RVL_CDIP_CLASSES[0] == "letter" and RVL_CDIP_CLASSES[11] == "invoice"
    assert RVL_CDIP_CLASSES[15] == "memo" and RVL_CDIP_CLASSES[6] == "scientific publication"


def test_parse_label_ints_and_names() -> None:
    assert parse_label("0") == "letter" and parse_label("15") == "memo"
    assert parse_label("invoice") == "invoice" and parse_label("Scientific_Report") == "scientific report"
    assert parse_label("file-folder") == "file folder"
    assert parse_label("16") is None and parse_label("-1") is None and parse_label("cat") is None


def test_label_file_split_by_last_two_parts() -> None:
    assert label_file_split("labels/train.txt") == "train"
    assert label_file_split("rvl/labels/val.txt") == "val"
    assert label_file_split("x\\labels\\test.txt") == "test"
    assert label_file_split("labels/other.txt") is None and label_file_split("train.txt") is None
    assert label_file_split("label/train.txt") is None


def test_malformed_lines_skipped_with_one_warning_each(caplog) -> None:
    index = LabelIndex()
    text = "a/b/c.tif 3\n\nonlyonefield\nd/e.tif 99\nf/g.tif memo\n# comment\nh.tif notaclass\n"
    with caplog.at_level(logging.WARNING, logger="srgan.readers.labels"):
        kept = index.add_file(text, "labels/train.txt", "train")
    assert kept == 2 and len(index) == 2
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3
    assert all("labels/train.txt" in w for w in warnings)
    assert [w.split(":")[1] for w in warnings] == ["3", "4", "7"]


def test_lookup_matches_after_images_folder_or_directly() -> None:
    index = LabelIndex()
    index.add_file("imagesa/a/b/x.tif 11\n./top.tif 0\n", "labels/val.txt", "val")
    assert index.lookup("images/imagesa/a/b/x.tif") == ("invoice", "val")
    assert index.lookup("rvl/images/imagesa/a/b/x.tif") == ("invoice", "val")
    assert index.lookup("imagesa/a/b/x.tif") == ("invoice", "val")
    assert index.lookup("top.tif") == ("letter", "val")
    assert index.lookup("other/imagesa/a/b/x.tif") is None


def test_labels_attached_in_folder(tmp_path: Path) -> None:
    (tmp_path / "images" / "a" / "b").mkdir(parents=True)
    (tmp_path / "labels").mkdir()
    for name in ("one", "two", "three", "four"):
        (tmp_path / "images" / "a" / "b" / f"{name}.tif").write_bytes(_tif())
    (tmp_path / "labels" / "train.txt").write_text("a/b/one.tif 0\na/b/two.tif budget\n")
    (tmp_path / "labels" / "val.txt").write_text("a/b/three.tif 15\n")
    (tmp_path / "labels" / "test.txt").write_text("bad line without label\n")
    docs = {d.member.split("/")[-1]: d for d in discover([tmp_path], LIMITS)}
    assert set(docs) == {"one.tif", "two.tif", "three.tif", "four.tif"}  # label files are not pages
    assert (docs["one.tif"].label, docs["one.tif"].split) == ("letter", "train")
    assert (docs["two.tif"].label, docs["two.tif"].split) == ("budget", "train")
    assert (docs["three.tif"].label, docs["three.tif"].split) == ("memo", "val")
    assert docs["four.tif"].label is None and docs["four.tif"].split is None


def test_labels_after_images_in_streamed_tar(tmp_path: Path) -> None:
    archive = tmp_path / "rvl.tar.gz"
    members = [("rvl/images/q/o/doc1.tif", _tif()), ("rvl/images/q/o/doc2.tif", _tif()),
               ("rvl/labels/train.txt", b"q/o/doc1.tif 4\n"), ("rvl/labels/test.txt", b"q/o/doc2.tif resume\n")]
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    docs = list(discover([archive], LIMITS))
    assert [(d.rel_path, d.label, d.split) for d in docs] == [
        ("rvl/rvl/images/q/o/doc1", "advertisement", "train"), ("rvl/rvl/images/q/o/doc2", "resume", "test")]


def test_labels_in_zip(tmp_path: Path) -> None:
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("labels/val.txt", "x.tif 2\n")
        z.writestr("images/x.tif", _tif())
    (doc,) = discover([archive], LIMITS)
    assert (doc.label, doc.split, doc.rel_path) == ("email", "val", "set/images/x")
