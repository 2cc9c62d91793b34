"""The per-page pipeline: what a page passes through, from decoded pixels to written page and record.

decode (``srgan.readers``) -> ``stages.prepare_page`` (text size, normalise, range decision) ->
``stages.infer_pages`` (``srgan.inference``) -> ``stages.finish_page`` (resample, metrics, write page and
compare picture, row) -> ``records`` (Parquet parts) -> ``documents`` (PDF / TIFF reassembled).

- ``work``: ``PageWork`` and ``RunContext``, the small picklable items that travel between tasks
- ``stages``: the steps shared by the Prefect flow and the plain runner
- ``run``: the same data path without Prefect (threads; bench, GPU machine)
- ``documents``: ``output_format: document``
- ``records``: Parquet schema and part writer; ``resume``: rerun-skip; ``outlock``: one run per output
- ``summary``: a run's tally and the one-screen text; ``png``, ``captions``: page and compare-picture writers
"""
