"""Synthetic office documents for training: RVL-CDIP-like layouts in many type families and sizes.

``synth_document(seed, x_height, families)`` draws one page, deterministic from its seed: a letter,
memo, form with boxes and rules, table, invoice, multi-column article, report, questionnaire... as
a stack of blocks (headings, paragraphs, columns, tables, form fields, small print, logos, halftone
photos, stamps, signatures). ``x_height`` is the body text's x-height in HR pixels (for LR x-height
h at scale s, pass h * s); headings are larger and small print smaller, so one page holds several
sizes. The canvas is a Letter page at the resolution that gives that x-height, capped at
``MAX_SIDE`` px (but at least ``MIN_EMS`` body ems), so very large text fills a zoomed-in part of
a page.

Text is drawn with srgan.sample's word lists and word wrap; fonts come from
``srgan.training.fonts`` (training families unless the caller passes others).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from srgan import sample
from srgan.training.fonts import InstalledFamily, training_families

MAX_SIDE = 2400  # longest canvas side in px
MIN_EMS = 14  # ... but never fewer than this many body ems, so that large text still gets a few lines
LETTER = (8.5, 11.0)  # page size in inches at the nominal 10 pt body text
BODY_PT = 10.0  # the nominal body size the canvas is laid out around
X_HEIGHT_RANGE_LR = (2.5, 16.0)  # LR x-heights (px) that training spreads over, at every scale

# RVL-CDIP's 16 classes (index = label) and the layouts drawn for each
RVL_CLASSES = ("letter", "form", "email", "handwritten", "advertisement", "scientific_report",
               "scientific_publication", "specification", "file_folder", "news_article", "budget", "invoice",
               "presentation", "questionnaire", "resume", "memo")


@dataclass
class SynthDocument:
    """One synthetic page and what it was drawn with."""

    image: np.ndarray  # (H, W) uint8 grey, white paper
    label: int  # RVL-CDIP class index (RVL_CLASSES)
    x_height: float  # body text x-height in px, measured from the body font
    families: list[str] = field(default_factory=list)  # family names used on the page
    styles: list[str] = field(default_factory=list)  # styles used (regular, bold, italic, bold_italic)
    elements: list[str] = field(default_factory=list)  # block kinds drawn, in order
    lines: list[str] = field(default_factory=list)  # the text lines drawn by text blocks, in drawing order


def log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


@lru_cache(maxsize=512)
def _x_ratio(path: str) -> float:
    """x-height / font size of a font file (measured at 200 px)."""
    left, top, right, bottom = ImageFont.truetype(path, 200).getbbox("x", anchor="ls")
    return max(0.2, -top / 200)


@lru_cache(maxsize=2048)
def _font(path: str, px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, max(4, px))


class _Page:
    """Drawing state: canvas, cursor, fonts and what was used."""

    def __init__(self, rng: random.Random, nrng: np.random.Generator, body: InstalledFamily,
                 accent: InstalledFamily, x_height: float, max_side: int = MAX_SIDE) -> None:
        self.rng, self.nrng, self.body, self.accent = rng, nrng, body, accent
        self.px = x_height / _x_ratio(body.path("regular"))  # body font size (em) in px
        dpi = self.px * 72 / BODY_PT
        w, h = LETTER[0] * dpi, LETTER[1] * dpi
        shrink = min(1.0, max(max_side, MIN_EMS * self.px) / max(w, h))  # at least MIN_EMS ems long
        self.w, self.h = max(64, round(w * shrink)), max(64, round(h * shrink))
        margin = min(self.px * rng.uniform(3, 7), 0.12 * self.w)
        self.left, self.right = round(margin), round(self.w - margin)
        self.top, self.bottom = round(min(margin, 0.1 * self.h)), round(self.h - min(margin, 0.1 * self.h))
        self.y = self.top
        self.img = Image.new("L", (self.w, self.h), 255)
        self.draw = ImageDraw.Draw(self.img)
        self.families: set[str] = set()
        self.styles: set[str] = set()
        self.elements: list[str] = []
        self.drawn_lines: list[str] = []  # every text_block line drawn, in order (a text page's ground truth)
        self.ink = 0 if rng.random() < 0.8 else rng.randint(20, 70)  # black or a dark grey print

    def font(self, scale: float = 1.0, style: str = "regular", family: InstalledFamily | None = None):
        fam = family or self.body
        self.families.add(fam.name)
        self.styles.add(style if dict(fam.styles).get(style) else "regular")
        return _font(fam.path(style), round(self.px * scale))

    @property
    def full(self) -> bool:
        return self.y >= self.bottom - self.px

    def space(self, ems: float = 1.0) -> None:
        self.y += round(self.px * ems)

    # ------------------------------------------------------------------------------------ blocks

    def text_block(self, text: str, x0: int, x1: int, scale: float = 1.0, style: str = "regular",
                   family: InstalledFamily | None = None, align: str = "left", leading: float | None = None,
                   y_limit: int | None = None) -> int:
        """Wrapped text between x0 and x1 from self.y; returns the y below it (does not move self.y)."""
        font = self.font(scale, style, family)
        line_h = round(self.px * scale * (leading or self.rng.uniform(1.15, 1.5)))
        y, limit = self.y, y_limit if y_limit is not None else self.bottom
        for line in sample._wrap(text, font, max(8, x1 - x0)):
            if y + line_h > limit:
                break
            width = font.getlength(line)
            x = x0 if align == "left" else (x0 + (x1 - x0 - width) / 2 if align == "center" else x1 - width)
            self.draw.text((x, y), line, font=font, fill=self.ink)
            self.drawn_lines.append(line)
            y += line_h
        return y

    def heading(self) -> None:
        scale = self.rng.uniform(1.3, 2.4)
        style = self.rng.choice(("bold", "bold", "regular", "bold_italic"))
        fam = self.accent if self.rng.random() < 0.5 else self.body
        text = self.rng.choice(sample._SUBJECTS).upper() if self.rng.random() < 0.5 else \
            self.rng.choice(sample._SUBJECTS).title()
        self.y = self.text_block(text, self.left, self.right, scale, style, fam,
                                 align=self.rng.choice(("left", "center")), leading=1.3)
        self.elements.append("heading")
        self.space(0.6)

    def paragraph(self, scale: float = 1.0, x0: int | None = None, x1: int | None = None) -> None:
        style = "italic" if self.rng.random() < 0.1 else ("bold" if self.rng.random() < 0.05 else "regular")
        self.y = self.text_block(sample._paragraph(self.rng), x0 or self.left, x1 or self.right, scale, style)
        self.elements.append("paragraph" if scale >= 0.9 else "small_print")
        self.space(self.rng.uniform(0.5, 1.2))

    def lines(self, entries: Sequence[str], style: str = "regular", scale: float = 1.0) -> None:
        for entry in entries:
            if self.full:
                break
            self.y = self.text_block(entry, self.left, self.right, scale, style, leading=1.35)
        self.elements.append("lines")
        self.space(0.5)

    def rule(self, thick_ems: float = 0.08) -> None:
        t = max(1, round(self.px * thick_ems))
        self.draw.rectangle((self.left, self.y, self.right, self.y + t - 1), fill=self.ink)
        self.elements.append("rule")
        self.space(0.8)

    def columns(self, n: int) -> None:
        gap = round(self.px * self.rng.uniform(1.0, 2.5))
        width = (self.right - self.left - gap * (n - 1)) / n
        y_top, y_end = self.y, self.y
        for k in range(n):
            self.y = y_top
            x0 = round(self.left + k * (width + gap))
            while self.y < self.bottom - 2 * self.px:
                self.y = self.text_block(sample._paragraph(self.rng), x0, round(x0 + width), leading=1.25)
                self.space(0.6)
            y_end = max(y_end, self.y)
            if self.rng.random() < 0.3 and k < n - 1:  # a column rule
                x = round(x0 + width + gap / 2)
                self.draw.line((x, y_top, x, self.bottom - self.px), fill=self.ink, width=max(1, round(self.px / 14)))
        self.y = y_end
        self.elements.append(f"columns_{n}")

    def table(self, numeric: bool = True) -> None:
        cols = self.rng.randint(3, 6)
        rows = self.rng.randint(4, 14)
        row_h = round(self.px * self.rng.uniform(1.5, 2.2))
        widths = np.array([2.5] + [1.0] * (cols - 1)) * self.nrng.uniform(0.8, 1.2, cols)
        xs = self.left + np.concatenate([[0], np.cumsum(widths / widths.sum())]) * (self.right - self.left)
        grid = self.rng.random() < 0.6
        lw = max(1, round(self.px / 12))
        head = self.font(1.0, "bold")
        cell = self.font(self.rng.choice((0.9, 1.0)), "regular")
        y0 = self.y
        for r in range(rows + 1):
            if self.y + row_h > self.bottom:
                break
            for c in range(cols):
                if r == 0:
                    text = self.rng.choice(("Item", "Description", "Qty", "Amount", "Total", "Date", "Code", "Rate"))
                elif c == 0:
                    text = self.rng.choice(sample._ITEMS)
                elif numeric:
                    text = f"{sample._money(self.rng) * self.rng.choice((1, 10, 100)):,.2f}"
                else:
                    text = self.rng.choice(sample._WORDS)
                font = head if r == 0 else cell
                pad = self.px * 0.3
                if c > 0 and numeric and r > 0:  # numbers right-aligned
                    x = xs[c + 1] - pad - font.getlength(text)
                else:
                    x = xs[c] + pad
                self.draw.text((x, self.y + (row_h - self.px) / 2), text, font=font, fill=self.ink)
            self.y += row_h
            if grid or r == 0:
                self.draw.line((self.left, self.y, self.right, self.y), fill=self.ink, width=lw)
        if grid:
            self.draw.rectangle((self.left, y0, self.right, self.y), outline=self.ink, width=lw)
            for x in xs[1:-1]:
                self.draw.line((x, y0, x, self.y), fill=self.ink, width=lw)
        self.elements.append("table")
        self.space(1.0)

    def form(self) -> None:
        """Labelled boxes and underlined fields, some tick boxes, some filled in."""
        lw = max(1, round(self.px / 12))
        label_font = self.font(self.rng.choice((0.7, 0.8, 0.9)), "regular")
        fill_font = self.font(1.0, self.rng.choice(("regular", "italic")), self.accent)
        fields = ("Name", "Department", "Telephone", "Date", "Account No.", "Address", "Approved by", "Brand",
                  "Quantity", "Cost center", "Project", "Reference")
        boxed = self.rng.random() < 0.6
        while self.y + 3 * self.px < self.bottom:
            per_row = self.rng.randint(1, 3)
            width = (self.right - self.left) / per_row
            box_h = round(self.px * self.rng.uniform(2.2, 3.2))
            for k in range(per_row):
                x0, x1 = round(self.left + k * width), round(self.left + (k + 1) * width)
                label = self.rng.choice(fields)
                if boxed:
                    self.draw.rectangle((x0, self.y, x1, self.y + box_h), outline=self.ink, width=lw)
                    self.draw.text((x0 + self.px * 0.3, self.y + self.px * 0.2), label.upper(), font=label_font,
                                   fill=self.ink)
                else:
                    self.draw.text((x0, self.y + box_h - 1.4 * self.px), label + ":", font=label_font, fill=self.ink)
                    lx = x0 + label_font.getlength(label + ": ")
                    self.draw.line((lx, self.y + box_h - 0.3 * self.px, x1 - self.px, self.y + box_h - 0.3 * self.px),
                                   fill=self.ink, width=lw)
                if self.rng.random() < 0.6:
                    entry = self.rng.choice((self.rng.choice(sample._NAMES), sample._date(self.rng),
                                             f"{self.rng.randint(100, 99999)}", self.rng.choice(sample._WORDS)))
                    self.draw.text((x0 + self.px * (0.6 if boxed else 5), self.y + box_h - 1.3 * self.px), entry,
                                   font=fill_font, fill=self.ink)
            self.y += box_h + (0 if boxed else round(self.px * 0.5))
            if self.rng.random() < 0.25:
                self.tick_boxes()
        self.elements.append("form")

    def tick_boxes(self) -> None:
        side = round(self.px * 0.9)
        lw = max(1, round(self.px / 12))
        font = self.font(0.9)
        x = self.left
        self.y += round(self.px * 0.5)
        for word in self.rng.sample(("Yes", "No", "Urgent", "Routine", "Copy", "File", "Return", "Other"), 4):
            if x + 8 * self.px > self.right:
                break
            self.draw.rectangle((x, self.y, x + side, self.y + side), outline=self.ink, width=lw)
            if self.rng.random() < 0.4:
                self.draw.line((x, self.y, x + side, self.y + side), fill=self.ink, width=lw + 1)
                self.draw.line((x, self.y + side, x + side, self.y), fill=self.ink, width=lw + 1)
            self.draw.text((x + side * 1.5, self.y - 0.1 * self.px), word, font=font, fill=self.ink)
            x += round(font.getlength(word) + side * 3)
        self.y += side + round(self.px * 0.6)
        self.elements.append("tick_boxes")

    def logo(self) -> None:
        """A letterhead: a geometric mark and the company name in a display style."""
        size = round(self.px * self.rng.uniform(2.5, 5))
        x, y = self.left, self.y
        shape = self.rng.randrange(3)
        if shape == 0:
            self.draw.ellipse((x, y, x + size, y + size), fill=self.ink)
            self.draw.ellipse((x + size // 4, y + size // 4, x + 3 * size // 4, y + 3 * size // 4), fill=255)
        elif shape == 1:
            self.draw.polygon(((x, y + size), (x + size / 2, y), (x + size, y + size)), fill=self.ink)
        else:
            self.draw.rectangle((x, y, x + size, y + size), fill=self.ink)
            letter = self.rng.choice("ABCDEGHKLMNRSTW")
            f = self.font(size / self.px * 0.8, "bold", self.accent)
            self.draw.text((x + size / 2, y + size / 2), letter, font=f, fill=255, anchor="mm")
        name_font = self.font(self.rng.uniform(1.6, 2.6), self.rng.choice(("bold", "regular", "italic")), self.accent)
        self.draw.text((x + size * 1.3, y + size / 2), self.rng.choice(sample._COMPANIES), font=name_font,
                       fill=self.ink, anchor="lm")
        self.y += size + round(self.px * 0.6)
        self.elements.append("logo")
        street = f"{self.rng.randint(10, 9999)} {self.rng.choice(sample._STREETS)}"
        self.lines([f"{street}, {self.rng.choice(sample._CITIES)}"], scale=0.8)

    def halftone(self) -> None:
        """A photo region printed as a halftone dot screen (45 degrees), with a caption."""
        w = round((self.right - self.left) * self.rng.uniform(0.35, 0.7))
        h = min(round(w * self.rng.uniform(0.5, 1.0)), self.bottom - self.y - 2 * round(self.px))
        if h < 4 * self.px:
            return
        coarse = self.nrng.uniform(0, 1, (self.rng.randint(3, 7), self.rng.randint(3, 7)))
        tone = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC),
                          np.float32) / 255
        period = max(3.0, self.px * self.rng.uniform(0.25, 0.6))
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        u, v = (xx + yy) / math.sqrt(2), (xx - yy) / math.sqrt(2)
        screen = 0.5 + 0.25 * (np.cos(2 * math.pi * u / period) + np.cos(2 * math.pi * v / period))
        dots = np.where(tone < screen, self.ink, 255).astype(np.uint8)
        x0 = self.left if self.rng.random() < 0.5 else self.right - w
        self.img.paste(Image.fromarray(dots), (x0, self.y))
        self.y += h + round(self.px * 0.4)
        self.y = self.text_block(sample._sentence(self.rng), x0, x0 + w, 0.8, "italic", leading=1.2)
        self.elements.append("halftone")
        self.space(0.8)

    def stamp(self) -> None:
        """A rotated rubber stamp (outlined capitals and a date) anywhere on the page, over the text."""
        word = self.rng.choice(("RECEIVED", "APPROVED", "CONFIDENTIAL", "COPY", "FILED", "PAID", "URGENT"))
        font = self.font(self.rng.uniform(1.5, 3.0), "bold", self.accent)
        small = self.font(1.0, "regular", self.accent)
        tw = round(font.getlength(word) + self.px)
        th = round(self.px * 5)
        stamp = Image.new("L", (tw, th), 255)
        d = ImageDraw.Draw(stamp)
        tone = self.rng.randint(0, 110)
        d.rectangle((1, 1, tw - 2, th - 2), outline=tone, width=max(2, round(self.px / 6)))
        d.text((tw / 2, th * 0.38), word, font=font, fill=tone, anchor="mm")
        d.text((tw / 2, th * 0.78), sample._date(self.rng).upper(), font=small, fill=tone, anchor="mm")
        stamp = stamp.rotate(self.rng.uniform(-25, 25), expand=True, fillcolor=255, resample=Image.Resampling.BICUBIC)
        x = self.rng.randint(0, max(0, self.w - stamp.width))
        y = self.rng.randint(0, max(0, self.h - stamp.height))
        region = np.asarray(self.img.crop((x, y, x + stamp.width, y + stamp.height)))
        merged = np.minimum(region, np.asarray(stamp)[: region.shape[0], : region.shape[1]])
        self.img.paste(Image.fromarray(merged), (x, y))
        self.elements.append("stamp")

    def signature(self) -> None:
        """A handwritten-looking signature: a smooth random stroke, then the typed name."""
        w = round(self.px * self.rng.uniform(8, 16))
        h = round(self.px * self.rng.uniform(2, 3.5))
        if self.y + h + 2 * self.px > self.bottom:
            return
        t = np.linspace(0, 1, 400)
        xs = self.left + t * w
        ys = self.y + h / 2 + sum(h / (2.5 * k) * np.sin(2 * math.pi * (self.rng.uniform(1, 4) * k * t
                                                                       + self.rng.random()))
                                  for k in range(1, 4))
        pts = [(float(a), float(b)) for a, b in zip(xs, ys, strict=True)]
        self.draw.line(pts, fill=self.ink, width=max(1, round(self.px / self.rng.uniform(6, 12))), joint="curve")
        self.y += h
        self.elements.append("signature")
        self.lines([self.rng.choice(sample._NAMES)])

    def bullets(self) -> None:
        r = max(1, round(self.px * 0.15))
        for _ in range(self.rng.randint(3, 8)):
            if self.full:
                break
            cy = self.y + self.px * 0.7
            self.draw.ellipse((self.left, cy - r, self.left + 2 * r, cy + r), fill=self.ink)
            self.y = self.text_block(sample._sentence(self.rng), self.left + round(self.px * 1.5), self.right,
                                     style="regular", leading=1.3)
            self.space(0.3)
        self.elements.append("bullets")


# ----------------------------------------------------------------------------------------- layouts


def _letter(p: _Page) -> None:
    p.logo()
    p.space(1)
    p.lines([sample._date(p.rng), "", p.rng.choice(sample._NAMES), p.rng.choice(sample._COMPANIES)])
    p.lines([f"Dear {p.rng.choice(sample._NAMES)}:"])
    for _ in range(p.rng.randint(2, 5)):
        p.paragraph()
    p.lines(["Sincerely,"])
    p.signature()
    if p.rng.random() < 0.3:
        p.stamp()


def _memo(p: _Page) -> None:
    p.heading()
    p.lines([f"TO: {p.rng.choice(sample._NAMES)}", f"FROM: {p.rng.choice(sample._NAMES)}",
             f"DATE: {sample._date(p.rng)}", f"RE: {p.rng.choice(sample._SUBJECTS).title()}"],
            style=p.rng.choice(("regular", "bold")))
    p.rule()
    while not p.full:
        p.paragraph()
    if p.rng.random() < 0.4:
        p.stamp()


def _email(p: _Page) -> None:
    p.lines([f"From: {p.rng.choice(sample._NAMES)}", f"Sent: {sample._date(p.rng)}",
             f"To: {p.rng.choice(sample._NAMES)}", f"Subject: {p.rng.choice(sample._SUBJECTS)}"])
    p.rule(0.05)
    while not p.full:
        p.paragraph()


def _form(p: _Page) -> None:
    p.logo() if p.rng.random() < 0.5 else p.heading()
    p.form()


def _questionnaire(p: _Page) -> None:
    p.heading()
    p.paragraph(0.9)
    while not p.full:
        p.lines([f"{p.rng.randint(1, 40)}. {sample._sentence(p.rng)}"])
        p.tick_boxes()


def _table_page(p: _Page, numeric: bool) -> None:
    p.heading()
    p.paragraph()
    p.table(numeric)
    if not p.full:
        p.paragraph(p.rng.uniform(0.6, 0.8))


def _invoice(p: _Page) -> None:
    p.logo()
    p.lines([f"INVOICE No. {p.rng.randint(10000, 99999)}", f"Date: {sample._date(p.rng)}"], style="bold")
    p.table(True)
    p.lines(["Payment due within 30 days."], scale=0.8)
    if p.rng.random() < 0.5:
        p.stamp()


def _article(p: _Page, n: int) -> None:
    p.heading()
    if p.rng.random() < 0.5:
        p.halftone()
    p.columns(n)


def _report(p: _Page) -> None:
    p.heading()
    while not p.full:
        k = p.rng.random()
        if k < 0.15:
            p.halftone()
        elif k < 0.3:
            p.table(True)
        elif k < 0.4:
            p.heading()
        else:
            p.paragraph()
    p.elements.append("page_number")


def _advertisement(p: _Page) -> None:
    p.logo()
    p.heading()
    p.halftone()
    p.bullets()
    p.paragraph(p.rng.uniform(0.55, 0.7))  # the small print


def _presentation(p: _Page) -> None:
    p.heading()
    p.bullets()
    p.bullets()


def _resume(p: _Page) -> None:
    p.heading()
    p.lines([p.rng.choice(sample._STREETS), p.rng.choice(sample._CITIES)], scale=0.9)
    p.rule()
    while not p.full:
        p.lines([p.rng.choice(("Experience", "Education", "Skills", "References"))], style="bold")
        p.bullets()


def _file_folder(p: _Page) -> None:
    p.lines([p.rng.choice(sample._COMPANIES).upper(), f"FILE {p.rng.randint(100, 9999)}"], style="bold", scale=2)
    p.stamp()
    p.form()


def _handwritten(p: _Page) -> None:
    p.lines([sample._date(p.rng)])
    for _ in range(p.rng.randint(3, 7)):
        if p.full:
            break
        p.signature()
    p.paragraph(0.9)


def _text_page(p: _Page) -> None:
    """A memo's text alone, one column, no logo, stamp or signature: drawn lines = reading order (OCR pages)."""
    p.heading()
    p.lines([f"TO: {p.rng.choice(sample._NAMES)}", f"FROM: {p.rng.choice(sample._NAMES)}",
             f"DATE: {sample._date(p.rng)}"], style=p.rng.choice(("regular", "bold")))
    while not p.full:
        p.paragraph()


