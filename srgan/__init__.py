"""Batch super-resolution for scanned documents (SRGAN). Plain Python: never imports Prefect."""

import os

__version__ = "0.1.0"

# torch's CPU allocator backs tensors of 2 MB and more with transparent huge pages when this is set.
# A forward pass allocates its activations afresh (about 1 GB for a 1000x768 page at 2x) and the
# kernel faults each in 4 KB at a time: on a 2-core CPU that was 3.5 s of system time per page
# beside 7 s of the model's own work (docs/performance.md). torch reads the variable once, at its
# first large allocation, so it is set here, before any srgan module imports torch. The
# environment's own value wins: THP_MEM_ALLOC_ENABLE=0 turns it off.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
