"""Type families for synthetic training pages, found by file, with a fixed training / held-out split.

Each family is one row of ``FAMILIES``: a name, its design (clones of one design share it: Nimbus
Roman, TeX Gyre Termes and Liberation Serif are all "Times"), a category (serif, sans, mono,
condensed) and the file names of its styles. ``installed_families()`` keeps the rows whose regular
file is on this machine (the Makefile's ``system`` target installs the Debian packages).

The split is by design, fixed here and never drawn at random:

- ``HELD_OUT_DESIGNS`` (Garamond, Palatino, Calibri, Avant Garde, Computer Modern Typewriter,
  Helvetica Narrow): every family of these designs is never used in training and is kept for
  evaluation, so that a clone in training cannot leak the held-out design.
- every other design is a training family.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/usr/share/texmf/fonts/opentype",
             str(Path.home() / ".fonts"))
STYLES = ("regular", "bold", "italic", "bold_italic")
CATEGORIES = ("serif", "sans", "mono", "condensed")

HELD_OUT_DESIGNS = frozenset({"Garamond", "Palatino", "Calibri", "Avant Garde", "CM Typewriter",
                              "Helvetica Narrow"})


@dataclass(frozen=True)
class FontFamily:
    """One type family: ``files`` maps a style (``STYLES``) to a font file name (no folder)."""

    name: str
    design: str
    category: str
    files: tuple[tuple[str, str], ...]  # ((style, file name), ...), regular first

    @property
    def held_out(self) -> bool:
        return self.design in HELD_OUT_DESIGNS


def _fam(name: str, design: str, category: str, regular: str, bold: str = "", italic: str = "",
         bold_italic: str = "") -> FontFamily:
    files = tuple((s, f) for s, f in zip(STYLES, (regular, bold, italic, bold_italic), strict=True) if f)
    return FontFamily(name, design, category, files)


# name, design, category, regular, bold, italic, bold italic (Debian package in the comment)
FAMILIES: tuple[FontFamily, ...] = (
    # serif
    _fam("DejaVu Serif", "DejaVu Serif", "serif", "DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf",
         "DejaVuSerif-Italic.ttf", "DejaVuSerif-BoldItalic.ttf"),  # fonts-dejavu-core
    _fam("Liberation Serif", "Times", "serif", "LiberationSerif-Regular.ttf", "LiberationSerif-Bold.ttf",
         "LiberationSerif-Italic.ttf", "LiberationSerif-BoldItalic.ttf"),  # fonts-liberation
    _fam("Nimbus Roman", "Times", "serif", "NimbusRoman-Regular.otf", "NimbusRoman-Bold.otf",
         "NimbusRoman-Italic.otf", "NimbusRoman-BoldItalic.otf"),  # fonts-urw-base35
    _fam("TeX Gyre Termes", "Times", "serif", "texgyretermes-regular.otf", "texgyretermes-bold.otf",
         "texgyretermes-italic.otf", "texgyretermes-bolditalic.otf"),  # fonts-texgyre
    _fam("C059", "Century Schoolbook", "serif", "C059-Roman.otf", "C059-Bold.otf", "C059-Italic.otf",
         "C059-BdIta.otf"),
    _fam("TeX Gyre Schola", "Century Schoolbook", "serif", "texgyreschola-regular.otf",
         "texgyreschola-bold.otf", "texgyreschola-italic.otf", "texgyreschola-bolditalic.otf"),
    _fam("URW Bookman", "Bookman", "serif", "URWBookman-Light.otf", "URWBookman-Demi.otf",
         "URWBookman-LightItalic.otf", "URWBookman-DemiItalic.otf"),
    _fam("TeX Gyre Bonum", "Bookman", "serif", "texgyrebonum-regular.otf", "texgyrebonum-bold.otf",
         "texgyrebonum-italic.otf", "texgyrebonum-bolditalic.otf"),
    _fam("Linux Libertine", "Libertine", "serif", "LinLibertine_R.otf", "LinLibertine_RB.otf",
         "LinLibertine_RI.otf", "LinLibertine_RBI.otf"),  # fonts-linuxlibertine
    _fam("Caladea", "Cambria", "serif", "Caladea-Regular.ttf", "Caladea-Bold.ttf", "Caladea-Italic.ttf",
         "Caladea-BoldItalic.ttf"),  # fonts-crosextra-caladea
    _fam("Noto Serif", "Noto Serif", "serif", "NotoSerif-Regular.ttf", "NotoSerif-Bold.ttf",
         "NotoSerif-Italic.ttf", "NotoSerif-BoldItalic.ttf"),  # fonts-noto-core
    _fam("FreeSerif", "Times", "serif", "FreeSerif.ttf", "FreeSerifBold.ttf", "FreeSerifItalic.ttf",
         "FreeSerifBoldItalic.ttf"),  # fonts-freefont-ttf
    _fam("CMU Serif", "Computer Modern", "serif", "cmunrm.ttf", "cmunbx.ttf", "cmunti.ttf", "cmunbi.ttf"),
    # held-out serif designs
    _fam("EB Garamond", "Garamond", "serif", "EBGaramond12-Regular.otf", "EBGaramond12-Bold.otf",
         "EBGaramond12-Italic.otf"),  # fonts-ebgaramond
    _fam("P052", "Palatino", "serif", "P052-Roman.otf", "P052-Bold.otf", "P052-Italic.otf", "P052-BoldItalic.otf"),
    _fam("TeX Gyre Pagella", "Palatino", "serif", "texgyrepagella-regular.otf", "texgyrepagella-bold.otf",
         "texgyrepagella-italic.otf", "texgyrepagella-bolditalic.otf"),
    # sans
    _fam("DejaVu Sans", "DejaVu Sans", "sans", "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
         "DejaVuSans-BoldOblique.ttf"),
    _fam("Liberation Sans", "Helvetica", "sans", "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf",
         "LiberationSans-Italic.ttf", "LiberationSans-BoldItalic.ttf"),
    _fam("Nimbus Sans", "Helvetica", "sans", "NimbusSans-Regular.otf", "NimbusSans-Bold.otf",
         "NimbusSans-Italic.otf", "NimbusSans-BoldItalic.otf"),
    _fam("TeX Gyre Heros", "Helvetica", "sans", "texgyreheros-regular.otf", "texgyreheros-bold.otf",
         "texgyreheros-italic.otf", "texgyreheros-bolditalic.otf"),
    _fam("FreeSans", "Helvetica", "sans", "FreeSans.ttf", "FreeSansBold.ttf", "FreeSansOblique.ttf",
         "FreeSansBoldOblique.ttf"),
    _fam("Noto Sans", "Noto Sans", "sans", "NotoSans-Regular.ttf", "NotoSans-Bold.ttf", "NotoSans-Italic.ttf",
         "NotoSans-BoldItalic.ttf"),
    _fam("Linux Biolinum", "Biolinum", "sans", "LinBiolinum_R.otf", "LinBiolinum_RB.otf", "LinBiolinum_RI.otf"),
    _fam("CMU Sans Serif", "Computer Modern Sans", "sans", "cmunss.ttf", "cmunsx.ttf", "cmunsi.ttf", "cmunso.ttf"),
    # geometric sans (round o, single-storey forms, dots close to the stem): a class of its own in office
    # documents, and none of the families above is one; Avant Garde, the held-out geometric design, stays held out
    _fam("League Spartan", "Spartan", "sans", "LeagueSpartan-Regular.otf", "LeagueSpartan-Bold.otf"),
    # fonts-league-spartan (a revival of ATF Spartan, a Futura design)
    _fam("Quicksand", "Quicksand", "sans", "Quicksand-Regular.ttf", "Quicksand-Bold.ttf"),  # fonts-quicksand
    # held-out sans designs
    _fam("Carlito", "Calibri", "sans", "Carlito-Regular.ttf", "Carlito-Bold.ttf", "Carlito-Italic.ttf",
         "Carlito-BoldItalic.ttf"),  # fonts-crosextra-carlito
    _fam("URW Gothic", "Avant Garde", "sans", "URWGothic-Book.otf", "URWGothic-Demi.otf",
         "URWGothic-BookOblique.otf", "URWGothic-DemiOblique.otf"),
    _fam("TeX Gyre Adventor", "Avant Garde", "sans", "texgyreadventor-regular.otf", "texgyreadventor-bold.otf",
         "texgyreadventor-italic.otf", "texgyreadventor-bolditalic.otf"),
    # mono / typewriter
    _fam("DejaVu Sans Mono", "DejaVu Sans Mono", "mono", "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
         "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf"),
    _fam("Liberation Mono", "Liberation Mono", "mono", "LiberationMono-Regular.ttf", "LiberationMono-Bold.ttf",
         "LiberationMono-Italic.ttf", "LiberationMono-BoldItalic.ttf"),
    _fam("Nimbus Mono PS", "Courier", "mono", "NimbusMonoPS-Regular.otf", "NimbusMonoPS-Bold.otf",
         "NimbusMonoPS-Italic.otf", "NimbusMonoPS-BoldItalic.otf"),
    _fam("TeX Gyre Cursor", "Courier", "mono", "texgyrecursor-regular.otf", "texgyrecursor-bold.otf",
         "texgyrecursor-italic.otf", "texgyrecursor-bolditalic.otf"),
    _fam("FreeMono", "Courier", "mono", "FreeMono.ttf", "FreeMonoBold.ttf", "FreeMonoOblique.ttf",
         "FreeMonoBoldOblique.ttf"),
    # held-out mono design
    _fam("CMU Typewriter Text", "CM Typewriter", "mono", "cmuntt.ttf", "cmuntb.ttf", "cmunit.ttf", "cmuntx.ttf"),
    # condensed
    _fam("DejaVu Sans Condensed", "DejaVu Sans Condensed", "condensed", "DejaVuSansCondensed.ttf",
         "DejaVuSansCondensed-Bold.ttf", "DejaVuSansCondensed-Oblique.ttf", "DejaVuSansCondensed-BoldOblique.ttf"),
    _fam("DejaVu Serif Condensed", "DejaVu Serif Condensed", "condensed", "DejaVuSerifCondensed.ttf",
         "DejaVuSerifCondensed-Bold.ttf", "DejaVuSerifCondensed-Italic.ttf", "DejaVuSerifCondensed-BoldItalic.ttf"),
    _fam("Liberation Sans Narrow", "Arial Narrow", "condensed", "LiberationSansNarrow-Regular.ttf",
         "LiberationSansNarrow-Bold.ttf", "LiberationSansNarrow-Italic.ttf", "LiberationSansNarrow-BoldItalic.ttf"),
    # held-out condensed design
    _fam("Nimbus Sans Narrow", "Helvetica Narrow", "condensed", "NimbusSansNarrow-Regular.otf",
         "NimbusSansNarrow-Bold.otf", "NimbusSansNarrow-Oblique.otf", "NimbusSansNarrow-BoldOblique.otf"),
    _fam("TeX Gyre Heros Cn", "Helvetica Narrow", "condensed", "texgyreheroscn-regular.otf",
         "texgyreheroscn-bold.otf", "texgyreheroscn-italic.otf", "texgyreheroscn-bolditalic.otf"),
)


@dataclass(frozen=True)
class InstalledFamily:
    """A family found on this machine: ``styles`` maps a style to its font file path."""

    family: FontFamily
    styles: tuple[tuple[str, str], ...]  # ((style, path), ...), regular first

    @property
    def name(self) -> str:
        return self.family.name

    @property
    def category(self) -> str:
        return self.family.category

    @property
    def held_out(self) -> bool:
        return self.family.held_out

    def path(self, style: str = "regular") -> str:
        """The file of ``style``, or the regular file when the family has no such style."""
        found = dict(self.styles)
        return found.get(style, found["regular"])


@lru_cache(maxsize=1)
def _font_files() -> dict[str, str]:
    """File name -> path of every .ttf/.otf under FONT_DIRS (the first found wins, dirs sorted)."""
    found: dict[str, str] = {}
    for root in FONT_DIRS:
        for dirpath, dirnames, names in os.walk(root):
            dirnames.sort()
            for n in sorted(names):
                if n.lower().endswith((".ttf", ".otf")):
                    found.setdefault(n, str(Path(dirpath) / n))
    return found


def installed_families() -> list[InstalledFamily]:
    """The families of FAMILIES whose regular file is installed, in FAMILIES order."""
    files = _font_files()
    out = []
    for fam in FAMILIES:
        styles = tuple((s, files[f]) for s, f in fam.files if f in files)
        if styles and styles[0][0] == "regular":
            out.append(InstalledFamily(fam, styles))
    return out


def training_families() -> list[InstalledFamily]:
    """Installed families that training pages may use (never a held-out design)."""
    return [f for f in installed_families() if not f.held_out]


def held_out_families() -> list[InstalledFamily]:
    """Installed families kept for evaluation (HELD_OUT_DESIGNS)."""
    return [f for f in installed_families() if f.held_out]
