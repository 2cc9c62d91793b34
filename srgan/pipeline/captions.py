"""Side-by-side pictures with a caption above each panel (what the panel is: input, bicubic, model)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GAP = 8  # grey bar between panels: the panels sit on white paper
CAPTION_PX = 12  # caption text height in pixels at least (wide panels: up to 28)
CAPTION_BG = 225  # the caption strip's grey: apart from the page's white paper
_FONT_NAMES = ("DejaVuSans.ttf", "LiberationSans-Regular.ttf")
_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", str(Path.home() / ".fonts"))


@lru_cache(maxsize=1)
def caption_font_path() -> str:
    """A sans font the machine has (DejaVu Sans, installed by the Makefile; Liberation Sans), or ""."""
    for name in _FONT_NAMES:
        for root in _FONT_DIRS:
            found = next(Path(root).rglob(name), None) if Path(root).is_dir() else None
            if found:
                return str(found)
    return ""


@lru_cache(maxsize=8)
def caption_font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = caption_font_path()
    return ImageFont.truetype(path, size=px) if path else ImageFont.load_default(size=px)


def side_by_side(panels: list[np.ndarray], labels: list[str]) -> np.ndarray:
    """Panels of one height, left to right with grey bars between, each with its label in a light grey
    strip above it and a grey rule between strip and panel, so a caption never reads as the page's first
    line of text (a crop often starts in the middle of one). All grey (H, W) gives a grey picture; any RGB
    (H, W, 3) panel gives an RGB one."""
    colour = any(p.ndim == 3 for p in panels)
    panels = [np.repeat(p[..., None], 3, axis=2) if colour and p.ndim == 2 else p for p in panels]
    h = panels[0].shape[0]
    px = min(28, max(CAPTION_PX, min(p.shape[1] for p in panels) // 16))
    strip = round(px * 1.8)
    rule = max(3, px // 5)  # grey, like the bars between panels
    width = sum(p.shape[1] for p in panels) + GAP * (len(panels) - 1)
    mode = "RGB" if colour else "L"
    picture = Image.new(mode, (width, strip + rule + h), (128, 128, 128) if colour else 128)
    draw = ImageDraw.Draw(picture)
    font = caption_font(px)
    x = 0
    for panel, label in zip(panels, labels, strict=True):
        pw = panel.shape[1]
        draw.rectangle((x, 0, x + pw - 1, strip - 1), fill=(CAPTION_BG,) * 3 if colour else CAPTION_BG)
        text = label
        while text and draw.textlength(text, font=font) > pw - 4:  # a narrow panel: cut the label
            text = text[:-1]
        # anchored at the strip's middle: ascenders and descenders stay inside the strip whatever the font
        draw.text((x + 4, strip // 2), text, font=font, fill=(0, 0, 0) if colour else 0, anchor="lm")
        picture.paste(Image.fromarray(np.ascontiguousarray(panel), mode), (x, strip + rule))
        x += pw + GAP
    return np.asarray(picture)
