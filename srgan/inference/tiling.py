"""Tiling as pure functions: split a page into fixed-size windows, merge upscaled windows back.

Each tile has a core (``tile`` x ``tile`` input pixels, cores never overlap) and a window around it
of ``tile + 2 * pad`` pixels that gives the network context (Real-ESRGAN's tile_process arithmetic).
Windows are shifted inward at page edges instead of padded, so a window edge on a page edge sees
the same zero padding as whole-page inference does: tiled output equals whole-page output whenever
the network's receptive field fits in ``pad``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TileBox:
    """One tile: its core (y0, x0, y1, x1) and the window origin (wy, wx) in input pixels."""

    y0: int
    x0: int
    y1: int
    x1: int
    wy: int
    wx: int


@dataclass(frozen=True)
class TileLayout:
    height: int  # page height in input pixels (before any padding)
    width: int
    window: int  # tile + 2 * pad
    padded_height: int  # page height after padding small pages up to the window
    padded_width: int
    boxes: tuple[TileBox, ...]


def _starts(length: int, tile: int) -> list[int]:
    return list(range(0, length, tile))


def split_tiles(page: np.ndarray, tile: int, pad: int) -> tuple[np.ndarray, TileLayout]:
    """Cut an (H, W) or (C, H, W) array into windows of (C, tile+2pad, tile+2pad).

    Returns (tiles of shape (N, C, win, win), layout). Pages smaller than a window are padded by
    edge replication first (their output is cropped back in merge_tiles).
    """
    arr = page[None] if page.ndim == 2 else page  # (C, H, W)
    _, h, w = arr.shape
    win = tile + 2 * pad
    ph, pw = max(h, win), max(w, win)
    if (ph, pw) != (h, w):
        arr = np.pad(arr, ((0, 0), (0, ph - h), (0, pw - w)), mode="edge")
    boxes = []
    for y0 in _starts(h, tile):
        for x0 in _starts(w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            wy = min(max(y0 - pad, 0), ph - win)
            wx = min(max(x0 - pad, 0), pw - win)
            boxes.append(TileBox(y0, x0, y1, x1, wy, wx))
    tiles = np.stack([arr[:, b.wy : b.wy + win, b.wx : b.wx + win] for b in boxes])
    return tiles, TileLayout(h, w, win, ph, pw, tuple(boxes))


def merge_tiles(tiles: np.ndarray, layout: TileLayout, scale: int) -> np.ndarray:
    """Place the cores of upscaled windows (N, C, win*s, win*s) into a (C, H*s, W*s) page."""
    n, c = tiles.shape[:2]
    if n != len(layout.boxes):
        raise ValueError(f"got {n} tiles for a layout of {len(layout.boxes)}")
    out = np.empty((c, layout.height * scale, layout.width * scale), dtype=tiles.dtype)
    for t, b in zip(tiles, layout.boxes, strict=True):
        oy, ox = (b.y0 - b.wy) * scale, (b.x0 - b.wx) * scale
        hh, ww = (b.y1 - b.y0) * scale, (b.x1 - b.x0) * scale
        out[:, b.y0 * scale : b.y1 * scale, b.x0 * scale : b.x1 * scale] = t[:, oy : oy + hh, ox : ox + ww]
    return out
