"""Running the generator over pages: the engine (device and precision chosen once, batched tiles across
pages, OOM halving), its folded inference form and the pure tiling arithmetic.

- ``engine``: ``Engine``, ``pick_device``, ``autocast_context``
- ``fold``: ``fold_generator``, the exact inference form of the last upscale stage
- ``tiling``: ``split_tiles`` / ``merge_tiles``
"""
