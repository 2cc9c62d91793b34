"""The gate's paired words rule (srgan/fidelity/paired_words.py) on constructed word outcomes, and its wiring into
the gate (srgan/fidelity/gate.py ocr_rules, fidelity_gate) and ``python -m srgan.fidelity --judge``."""

from __future__ import annotations

import json

import pytest

from srgan.fidelity import cli
from srgan.fidelity.gate import fidelity_gate
from srgan.fidelity.ocr import word_f1, word_outcomes
from srgan.fidelity.paired_words import WORDS_CONFIDENCE, paired_words_test, sign_test_p

WORDS = 70  # a held-out page's words


def _reading(found: str, extra: int) -> dict:
    f1 = 2 * found.count("1") / (found.count("1") + extra + len(found))
    return {"found": found, "extra": extra, "f1": f1}


def page(name: str, model: tuple[str, int], bicubic: tuple[str, int], lanczos: tuple[str, int]) -> dict:
    """A gate row whose EasyOCR readings are given as (found, extra); tesseract's CER passes."""
    row = {"page": name, "scale": 2, "ocr_engines": ["tesseract", "easyocr"],
           "cer_model": 0.0, "cer_bicubic": 0.0, "cer_lanczos": 0.0}
    for variant, (found, extra) in {"model": model, "bicubic": bicubic, "lanczos": lanczos}.items():
        for key, value in _reading(found, extra).items():
            row[f"{key}_{variant}_easyocr"] = value
    return row


def all_found(n: int = WORDS) -> str:
    return "1" * n


def missing(*positions: int, n: int = WORDS) -> str:
    return "".join("0" if i in positions else "1" for i in range(n))


def clean_pages(count: int) -> list[dict]:
    return [page(f"p{i}", (all_found(), 0), (all_found(), 0), (all_found(), 0)) for i in range(count)]


def test_word_outcomes_pair_occurrences_as_word_f1_counts_them():
    found, extra = word_outcomes("the cat sat", "the the cat dog.")
    assert (found, extra) == ("1010", 1)  # the (1st found, 2nd not), cat found, dog not; "sat" is extra
    assert word_f1("the cat sat", "the the cat dog.") == pytest.approx(2 * 2 / (2 + 1 + 4))
    assert word_outcomes("", "") == ("", 0)


def test_sign_test_p_is_the_exact_binomial_tail():
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 0) == pytest.approx(1 / 32)
    assert sign_test_p(2, 2) == pytest.approx(11 / 16)
    assert sign_test_p(0, 4) == 1.0


def test_a_one_word_difference_on_a_70_word_page_passes():
    rows = clean_pages(10)
    # p10: the model misses one word Lanczos finds (a misreading: one miss, one extra word), which trips the
    # per-page rule (1/70 of F1 > 0.005); p11: the model finds one Lanczos misses
    rows.append(page("p10", (missing(5), 1), (all_found(), 0), (all_found(), 0)))
    rows.append(page("p11", (all_found(), 0), (missing(9), 1), (missing(9), 1)))
    gate = fidelity_gate(rows, None, None)
    assert gate.passed, gate.reason()
    (test,) = [t for t in gate.words_tests if t["engine"] == "easyocr"]
    assert (test["losses"], test["wins"], test["words"], test["pages"]) == (1, 1, 12 * WORDS, 12)
    assert test["p_value"] == pytest.approx(0.75) and test["confidence"] == WORDS_CONFIDENCE
    assert any(n.startswith("per_page_words p10") for n in gate.notes)  # the old rule, reported, not failed


def test_a_consistent_loss_across_pages_fails_with_the_test_named():
    rows = [page(f"p{i}", (missing(i, 40), 2), (all_found(), 0), (all_found(), 0)) for i in range(6)]
    gate = fidelity_gate(rows, None, None)
    assert not gate.passed
    failure = gate.failures[0]
    assert failure["rule"] == "words_easyocr" and failure["page"] is None
    assert "12 words lost" in failure["detail"] and "0 won" in failure["detail"]
    assert "sign test" in failure["detail"] and "confidence 95%" in failure["detail"]
    assert f"p = {0.5 ** 12:.3g}" in failure["detail"]


def test_below_lanczos_on_pooled_f1_fails_though_the_test_is_not_significant():
    rows = clean_pages(11) + [page("p11", (missing(3), 1), (all_found(), 0), (all_found(), 0))]
    test = paired_words_test(rows, "easyocr")
    assert test.judged and not test.worse_with_confidence and test.p_value == pytest.approx(0.5)
    assert test.below_lanczos and not test.passed
    gate = fidelity_gate(rows, None, None)
    assert [f["rule"] for f in gate.failures] == ["words_easyocr"]
    assert "pooled word F1 model" in gate.failures[0]["detail"] and "< Lanczos" in gate.failures[0]["detail"]


