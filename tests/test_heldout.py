"""srgan.training.heldout: OCR pages in the held-out type families, with ground truth, and the gate's use of them."""

from __future__ import annotations

import json

import pytest

import srgan.fidelity.ocr
from srgan.config import PipelineConfig, override
from srgan.fidelity.gate import load_ocr_pages
from srgan.fidelity.ocr import cer, have_tesseract, ocr_text
from srgan.training import heldout
from srgan.training.fonts import held_out_families, training_families
from srgan.training.synth import synth_text_page

needs_tesseract = pytest.mark.skipif(not have_tesseract(), reason="tesseract not installed (make system)")


@pytest.fixture(scope="module")
def held():
    found = held_out_families()
    if not found:
        pytest.skip("the font packages of the Makefile's system target are not installed")
    return found


def test_text_page_draws_one_family_and_records_its_lines(held):
    fam = held[0]
    doc = synth_text_page(3, 12.0, fam)
    again = synth_text_page(3, 12.0, fam)
    assert doc.families == [fam.name] and (doc.image == again.image).all() and doc.lines == again.lines
    assert len(doc.lines) >= 8 and sum(len(line) for line in doc.lines) > 200
    assert "stamp" not in doc.elements and "logo" not in doc.elements and "signature" not in doc.elements
    assert doc.image.min() == 0  # black print
    # long_ems sizes the page in body ems: twice the x-height, about twice the side, about the same text
    big = synth_text_page(3, 24.0, fam)
    assert 1.8 < max(big.image.shape) / max(doc.image.shape) < 2.2


def test_write_held_out_pages_gives_every_family_a_page_and_its_text(tmp_path, held):
    assert heldout.main(["--out", str(tmp_path / "h"), "--scale", "2", "--lr-xheight", "4"]) == 0
    listing = json.loads((tmp_path / "h" / "pages.json").read_text())
    assert listing["hr_xheight_px"] == 8.0 and len(listing["pages"]) == len(held)
    for entry in listing["pages"]:
        text = (tmp_path / "h" / f"{entry['page']}.txt").read_text()
        assert (tmp_path / "h" / f"{entry['page']}.png").is_file()
        assert len(text.replace("\n", "")) == entry["characters"] > 100
    pages = load_ocr_pages([str(tmp_path / "h")], PipelineConfig())  # read as any page with ground truth
    assert sorted(p.name for p in pages) == sorted(e["page"] for e in listing["pages"])
    assert not {f.name for f in training_families()} & {f for e in listing["pages"] for f in e["families"]}


def test_cli_refuses_bad_sizes(tmp_path, capsys):
    assert heldout.main(["--out", str(tmp_path), "--lr-xheight", "0"]) == 2
    assert "error:" in capsys.readouterr().err


@needs_tesseract
def test_ground_truth_is_what_tesseract_reads_on_the_rendered_page(held):
    (page,) = heldout.held_out_ocr_pages(2, lr_xheight=6.5)[:1]
    assert page.name.startswith("held_out_text/")
    assert cer(ocr_text(page.image), page.truth) < 0.02


@needs_tesseract
def test_training_gate_reads_the_held_out_family_pages(monkeypatch, held):
    from srgan.training.train import _fidelity_gate
    from tests.test_fidelity import _cpu, garbling_generator

    monkeypatch.setattr(heldout, "held_out_families", lambda: held[:1])  # one family: a short test
    monkeypatch.setattr(srgan.fidelity.ocr, "ENGINES", ("tesseract",))  # EasyOCR's rule: tests/test_fidelity.py
    cfg = override(_cpu(PipelineConfig()), "training.held_out_family_pages", 1)
    gate = _fidelity_gate(garbling_generator(), cfg, cfg, [], None, None)
    (row,) = gate.rows
    assert row["page"] == f"held_out_text/{heldout.family_slug(held[0].name)}"
    assert row["cer_original"] < 0.02  # its ground truth matches the page
    assert not gate.passed and gate.failures[0]["rule"] == "words_tesseract"  # a garbling generator fails on it
    off = _fidelity_gate(garbling_generator(), override(cfg, "training.held_out_family_pages", 0), cfg, [], None, None)
    assert off.rows == []
