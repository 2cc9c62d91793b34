"""``python -m srgan.bench``: the benchmark. Timings live here, never in pass/fail tests.

- ``cli``: the command and its cases, one JSON row each
- ``throughput``: ``model``, ``pipeline`` and ``naive`` (engine throughput, FLOPs, CPU ms per page)
- ``stage_cpu``: CPU milliseconds of each stage beside the model, one page at a time
- ``memory``: peak RSS per archive size, each run in a fresh process
- ``decoding``: ``archive`` (tar.gz streamed vs spooled) and ``colour`` (grey vs auto decoding)
- ``orchestration``: the plain runner against the flow on the same pages
- ``scale``: N pages through the ``upscale-folder`` deployment on a real Prefect server
"""
