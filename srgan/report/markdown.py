"""The report as a Prefect markdown artifact: headline, failures, the retry command, the figures (embedded)
and where the HTML page is. Plain text here; the flows hand it to Prefect."""

from __future__ import annotations

from srgan.report.html import data_uri


def report_markdown(summary: dict, figures: dict[str, bytes | None], html: str, title: str) -> str:
    s = summary
    lines = [f"# {title}", "",
             f"**{s['pages']}** pages: **{s['ok']}** ok, **{s['failed']}** failed "
             f"(each page's latest row; {s['superseded_rows']} earlier attempts replaced)."]
    if s["median_gain_db"] is not None:
        lines.append(f"Median gain over bicubic {s['median_gain_db']:+.2f} dB; {s['pages_below_bicubic']} pages below.")
    lines += ["", "method: " + ", ".join(f"{v} {n}" for v, n in s["by_method"]), "",
              f"Full report (open in a browser): `{html}`", ""]
    if s["failures"]:
        lines += ["| pages | cause | files |", "|---|---|---|"]
        lines += [f"| {g['count']} | {g['cause'].replace('|', '/')} | {', '.join(g['files'][:3]).replace('|', '/')} |"
                  for g in s["failures"]]
        lines += ["", f"Retry: `{s['retry']}`", ""]
    lines += [f"![{name}]({data_uri(png)})" for name, png in figures.items() if png]
    return "\n".join(lines) + "\n"
