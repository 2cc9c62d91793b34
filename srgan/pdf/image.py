"""A scan image's own pixels out of a PDF, and upscaled pixels back into image XObjects (lossless Flate).

Whatever the original encoding (JBIG2, CCITT G4, JPEG, Flate; 1 to 8 bits, grey, RGB or indexed), the
upscaled image is written as 8-bit grey or RGB with Flate: the model's output has grey levels (smooth
letter edges) that a bitonal code would throw away, and JPEG would add its own loss. Output pages in
PNG are put in as their PNG data (PNG predictors), so a page is not compressed twice.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np
import pikepdf
from pikepdf import Name
from PIL import Image

try:  # the same fast deflate as the output PNG pages (srgan/pipeline/png.py)
    from zlib_ng import zlib_ng as _deflate
except ImportError:  # pragma: no cover
    _deflate = zlib

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DROP = ("/Decode", "/DecodeParms", "/ImageMask", "/Alternates", "/SMaskInData", "/Length1")


def scan_pixels(pdf: pikepdf.Pdf, objgen: tuple[int, int]) -> Image.Image:
    """The image XObject's own pixels (its /Decode array applied), as Pillow decodes them."""
    return pikepdf.PdfImage(pdf.get_object(objgen)).as_pil_image()


@dataclass(frozen=True)
class Pixels:
    """Image data ready for a stream: Flate bytes (with PNG predictors when they came from a PNG)."""

    data: bytes
    width: int
    height: int
    colours: int  # 1 grey, 3 RGB
    predictor: bool  # the rows carry PNG filter bytes (/DecodeParms /Predictor 15)


def from_array(pixels: np.ndarray, level: int = 1) -> Pixels:
    """(H, W) grey or (H, W, 3) RGB uint8 -> Flate data (run-length deflate, as the PNG pages)."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] != 3):
        raise ValueError(f"need (H, W) or (H, W, 3) uint8, got {pixels.dtype}{pixels.shape}")
    packer = _deflate.compressobj(level, _deflate.DEFLATED, 15, 9, _deflate.Z_RLE)
    data = packer.compress(np.ascontiguousarray(pixels).data) + packer.flush()
    return Pixels(data, pixels.shape[1], pixels.shape[0], 1 if pixels.ndim == 2 else 3, False)


def from_png(png: bytes) -> Pixels | None:
    """A PNG's own deflate stream, when it is 8-bit grey or RGB and not interlaced; None otherwise."""
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
    if depth != 8 or colour_type not in (0, 2) or interlace:
        return None
    return Pixels(b"".join(idat), width, height, 1 if colour_type == 0 else 3, True)


def read_pixels(png_path: str) -> tuple[Pixels, np.ndarray | None]:
    """A page file's stream data, and its pixels when they had to be decoded (not a plain 8-bit PNG)."""
    with open(png_path, "rb") as fh:  # noqa: PTH123 - one read of bytes
        data = fh.read()
    direct = from_png(data)
    if direct is not None:
        return direct, None
    arr = page_array(png_path)
    return from_array(arr), arr


def page_array(png_path: str) -> np.ndarray:
    """An output page file's pixels, (H, W) grey or (H, W, 3) RGB uint8.

    Opened as a PNG directly, not through Image.open: the pages are this run's own outputs, scale^2 times
    the input's pixels, and Image.open would refuse them as decompression bombs past twice
    Image.MAX_IMAGE_PIXELS (which the readers set to limits.max_pixels)."""
    from PIL import PngImagePlugin

    with PngImagePlugin.PngImageFile(png_path) as im:
        return np.asarray(im.convert("L" if im.mode in ("L", "1", "I;16") else "RGB"))


def _write(stream: pikepdf.Stream, pixels: Pixels) -> None:
    parms = None
    if pixels.predictor:
        parms = pikepdf.Dictionary(Predictor=15, Colors=pixels.colours, BitsPerComponent=8, Columns=pixels.width)
    stream.write(pixels.data, filter=Name.FlateDecode, decode_parms=parms)
    stream.Width, stream.Height, stream.BitsPerComponent = pixels.width, pixels.height, 8


def replace_image(pdf: pikepdf.Pdf, objgen: tuple[int, int], pixels: Pixels, family: str | None) -> None:
    """Put the pixels (the image's own grid) into the image XObject in place: same object, same
    placement; 8-bit, Flate. The colour space stays when it has as many components (ICC profiles kept),
    else it becomes DeviceGray or DeviceRGB. ``family``: the original's (plan.colour_family)."""
    xobj = pdf.get_object(objgen)
    wanted = "grey" if pixels.colours == 1 else "rgb"
    cs = xobj.get("/ColorSpace")
    indexed = isinstance(cs, pikepdf.Array) and len(cs) and str(cs[0]) == "/Indexed"
    _write(xobj, pixels)
    for key in _DROP:
        if key in xobj and not (key == "/DecodeParms" and pixels.predictor):
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
