"""The night's figures from its latest rows: counts, failures by cause, the retry command, the one-screen text.

Everything here works on whole columns (pyarrow compute); only the few groups (statuses, causes, the
first files of each cause) become Python values.
"""

from __future__ import annotations

import shlex

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from srgan.report.load import Night
from srgan.storage.files import Location

TOP = 12  # groups shown by name in a count table; the rest are summed as "(others)"
FILES_PER_CAUSE = 8  # files named under each cause of failure


def counts(column: pa.ChunkedArray | pa.Array, top: int = TOP, none: str = "(none)") -> list[tuple[str, int]]:
    """(value, count) most frequent first; nulls counted as `none`; past `top` summed as '(others)'."""
    if len(column) == 0:
        return []
    vc = pc.value_counts(pc.fill_null(pc.cast(column, pa.string()), none))
    values = vc.field("values").to_pylist()
    ns = vc.field("counts").to_numpy()
    order = np.argsort(-ns, kind="stable")
    out = [(values[i], int(ns[i])) for i in order[:top]]
    if len(order) > top:
        out.append(("(others)", int(ns[order[top:]].sum())))
    return out


def method_reasons(pages: pa.Table) -> pa.ChunkedArray:
    """model | lanczos: outside the validated range | lanczos: no text-height estimate (<note>)."""
    out_of_range = pc.equal(pages.column("in_validated_range"), False)
    note = error_causes(pages.column("text_height_note"), "no note")  # "(N ink components)": one group
    no_estimate = pc.binary_join_element_wise("lanczos: no text-height estimate (", note, ")", "")
    lanczos = pc.if_else(pc.fill_null(out_of_range, False), "lanczos: outside the validated range", no_estimate)
    method = pc.fill_null(pc.cast(pages.column("method"), pa.string()), "(none)")
    return pc.if_else(pc.equal(method, "lanczos"), lanczos, method)


def error_causes(errors: pa.ChunkedArray, none: str = "(no message)") -> pa.ChunkedArray:
    """An error line (or note) with its particulars (quoted names, numbers) masked, so like ones group together."""
    text = pc.fill_null(pc.cast(errors, pa.string()), none)
    text = pc.replace_substring_regex(text, r"'[^']*'|\"[^\"]*\"|\([^()]*[/\\][^()]*\)", "'…'")
    return pc.replace_substring_regex(text, r"\d+", "N")


def page_names(table: pa.Table) -> list[str]:
    """'container:member p N' (or 'member p N' for a plain file) for a few rows."""
    names = []
    for c, m, i in zip(table.column("container").to_pylist(), table.column("member").to_pylist(),
                       table.column("page_index").to_pylist(), strict=True):
        where = f"{c}:{m}" if c and m and c != m else (m or c or "?")
        names.append(f"{where} p{(i or 0) + 1}")
    return names


def failures(pages: pa.Table) -> list[dict]:
    """The failed pages grouped by cause, most first: cause, count, the first files (named)."""
    failed = pages.filter(pc.not_equal(pc.fill_null(pages.column("status"), "error"), "ok"))
    if failed.num_rows == 0:
        return []
    causes = error_causes(failed.column("error"))
    groups = []
    for cause, n in counts(causes, top=TOP):
        if cause == "(others)":
            groups.append({"cause": "(other causes)", "count": n, "files": []})
            continue
        some = failed.filter(pc.equal(causes, cause)).slice(0, FILES_PER_CAUSE)
        example = some.column("error")[0].as_py()
        groups.append({"cause": cause, "count": n, "example": example, "files": page_names(some)})
    return groups


def most_common(column: pa.ChunkedArray) -> object:
    found = [v for v, _ in counts(column.drop_null(), top=1) if v != "(others)"]
    return found[0] if found else None


def retry_command(pages: pa.Table, out: Location) -> str | None:
    """The command that redoes the failed pages: the same inputs into the same output (a rerun skips every
    page already done with these weights and config), with the weights and scale the records name."""
    failed = pages.filter(pc.not_equal(pc.fill_null(pages.column("status"), "error"), "ok"))
    if failed.num_rows == 0:
        return None
    sources = sorted(s for s in pc.unique(failed.column("source")).to_pylist() if s)
    cmd = ["srgan", "upscale", *sources, "--out", str(out)]
    scale, weights = most_common(pages.column("scale")), most_common(pages.column("weights_name"))
    if scale:
        cmd += ["--scale", str(scale)]
    if weights:
        cmd += ["--weights", str(weights)]
    return " ".join(shlex.quote(c) for c in cmd)


