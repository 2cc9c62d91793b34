"""Side-by-side pictures: each caption in its own grey strip, ruled off from the panel below it."""

from __future__ import annotations

import numpy as np

from srgan.pipeline.captions import CAPTION_BG, side_by_side


def test_caption_sits_in_its_own_strip_above_an_untouched_panel() -> None:
    page = np.full((80, 96), 255, np.uint8)
    page[:5] = 0  # the crop starts in the middle of a line of text
    pic = side_by_side([page, page], ["input (nearest x2)", "model"])
    top = pic.shape[0] - page.shape[0]
    assert np.array_equal(pic[top:, :96], page) and np.array_equal(pic[top:, -96:], page)
    rule = pic[top - 3 : top]
    assert (rule == 128).all()  # a grey rule across the width between captions and panels
    strip = pic[: top - 3, :96]
    assert (strip < 100).any()  # the caption's text
    assert np.median(strip) == CAPTION_BG  # on grey, not on the page's white
    assert (strip[-1] == CAPTION_BG).all() and (strip[0] == CAPTION_BG).all()  # the text stays inside


def test_colour_panels_give_a_colour_picture() -> None:
    grey, rgb = np.full((40, 40), 255, np.uint8), np.zeros((40, 40, 3), np.uint8)
    pic = side_by_side([grey, rgb], ["a", "b"])
    assert pic.ndim == 3 and pic.shape[1] == 80 + 8