def test_the_better_baseline_per_page_is_the_one_paired():
    # bicubic finds word 7 where Lanczos misses it: the model, missing it too, loses against bicubic
    row = page("p", (missing(7), 1), (all_found(), 0), (missing(7), 1))
    test = paired_words_test([row] + clean_pages(3), "easyocr")
    assert (test.losses, test.wins) == (1, 0) and not test.below_lanczos  # the same words as Lanczos


def test_hallucinated_words_count_as_losses():
    rows = [page(f"p{i}", (all_found(), 2), (all_found(), 0), (all_found(), 0)) for i in range(6)]
    test = paired_words_test(rows, "easyocr")
    assert (test.losses, test.inserted_losses, test.wins) == (12, 12, 0)
    assert test.worse_with_confidence and test.below_lanczos
    assert not fidelity_gate(rows, None, None).passed
    # a misread word (one miss, one extra) counts once, as the miss
    row = page("q", (missing(1), 1), (all_found(), 0), (all_found(), 0))
    assert paired_words_test([row], "easyocr").losses == 1


def test_rows_without_word_evidence_fall_back_to_the_per_page_rule_with_a_note():
    rows = clean_pages(3) + [page("p3", (missing(5), 1), (all_found(), 0), (all_found(), 0))]
    for r in rows[-2:]:  # two rows stored before the evidence was kept
        for variant in ("model", "bicubic", "lanczos"):
            del r[f"found_{variant}_easyocr"], r[f"extra_{variant}_easyocr"]
    assert not paired_words_test(rows, "easyocr").judged
    gate = fidelity_gate(rows, None, None)
    assert [(f["rule"], f["page"]) for f in gate.failures] == [("words_easyocr", "p3")]  # the old rule, never a pass
    assert any("cannot judge" in n and "2 of 4 pages (p2, p3;" in n for n in gate.notes)
    assert not [t for t in gate.words_tests if t["engine"] == "easyocr"]


def test_tesseract_is_judged_by_its_words_where_rows_have_evidence():
    rows = clean_pages(12)
    for r in rows:
        for variant in ("model", "bicubic", "lanczos"):
            r[f"found_{variant}"], r[f"extra_{variant}"], r[f"f1_{variant}"] = all_found(), 0, 1.0
    # one word misread by tesseract on a 450-character page: CER +0.011, beyond the per-page margin of 0.005
    rows[0].update(cer_model=0.011, found_model=missing(4), extra_model=1, f1_model=_reading(missing(4), 1)["f1"])
    rows[1].update(cer_lanczos=0.011, cer_bicubic=0.011, found_lanczos=missing(8), extra_lanczos=1,
                   found_bicubic=missing(8), extra_bicubic=1)
    gate = fidelity_gate(rows, None, None)
    assert gate.passed, gate.reason()
    assert any(n.startswith("per_page_cer p0") for n in gate.notes)
    assert [t["engine"] for t in gate.words_tests] == ["tesseract", "easyocr"]
    # without the evidence the per-page CER rule applies, as before
    for r in rows:
        for variant in ("model", "bicubic", "lanczos"):
            del r[f"found_{variant}"]
    assert [(f["rule"], f["page"]) for f in fidelity_gate(rows, None, None).failures] == [("cer", "p0")]


def test_evidence_of_different_lengths_is_refused_with_the_page_named():
    row = page("odd", (all_found(69), 0), (all_found(), 0), (all_found(), 0))
    with pytest.raises(ValueError, match="page odd"):
        paired_words_test([row], "easyocr")


def test_judge_rejudges_stored_rows(tmp_path, capsys):
    passing = tmp_path / "pass.json"
    passing.write_text(json.dumps({"weights": "w", "scale": 2, "native": clean_pages(2)}))
    failing = tmp_path / "fail.json"
    failing.write_text(json.dumps({"weights": "v", "scale": 2, "native": [
        page(f"p{i}", (missing(1, 2), 2), (all_found(), 0), (all_found(), 0)) for i in range(4)]}))
    assert cli.main(["--judge", str(passing)]) == 0
    assert cli.main(["--judge", str(passing), str(failing)]) == 1
    out = capsys.readouterr().out
    assert "OCR rules: passed" in out and "words_easyocr: model reads fewer words" in out
