"""The benchmark runs every case on tiny weights and writes the documented JSON fields (no timings asserted)."""

import json

from srgan.bench import cli as bench
from srgan.bench.memory import write_tar
from tests.conftest import write_config

FIELDS = {"case", "device", "device_name", "model", "scale", "page_size", "pages", "seconds", "pages_per_s",
          "tflops", "pct_of_matmul_peak"}


def test_bench_json_has_a_row_per_case_with_the_fields(tmp_path, tiny_weights):
    out = tmp_path / "bench.json"
    cfg = write_config(tmp_path, tiny_weights)
    rc = bench.main(["--config", str(cfg), "--models", "srgan_x2", "--device", "cpu", "--pages", "2",
                     "--size", "120x90", "--cases", "model,pipeline,naive,memory", "--memory-pages", "3,6",
                     "--memory-size", "64x48", "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())
    assert [r["case"] for r in rows] == ["model", "pipeline", "naive", "memory", "memory"]
    for r in rows:
        assert FIELDS <= r.keys(), FIELDS - r.keys()
        assert r["model"] == "srgan_x2" and r["scale"] == 2 and r["device"] == "cpu"
        assert r["seconds"] > 0 and r["pages_per_s"] > 0
    assert rows[0]["tflops"] >= 0 and rows[0]["pages"] == 2 and rows[2]["precision"] == "fp32"
    assert rows[1]["pages"] == 2
    cpu = rows[1]["cpu_ms_per_page"]
    assert set(cpu) == {"decode", "normalise", "metrics", "write", "record"} and all(v >= 0 for v in cpu.values())
    assert abs(rows[1]["cpu_ms_per_page_total"] - sum(cpu.values())) < 0.5 and "thread_time" in rows[1]["cpu_clock"]
    assert rows[1]["cpu_workers"] == 2 and rows[1]["cpu_bound_pages_per_s"] > 0
    memory = rows[3:]
    assert [m["archive_pages"] for m in memory] == [3, 6] and [m["pages"] for m in memory] == [3, 6]
    assert all(m["errors"] == 0 and m["peak_rss_mb"] > 10 for m in memory)


def test_tar_of_pages_cycles_the_given_pages(tmp_path):
    import tarfile

    import numpy as np

    pages = [np.full((8, 8), v, np.uint8) for v in (0, 255)]
    archive = write_tar(tmp_path / "p.tar", pages, 5)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names == [f"pages/page{i:06d}.png" for i in range(5)]


def test_archive_case_decodes_every_page_both_ways(tmp_path, tiny_weights):
    out = tmp_path / "bench.json"
    cfg = write_config(tmp_path, tiny_weights, "flow:\n  pages_per_task: 3\n")
    rc = bench.main(["--config", str(cfg), "--cases", "archive", "--archive-pages", "7", "--memory-size", "64x48",
                     "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())
    assert [(r["case"], r["mode"]) for r in rows] == [("archive", "stream"), ("archive", "spool")]
    for r in rows:
        assert FIELDS <= r.keys(), FIELDS - r.keys()
        assert r["pages"] == 7 and r["errors"] == 0 and r["pages_per_task"] == 3 and r["pages_per_s"] > 0


def test_orchestration_case_runs_plain_and_flow_on_the_same_pages(tmp_path, tiny_weights):
    """Both sides in fresh processes (the flow through `srgan upscale`, Prefect's ephemeral mode)."""
    out = tmp_path / "bench.json"
    cfg = write_config(tmp_path, tiny_weights, "flow:\n  pages_per_task: 2\n")
    rc = bench.main(["--config", str(cfg), "--device", "cpu", "--cases", "orchestration", "--orchestration-pages",
                     "6", "--memory-size", "64x48", "--json", str(out)])
    assert rc == 0
    (row,) = json.loads(out.read_text())
    assert {"case", "pages", "plain_pages_per_s", "flow_pages_per_s", "flow_over_plain", "task_runs"} <= row.keys()
    assert row["case"] == "orchestration" and row["pages"] == row["flow_pages"] == 6 and row["errors"] == 0
    assert row["pages_per_task"] == 2 and row["task_runs"] == 1 + 1 + 4 * 3  # discover, spool, 3 batches of 4
    assert row["plain_pages_per_s"] > 0 and row["flow_pages_per_s"] > 0
    assert abs(row["flow_over_plain"] - row["flow_pages_per_s"] / row["plain_pages_per_s"]) < 0.01


def test_train_speed_case_times_each_objective():
    from srgan.bench.training_speed import OBJECTIVES, bench_training_speed

    rows = bench_training_speed(2, num_feat=4, num_block=1, batch=2, crop=24, content_layers="conv1_2",
                                disc_feat=4, precisions=("fp32",), channels_last=(False,), steps=1, warmup=1)
    assert [r["objective"] for r in rows] == list(OBJECTIVES)
    assert all(r["steps_per_s"] > 0 and r["lr_crop"] == 12 and r["case"] == "train_speed" for r in rows)
def test_encoding_case_reports_bytes_per_page_of_each_encoding_and_the_pdf(tmp_path, tiny_weights):
    import numpy as np
    import pikepdf
    from PIL import Image

    from srgan.encoding.codecs import NAMES
    from tests import scanpdf
    from tests.conftest import text_like_page

    pages = tmp_path / "pages"
    pages.mkdir()
    for i in range(3):
        Image.fromarray(text_like_page(60, 48, i)).save(pages / f"p{i}.png", dpi=(100, 100))
    pdf = pikepdf.new()
    scanpdf.image_page(pdf, np.ascontiguousarray(text_like_page(80, 64)), 50)
    pdf.save(tmp_path / "scan.pdf")
    out, cfg = tmp_path / "bench.json", write_config(tmp_path, tiny_weights)
    cfg.write_text(cfg.read_text().replace("dpi: 50", "dpi: native"))  # the scan read in place
    rc = bench.main(["--config", str(cfg), "--models", "srgan_x2", "--device", "cpu",
                     "--cases", "encoding", "--encoding-pages", str(pages), "--pages", "2",
                     "--pdfs", str(tmp_path / "scan.pdf"), "--json", str(out)])
    assert rc == 0
    rows = json.loads(out.read_text())
    assert [(r["kind"], r["encoding"]) for r in rows] == [("pages", n) for n in NAMES] + [("pdf", n) for n in NAMES]
    by = {(r["kind"], r["encoding"]): r for r in rows}
    assert all(by["pages", n]["pages"] == 2 and by["pages", n]["kb_per_page"] > 0 for n in NAMES)
    assert by["pages", "png8"]["share_of_png8"] == 1.0
    kb = {n: by["pages", n]["kb_per_page"] for n in NAMES}
    assert kb["bitonal"] < kb["png4"] < kb["png8"]
    assert by["pdf", "png8"]["paths"] == ["in_place"] and by["pdf", "png8"]["pdf_in_kb"] > 0
    assert by["pdf", "bitonal"]["pdf_out_kb"] < by["pdf", "png8"]["pdf_out_kb"]
