"""A scan image's own pixels out of a PDF, and upscaled pixels back into image XObjects.

Whatever the original encoding (JBIG2, CCITT G4, JPEG, Flate; 1 to 8 bits, grey, RGB or indexed), the upscaled
image is written in the encoding of its page file (``upscale.encoding``, srgan.encoding.codecs): an 8-bit PNG
page as 8-bit Flate, a 4- or 2-bit grey PNG as 4- or 2-bit Flate (``/BitsPerComponent`` 4 or 2), a bitonal
(1-bit) page as CCITT Group 4, a JPEG 2000 page as ``/JPXDecode`` (the same JP2 file). PNG pages go in as their
own deflate data (PNG predictors), so a page is not compressed twice.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import pikepdf
from pikepdf import Name
from PIL import Image

from srgan.encoding import codecs
from srgan.encoding.png import deflate_rows, pack_rows

try:  # the same fast deflate as the output PNG pages (srgan/encoding/png.py)
    from zlib_ng import zlib_ng as _deflate
except ImportError:  # pragma: no cover
    _deflate = zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DROP = ("/Decode", "/ImageMask", "/Alternates", "/SMaskInData", "/Length1")
FLATE, CCITT, JPX = "flate", "ccitt", "jpx"


def scan_pixels(pdf: pikepdf.Pdf, objgen: tuple[int, int]) -> Image.Image:
    """The image XObject's own pixels (its /Decode array applied), as Pillow decodes them."""
    return pikepdf.PdfImage(pdf.get_object(objgen)).as_pil_image()


@dataclass(frozen=True)
class Pixels:
    """Image data ready for a stream: Flate bytes (with PNG predictors when they came from a PNG), CCITT G4 or a
    JP2 file."""

    data: bytes
    width: int
    height: int
    colours: int  # 1 grey, 3 RGB
    predictor: bool  # the rows carry PNG filter bytes (/DecodeParms /Predictor 15)
    bits: int = 8  # bits per component (Flate: 8, 4, 2; CCITT: 1)
    codec: str = FLATE  # flate | ccitt | jpx
    black_is_1: bool = False  # CCITT: the 1 bits are black


