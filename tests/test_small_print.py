"""Small-print copies of training pages (srgan.training.small_print)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from srgan.imaging.textsize import estimate_text_height
from srgan.training.small_print import main, small_copies


def _page():
    from srgan.sample import find_fonts, render_text_page

    fonts = find_fonts()
    if not fonts:
        pytest.skip("no TrueType fonts on this machine")
    text = "\n".join(["The quick brown fox jumps over the lazy dog"] * 12)
    page, _ = render_text_page(text, fonts[0], 12, 300, width_in=6.0, height_in=3.5, margin_in=0.3)
    return page


def test_copies_carry_their_text_at_the_drawn_lr_size(tmp_path):
    page = _page()
    copies = small_copies(page, 2, 3.0, 5.0, 3, np.random.default_rng(0))
    assert len(copies) == 3
    for target, copy in copies:
        assert 3.0 <= target <= 5.0 and copy.shape[0] < page.shape[0]
        est = estimate_text_height(np.asarray(Image.fromarray(copy).resize((copy.shape[1] // 2, copy.shape[0] // 2),
                                                                            Image.Resampling.BICUBIC)))
        assert est.px is not None and abs(est.px - target) / target < 0.25  # the LR copy's text is that small
    assert small_copies(np.full((200, 200), 255, np.uint8), 2, 3, 5, 2, np.random.default_rng(0)) == []  # blank


def test_cli_writes_copies_and_names_a_bad_file(tmp_path, capsys):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    Image.fromarray(_page()).save(src / "memo.png")
    (src / "broken.png").write_bytes(b"not a picture")
    assert main([str(src), str(dst), "--scale", "2", "--lo", "3", "--hi", "4", "--copies", "2"]) == 0
    assert len(list(dst.glob("memo_lr*.png"))) == 2
    assert "broken.png" in capsys.readouterr().err
