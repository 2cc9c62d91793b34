"""One report of an output: read the records, reduce to each page's latest row, figure, pick, write the HTML."""

from __future__ import annotations

from dataclasses import dataclass

from srgan.atomic import atomic_write_bytes
from srgan.report.figures import gain_figure, pace_figure, text_height_figure
from srgan.report.html import render_html
from srgan.report.load import read_night
from srgan.report.pictures import Pick, attach_pictures, pick_pages
from srgan.report.summary import format_night, model_gains, night_summary
from srgan.storage.files import Location, join

REPORT_NAME = "report.html"  # under the output location unless told otherwise


@dataclass
class Report:
    summary: dict
    figures: dict[str, bytes | None]
    picks: list[Pick]
    html_path: str

    @property
    def text(self) -> str:
        return format_night(self.summary, self.html_path)


def make_report(out: Location, html: Location | None = None, records: str = "records",
                pictures: bool = True, make_missing: bool = True) -> Report:
    """Read OUT/<records>, write the HTML page (OUT/report.html unless `html` says where; atomically).

    pictures: the pages to look at first, with their side-by-side pictures; make_missing: draw those a run
    did not (srgan.report.pictures), else name them without a picture."""
    night = read_night(join(out, records))
    summary = night_summary(night, out)
    figures = {
        "text height": text_height_figure(night.pages, summary["validated_range"]),
        "gain over bicubic": gain_figure(model_gains(night.pages)),
        "pace per unit": pace_figure(night.pages),
    }
    picks = pick_pages(night.pages) if pictures else []
    attach_pictures(picks, out, make_missing)
    target = html if html is not None else join(out, REPORT_NAME)
    atomic_write_bytes(target, render_html(summary, figures, picks).encode())
    return Report(summary, figures, picks, str(target))
