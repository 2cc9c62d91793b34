"""Bad and hostile inputs, generated in code: each function returns bytes (or writes a file).

Used by tests/test_robustness.py (the corpus), tests/test_resume.py and tests/test_fuzz_readers.py.
``write_corpus`` lays the whole corpus out in a folder and says what each page must become.
"""

from __future__ import annotations

import io
import os
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import text_like_page

# ------------------------------------------------------------------ plain images


def image_bytes(arr_or_im: np.ndarray | Image.Image, fmt: str, **kw) -> bytes:
    im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def good_png(seed: int = 0, h: int = 120, w: int = 100) -> bytes:
    return image_bytes(text_like_page(h, w, seed), "PNG", dpi=(100, 100))


def good_tiff(seed: int = 0, h: int = 120, w: int = 100) -> bytes:
    return image_bytes(text_like_page(h, w, seed), "TIFF", dpi=(100, 100))


def truncated_tiff() -> bytes:
    """An uncompressed TIFF cut in half: the header is fine, the strips are not all there."""
    noise = np.random.default_rng(1).integers(0, 256, (200, 200), dtype=np.uint8)
    full = image_bytes(noise, "TIFF")
    return full[: len(full) // 2]


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid 4x4 PNG whose IHDR claims width x height (CRC fixed so only the size is a lie)."""
    data = bytearray(image_bytes(np.zeros((4, 4), np.uint8), "PNG"))
    data[16:24] = struct.pack(">II", width, height)  # IHDR data starts at byte 16
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # CRC over type + 13 data bytes
    return bytes(data)


def cmyk_jpeg() -> bytes:
    rgb = np.dstack([text_like_page(120, 100, 5)] * 3)
    return image_bytes(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=95)


def tiff16() -> bytes:
    return image_bytes(text_like_page(120, 100, 6).astype(np.uint16) * 257, "TIFF")


def rgba_png() -> bytes:
    page = text_like_page(120, 100, 7)
    alpha = np.where(page < 128, 255, 0).astype(np.uint8)  # ink opaque, paper transparent
    return image_bytes(np.dstack([page, page, page, alpha]), "PNG")


def palette_png() -> bytes:
    im = Image.fromarray(text_like_page(120, 100, 8)).convert("P")
    return image_bytes(im, "PNG", transparency=255)


def tiny_png(h: int = 5, w: int = 7) -> bytes:
    """An image much smaller than one tile."""
    return image_bytes(np.full((h, w), 200, np.uint8), "PNG")


def blank_png() -> bytes:
    return image_bytes(np.full((120, 100), 255, np.uint8), "PNG")


def black_png() -> bytes:
    return image_bytes(np.zeros((120, 100), np.uint8), "PNG")


# ------------------------------------------------------------------ PDFs


def good_pdf(pages: int = 2, seed: int = 10) -> bytes:
    ims = [Image.fromarray(text_like_page(150, 120, seed + i)) for i in range(pages)]
    buf = io.BytesIO()
    ims[0].save(buf, format="PDF", save_all=True, append_images=ims[1:], resolution=50.0)
    return buf.getvalue()


def truncated_pdf() -> bytes:
    data = good_pdf(2)
    return data[: len(data) // 2]


def pdf_header_only() -> bytes:
    return b"%PDF-1.7\n"


def encrypted_pdf(password: str = "secret") -> bytes:
    """A PDF that needs a user password to open (pypdf, RC4-128: no crypto library needed)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(good_pdf(1))))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF from object bodies (object i+1 = objects[i]; 1 is the catalog), xref table computed."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _stream(content: bytes, extra: bytes = b"") -> bytes:
    packed = zlib.compress(content, 9)
    return b"<< /Length %d /Filter /FlateDecode %s >>\nstream\n" % (len(packed), extra) + packed + b"\nendstream"


def nested_forms_pdf(depth: int = 6, fanout: int = 40) -> bytes:
    """One page drawing a form that draws the next form `fanout` times, `depth` levels deep.

    A few kB that asks poppler for fanout**depth drawing operations: the page render timeout
    (pdf.render_timeout_s) is what stops it.
    """
    # objects: 1 catalog, 2 pages, 3 page, 4 page content, 5.. forms (5 = top, last = a filled square)
    first_form = 5
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 144 144] /Contents 4 0 R "
            b"/Resources << /XObject << /F %d 0 R >> >> >>" % first_form,
            _stream(b"q /F Do Q")]
    for level in range(depth):
        body = b"".join(b"q 0.99 0 0 0.99 %d %d cm /F Do Q\n" % (i % 7, i % 5) for i in range(fanout))
        res = b"/Resources << /XObject << /F %d 0 R >> >>" % (first_form + level + 1)
        objs.append(_stream(body, b"/Type /XObject /Subtype /Form /BBox [0 0 144 144] " + res))
    objs.append(_stream(b"0 0 0 rg 10 10 100 100 re f", b"/Type /XObject /Subtype /Form /BBox [0 0 144 144]"))
    return _pdf(objs)


def many_pages_pdf(count: int = 40) -> bytes:
    """count blank pages sharing one page size (a few kB)."""
    kids = b" ".join(b"%d 0 R" % (3 + i) for i in range(count))
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count)]
    objs += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>"] * count
    return _pdf(objs)


# ------------------------------------------------------------------ archives


