"""Shared fixtures: tiny networks, the shared real-data folder, temporary weights."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from srgan.models import Generator
from srgan.weights import save_weights

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not present: real-scan tests need the shared data folder beside the repo")
    return SHARED_DATA


def tiny_generator(scale: int = 2, seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(scale=scale, num_feat=4, num_block=1).eval()


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    """A weights folder with tiny srgan_x2 / srgan_x4 generators and manifests."""
    wdir = tmp_path / "weights"
    wdir.mkdir()
    for scale in (2, 4):
        save_weights(tiny_generator(scale), wdir, f"srgan_x{scale}", {"text_height": 9.0, "trained_on": "test"})
    return wdir


def text_like_page(h: int = 200, w: int = 160, seed: int = 0) -> np.ndarray:
    """A white page with dark letter-sized blobs in lines (no fonts needed)."""
    rng = np.random.default_rng(seed)
    page = np.full((h, w), 255, dtype=np.uint8)
    for y in range(10, h - 20, 18):
        x = 8
        while x < w - 16:
            cw = int(rng.integers(5, 9))
            ch = 9 if rng.random() < 0.6 else 13
            page[y + 13 - ch : y + 13, x : x + cw] = 20
            page[y + 13 - ch + 2 : y + 11, x + 2 : x + cw - 2] = 255
            x += cw + int(rng.integers(2, 6))
    return page