_LAYOUTS = {
    0: _letter, 1: _form, 2: _email, 3: _handwritten, 4: _advertisement, 5: _report,
    6: lambda p: _article(p, 2), 7: lambda p: _table_page(p, False), 8: _file_folder,
    9: lambda p: _article(p, p.rng.choice((2, 3, 4))), 10: lambda p: _table_page(p, True), 11: _invoice,
    12: _presentation, 13: _questionnaire, 14: _resume, 15: _memo,
}


def synth_document(seed: int, x_height: float, families: Sequence[InstalledFamily] | None = None,
                   label: int | None = None, max_side: int = MAX_SIDE) -> SynthDocument:
    """One synthetic office page, deterministic from ``seed``.

    Args:
        seed: the page's seed (layout, text, fonts, halftones, stamps).
        x_height: body text x-height in px (HR); headings are 1.3-2.4x, small print 0.55-0.9x.
        families: families to draw from; default the installed training families.
        label: an RVL-CDIP class index to draw; default one chosen by the seed.
        max_side: longest canvas side in px (a Letter page at the resolution of ``x_height``, cut down).
    """
    fams = list(families) if families is not None else training_families()
    if not fams:
        raise ValueError("synth_document: no font families installed (the Makefile's system target installs them)")
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    label = rng.randrange(len(RVL_CLASSES)) if label is None else label
    body = rng.choice(fams)
    accent = rng.choice(fams) if rng.random() < 0.5 else body
    page = _Page(rng, nrng, body, accent, x_height, max_side)
    _LAYOUTS[label](page)
    return _document(page, label)


def _document(page: _Page, label: int) -> SynthDocument:
    """The drawn page and what it was drawn with; x_height measured from the body font at its drawn size."""
    measured = _x_ratio(page.body.path("regular")) * round(page.px)
    return SynthDocument(np.ascontiguousarray(np.asarray(page.img)), label, float(measured),
                         sorted(page.families), sorted(page.styles), page.elements, page.drawn_lines)


def synth_text_page(seed: int, x_height: float, family: InstalledFamily, long_ems: float = 32.0) -> SynthDocument:
    """A page of running text in one family (heading, memo lines, paragraphs; some bold and italic) whose
    ``lines`` are its ground-truth text in reading order: OCR evaluation pages in the held-out families.
    The page is a Letter page cut to ``long_ems`` body ems on its long side, so it holds about the same
    text (15-20 lines) at any x-height."""
    rng = random.Random(seed)
    max_side = round(long_ems * x_height / _x_ratio(family.path("regular")))
    page = _Page(rng, np.random.default_rng(seed), family, family, x_height, max_side)
    page.ink = 0  # black print: the page measures the model, not a grey ink
    _text_page(page)
    return _document(page, RVL_CLASSES.index("memo"))
