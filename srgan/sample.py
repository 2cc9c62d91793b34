"""Synthetic office pages rendered with the machine's fonts, and a small RVL-CDIP-style sample set.

``make_sample`` writes what the demo and the fast tests read: an RVL-CDIP-like ``tar.gz`` (pages
shrunk so the longest side is 1000 px, as RVL-CDIP did), a 3-page PDF and the full-size originals.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import random
import tarfile
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

logger = logging.getLogger(__name__)

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", str(Path.home() / ".fonts"))
PREFERRED_FAMILIES = ("DejaVu", "Liberation")
_SKIP_FONTS = ("Math", "ExtraLight")  # symbol fonts and hairline weights make poor office text
RVL_LONGEST_SIDE = 1000
_SPLIT_CYCLE = ("train", "train", "train", "train", "val", "test")

# ---------------------------------------------------------------------------------------------
# rendering


def _font(font_path: str, px: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if font_path:
        return ImageFont.truetype(font_path, size=px)
    return ImageFont.load_default(size=px)  # Pillow's own font when the machine has none


def render_text_page(text: str, font_path: str, size_pt: float, dpi: int, width_in: float = 8.5,
                     height_in: float = 11.0, margin_in: float = 1.0) -> tuple[np.ndarray, float]:
    """A white page with black wrapped text; returns ((H, W) uint8 grey, x-height in pixels).

    Line syntax: '# ' starts a heading (1.4x size), a line of 3+ '-' is a horizontal rule, tabs
    split a line into table columns (the first twice as wide), an empty line is vertical space.
    """
    px = size_pt * dpi / 72
    font, heading = _font(font_path, px), _font(font_path, px * 1.4)
    width, height, margin = round(width_in * dpi), round(height_in * dpi), round(margin_in * dpi)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    right, bottom = width - margin, height - margin
    y = margin
    for raw in text.splitlines():
        line = raw.rstrip()
        use = heading if line.startswith("# ") else font
        line_h = round((px * 1.4 if use is heading else px) * 1.25)
        if y + line_h > bottom:
            break
        if len(line) >= 3 and set(line) == {"-"}:
            thick = max(1, round(dpi / 150))
            draw.rectangle((margin, y + line_h // 2, right, y + line_h // 2 + thick - 1), fill=0)
        elif "\t" in line:
            cells = line.split("\t")
            unit = (right - margin) / (len(cells) + 1)  # the first column gets two units
            for k, cell in enumerate(cells):
                draw.text((margin + (k + 1 if k else 0) * unit, y), cell, font=font, fill=0)
        elif line:
            for wrapped in _wrap(line.removeprefix("# "), use, right - margin):
                if y + line_h > bottom:
                    break
                draw.text((margin, y), wrapped, font=use, fill=0)
                y += line_h
            continue
        y += line_h
    left, top, _, base = font.getbbox("x")
    return np.ascontiguousarray(np.asarray(page)), float(base - top)


def _wrap(line: str, font, max_width: float) -> list[str]:
    """Greedy word wrap by rendered width."""
    out, current = [], ""
    for word in line.split(" "):
        trial = f"{current} {word}" if current else word
        if current and font.getlength(trial) > max_width:
            out.append(current)
            current = word
        else:
            current = trial
    return [*out, current] if current else out


@lru_cache(maxsize=1)
def _all_fonts() -> tuple[str, ...]:
    found: set[str] = set()
    for root in FONT_DIRS:
        for dirpath, _, names in os.walk(root):
            found.update(str(Path(dirpath) / n) for n in names if n.lower().endswith(".ttf"))
    fonts = sorted(found)
    preferred = [f for f in fonts if any(fam in Path(f).name for fam in PREFERRED_FAMILIES)
                 and not any(s in Path(f).name for s in _SKIP_FONTS)]
    return tuple(preferred or fonts)


def find_fonts() -> list[str]:
    """TrueType fonts on this machine, sorted: the DejaVu and Liberation families when present."""
    return list(_all_fonts())


# ---------------------------------------------------------------------------------------------
# synthetic office text

_NAMES = ("J. Anderson", "M. Brooks", "R. Castillo", "D. Fischer", "L. Okafor", "P. Novak", "S. Tanaka",
          "K. Walsh", "A. Moreau", "T. Lindqvist", "E. Harper", "C. Romano")
_COMPANIES = ("Consolidated Tobacco Co.", "Brown & Williamson Research", "Lorillard Corporation",
              "Atlantic Paper Supply", "Northfield Laboratories", "Meridian Office Products")
_STREETS = ("Main Street", "Park Avenue", "Commerce Drive", "Industrial Parkway", "Elm Road")
_CITIES = ("Louisville, KY 40232", "Greensboro, NC 27420", "Richmond, VA 23261", "New York, NY 10022")
_SUBJECTS = ("quarterly sales review", "revised test schedule", "product sampling program",
             "laboratory budget", "shipping delays", "consumer survey results", "annual meeting")
_WORDS = ("the", "of", "and", "to", "in", "report", "results", "program", "department", "review",
          "meeting", "schedule", "budget", "data", "analysis", "proposal", "request", "approval",
          "samples", "market", "quarter", "project", "committee", "costs", "shipment", "testing",
          "division", "management", "please", "attached", "following", "regarding", "current",
          "additional", "estimated", "completed", "revised", "research", "production", "account",
          "information", "customer", "we", "will", "have", "been", "for", "with", "on", "this", "our")
_ITEMS = ("Copy paper, case", "Toner cartridge", "Filing folders (100)", "Laboratory glassware",
          "Courier service", "Printing, brochures", "Consulting hours", "Binders, 3-ring", "Postage")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 16))]
    if rng.random() < 0.3:
        words.insert(rng.randrange(len(words)), f"{rng.randint(2, 950)}")
    return " ".join(words).capitalize() + rng.choice((".", ".", ".", "?"))


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))


def _paragraphs(rng: random.Random, low: int, high: int) -> list[str]:
    return sum(([_paragraph(rng), ""] for _ in range(rng.randint(low, high))), [])


def _date(rng: random.Random) -> str:
    return f"{rng.choice(_MONTHS)} {rng.randint(1, 28)}, {rng.randint(1985, 1998)}"


def _money(rng: random.Random) -> float:
    return round(rng.uniform(3, 2500), 2)


def _letter(rng: random.Random) -> list[str]:
    body = [_paragraph(rng) for _ in range(rng.randint(3, 7))]
    return [rng.choice(_COMPANIES), f"{rng.randint(10, 9999)} {rng.choice(_STREETS)}", rng.choice(_CITIES), "",
            _date(rng), "", f"Dear {rng.choice(_NAMES)}:", "", *sum(([p, ""] for p in body), []),
            "Sincerely,", "", rng.choice(_NAMES)]


def _memo(rng: random.Random) -> list[str]:
    return ["# MEMORANDUM", "", f"TO:  {rng.choice(_NAMES)}", f"FROM:  {rng.choice(_NAMES)}",
            f"DATE:  {_date(rng)}", f"RE:  {rng.choice(_SUBJECTS).title()}", "----", "",
            *_paragraphs(rng, 3, 7)]


def _email(rng: random.Random) -> list[str]:
    return [f"From: {rng.choice(_NAMES)}", f"To: {rng.choice(_NAMES)}", f"Sent: {_date(rng)}",
            f"Subject: {rng.choice(_SUBJECTS)}", "----", "", *_paragraphs(rng, 3, 6)]


def _invoice(rng: random.Random) -> list[str]:
    rows, total = [], 0.0
    for _ in range(rng.randint(4, 10)):
        qty, price = rng.randint(1, 40), _money(rng) / 10
        total += qty * price
        rows.append(f"{qty}\t{rng.choice(_ITEMS)}\t{price:,.2f}\t{qty * price:,.2f}")
    return [f"# INVOICE No. {rng.randint(10000, 99999)}", rng.choice(_COMPANIES), f"Date: {_date(rng)}",
            f"Account: {rng.randint(100, 999)}-{rng.randint(1000, 9999)}", "",
            "Qty\tDescription\tUnit price\tAmount", "---", *rows, "---", f"\t\tTotal\t{total:,.2f}", "",
            "Payment due within 30 days.", "", *_paragraphs(rng, 1, 4)]


def _budget(rng: random.Random) -> list[str]:
    year = rng.randint(1986, 1999)
    lines = [f"# BUDGET SUMMARY FY {year}", rng.choice(_COMPANIES), "", f"Item\tFY {year - 1}\tFY {year}\tChange",
             "---"]
    for item in rng.sample(_ITEMS, 6):
        old, new = _money(rng) * 10, _money(rng) * 10
        lines.append(f"{item}\t{old:,.0f}\t{new:,.0f}\t{(new - old) / old:+.1%}")
    return [*lines, "---", "", *_paragraphs(rng, 2, 5)]


def _form(rng: random.Random) -> list[str]:
    fields = ("Name", "Department", "Telephone", "Date", "Signature", "Approved by")
    return ["# REQUEST FOR APPROVAL", "", *[f"{f}: {'_' * 30}" for f in fields], "",
            f"Reason for request: {_sentence(rng)}", "", *_paragraphs(rng, 1, 3),
            "For office use only", "---"]


# (generator, RVL-CDIP class index)
_KINDS = ((_letter, 0), (_form, 1), (_email, 2), (_budget, 10), (_invoice, 11), (_memo, 15))


def _compose(rng: random.Random) -> tuple[str, int]:
    make, label = rng.choice(_KINDS)
    return "\n".join(make(rng)), label


def _synthetic(rng: random.Random, dpi: int) -> tuple[np.ndarray, float, int]:
    fonts = find_fonts()
    font = rng.choice(fonts) if fonts else ""
    size_pt = rng.uniform(8, 14)
    text, label = _compose(rng)
    page, x_height = render_text_page(text, font, size_pt, dpi)
    return page, x_height, label


def synthetic_page(seed: int, dpi: int = 300, scan: bool = False) -> tuple[np.ndarray, float]:
    """A random office page (letter, memo, invoice...) at 8-14 pt, deterministic per seed.

    scan=True adds a mild blur and noise, like a scanner.
    """
    page, x_height, _ = _synthetic(random.Random(seed), dpi)
    if scan:
        blurred = Image.fromarray(page).filter(ImageFilter.GaussianBlur(0.6 * dpi / 300))
        noise = np.random.default_rng(seed).normal(0, 4, page.shape)
        page = np.clip(np.asarray(blurred, np.float32) + noise, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(page), x_height


# ---------------------------------------------------------------------------------------------
# sample set


def _doc_id(rng: random.Random) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return "".join(rng.choice(letters) for _ in range(3)) + f"{rng.randint(10, 99)}{rng.choice(letters)}00"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def make_sample(out_dir: Path, pages: int = 6, seed: int = 0) -> dict:
    """Write rvl_sample.tar.gz, sample.pdf and originals/ into out_dir; return the paths written.

    Returns {"archive": Path, "pdf": Path, "originals": Path, "original_files": [Path, ...]}.
    """
    out_dir = Path(out_dir)
    originals = out_dir / "originals"
    originals.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    members: list[tuple[str, bytes]] = []
    lines: dict[str, list[str]] = {split: [] for split in ("train", "val", "test")}
    original_files: list[Path] = []
    used: set[str] = set()
    for i in range(pages):
        page, _, label = _synthetic(random.Random(seed * 1_000_003 + i), 300)
        doc_id = _doc_id(rng)
        while doc_id in used:
            doc_id = _doc_id(rng)
        used.add(doc_id)
        rel = f"{doc_id[0]}/{doc_id[1]}/{doc_id}"
        original = originals / f"{rel}.png"
        original.parent.mkdir(parents=True, exist_ok=True)
        full = Image.fromarray(page)
        full.save(original, dpi=(300, 300), compress_level=1)
        original_files.append(original)
        factor = RVL_LONGEST_SIDE / max(full.size)
        small = full.resize((round(full.width * factor), round(full.height * factor)), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        small.save(buf, format="TIFF", dpi=(300 * factor, 300 * factor))
        members.append((f"images/{rel}.tif", buf.getvalue()))
        lines[_SPLIT_CYCLE[i % len(_SPLIT_CYCLE)]].append(f"{rel}.tif {label}")
    archive = out_dir / "rvl_sample.tar.gz"
    with archive.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:  # labels last: readers must collect them in the same pass
            _add_bytes(tar, name, data)
        for split, entries in lines.items():
            _add_bytes(tar, f"labels/{split}.txt", "".join(f"{e}\n" for e in entries).encode())
    pdf = out_dir / "sample.pdf"
    pdf_pages = [Image.fromarray(_synthetic(random.Random(seed * 1_000_003 + 500_000 + k), 150)[0])
                 for k in range(3)]
    pdf_pages[0].save(pdf, format="PDF", resolution=150.0, save_all=True, append_images=pdf_pages[1:])
    logger.info("sample: %d pages in %s, 3-page %s", pages, archive, pdf)
    return {"archive": archive, "pdf": pdf, "originals": originals, "original_files": original_files}


# ---------------------------------------------------------------------------------------------
# colour pages (upscale.color): letterheads, stamps, highlighter, blue ink

_LETTERHEAD_COLOURS = ((20, 60, 140), (150, 20, 30), (10, 110, 60), (90, 40, 120))
_HIGHLIGHTERS = ((255, 240, 60), (140, 240, 120), (255, 170, 210), (120, 220, 255))
_STAMPS = ("RECEIVED", "APPROVED", "PAID", "COPY", "CONFIDENTIAL")


def colour_page(seed: int, dpi: int = 300) -> np.ndarray:
    """A synthetic office page with colour on it: (H, W, 3) uint8 RGB, deterministic per seed.

    The grey text page of ``synthetic_page`` gets a coloured letterhead band with the company name
    in white, highlighter over two text lines (multiplied, as ink under a marker), a red or blue
    rubber stamp (rotated frame and word) and a blue ballpoint signature.
    """
    rng = random.Random(seed * 7919 + 17)
    grey, _ = synthetic_page(seed, dpi)
    page = Image.fromarray(grey).convert("RGB")
    w, h = page.size
    fonts = find_fonts()
    bold = next((f for f in fonts if "Bold" in Path(f).name and "Oblique" not in Path(f).name),
                fonts[0] if fonts else "")
    draw = ImageDraw.Draw(page)
    # letterhead: a band across the top margin
    band = rng.choice(_LETTERHEAD_COLOURS)
    top = round(0.25 * dpi)
    draw.rectangle((round(0.5 * dpi), top, w - round(0.5 * dpi), top + round(0.5 * dpi)), fill=band)
    draw.text((round(0.7 * dpi), top + round(0.1 * dpi)), rng.choice(_COMPANIES), font=_font(bold, 0.3 * dpi),
              fill=(255, 255, 255))
    # highlighter: multiply a light colour over two bands of body text
    arr = np.asarray(page).astype(np.float32)
    inked = np.flatnonzero((grey < 128).sum(axis=1) > 0.05 * w)  # rows through body text
    inked = inked[(inked > 2 * dpi) & (inked < h - 2.5 * dpi)]
    for _ in range(2):
        y0 = (int(rng.choice(list(inked))) if len(inked) else rng.randint(round(2 * dpi), h - round(2.5 * dpi))) \
            - round(0.06 * dpi)
        x0, x1 = round(1.0 * dpi), rng.randint(round(4 * dpi), w - round(1.0 * dpi))
        colour = np.array(rng.choice(_HIGHLIGHTERS), np.float32) / 255
        arr[y0 : y0 + round(0.16 * dpi), x0:x1] *= colour
    page = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    # stamp: a rotated frame with a word, in red or blue ink, partly transparent over the text
    ink = rng.choice(((200, 30, 40), (40, 60, 190)))
    word = rng.choice(_STAMPS)
    font = _font(bold, 0.35 * dpi)
    tw = round(font.getlength(word)) + round(0.3 * dpi)
    th = round(0.6 * dpi)
    stamp = Image.new("L", (tw, th), 0)
    sd = ImageDraw.Draw(stamp)
    sd.rectangle((2, 2, tw - 3, th - 3), outline=255, width=max(2, round(dpi / 60)))
    sd.text((round(0.15 * dpi), round(0.1 * dpi)), word, font=font, fill=255)
    stamp = stamp.rotate(rng.uniform(-15, 15), expand=True, resample=Image.Resampling.BICUBIC)
    sx, sy = rng.randint(round(4 * dpi), max(round(4 * dpi), w - stamp.width - round(0.5 * dpi))), \
        rng.randint(round(1.2 * dpi), h - stamp.height - round(1 * dpi))
    page.paste(Image.new("RGB", stamp.size, ink), (sx, sy), stamp.point(lambda v: v * 0.85))
    # signature: a blue ballpoint scribble near the bottom
    draw = ImageDraw.Draw(page)
    x, y = round(1.2 * dpi), h - round(1.4 * dpi)
    points = [(x + k * dpi / 40, y + np.sin(k / 2.5 + rng.random()) * dpi / 10 + rng.uniform(-4, 4))
              for k in range(80)]
    draw.line(points, fill=(25, 45, 160), width=max(2, round(dpi / 100)), joint="curve")
    return np.ascontiguousarray(np.asarray(page))
