import numpy as np
import pytest

from srgan.config import EngineConfig, TilingConfig
from srgan.inference.engine import Engine
from srgan.inference.tiling import merge_tiles, split_tiles
from tests.conftest import text_like_page, tiny_generator


@pytest.mark.parametrize("shape", [(50, 70), (64, 64), (130, 97), (20, 300)])
@pytest.mark.parametrize("scale", [1, 2, 4])
def test_split_merge_identity(shape, scale):
    rng = np.random.default_rng(0)
    page = rng.integers(0, 256, size=shape, dtype=np.uint8)
    tiles, layout = split_tiles(page, tile=16, pad=4)
    assert tiles.shape[1:] == (1, 24, 24)  # fixed window shape for every tile
    up = tiles.repeat(scale, axis=2).repeat(scale, axis=3)  # an "identity" upscaler
    merged = merge_tiles(up, layout, scale)[0]
    assert merged.shape == (shape[0] * scale, shape[1] * scale)
    np.testing.assert_array_equal(merged, page.repeat(scale, 0).repeat(scale, 1))


def test_cores_cover_page_once():
    _, layout = split_tiles(np.zeros((45, 33), np.uint8), tile=10, pad=3)
    cover = np.zeros((45, 33), int)
    for b in layout.boxes:
        cover[b.y0 : b.y1, b.x0 : b.x1] += 1
        assert 0 <= b.wy <= b.y0 and b.y1 <= b.wy + 16
    assert (cover == 1).all()


@pytest.mark.parametrize("scale", [2, 4])
def test_tiled_equals_whole_page(scale):
    """Tiled inference equals whole-page inference within 1/255 for a fixed model."""
    net = tiny_generator(scale)
    page = text_like_page(150, 170)
    engine = Engine(net, EngineConfig(device="cpu"), TilingConfig(tile=48, overlap=16, batch_size=3))
    tiled = engine.upscale([page, page[:100, :90]])
    whole = engine.upscale_whole(page)
    assert tiled[0].shape == (150 * scale, 170 * scale)
    assert np.abs(tiled[0].astype(int) - whole.astype(int)).max() <= 1
    whole2 = engine.upscale_whole(page[:100, :90])
    assert np.abs(tiled[1].astype(int) - whole2.astype(int)).max() <= 1