def gains(pages: pa.Table) -> np.ndarray:
    """Per ok page: consistency PSNR of the output minus bicubic's, dB (NaN where either is missing)."""
    model = pc.fill_null(pc.cast(pages.column("psnr_consistency"), pa.float64()), float("nan"))
    bicubic = pc.fill_null(pc.cast(pages.column("psnr_consistency_bicubic"), pa.float64()), float("nan"))
    return pc.subtract(model, bicubic).to_numpy()


def is_ok(pages: pa.Table) -> pa.ChunkedArray:
    return pc.fill_null(pc.equal(pages.column("status"), "ok"), False)


def model_gains(pages: pa.Table) -> np.ndarray:
    """The finite gains over bicubic of the ok pages the model wrote (Lanczos pages left out)."""
    model = pc.and_(is_ok(pages), pc.fill_null(pc.equal(pages.column("method"), "model"), False))
    gain = gains(pages.filter(model))
    return gain[np.isfinite(gain)]


def validated_range(pages: pa.Table) -> tuple[float, float] | None:
    lo, hi = pages.column("validated_xheight_lo"), pages.column("validated_xheight_hi")
    lo, hi = pc.cast(lo, pa.float64()).drop_null(), pc.cast(hi, pa.float64()).drop_null()
    if len(lo) == 0 or len(hi) == 0:
        return None
    return float(pc.min(lo).as_py()), float(pc.max(hi).as_py())


def night_summary(night: Night, out: Location) -> dict:
    """Everything the text summary and the HTML page show that is not a figure or a picture."""
    pages = night.pages
    ok = is_ok(pages)
    done = pages.filter(ok)
    model_gain = model_gains(pages)
    return {
        "output": str(out),
        "pages": pages.num_rows,
        "rows_read": night.rows_read,
        "superseded_rows": night.superseded,
        "ok": int(pc.sum(ok).as_py() or 0),
        "failed": pages.num_rows - int(pc.sum(ok).as_py() or 0),
        "by_status": counts(pages.column("status")),
        "by_method": counts(method_reasons(done)),
        "by_label": counts(pages.column("label")),
        "by_container": counts(pages.column("container")),
        "by_run": counts(pages.column("run_id")),
        "failures": failures(pages),
        "retry": retry_command(pages, out),
        "model_pages_with_gain": int(model_gain.size),
        "median_gain_db": float(np.median(model_gain)) if model_gain.size else None,
        "pages_below_bicubic": int((model_gain < 0).sum()),
        "validated_range": validated_range(pages),
    }


def format_night(s: dict, html: str | None = None) -> str:
    """One screen: pages, failures by cause, methods, quality, where the HTML is."""
    lines = [f"report of {s['output']}",
             f"pages: {s['pages']}  ok: {s['ok']}  failed: {s['failed']}  "
             f"(rows read: {s['rows_read']}, earlier attempts replaced by a later row: {s['superseded_rows']})"]
    lines.append("method: " + ", ".join(f"{v} {n}" for v, n in s["by_method"]) if s["by_method"] else "method: -")
    if s["median_gain_db"] is not None:
        lines.append(f"model pages: median gain over bicubic {s['median_gain_db']:+.2f} dB over "
                     f"{s['model_pages_with_gain']} pages, {s['pages_below_bicubic']} below bicubic")
    if s["validated_range"]:
        lo, hi = s["validated_range"]
        lines.append(f"weights' validated text range: {lo:.1f}-{hi:.1f} px")
    lines.append("runs: " + ", ".join(f"{v} ({n})" for v, n in s["by_run"][:4])
                 + (f" and {len(s['by_run']) - 4} more" if len(s["by_run"]) > 4 else ""))
    for group in s["failures"]:
        files = ", ".join(group["files"][:3]) + (" ..." if group["count"] > 3 else "")
        lines.append(f"  failed {group['count']}: {group['cause']}" + (f"  [{files}]" if files else ""))
    if s["retry"]:
        lines.append(f"retry the failed pages: {s['retry']}")
    if html:
        lines.append(f"report: {html}")
    return "\n".join(lines)
