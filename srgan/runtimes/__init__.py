"""CPU runtimes the engine can be handed instead of eager PyTorch (issue 34).

- ``export``: the generator's inference form as an ONNX file of the engine's fixed tile batch shape
  (``python -m srgan.runtimes.export``), and its int8 form after static calibration on document pages;
- ``backends``: ONNX Runtime and OpenVINO sessions over those files, each a callable on float32 tile batches;
- ``choose``: the runtime a run uses (``engine.runtime``): a named one, or ``auto``, measured once per
  machine and weights and remembered in a cache file outside the output; a runtime that does not load
  or compile falls back to PyTorch with one warning line.

The engine (srgan/inference/engine.py) knows none of them: it is handed a callable.
"""
