"""What a PDF page draws: its images as placed (size in pixels, transformation to user space) and
whether it shows any text, read from the content streams (the page's and its form XObjects')."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import pikepdf

log = logging.getLogger(__name__)

Matrix = tuple[float, float, float, float, float, float]  # PDF [a b c d e f]: (x y 1) -> (ax+cy+e, bx+dy+f)
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)
MAX_FORM_DEPTH = 8  # form XObjects nested deeper than this are not looked into
MAX_OPERATORS = 200_000  # operators walked per page (forms drawn many times count each time): a hostile page
#                          of forms in forms stops here, marked truncated, instead of walking 40**6 draws
_TEXT_SHOWING = {"Tj", "TJ", "'", '"'}
_PAINTING = {"S", "s", "f", "F", "f*", "B", "B*", "b", "b*", "sh"}  # path painting and shading operators


@dataclass(frozen=True)
class ImageDraw:
    """One image painted on the page: its pixels and where its unit square goes (ctm, in user space)."""

    width: int
    height: int
    ctm: Matrix
    objgen: tuple[int, int] | None  # the image XObject (None: an inline image)
    stencil: bool = False  # /ImageMask: a stencil painted in the fill colour, not a picture

    def corners(self) -> list[tuple[float, float]]:
        """The placed unit square's corners in user space."""
        return [apply(self.ctm, x, y) for x, y in ((0, 0), (1, 0), (1, 1), (0, 1))]

    def area(self) -> float:
        """Area in square points of the parallelogram the image covers."""
        a, b, c, d, _, _ = self.ctm
        return abs(a * d - b * c)


@dataclass
class PageLayout:
    """The images a page paints, how many text-showing operators it has (invisible OCR text included) and how many
    path-painting ones."""

    draws: list[ImageDraw] = field(default_factory=list)
    text_ops: int = 0
    paint_ops: int = 0  # path painting and shading operators (vector graphics: rules, boxes, drawn letters)
    operators: int = 0  # walked so far
    truncated: bool = False  # the walk stopped at MAX_OPERATORS: draws and text_ops are incomplete
    parsed: dict = field(default_factory=dict, repr=False)  # form objgen -> its instructions (parsed once)

    @property
    def has_text(self) -> bool:
        return self.text_ops > 0


def multiply(m: Matrix, n: Matrix) -> Matrix:
    """m then n (PDF's row-vector order: the matrix of ``m cm`` applied inside a CTM n is m x n)."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (a * a2 + b * c2, a * b2 + b * d2, c * a2 + d * c2, c * b2 + d * d2,
            e * a2 + f * c2 + e2, e * b2 + f * d2 + f2)


def apply(m: Matrix, x: float, y: float) -> tuple[float, float]:
    a, b, c, d, e, f = m
    return a * x + c * y + e, b * x + d * y + f


def page_layout(page: pikepdf.Page) -> PageLayout:
    """The page's image draws and text operators, its form XObjects followed (MAX_FORM_DEPTH deep)."""
    layout = PageLayout()
    resources = page.obj.get("/Resources")
    _walk(pikepdf.parse_content_stream(page), resources, IDENTITY, layout, depth=0, seen=())
    return layout


def _numbers(operands: list) -> Matrix | None:
    try:
        values = tuple(float(v) for v in operands)
    except (TypeError, ValueError):
        return None
    return values if len(values) == 6 and all(map(math.isfinite, values)) else None  # type: ignore[return-value]


def _walk(instructions: list, resources: pikepdf.Object | None, ctm: Matrix, layout: PageLayout, depth: int,
          seen: tuple[tuple[int, int], ...]) -> None:
    stack: list[Matrix] = []
    for operands, operator in _ops(instructions):
        layout.operators += 1
        if layout.operators > MAX_OPERATORS:
            layout.truncated = True
            return
        op = str(operator)
        if op == "q":
            stack.append(ctm)
        elif op == "Q":
            ctm = stack.pop() if stack else ctm
        elif op == "cm":
            m = _numbers(operands)
            if m is not None:
                ctm = multiply(m, ctm)
        elif op in _TEXT_SHOWING:
            layout.text_ops += 1
        elif op in _PAINTING:
            layout.paint_ops += 1
        elif op == "INLINE IMAGE":
            image = operands[0]
            layout.draws.append(ImageDraw(int(image.width), int(image.height), ctm, None, bool(image.image_mask)))
        elif op == "Do" and operands:
            _draw(operands[0], resources, ctm, layout, depth, seen)


def _ops(instructions: list) -> Iterator[tuple[list, object]]:
    for item in instructions:
        if isinstance(item, pikepdf.ContentStreamInlineImage):
            yield [item.iimage], "INLINE IMAGE"
        else:
            yield list(item.operands), item.operator


def _draw(name: pikepdf.Object, resources: pikepdf.Object | None, ctm: Matrix, layout: PageLayout, depth: int,
          seen: tuple[tuple[int, int], ...]) -> None:
    xobjects = resources.get("/XObject") if isinstance(resources, pikepdf.Dictionary) else None
    xobj = xobjects.get(name) if isinstance(xobjects, pikepdf.Dictionary) else None
    if not isinstance(xobj, pikepdf.Stream):
        return
    subtype = xobj.get("/Subtype")
    if subtype == "/Image":
        layout.draws.append(ImageDraw(int(xobj.get("/Width", 0)), int(xobj.get("/Height", 0)), ctm,
                                      xobj.objgen if xobj.is_indirect else None,
                                      bool(xobj.get("/ImageMask", False))))
    elif subtype == "/Form" and depth < MAX_FORM_DEPTH and xobj.objgen not in seen and not layout.truncated:
        matrix = _numbers(list(xobj.get("/Matrix", []))) or IDENTITY
        key = xobj.objgen if xobj.is_indirect else id(xobj)
        if key not in layout.parsed:
            try:
                layout.parsed[key] = pikepdf.parse_content_stream(xobj)
            except pikepdf.PdfError as exc:
                log.debug("form XObject %s not read: %s", xobj.objgen, exc)
                layout.parsed[key] = []
        instructions = layout.parsed[key]
        _walk(instructions, xobj.get("/Resources", resources), multiply(matrix, ctm), layout, depth + 1,
              (*seen, xobj.objgen))
