"""The report as one self-contained HTML page: figures and pictures embedded as data URIs, no script,
no network, so it opens from disk (or from object storage, downloaded) exactly as written."""

from __future__ import annotations

import base64
from html import escape

from srgan.report.pictures import Pick

STYLE = """
body{font-family:DejaVu Sans,Helvetica,Arial,sans-serif;margin:1.5em auto;padding:0 1em;max-width:1200px;color:#222}
.plots{display:flex;flex-wrap:wrap;gap:.6em}.plots figure{margin:0;flex:1 1 480px;max-width:600px}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.4em 1.2em .8em 0;font-size:.9em;display:inline-table;vertical-align:top}
td,th{border:1px solid #ddd;padding:.2em .5em;text-align:left}td.n{text-align:right}
.big{font-size:1.2em}.bad{color:#a00}code,pre{background:#f4f4f4;padding:.1em .3em}
pre{padding:.5em;white-space:pre-wrap;word-break:break-all}
figure{margin:.6em 0}img{max-width:100%;border:1px solid #ccc}figcaption{font-size:.9em;color:#444}
"""


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def count_table(title: str, rows: list[tuple[str, int]]) -> str:
    body = "".join(f"<tr><td>{escape(str(v))}</td><td class=n>{n}</td></tr>" for v, n in rows)
    return f"<table><tr><th>{escape(title)}</th><th>pages</th></tr>{body or '<tr><td>-</td><td></td></tr>'}</table>"


def failures_section(summary: dict) -> str:
    if not summary["failures"]:
        return "<h2>Failures</h2><p>No page failed (counting each page's latest row).</p>"
    parts = ["<h2>Failures by cause</h2><table><tr><th>pages</th><th>cause</th><th>files (first few)</th></tr>"]
    for g in summary["failures"]:
        example = f"<br><small>e.g. {escape(g['example'])}</small>" if g.get("example") else ""
        files = "<br>".join(escape(f) for f in g["files"]) + (" ..." if g["count"] > len(g["files"]) else "")
        parts.append(f"<tr><td class=n>{g['count']}</td><td>{escape(g['cause'])}{example}</td><td>{files}</td></tr>")
    parts.append("</table>")
    if summary["retry"]:
        parts.append("<p>Retry them (a rerun skips every page already done with these weights and config):</p>"
                     f"<pre>{escape(summary['retry'])}</pre>")
    return "".join(parts)


def picks_section(picks: list[Pick]) -> str:
    if not picks:
        return "<h2>Pages to look at first</h2><p>None: no page was written.</p>"
    parts = ["<h2>Pages to look at first</h2>"]
    for pick in picks:
        gain = pick.figures.get("gain_db")
        figures = f"gain over bicubic {gain:+.2f} dB" if gain is not None else ""
        th = pick.row.get("text_height_px")
        figures += f"{', ' if figures else ''}x-height {th:.1f} px" if th is not None else ""
        made = " (picture made for this report)" if pick.made_now else ""
        caption = (f"<b>{escape(pick.reason)}</b>: {escape(pick.name)}, {escape(figures)}{made}"
                   f"<br><small>{escape(pick.row.get('output_path') or '')}</small>")
        img = (f'<img src="{data_uri(pick.picture)}" alt="{escape(pick.name)}">' if pick.picture
               else f"<p class=bad>{escape(pick.note)}</p>")
        parts.append(f"<figure>{img}<figcaption>{caption}</figcaption></figure>")
    return "".join(parts)


def render_html(summary: dict, figures: dict[str, bytes | None], picks: list[Pick]) -> str:
    """The whole page: headline counts, count tables, failures and the retry command, plots, pictures."""
    s = summary
    median = "" if s["median_gain_db"] is None else (
        f", median gain over bicubic <b>{s['median_gain_db']:+.2f} dB</b> ({s['pages_below_bicubic']} pages below)")
    plots = "".join(f'<figure><img src="{data_uri(png)}" alt="{escape(name)}"></figure>'
                    for name, png in figures.items() if png)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>srgan report: {escape(s['output'])}</title>
<style>{STYLE}</style></head><body>
<h1>The night at a glance</h1>
<p>Output <code>{escape(s['output'])}</code></p>
<p class=big><b>{s['pages']}</b> pages: <b>{s['ok']}</b> ok, <b class={'bad' if s['failed'] else ''}>{s['failed']}
</b> failed{median}.</p>
<p>Each page counted once, by its latest row ({s['rows_read']} rows read, {s['superseded_rows']} of them earlier
attempts replaced by a later row).</p>
{failures_section(s)}
<h2>Counts</h2>
{count_table("status", s["by_status"])}{count_table("method (ok pages)", s["by_method"])}
{count_table("label", s["by_label"])}{count_table("container", s["by_container"])}{count_table("run", s["by_run"])}
<h2>Figures</h2>
<div class=plots>{plots or "<p>No page has figures yet.</p>"}</div>
{picks_section(picks)}
</body></html>
"""
