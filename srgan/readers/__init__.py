"""Readers: find documents (folders, streamed archives, files) and decode them into grey pages."""

from .labels import RVL_CDIP_CLASSES
from .read import document_bytes, read_pages
from .refs import DocumentRef, Page, printable
from .sources import discover

__all__ = ["RVL_CDIP_CLASSES", "DocumentRef", "Page", "discover", "document_bytes", "printable", "read_pages"]
