"""The pipeline's work items: a page between stages (:class:`PageWork`) and what every row of a run
shares (:class:`RunContext`). Small and picklable: only these and paths travel between Prefect tasks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from srgan.readers import DocumentRef


@dataclass
class PageWork:
    """One page on its way through the pipeline: identity, sizes, paths and timings."""

    doc: DocumentRef
    page_index: int
    page_count: int
    error: str | None = None
    input_width: int = 0
    input_height: int = 0
    dpi: float | None = None
    dpi_assumed: bool = False  # the file had no dpi tag: dpi is upscale.assumed_dpi
    text_height_px: float | None = None
    text_height_note: str | None = None
    factor: float = 1.0
    input_npy: str = ""  # the decoded page
    norm_npy: str = ""  # the page after text-size normalisation
    sr_npy: str = ""  # the model's output for norm_npy
    seconds: dict[str, float] = field(default_factory=dict)
    color: str = ""  # "grey" or "rgb" (input_npy then holds the luminance Y, chroma_npy the chroma)
    chroma_npy: str = ""  # colour pages: (H, W, 2) uint8 Cb, Cr of the input
    source_format: str = ""  # the input file's format (PDF, TIFF, PNG, JPEG): the output document's family
    page_size_pt: tuple[float, float] | None = None  # PDF pages: (width, height) in points, from the reader
    doc_info: dict[str, str] | None = None  # PDF pages: the document's metadata, carried to the output PDF
    in_validated_range: bool | None = None  # x-height the model sees inside the weights' validated range
    validated_range: tuple[float, float] | None = None  # the range used (weights manifest)
    method: str = "model"  # model | lanczos (outside the range: upscale.out_of_range; no estimate: upscale.no_estimate)
    pdf_path: str | None = None  # PDF pages: in_place (the scan image's own pixels) or rasterised (srgan.pdf.plan)
    dpi_reason: str | None = None  # PDF pages: native | fallback | forced | capped
    pdf_note: str | None = None  # PDF pages: why a page under pdf.dpi native was rasterised
    has_text: bool | None = None  # PDF pages: the input page shows text (an OCR layer included)
    # in-process runs (srgan.pipeline.run) keep the pages here instead of in .npy files: "input", "norm", "sr",
    # "chroma". Prefect tasks never fill it, so only paths travel between them.
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def load(self, which: str) -> np.ndarray:
        """The page `which` ("input", "norm", "sr", "chroma"), from memory or from its work file."""
        if which in self.arrays:
            return self.arrays[which]
        paths = {"input": self.input_npy, "norm": self.norm_npy, "sr": self.sr_npy, "chroma": self.chroma_npy}
        return np.load(paths[which])

    @property
    def key(self) -> str:
        return page_key(self.doc, self.page_index)

    @property
    def stem(self) -> str:
        """Output name stem: rel_path, plus _p0001... for documents of several pages."""
        if self.page_count > 1:
            return f"{self.doc.rel_path}_p{self.page_index + 1:04d}"
        return self.doc.rel_path


def page_key(doc: DocumentRef, page_index: int) -> str:
    return f"{doc.source}|{doc.member}|{page_index}"


@dataclass
class RunContext:
    """What every row of a run shares."""

    run_id: str
    started_at: object  # datetime
    out_dir: str
    scale: int
    weights_name: str
    weights_sha256: str
    device: str
    precision: str
    config_hash: str
    output_format: str = "png"
    compare_crop: int = 256
    png_compress_level: int = 1
    encoding: str = "png8"  # upscale.encoding: how grey pages are stored (srgan.encoding.codecs)
    records_dir: str = ""  # where earlier runs' rows are (documents finished by a rerun look up their pages)
    ocr_layer: str = "none"  # upscale.ocr_layer: add = tesseract's text layer on PDF pages without text
    ocr_language: str = "eng"
    max_member_bytes: int = 512 * 1024 * 1024  # limits.max_member_bytes: a PDF re-read from its archive to rebuild it
    runtime: str = "torch"  # the engine's runtime (srgan/runtimes): every row records it