def tar_bytes(members: list[tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buf.getvalue()


def hostile_tar(page: bytes) -> bytes:
    """'../x.tif', '/etc/x.tif', a symlink, a hard link, a device, a fifo, and one good member."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name in ("../x.tif", "/etc/x.tif", "good.tif"):
            info = tarfile.TarInfo(name)
            info.size = len(page)
            tar.addfile(info, io.BytesIO(page))
        for name, typ, target in (("link.tif", tarfile.SYMTYPE, "/etc/passwd"),
                                  ("hard.tif", tarfile.LNKTYPE, "good.tif"),
                                  ("dev.tif", tarfile.CHRTYPE, ""), ("fifo.tif", tarfile.FIFOTYPE, "")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = typ, target
            tar.addfile(info)
    return buf.getvalue()


def lying_zip(real_bytes: int = 20 * 1024 * 1024, claimed: int = 1000, name: str = "bomb.tif") -> bytes:
    """A zip whose member inflates to real_bytes while both headers claim `claimed` bytes."""
    data = bytearray(zip_bytes([(name, b"II*\x00" + bytes(real_bytes - 4))]))
    size = struct.pack("<I", real_bytes)
    lie = struct.pack("<I", claimed)
    # local header: uncompressed size at offset 22; central directory entry: at offset 24 from 'PK\1\2'
    assert data[22:26] == size
    data[22:26] = lie
    central = data.rfind(b"PK\x01\x02")
    assert data[central + 24 : central + 28] == size
    data[central + 24 : central + 28] = lie
    return bytes(data)


def corrupt_gzip_tar(pages: list[tuple[str, bytes]], keep: float = 0.6) -> bytes:
    """A .tar.gz whose stream is garbage from `keep` of its length on (members before survive)."""
    whole = bytearray(tar_bytes(pages, "w:gz"))
    cut = int(len(whole) * keep)
    rng = np.random.default_rng(3)
    whole[cut:] = rng.integers(0, 256, len(whole) - cut, dtype=np.uint8).tobytes()
    return bytes(whole)


def noise_tiff(seed: int) -> bytes:
    """An incompressible page (so a damaged gzip stream hits it, not the padding)."""
    return image_bytes(np.random.default_rng(seed).integers(0, 256, (160, 160), dtype=np.uint8), "TIFF")


# ------------------------------------------------------------------ the corpus


@dataclass(frozen=True)
class Expect:
    """What one page of the corpus must become: status 'ok' or 'error' (reason containing `why`)."""

    member: str  # the records' member column (path relative to the corpus folder, or archive member)
    page_index: int
    status: str
    why: str = ""
    label: str | None = None


# What each page of the corpus must become (damaged.tar.gz apart: see write_corpus).
CORPUS: tuple[Expect, ...] = (
    Expect("zero.tif", 0, "error", "empty file"),
    Expect("truncated.tif", 0, "error", "truncated"),
    Expect("truncated.pdf", 0, "error", "cannot read PDF"),
    Expect("encrypted.pdf", 0, "error", "Incorrect password"),
    Expect("header_only.pdf", 0, "error", "cannot read PDF"),
    Expect("bomb.png", 0, "error", "header claims 10000000000 pixels > limits.max_pixels"),
    Expect("cmyk.jpg", 0, "ok"),
    Expect("deep16.tif", 0, "ok"),
    Expect("rgba.png", 0, "ok"),
    Expect("palette.png", 0, "ok"),
    Expect("tiny.png", 0, "ok"),
    Expect("blank.png", 0, "ok"),
    Expect("black.png", 0, "ok"),
    Expect("blob.tif", 0, "error", "not a readable TIFF"),
    Expect("inner/ok.png", 0, "ok"),
    Expect("../x.tif", 0, "error", "'..'"),
    Expect("/etc/x.tif", 0, "error", "absolute"),
    Expect("good.tif", 0, "ok"),
    Expect("link.tif", 0, "error", "symlink"),
    Expect("hard.tif", 0, "error", "hard link"),
    Expect("dev.tif", 0, "error", "device"),
    Expect("fifo.tif", 0, "error", "fifo"),
    Expect("bomb.tif", 0, "error", "cannot read member"),
    Expect("latin1_caf\\xe9.png", 0, "ok"),
    Expect("images/labelled.png", 0, "ok", label="handwritten"),
)


def write_corpus(root: Path) -> list[Expect]:
    """Write every bad input under root (a folder); return the expected row of each page.

    damaged.tar.gz is not listed: how many of its members come before the damage is the gzip
    stream's business; tests check it apart (members before the damage ok, one archive error row).
    """
    root.mkdir(parents=True, exist_ok=True)
    files: dict[str, bytes] = {
        "zero.tif": b"",
        "truncated.tif": truncated_tiff(),
        "truncated.pdf": truncated_pdf(),
        "encrypted.pdf": encrypted_pdf(),
        "header_only.pdf": pdf_header_only(),
        "bomb.png": png_bomb(),
        "cmyk.jpg": cmyk_jpeg(),
        "deep16.tif": tiff16(),
        "rgba.png": rgba_png(),
        "palette.png": palette_png(),
        "tiny.png": tiny_png(),
        "blank.png": blank_png(),
        "black.png": black_png(),
        "mixed.tar": tar_bytes([("notes.txt", b"just text"), ("blob.tif", os.urandom(3000)),
                                ("blob.bin", os.urandom(500)), ("inner/ok.png", good_png(21))]),
        "hostile.tar": hostile_tar(good_tiff(22)),
        "bomb.zip": lying_zip(),
        "damaged.tar.gz": corrupt_gzip_tar([(f"n{i}.tif", noise_tiff(i)) for i in range(4)]),
        "images/labelled.png": good_png(24),
        "labels/train.txt": b"labelled.png 3\nthis line is malformed\nimages/x.png 99\n\xff\xfe garbage\n",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    raw_name = os.fsdecode(b"latin1_caf\xe9.png")  # not UTF-8: a surrogate-escaped str on Linux
    (root / raw_name).write_bytes(good_png(23))
    return list(CORPUS)
