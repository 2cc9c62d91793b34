"""OCR checks with Debian's ``tesseract`` command: page text and character error rate (CER)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


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


def have_tesseract() -> bool:
    return shutil.which("tesseract") is not None


def ocr_text(image: np.ndarray, dpi: int = 300, timeout_s: int = 600) -> str:
    """Text of an (H, W) uint8 page read by the tesseract command (English)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "page.png"
        Image.fromarray(image).save(path, dpi=(dpi, dpi))
        env = {**os.environ, "OMP_THREAD_LIMIT": "1"}  # tesseract's threads fight torch's for the cores
        out = subprocess.run(["tesseract", str(path), "stdout", "-l", "eng", "--dpi", str(dpi)],
                             capture_output=True, text=True, timeout=timeout_s, env=env, check=False)
    if out.returncode != 0:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        raise RuntimeError(f"tesseract failed: {last}")
    return out.stdout
