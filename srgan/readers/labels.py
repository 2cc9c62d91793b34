"""RVL-CDIP label files: ``labels/{train,val,test}.txt`` with lines ``relative/path.tif label``.

Label paths are relative to an ``images/`` folder beside ``labels/``; labels are ints 0-15 or
class names.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath

logger = logging.getLogger(__name__)

RVL_CDIP_CLASSES: tuple[str, ...] = (
    "letter", "form", "email", "handwritten", "advertisement", "scientific report",
    "scientific publication", "specification", "file folder", "news article", "budget",
    "invoice", "presentation", "questionnaire", "resume", "memo",
)
SPLITS = ("train", "val", "test")
_MAX_WARNINGS = 10  # per label file; the rest are counted in one line


def label_file_split(path: str) -> str | None:
    """'train'/'val'/'test' when path ends in labels/<split>.txt, else None."""
    parts = PurePosixPath(path.replace("\\", "/")).parts
    if len(parts) >= 2 and parts[-2] == "labels" and parts[-1] in {f"{s}.txt" for s in SPLITS}:
        return parts[-1][:-4]
    return None


def parse_label(value: str) -> str | None:
    """An int 0-15 or a class name (any case, '_' or '-' for spaces) -> class name, else None."""
    if value.lstrip("+").isdigit():
        index = int(value)
        return RVL_CDIP_CLASSES[index] if 0 <= index < len(RVL_CDIP_CLASSES) else None
    name = value.lower().replace("_", " ").replace("-", " ")
    return name if name in RVL_CDIP_CLASSES else None


def _norm(path: str) -> str:
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts)


class LabelIndex:
    """Label path -> (class name, split), filled from label files, looked up by member path."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def add_file(self, text: str, name: str, split: str) -> int:
        """Parse one label file; malformed lines are skipped with a warning. Returns lines kept."""
        kept = bad = 0
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = line.rsplit(None, 1)
            label = parse_label(fields[1]) if len(fields) == 2 else None
            if label is None:
                bad += 1
                if bad <= _MAX_WARNINGS:
                    logger.warning("%s:%d: malformed label line skipped: %.80r", name, number, line)
                continue
            self._entries[_norm(fields[0])] = (label, split)
            kept += 1
        if bad > _MAX_WARNINGS:
            logger.warning("%s: %d more malformed label lines skipped", name, bad - _MAX_WARNINGS)
        return kept

    def update(self, other: LabelIndex) -> None:
        self._entries.update(other._entries)

    def lookup(self, member: str) -> tuple[str, str] | None:
        """(label, split) for a member path: direct match, or the part after an 'images/' folder."""
        if not self._entries:
            return None
        path = _norm(member)
        found = self._entries.get(path)
        if found:
            return found
        parts = path.split("/")
        for i in range(len(parts) - 2, -1, -1):
            if parts[i] == "images":
                found = self._entries.get("/".join(parts[i + 1:]))
                if found:
                    return found
        return None
