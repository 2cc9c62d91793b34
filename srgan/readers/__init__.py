"""Readers: find documents (folders, streamed archives, files) and decode them into grey pages."""

from .labels import RVL_CDIP_CLASSES
from .read import read_pages
from .refs import DocumentRef, Page, printable
from .sources import discover

__all__ = ["RVL_CDIP_CLASSES", "DocumentRef", "Page", "discover", "printable", "read_pages"]
