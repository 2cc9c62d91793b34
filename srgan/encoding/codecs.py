"""Page encodings (``upscale.encoding``): how an upscaled grey page is stored, in its page file and in a PDF.

| name | levels | page file | in a PDF |
|---|---|---|---|
| ``png8`` | 256 (lossless) | 8-bit grey PNG | 8-bit Flate (PNG predictors) |
| ``png4`` | 16 | 4-bit grey PNG | 4-bit Flate |
| ``png2`` | 4 | 2-bit grey PNG | 2-bit Flate |
| ``bitonal`` | 2 (threshold at mid-grey) | 1-bit grey PNG | CCITT Group 4 |
| ``jp2`` | lossy (JPEG 2000 at ``JP2_DB`` dB) | ``.jp2`` | ``/JPXDecode`` (the same JP2 file) |

The few-level encodings quantise uniformly: level = round(v x (L - 1) / 255), written as level x 255 / (L - 1)
(0, 17, 34 ... 255 for 16 levels; 0, 85, 170, 255 for 4; 0 and 255 for 2, a threshold at mid-grey, as
``srgan.fidelity.rvl_paired``'s bitonal reference). Any PNG or PDF reader decodes exactly these pixels
(:func:`intended`); JPEG 2000 decodes to pixels near the page (lossy). Colour pages stay 8-bit: a few-level or
bitonal encoding is for grey pages (:func:`for_page` says which encoding a page gets).
The default was chosen by measurement (docs/formats.md, ``python -m srgan.fidelity.encoding_study``).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image

from srgan.encoding.png import encode_grey_png

JP2_DB = 30.0  # JPEG 2000 target PSNR of the page (openjpeg quality_mode dB): about 0.3 of png8 bytes on FUNSD at 2x


@dataclass(frozen=True)
class Encoding:
    """One page encoding: its name (the records' ``encoding``), grey levels kept (0: lossy JPEG 2000), bits a
    sample and its page files' extension."""

    name: str
    levels: int
    bits: int
    ext: str

    @property
    def lossless(self) -> bool:
        """Whether decoding gives back exactly :func:`intended` pixels."""
        return self.levels > 0


ENCODINGS = {e.name: e for e in (
    Encoding("png8", 256, 8, "png"),
    Encoding("png4", 16, 4, "png"),
    Encoding("png2", 4, 2, "png"),
    Encoding("bitonal", 2, 1, "png"),
    Encoding("jp2", 0, 8, "jp2"),
)}
NAMES = tuple(ENCODINGS)


def get(name: str) -> Encoding:
    try:
        return ENCODINGS[name]
    except KeyError:
        raise ValueError(f"unknown encoding {name!r} (known: {', '.join(NAMES)})") from None


def for_page(name: str, image: np.ndarray) -> Encoding:
    """The encoding a page gets: the configured one for a grey (H, W) page; png8 for colour (H, W, 3) pages
    under a few-level or bitonal encoding (their levels are grey levels); jp2 takes colour as it is."""
    enc = get(name)
    return enc if image.ndim == 2 or enc.name == "jp2" else ENCODINGS["png8"]


def level_indexes(image: np.ndarray, levels: int) -> np.ndarray:
    """(H, W) uint8 -> the nearest of ``levels`` uniform grey levels, as indexes 0 .. levels - 1."""
    if levels == 256:
        return image
    wide = image.astype(np.uint16)
    return ((wide * (2 * (levels - 1)) + 255) // 510).astype(np.uint8)  # round(v * (L - 1) / 255), halves up


def intended(image: np.ndarray, enc: Encoding) -> np.ndarray:
    """The pixels a lossless encoding stores for ``image`` (what any decoder gives back)."""
    if not enc.lossless or enc.levels == 256:
        return image
    return (level_indexes(image, enc.levels) * (255 // (enc.levels - 1))).astype(np.uint8)


def encode(image: np.ndarray, enc: Encoding, dpi: float | None, compress_level: int = 1) -> bytes:
    """A page's file bytes under ``enc`` ((H, W) grey; (H, W, 3) RGB only for png8 and jp2)."""
    if enc.name == "jp2":
        return jp2_bytes(image, dpi)
    if image.ndim == 3 and enc.name == "png8":  # a colour page: Pillow's PNG encoder
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG", compress_level=compress_level,
                                    **({"dpi": (dpi, dpi)} if dpi else {}))
        return buf.getvalue()
    if image.ndim != 2:
        raise ValueError(f"encoding {enc.name}: a grey (H, W) page, got {image.shape}")
    return encode_grey_png(level_indexes(image, enc.levels), dpi, compress_level, enc.bits)


def jp2_bytes(image: np.ndarray, dpi: float | None = None, db: float = JP2_DB) -> bytes:
    """JPEG 2000 (JP2 file, irreversible wavelet, one quality layer at ``db`` dB PSNR) by Pillow's openjpeg.
    The resolution goes into the JP2 header's capture resolution box."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG2000", quality_mode="dB", quality_layers=[db],
                                irreversible=True, no_jp2=False)
    data = buf.getvalue()
    return _with_resolution(data, dpi) if dpi else data


def _with_resolution(jp2: bytes, dpi: float) -> bytes:
    """The JP2 file with a ``res `` superbox (capture resolution ``resc``, pixels per metre) in its header box."""
    pos = 12  # after the signature box
    while pos + 8 <= len(jp2):
        length, kind = struct.unpack(">I4s", jp2[pos : pos + 8])
        if kind == b"jp2h":
            ppm = round(dpi / 0.0254)
            num, exp = ppm, 0
            while num > 0xFFFF:
                num, exp = num // 10, exp + 1
            resc = struct.pack(">I4sHHHHbb", 18, b"resc", num, 1, num, 1, exp, exp)
            res = struct.pack(">I4s", 8 + len(resc), b"res ") + resc
            header = struct.pack(">I4s", length + len(res), b"jp2h") + jp2[pos + 8 : pos + length] + res
            return jp2[:pos] + header + jp2[pos + length :]
        if length < 8:
            break
        pos += length
    return jp2


def group4(image: np.ndarray) -> tuple[bytes, bool]:
    """CCITT Group 4 data of the page thresholded at mid-grey, for a PDF ``/CCITTFaxDecode`` stream (``/K -1``),
    and its ``/BlackIs1``: Pillow's libtiff writes a one-strip G4 TIFF, whose strip is taken out; its
    PhotometricInterpretation says which bit value is black (BlackIsZero: ``/BlackIs1 true``, as img2pdf reads it)."""
    bitonal = Image.fromarray((level_indexes(image, 2) * 255).astype(np.uint8)).convert("1", dither=Image.Dither.NONE)
    buf = io.BytesIO()
    bitonal.save(buf, format="TIFF", compression="group4", tiffinfo={278: image.shape[0]})  # RowsPerStrip: one strip
    with Image.open(io.BytesIO(buf.getvalue())) as tif:
        photometric = tif.tag_v2.get(262)
        offsets, counts = tif.tag_v2.get(273), tif.tag_v2.get(279)
    if len(offsets) != 1 or photometric not in (0, 1):
        raise RuntimeError(f"G4 TIFF of {len(offsets)} strips, PhotometricInterpretation {photometric}")
    return buf.getvalue()[offsets[0] : offsets[0] + counts[0]], photometric == 1


def decode(data: bytes) -> np.ndarray:
    """A page file's pixels (PNG at any bit depth, JPEG 2000): (H, W) grey or (H, W, 3) RGB uint8."""
    from PIL import Jpeg2KImagePlugin, PngImagePlugin  # not Image.open: pages are past MAX_IMAGE_PIXELS / 2

    plugin = Jpeg2KImagePlugin.Jpeg2KImageFile if data[4:8] == b"jP  " or data[:4] == b"\xffO\xffQ" \
        else PngImagePlugin.PngImageFile
    with plugin(io.BytesIO(data)) as im:
        return np.asarray(im.convert("L" if im.mode in ("L", "1", "I;16", "LA") else "RGB"))
