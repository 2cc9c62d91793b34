"""The lean PNG writer: Pillow reads back the same pixels and dpi, at every level, on every shape."""

import io

import numpy as np
import pytest
from PIL import Image

from srgan.encoding.png import encode_grey_png


@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (64, 48)])
@pytest.mark.parametrize("level", [0, 1, 9])
def test_pixels_and_dpi_read_back_exactly(shape, level):
    rng = np.random.default_rng(level)
    img = rng.integers(0, 256, shape, dtype=np.uint8)
    img[: shape[0] // 2] = 255  # flat paper and noise in one page
    back = Image.open(io.BytesIO(encode_grey_png(img, dpi=200.0, level=level)))
    assert back.mode == "L" and back.size == (shape[1], shape[0])
    assert np.array_equal(np.asarray(back), img)
    assert round(back.info["dpi"][0], 1) == 200.0


def test_no_dpi_means_no_phys_chunk_and_bad_layout_is_refused():
    data = encode_grey_png(np.zeros((4, 4), np.uint8))
    assert b"pHYs" not in data and "dpi" not in Image.open(io.BytesIO(data)).info
    with pytest.raises(ValueError):
        encode_grey_png(np.zeros((4, 4, 3), np.uint8))
