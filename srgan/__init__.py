"""Batch super-resolution for scanned documents (SRGAN). Plain Python: never imports Prefect."""

__version__ = "0.1.0"
