"""The upscale flow under Prefect's test harness (a real temporary API, SQLite)."""

from pathlib import Path

import numpy as np
from PIL import Image

from srgan.pipeline.records import read_records
from tests.conftest import write_config


def test_upscale_flow_end_to_end(prefect_harness, tiny_weights, small_inputs, tmp_path):
    from flows.upscale import upscale

    cfg = write_config(tmp_path, tiny_weights)
    out = tmp_path / "out"
    summary = upscale(input_path=str(small_inputs), output_dir=str(out), scale=2, config_path=str(cfg))
    assert summary["pages"] == 5 and summary["ok"] == 4 and summary["errors"] == 1
    table = read_records(out / "records").to_pylist()
    assert len(table) == 5
    by_member = {(r["member"], r["page_index"]): r for r in table}
    bad = by_member[("empty.png", 0)]
    assert bad["status"] == "error" and "empty" in bad["error"]
    a = by_member[("a.png", 0)]
    assert a["status"] == "ok" and a["output_width"] == 200 and a["output_height"] == 240
    assert a["input_dpi"] == 100 and a["output_dpi"] == 200
    assert np.isfinite(a["psnr_consistency"]) and np.isfinite(a["psnr_consistency_bicubic"])
    assert a["text_height_px"] is not None and a["normalise_factor"] > 0
    img = Image.open(a["output_path"])
    assert img.size == (200, 240) and round(img.info["dpi"][0]) == 200
    # documents of several pages get _p0001...; sub-folders are kept
    assert (out / "pages" / "c_p0001.png").exists() and (out / "pages" / "c_p0002.png").exists()
    assert (out / "pages" / "sub" / "b.png").exists()
    assert len(list((out / "compare").glob("*.png"))) >= 1
    assert not (out / ".work").exists()  # work files cleaned up
    # the run's report: OUT/report.html and a markdown artifact with the figures and where the page is
    assert summary["report"] == str(out / "report.html") and "empty.png p1" in (out / "report.html").read_text()
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["upscale-report"])))
    (md,) = [a.data for a in arts if str(out / "report.html") in a.data]
    assert "**5** pages: **4** ok, **1** failed" in md and md.count("](data:image/png;base64,") >= 2


def test_normalisation_on_and_off(prefect_harness, tmp_path):
    """Text half the trained height: enlarged by ~2 before the model by default, factor 1 with
    normalise off; the output is exactly scale x the input either way."""
    from flows.upscale import upscale
    from srgan.weights import save_weights
    from tests.conftest import text_like_page, tiny_generator

    wdir = tmp_path / "weights"
    wdir.mkdir()
    save_weights(tiny_generator(2), wdir, "srgan_x2", {"text_height": 18.0})  # page text is ~9 px
    src = tmp_path / "page.png"
    Image.fromarray(text_like_page(130, 110)).save(src)
    cfg = write_config(tmp_path, wdir)
    factors = {}
    for normalise in (True, False):
        out = tmp_path / f"out{normalise}"
        upscale(input_path=str(src), output_dir=str(out), scale=2, config_path=str(cfg), normalise=normalise)
        (row,) = read_records(out / "records").to_pylist()
        assert (row["output_width"], row["output_height"]) == (220, 260)
        assert Image.open(row["output_path"]).size == (220, 260)
        assert Path(row["output_path"]).name == "page.png"
        factors[normalise] = row["normalise_factor"]
    assert 1.7 < factors[True] < 2.3
    assert factors[False] == 1.0


def test_compressed_archive_is_streamed_once_across_tasks(prefect_harness, tiny_weights, tmp_path, monkeypatch):
    """A .tar.gz split over several decode tasks: discovery streams it once, then it is spooled once
    and each task seeks to its own members (no task streams the archive from its start)."""
    import tarfile

    import srgan.readers.sources as sources
    from flows.upscale import upscale
    from tests.test_readers import _png, gradient, write_tar

    archive = write_tar(tmp_path / "scans.tar.gz",
                        [(f"p{i}.png", _png((gradient() + 10 * i).astype(np.uint8))) for i in range(5)], "w:gz")
    passes = []
    real_open = tarfile.open

    def counting_open(*args, **kwargs):
        passes.append(kwargs.get("mode"))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(sources.tarfile, "open", counting_open)
    cfg = write_config(tmp_path, tiny_weights, "flow:\n  pages_per_task: 2\n")
    out = tmp_path / "out"
    summary = upscale(input_path=str(archive), output_dir=str(out), scale=2, config_path=str(cfg))
    assert summary["pages"] == 5 and summary["ok"] == 5
    assert len(passes) == 1  # discovery's; the three decode tasks read by offset from the spooled copy
    rows = sorted(read_records(out / "records").to_pylist(), key=lambda r: r["member"])
    assert [r["member"] for r in rows] == [f"p{i}.png" for i in range(5)]
    assert all(r["source"] == str(archive) for r in rows)  # records name the archive, not the spool
    assert not (out / ".work").exists()  # the spooled copy went with the work folder


def test_the_night_takes_the_folder_deployments_choices():
    """upscale-sharded (and nightly-upscale) take weights, scale, config and normalise as upscale-folder does
    and hand them to every unit, so a pool of CPU machines can run a night on the fast weights."""
    import inspect

    import yaml

    from flows.sharded import upscale_sharded
    from flows.upscale import upscale
    from tests.conftest import REPO

    night, folder = (inspect.signature(f.fn).parameters for f in (upscale_sharded, upscale))
    for name in ("scale", "config_path", "weights", "normalise"):
        assert name in night and name in folder, name
    deployments = {d["name"]: d for d in yaml.safe_load((REPO / "prefect.yaml").read_text())["deployments"]}
    for name in ("upscale-folder", "upscale-sharded", "nightly-upscale"):
        assert {"scale", "config_path", "weights"} <= set(deployments[name]["parameters"]), name
    source = inspect.getsource(upscale_sharded.fn)
    assert '"weights": weights' in source and '"normalise": normalise' in source  # handed to every unit
