"""ONNX Runtime and OpenVINO over the files of srgan.runtimes.export: each a callable from a float32
(B, C, win, win) tile batch in [0, 1] to its (B, C, win*s, win*s) float32 output, as the engine hands it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srgan.runtimes.signal_stack import keep_signal_stack


@dataclass
class OrtRuntime:
    """An ONNX Runtime CPU session over one ONNX file (fp32 or int8 QDQ)."""

    name: str
    precision: str
    path: Path
    threads: int = 0  # intra-op threads; 0 = ONNX Runtime's default (one per core)
    session: object = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            opts.intra_op_num_threads = self.threads
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"lq": np.ascontiguousarray(x, dtype=np.float32)})[0]


@dataclass
class OpenVinoRuntime:
    """An OpenVINO CPU compiled model over one ONNX file; ``hint`` is its inference precision
    (f32 or bf16; an int8 QDQ file runs its quantised layers in int8 either way)."""

    name: str
    precision: str
    path: Path
    hint: str = "f32"
    threads: int = 0
    request: object = field(init=False, repr=False)

    def __post_init__(self) -> None:
        import openvino as ov

        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": self.hint, "PERFORMANCE_HINT": "LATENCY"}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        with keep_signal_stack():  # the CPU plugin swaps this thread's signal stack (see signal_stack)
            compiled = core.compile_model(core.read_model(str(self.path)), "CPU", config)
            self.request = compiled.create_infer_request()

    def __del__(self) -> None:
        # Freeing the last request frees the compiled model, which puts back the stack it found at compile.
        try:
            with keep_signal_stack():
                self.request = None
        except Exception:  # noqa: BLE001 - interpreter shutdown: nothing left to protect
            pass

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.request.infer({0: np.ascontiguousarray(x, dtype=np.float32)})
        return np.array(self.request.get_output_tensor(0).data, copy=True)
