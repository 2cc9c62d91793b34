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
            ch = 9 if rng.random() < 0.75 else 13
            page[y + 13 - ch : y + 13, x : x + cw] = 20
            page[y + 13 - ch + 2 : y + 11, x + 2 : x + cw - 2] = 255
            x += cw + int(rng.integers(2, 6))
    return page


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect API (SQLite) for every flow test of the session."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def write_config(tmp_path: Path, weights_dir: Path, extra: str = "") -> Path:
    """A pipeline.yaml for tests: tiny weights, small tiles."""
    p = tmp_path / "pipeline.yaml"
    p.write_text(f"upscale:\n  weights_dir: {weights_dir}\n  compare_crop: 32\ntiling:\n  tile: 48\n  overlap: 8\n"
                 f"  batch_size: 4\npdf:\n  dpi: 50\n{extra}")
    return p


@pytest.fixture
def small_inputs(tmp_path: Path) -> Path:
    """A folder with a PNG, a TIFF in a sub-folder, a 2-page PDF and an empty (bad) file."""
    from PIL import Image

    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(text_like_page(120, 100)).save(root / "a.png", dpi=(100, 100))
    Image.fromarray(text_like_page(90, 130, 1)).save(root / "sub" / "b.tif", dpi=(150, 150))
    pdf_pages = [Image.fromarray(text_like_page(150, 120, s)) for s in (2, 3)]
    pdf_pages[0].save(root / "c.pdf", save_all=True, append_images=pdf_pages[1:], resolution=50)
    (root / "empty.png").write_bytes(b"")
    return root
