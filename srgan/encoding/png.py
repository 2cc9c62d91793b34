"""A lean lossless PNG writer for grey pages (the output pages of a run), at 8, 4, 2 or 1 bits.

Pillow's PNG encoder picks a row filter adaptively (about 13 ms of one core for a 2000x1536 page
before any compression). Scanned and upscaled text pages are mostly flat paper, which zlib's
run-length strategy (``Z_RLE``) packs well without filtering: no row filter plus ``Z_RLE`` at level 1
deflated a 2x page of 1000x768 in 10 ms with zlib and 4 ms with zlib-ng, against 27 ms for Pillow's
encoder at level 1, and 9% smaller (344 KB against 380 KB; docs/performance.md). The pixels are
the same: any PNG reader decodes them back exactly (tests/test_png.py).

Fewer bits (``bits`` 4, 2, 1: 16, 4 or 2 grey levels, srgan.encoding.codecs) pack 2, 4 or 8 pixels into a
byte; a PNG reader scales the levels back to 0..255 (level x 255 / (2^bits - 1): 17, 85, 255). Packed rows are
deflated with zlib's default strategy at ``PACKED_LEVEL``: on a 2x FUNSD page 10-13% smaller than Z_RLE, in
35-65 ms of one core (``png_compress_level`` is the 8-bit pages' level).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

try:  # zlib-ng (a dependency) deflates the same stream format 2.5x faster; plain zlib if it is missing
    from zlib_ng import zlib_ng as _deflate
except ImportError:  # pragma: no cover - the library runs without it, only slower
    _deflate = zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BITS = (8, 4, 2, 1)
PACKED_LEVEL = 6  # zlib level of packed (4-, 2-, 1-bit) rows, default strategy


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def pack_rows(levels: np.ndarray, bits: int) -> np.ndarray:
    """(H, W) level indexes (0 .. 2^bits - 1) -> (H, ceil(W * bits / 8)) bytes, the first pixel in the high bits
    (PNG's and PDF's sample order); the last byte of a row is padded with zeros."""
    if bits == 8:
        return levels
    per_byte = 8 // bits
    h, w = levels.shape
    padded = np.zeros((h, -(-w // per_byte) * per_byte), np.uint8)
    padded[:, :w] = levels
    groups = padded.reshape(h, -1, per_byte)  # (H, bytes per row, pixels per byte)
    shifts = np.arange(8 - bits, -1, -bits, dtype=np.uint8)  # 8 - bits .. 0: first pixel highest
    return np.bitwise_or.reduce(groups << shifts, axis=2).astype(np.uint8)


def deflate_rows(rows: np.ndarray, bits: int = 8, level: int = 1) -> bytes:
    """(H, B) row bytes -> zlib data of the rows each led by filter byte 0 (PNG's, and PDF's PNG predictors'):
    8-bit rows with Z_RLE at ``level``, packed rows with the default strategy at PACKED_LEVEL."""
    h, b = rows.shape
    framed = np.zeros((h, b + 1), np.uint8)  # each row: filter byte 0, then the row's bytes
    framed[:, 1:] = rows
    if bits == 8:
        packer = _deflate.compressobj(level, _deflate.DEFLATED, 15, 9, _deflate.Z_RLE)
    else:
        packer = _deflate.compressobj(PACKED_LEVEL, _deflate.DEFLATED, 15, 9, _deflate.Z_DEFAULT_STRATEGY)
    return packer.compress(framed.data) + packer.flush()


def encode_grey_png(image: np.ndarray, dpi: float | None = None, level: int = 1, bits: int = 8) -> bytes:
    """(H, W) uint8 -> PNG bytes: colour type 0 (grey), filter 0 on every row, deflated (:func:`deflate_rows`).

    bits 8: the pixels as they are. bits 4, 2, 1: ``image`` holds level indexes (0 .. 2^bits - 1), stored
    packed. dpi goes into a pHYs chunk (pixels per metre, rounded as Pillow does).
    """
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"encode_grey_png: need (H, W) uint8, got {image.dtype}{image.shape}")
    if bits not in BITS:
        raise ValueError(f"encode_grey_png: bits must be one of {BITS}, got {bits}")
    if bits < 8 and image.size and int(image.max()) >= 1 << bits:
        raise ValueError(f"encode_grey_png: {bits}-bit levels must be below {1 << bits}, got {int(image.max())}")
    h, w = image.shape
    idat = deflate_rows(pack_rows(image, bits), bits, level)
    parts = [_SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, 0, 0, 0, 0))]
    if dpi:
        ppm = int(dpi / 0.0254 + 0.5)
        parts.append(_chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1)))
    parts += [_chunk(b"IDAT", idat), _chunk(b"IEND", b"")]
    return b"".join(parts)