def from_array(pixels: np.ndarray, level: int = 1) -> Pixels:
    """(H, W) grey or (H, W, 3) RGB uint8 -> Flate data (run-length deflate, as the PNG pages)."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(f"need (H, W) or (H, W, 3) uint8, got {pixels.dtype}{pixels.shape}")
    packer = _deflate.compressobj(level, _deflate.DEFLATED, 15, 9, _deflate.Z_RLE)
    data = packer.compress(np.ascontiguousarray(pixels).data) + packer.flush()
    return Pixels(data, pixels.shape[1], pixels.shape[0], 1 if pixels.ndim == 2 else 3, False)


def from_levels(pixels: np.ndarray, bits: int) -> Pixels:
    """(H, W) grey uint8 of 2^bits uniform levels (a 4-, 2- or 1-bit page file's pixels) -> the same levels
    stored in bits: Flate with PNG predictors at 4 and 2 bits, CCITT Group 4 at 1 bit."""
    if bits == 1:
        data, black_is_1 = codecs.group4(pixels)
        return Pixels(data, pixels.shape[1], pixels.shape[0], 1, False, 1, CCITT, black_is_1)
    rows = pack_rows(codecs.level_indexes(pixels, 1 << bits), bits)
    return Pixels(deflate_rows(rows, bits), pixels.shape[1], pixels.shape[0], 1, True, bits)


def from_png(png: bytes) -> Pixels | None:
    """A PNG's own deflate stream, when it is 8-bit grey or RGB or 4- or 2-bit grey, not interlaced; None
    otherwise (1-bit pages go to CCITT G4 instead: :func:`read_pixels`)."""
    if not png.startswith(_SIGNATURE):
        return None
    pos, idat, header = len(_SIGNATURE), [], None
    while pos + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[pos : pos + 8])
        body = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        return None
    width, height, depth, colour_type, _, _, interlace = header
    if interlace or not ((depth == 8 and colour_type in (0, 2)) or (depth in (4, 2) and colour_type == 0)):
        return None
    return Pixels(b"".join(idat), width, height, 1 if colour_type == 0 else 3, True, depth)


def png_depth(png: bytes) -> int | None:
    """A grey PNG's bit depth (None: not a PNG, or not grey)."""
    if not png.startswith(_SIGNATURE) or png[12:16] != b"IHDR":
        return None
    depth, colour_type = png[24], png[25]
    return depth if colour_type == 0 else None


def from_jp2(jp2: bytes, pixels: np.ndarray) -> Pixels:
    """A JPEG 2000 page file as a ``/JPXDecode`` stream (the file as it is); pixels: its decoded pixels."""
    return Pixels(jp2, pixels.shape[1], pixels.shape[0], 1 if pixels.ndim == 2 else 3, False, 8, JPX)


def read_pixels(page_path: str) -> tuple[Pixels, np.ndarray | None]:
    """A page file's stream data, and its pixels when they had to be decoded (not a PNG whose data goes in as
    it is)."""
    with open(page_path, "rb") as fh:  # noqa: PTH123 - one read of bytes
        data = fh.read()
    direct = from_png(data)
    if direct is not None:
        return direct, None
    arr = codecs.decode(data)
    if data[4:8] == b"jP  ":
        return from_jp2(data, arr), arr
    depth = png_depth(data)
    if depth == 1:
        return from_levels(arr, 1), arr
    return from_array(arr), arr


def like(pixels: np.ndarray, kind: Pixels) -> Pixels:
    """Pixels (turned, from a page file's decoded ones) stored the way ``kind`` (that page file's) is: the same
    levels at its bits, or JPEG 2000 again (a second lossy pass, for pages turned back into their image's grid)."""
    if kind.codec == JPX:
        return from_jp2(codecs.jp2_bytes(pixels), pixels)
    if kind.bits < 8:
        return from_levels(pixels, kind.bits)
    return from_array(pixels)


def _write(stream: pikepdf.Stream, pixels: Pixels) -> None:
    if pixels.codec == CCITT:
        parms = pikepdf.Dictionary(K=-1, Columns=pixels.width, Rows=pixels.height, BlackIs1=pixels.black_is_1)
        stream.write(pixels.data, filter=Name.CCITTFaxDecode, decode_parms=parms)
    elif pixels.codec == JPX:
        stream.write(pixels.data, filter=Name.JPXDecode)
    else:
        parms = None
        if pixels.predictor:
            parms = pikepdf.Dictionary(Predictor=15, Colors=pixels.colours, BitsPerComponent=pixels.bits,
                                       Columns=pixels.width)
        stream.write(pixels.data, filter=Name.FlateDecode, decode_parms=parms)
    if "/DecodeParms" in stream and (pixels.codec == JPX or (pixels.codec == FLATE and not pixels.predictor)):
        del stream["/DecodeParms"]  # the original's (a JBIG2 image's /JBIG2Globals) do not describe the new data
    stream.Width, stream.Height, stream.BitsPerComponent = pixels.width, pixels.height, pixels.bits


def replace_image(pdf: pikepdf.Pdf, objgen: tuple[int, int], pixels: Pixels, family: str | None) -> None:
    """Put the pixels (the image's own grid) into the image XObject in place: same object, same
    placement, the pixels' encoding. The colour space stays when it has as many components (ICC profiles kept),
    else it becomes DeviceGray or DeviceRGB. ``family``: the original's (plan.colour_family)."""
    xobj = pdf.get_object(objgen)
    wanted = "grey" if pixels.colours == 1 else "rgb"
    cs = xobj.get("/ColorSpace")
    indexed = isinstance(cs, pikepdf.Array) and len(cs) and str(cs[0]) == "/Indexed"
    _write(xobj, pixels)
    for key in _DROP:
        if key in xobj:
            del xobj[key]
    if family != wanted or indexed:
        xobj.ColorSpace = Name.DeviceGray if wanted == "grey" else Name.DeviceRGB


def picture_form(pdf: pikepdf.Pdf, pixels: Pixels, size_pt: tuple[float, float]) -> pikepdf.Stream:
    """A form XObject of the displayed page's size in points, painted by one image (the page's picture)."""
    image = pikepdf.Stream(pdf, b"")
    _write(image, pixels)
    image.Type, image.Subtype = Name.XObject, Name.Image
    image.ColorSpace = Name.DeviceGray if pixels.colours == 1 else Name.DeviceRGB
    w, h = size_pt
    content = f"q {w:.4f} 0 0 {h:.4f} 0 0 cm /Picture Do Q\n".encode()
    return pikepdf.Stream(pdf, content, Type=Name.XObject, Subtype=Name.Form, BBox=[0, 0, w, h],
                          Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Picture=image)))
