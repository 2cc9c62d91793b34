"""CPU runtimes (srgan/runtimes): the same output as PyTorch, one warning line when one cannot load,
auto measured once and remembered, int8 after calibration. Tiny generators on small pages."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging

import numpy as np
import pytest
import torch

from srgan.config import EngineConfig, TilingConfig
from srgan.imaging.metrics import psnr
from srgan.models import Generator
from srgan.runtimes import choose
from srgan.runtimes.export import calibration_batches, export_onnx, quantize_int8, runtime_files

needs_ort = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None or
                               importlib.util.find_spec("onnx") is None,
                               reason="onnxruntime/onnx not installed (pyproject installs them)")
needs_ov = pytest.mark.skipif(importlib.util.find_spec("openvino") is None,
                              reason="openvino not installed (pyproject installs it)")

TILING = TilingConfig(tile=32, overlap=8, batch_size=2, cpu_tile=32, cpu_batch_size=2)


def tiny(arch: str = "srresnet") -> Generator:
    torch.manual_seed(0)
    net = Generator(2, num_feat=8, num_block=1, skip="bicubic", arch=arch)
    with torch.no_grad():  # a tail that is not zero, so the runtime's output differs from bicubic
        net.tail.weight.normal_(0, 0.02)
    return net.eval()


def page(seed: int = 0, shape: tuple[int, int] = (70, 90)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full(shape, 235, np.uint8)
    for _ in range(40):
        y, x = rng.integers(0, shape[0] - 6), rng.integers(0, shape[1] - 6)
        img[y : y + 5, x : x + 2] = 20
    return img


def cpu_engine(tmp_path, runtime: str) -> EngineConfig:
    return EngineConfig(device="cpu", precision="fp32", runtime=runtime, runtime_cache=str(tmp_path))


def reference(net: Generator, img: np.ndarray) -> np.ndarray:
    return choose.engine_for("torch", net, EngineConfig(device="cpu", precision="fp32"), TILING).upscale([img])[0]


@needs_ort
@pytest.mark.parametrize("arch", ["srresnet", "lr_shuffle"])
def test_onnxruntime_gives_pytorchs_output(tmp_path, arch):
    net, img = tiny(arch), page()
    eng = choose.build_engine(net, cpu_engine(tmp_path, "onnxruntime"), TILING)
    assert (eng.info.runtime, eng.info.precision) == ("onnxruntime", "fp32")
    out = eng.upscale([img])[0]
    assert out.shape == (140, 180)
    assert psnr(out, reference(net, img)) > 50  # the same function: rounding only


@needs_ov
def test_openvino_models_freed_out_of_order_leave_the_threads_signal_stack_alone(tmp_path):
    """The CPU plugin swaps the compiling thread's alternate signal stack and puts back the one it found
    when the model is freed: compile A, compile B, free A, free B used to leave the thread on A's freed
    stack, and the next SIGCHLD killed the process (SIGSEGV). The stack before is the stack after."""
    import gc

    from srgan.runtimes.backends import OpenVinoRuntime
    from srgan.runtimes.signal_stack import current_signal_stack

    onnx = export_onnx(tiny(), (1, 1, 16, 16), tmp_path / "g.onnx")
    before = current_signal_stack()
    first = OpenVinoRuntime("openvino", "fp32", onnx)
    assert current_signal_stack() == before
    second = OpenVinoRuntime("openvino", "fp32", onnx)
    del first
    gc.collect()
    del second
    gc.collect()
    assert current_signal_stack() == before


@needs_ov
@pytest.mark.parametrize("runtime,floor", [("openvino", 50), ("openvino-bf16", 35)])
def test_openvino_gives_pytorchs_output(tmp_path, runtime, floor):
    net, img = tiny(), page(1)
    eng = choose.build_engine(net, cpu_engine(tmp_path, runtime), TILING)
    if eng.info.runtime != runtime:
        pytest.skip(f"{runtime} did not compile on this CPU (the engine fell back to torch)")
    assert psnr(eng.upscale([img])[0], reference(net, img)) > floor


def test_missing_runtime_file_falls_back_to_torch_with_one_line(tmp_path, caplog):
    net, img = tiny(), page(2)
    with caplog.at_level(logging.WARNING, logger="srgan.runtimes.choose"):
        eng = choose.build_engine(net, cpu_engine(tmp_path, "onnxruntime-int8"), TILING)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage()
    assert "onnxruntime-int8" in warnings[0].getMessage()
    assert eng.info.runtime == "torch" and eng.runtime is None
    assert np.array_equal(eng.upscale([img])[0], reference(net, img))


def test_auto_measures_once_and_remembers(tmp_path, monkeypatch):
    net = tiny()
    cfg = cpu_engine(tmp_path, "auto")
    eng = choose.build_engine(net, cfg, TILING)
    remembered = json.loads((tmp_path / choose.CHOICE_FILE).read_text())
    (entry,) = remembered.values()
    assert entry["runtime"] == eng.info.runtime and entry["runtime"] in choose.AUTO_CANDIDATES
    assert entry["seconds_per_batch"]["torch"] > 0

    def no_second_measurement(*_a, **_k):
        raise AssertionError("auto measured again")

    monkeypatch.setattr(choose, "measure_runtimes", no_second_measurement)
    assert choose.build_engine(net, cfg, TILING).info.runtime == entry["runtime"]
    other = dataclasses.replace(TILING, cpu_tile=40)  # another batch shape: its own measurement
    with pytest.raises(AssertionError, match="measured again"):
        choose.build_engine(net, cfg, other)


@needs_ort
def test_int8_calibrated_on_pages_runs_close_to_fp32(tmp_path):
    net = tiny()
    shape = choose.batch_shape(net, TILING)
    files = runtime_files(net, shape, tmp_path)
    export_onnx(net, shape, files.fp32)
    batches = list(calibration_batches([page(s, (120, 160)) for s in range(4)], shape, limit=4))
    assert batches and batches[0].shape == shape and batches[0].dtype == np.float32
    quantize_int8(files.fp32, files.int8, batches)
    eng = choose.build_engine(net, cpu_engine(tmp_path, "onnxruntime-int8"), TILING)
    assert (eng.info.runtime, eng.info.precision) == ("onnxruntime-int8", "int8")
    img = page(9)
    assert psnr(eng.upscale([img])[0], reference(net, img)) > 30


def test_blank_pages_give_nothing_to_calibrate_on(tmp_path):
    net = tiny()
    shape = choose.batch_shape(net, TILING)
    assert list(calibration_batches([np.full((120, 160), 255, np.uint8)], shape)) == []
    with pytest.raises(ValueError, match="no tile with ink"):
        quantize_int8(tmp_path / "a.onnx", tmp_path / "b.onnx", [])
