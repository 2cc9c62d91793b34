"""Find documents: folders (walked, sorted), tar/tgz/zip archives (streamed, never extracted), files.

Each document's bytes are hashed here (``content_sha256``: plain files read once, archive members
hashed while streaming, never more than limits.max_member_bytes read), so reruns can tell a changed
input. Only regular files are opened: a fifo or device named like a page becomes an error ref.
Also streams wanted members back out of an archive for the reader, one pass per archive, or reads
them by offset from an uncompressed tar (the archive itself, or a spooled copy: ``spool.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import stat
import tarfile
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath

from ..config import LimitsConfig
from ..storage.files import (
    Location,
    exists,
    is_dir,
    is_url,
    join,
    open_read,
    read_bytes,
    read_range,
    size,
    walk_files,
)
from ..storage.files import name as loc_name
from .labels import LabelIndex, label_file_split
from .refs import DocumentRef, one_line, printable

logger = logging.getLogger(__name__)

PAGE_KINDS = {".tif": "image", ".tiff": "image", ".png": "image", ".jpg": "image", ".jpeg": "image",
              ".pdf": "pdf"}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
_CHUNK = 1 << 20


def page_kind(name: str) -> str | None:
    """'image' or 'pdf' from the file extension (any case), else None."""
    return PAGE_KINDS.get(PurePosixPath(name.replace("\\", "/")).suffix.lower())


def archive_stem(name: str) -> str | None:
    """The name without its archive suffix, or None when name is not an archive."""
    lower = name.lower()
    for suffix in ARCHIVE_SUFFIXES:
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def unsafe_reason(name: str) -> str | None:
    """Why an archive member name must not be used (absolute, '..', drive letter), or None."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":"):
        return "absolute member name"
    if ".." in norm.split("/"):
        return "member name contains '..'"
    if "\x00" in norm:
        return "member name contains NUL"
    return None


def safe_parts(name: str) -> list[str]:
    """Path parts with '', '.', '..' and drive letters dropped (for output names only).

    Bytes of a non-UTF-8 name (surrogate escapes on Linux) become %xx, so output names are text.
    """
    parts = [printable(p).replace("\\x", "%") for p in name.replace("\\", "/").split("/")
             if p not in ("", ".", "..")]
    if parts and len(parts[0]) == 2 and parts[0][1] == ":":
        parts = parts[1:]
    return parts or ["_"]


def safe_path(name: str) -> str:
    """Safe relative POSIX path (see safe_parts), extension kept."""
    return "/".join(safe_parts(name))


def stem_path(name: str) -> str:
    """Safe relative POSIX path without the file's extension."""
    parts = safe_parts(name)
    parts[-1] = PurePosixPath(parts[-1]).stem or parts[-1]
    return "/".join(parts)


def plain_file(doc: DocumentRef) -> Location:
    """Where a plain (non-archive) document lives: a local path, or its URL on object storage."""
    if is_url(doc.source):  # a file input names its member; a folder input is joined with it (no HEAD request)
        single = doc.source.rstrip("/").endswith("/" + doc.member) or doc.source == doc.member
        return doc.source if single else join(doc.source, doc.member)
    source = Path(doc.source)
    return source / doc.member if source.is_dir() else source


def not_regular(path: Location) -> str | None:
    """Why path must not be opened (a fifo would block the run, a device never ends), or None.
    Objects in a store are always regular."""
    if is_url(path):
        return None
    mode = Path(path).stat().st_mode  # follows symlinks: a link to a regular file is read
    if stat.S_ISREG(mode):
        return None
    kind = "fifo" if stat.S_ISFIFO(mode) else "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
        "socket" if stat.S_ISSOCK(mode) else "special file"
    return f"not a regular file ({kind})"


def sha256_file(path: Location) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open_read(path) as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def sha256_stream(fh, limit: int) -> str:
    """sha256 of a stream's bytes, refusing more than `limit` bytes whatever any header says."""
    digest, total = hashlib.sha256(), 0
    while block := fh.read(min(_CHUNK, limit + 1 - total)):
        total += len(block)
        if total > limit:
            raise ValueError(f"member expands past limits.max_member_bytes={limit}")
        digest.update(block)
    return digest.hexdigest()


def discover(inputs: Sequence[str | Path], limits: LimitsConfig) -> Iterator[DocumentRef]:
    """Yield a DocumentRef per page file under each input; bad inputs become kind='error' refs.

    Output names (rel_path) are made unique within one call by a '_<ext>' or '_<n>' suffix.
    """
    taken: set[str] = set()
    for item in inputs:
        for ref in _discover_one(item if is_url(item) else Path(item), str(item), limits):
            yield _unique(ref, taken)


def _unique(ref: DocumentRef, taken: set[str]) -> DocumentRef:
    rel = ref.rel_path
    if rel in taken:
        ext = PurePosixPath(ref.member).suffix.lstrip(".").lower()
        rel = f"{ref.rel_path}_{ext}" if ext else ref.rel_path
        n = 2
        while rel in taken:
            rel, n = f"{ref.rel_path}_{n}", n + 1
    taken.add(rel)
    return ref if rel == ref.rel_path else replace(ref, rel_path=rel)


def _error(source: str, container: str, member: str, rel: str, reason: str) -> DocumentRef:
    return DocumentRef(source=source, container=container, member=member, rel_path=rel,
                       kind="error", error=one_line(reason))


def _discover_one(path: Location, source: str, limits: LimitsConfig) -> Iterator[DocumentRef]:
    name = loc_name(path) or source
    try:
        if is_dir(path):
            yield from _walk_folder(path, source, limits)
            return
        if not exists(path):
            yield _error(source, "", name, stem_path(name), f"input not found: {source}")
            return
        stem = archive_stem(name)
        if stem is not None:
            reason = not_regular(path)
            if reason:
                yield _error(source, str(path), "", f"{safe_path(stem)}/_archive_error", f"{reason}: {source}")
                return
            yield from list_archive(path, source, safe_path(stem), limits, None)
            return
        kind = page_kind(name)
        if kind is None:
            yield _error(source, "", name, stem_path(name), f"unsupported file type: {source}")
            return
        yield _plain_ref(path, source, name, kind)
    except OSError as exc:
        yield _error(source, "", name, stem_path(name), f"cannot read input {source}: {one_line(exc)}")


def _walk_folder(root: Location, source: str, limits: LimitsConfig) -> Iterator[DocumentRef]:
    files = walk_files(root)
    labels = LabelIndex()
    for rel in files:
        split = label_file_split(rel)
        if split:
            try:
                labels.add_file(read_bytes(join(root, rel)).decode(errors="replace"), f"{source}/{rel}", split)
            except OSError as exc:
                logger.warning("%s/%s: cannot read label file: %s", source, rel, one_line(exc))
    for rel in files:
        kind = page_kind(rel)
        stem = archive_stem(rel)
        if kind:
            try:
                ref = _plain_ref(join(root, rel), source, rel, kind)
            except OSError as exc:
                yield _error(source, "", rel, stem_path(rel), f"cannot read {source}/{rel}: {one_line(exc)}")
                continue
            yield ref if ref.kind == "error" else _with_label(ref, labels, rel)
        elif stem is not None:
            try:
                reason = not_regular(join(root, rel))
            except OSError as exc:
                reason = one_line(exc)
            if reason:
                yield _error(source, str(join(root, rel)), "", f"{safe_path(stem)}/_archive_error",
                             f"cannot read archive {source}/{rel}: {reason}")
                continue
            yield from list_archive(join(root, rel), source, safe_path(stem), limits, labels)


def _plain_ref(path: Location, source: str, member: str, kind: str) -> DocumentRef:
    """A ref for a page file, its bytes hashed; an error ref when it is not a regular file."""
    reason = not_regular(path)
    if reason:
        return _error(source, "", member, stem_path(member), f"{reason}: {path}")
    return DocumentRef(source=source, container="", member=member, rel_path=stem_path(member), kind=kind,
                       size_bytes=size(path), content_sha256=sha256_file(path))


def _with_label(ref: DocumentRef, labels: LabelIndex, path: str) -> DocumentRef:
    found = labels.lookup(path)
    return replace(ref, label=found[0], split=found[1]) if found else ref


def list_archive(path: Location, source: str, prefix: str, limits: LimitsConfig,
                 outer: LabelIndex | None) -> Iterator[DocumentRef]:
    """Refs for the page members of one archive, labelled from label files inside it (or outer)."""
    refs: list[DocumentRef] = []
    labels = LabelIndex()
    failure = None
    lister = _list_zip if loc_name(path).lower().endswith(".zip") else _list_tar
    try:
        for ref, member_path, text in lister(path, source, prefix, limits):
            if text is not None:
                labels.add_file(text, f"{path}:{member_path}", label_file_split(member_path) or "")
            else:
                refs.append(ref)
    except Exception as exc:  # noqa: BLE001 - a damaged archive is a bad input, not a crash
        failure = f"cannot read archive {path}: {one_line(exc)}"
    if outer is not None:
        merged = LabelIndex()
        merged.update(outer)
        merged.update(labels)
        labels = merged
    for ref in refs:
        yield ref if ref.kind == "error" else _with_label(ref, labels, ref.member)
    if failure:
        yield _error(source, str(path), "", f"{prefix}/_archive_error", failure)


def _member_ref(source: str, container: str, prefix: str, name: str, size: int, limits: LimitsConfig,
                bad_type: str | None) -> DocumentRef | None:
    """A ref for one archive member (an error ref when unsafe or too big); None when not a page."""
    rel = f"{prefix}/{stem_path(name)}"
    reason = unsafe_reason(name) or bad_type
    if reason:
        return _error(source, container, name, rel, f"{reason}: {container}:{name}")
    kind = page_kind(name)
    if kind is None:
        return None
    if size > limits.max_member_bytes:
        return _error(source, container, name, rel, f"member too large: {size} bytes > "
                      f"limits.max_member_bytes={limits.max_member_bytes}: {container}:{name}")
    return DocumentRef(source=source, container=container, member=name, rel_path=rel, kind=kind,
                       size_bytes=size)


def _tar_bad_type(member: tarfile.TarInfo) -> str | None:
    if member.issym():
        return "symlink member refused"
    if member.islnk():
        return "hard link member refused"
    if member.isdev():
        return "device or fifo member refused"
    if not member.isfile():
        return "special member refused"
    return None


def _label_text(read, name: str, size: int, limits: LimitsConfig) -> str | None:
    if size > limits.max_member_bytes:
        logger.warning("%s: label file larger than limits.max_member_bytes, ignored", printable(name))
        return None
    return read().decode("utf-8", errors="replace")


def _list_tar(path: Location, source: str, prefix: str, limits: LimitsConfig):
    """One streaming pass: yields (ref, member name, None) or (None, member name, label text)."""
    container = str(path)
    with open_read(path) as fh, tarfile.open(fileobj=fh, mode="r|*") as tar:
        for member in tar:
            if member.isdir():
                continue
            bad_type = _tar_bad_type(member)
            if bad_type is None and unsafe_reason(member.name) is None and label_file_split(member.name):
                extracted = tar.extractfile(member)
                text = _label_text(extracted.read, member.name, member.size, limits) if extracted else None
                if text is not None:
                    yield None, member.name, text
                continue
            ref = _member_ref(source, container, prefix, member.name, member.size, limits, bad_type)
            if ref is not None and ref.kind != "error":
                try:
                    ref = replace(ref, content_sha256=sha256_stream(tar.extractfile(member),
                                                                    limits.max_member_bytes),
                                  offset=-1 if member.issparse() else member.offset_data)
                except Exception as exc:  # noqa: BLE001 - a broken stream ends the archive, naming the member
                    raise OSError(f"at member {member.name}: {one_line(exc)}") from exc
            if ref is not None:
                yield ref, member.name, None


def _zip_bad_type(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symlink member refused"
    if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)) and stat.S_IFMT(mode):
        return "special member refused"
    return None


def _list_zip(path: Location, source: str, prefix: str, limits: LimitsConfig):
    container = str(path)
    with open_read(path) as fh, zipfile.ZipFile(fh) as archive:
        for info in archive.infolist():
            if info.is_dir():
                continue
            bad_type = _zip_bad_type(info)
            if bad_type is None and unsafe_reason(info.filename) is None and label_file_split(info.filename):
                try:
                    text = _label_text(lambda i=info: _read_zip(archive, i, limits), info.filename,
                                       info.file_size, limits)
                except Exception as exc:  # noqa: BLE001 - a bad label member loses its labels, not the archive
                    logger.warning("%s:%s: label file unreadable, ignored: %s", path, printable(info.filename),
                                   one_line(exc))
                    text = None
                if text is not None:
                    yield None, info.filename, text
                continue
            ref = _member_ref(source, container, prefix, info.filename, info.file_size, limits, bad_type)
            if ref is not None and ref.kind != "error":
                try:
                    with archive.open(info) as fh:
                        ref = replace(ref, content_sha256=sha256_stream(fh, limits.max_member_bytes))
                except Exception as exc:  # noqa: BLE001 - bad CRC, bomb, encrypted member: that member only
                    ref = _error(source, container, info.filename, ref.rel_path,
                                 f"cannot read member: {one_line(exc)} ({container}:{info.filename})")
            if ref is not None:
                yield ref, info.filename, None


def _read_zip(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: LimitsConfig) -> bytes:
    """A zip member's bytes, refusing more than limits.max_member_bytes whatever the header says."""
    with archive.open(info) as fh:
        data = fh.read(limits.max_member_bytes + 1)
    if len(data) > limits.max_member_bytes:
        raise ValueError(f"member larger than limits.max_member_bytes={limits.max_member_bytes}")
    return data


COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")  # gzip, bzip2, xz: what tarfile's r|* reads


def is_plain_tar(path: Location) -> bool:
    """True for an uncompressed tar file (its members can be read by offset), from its first bytes."""
    path = path if is_url(path) else Path(path)
    if loc_name(path).lower().endswith(".zip") or not_regular(path):
        return False
    with open_read(path) as fh:
        head = fh.read(6)
    return bool(head) and not head.startswith(COMPRESSED_MAGIC)


def read_members_at(tar_path: Location, members: Sequence[tuple[str, int, int]],
                    limits: LimitsConfig) -> Iterator[tuple[str, bytes | Exception]]:
    """Read (name, data offset, size) members of an uncompressed tar by seeking: no pass over the rest.

    The offsets and sizes come from discovery, and the reader checks each member's sha256 against
    discovery's, so a tar rewritten since is caught.
    """
    with contextlib.nullcontext(None) if is_url(tar_path) else open_read(tar_path) as fh:
        for member, offset, length in members:
            if length > limits.max_member_bytes:
                yield member, ValueError(f"member too large: {length} bytes > "
                                         f"limits.max_member_bytes={limits.max_member_bytes}")
                continue
            if fh is None:  # on object storage: one ranged GET of exactly the member's bytes
                data = read_range(tar_path, offset, length)
            else:
                fh.seek(offset)
                data = fh.read(length)
            yield member, data if len(data) == length else OSError(
                f"archive ends inside member {printable(member)}")


def read_members(container: str, names: Sequence[str],
                 limits: LimitsConfig) -> Iterator[tuple[str, bytes | Exception]]:
    """Stream an archive once, yielding (name, bytes or the error) for each wanted member found.

    A name listed n times is yielded for its first n occurrences; the stream stops once all are
    found. Members not found are not yielded; a damaged archive raises after what it could read.
    """
    wanted = Counter(names)
    left = sum(wanted.values())
    path = container if is_url(container) else Path(container)
    if left == 0:
        return
    reason = not_regular(path)  # replaced by a fifo since discovery: opening it would block
    if reason:
        raise OSError(reason)
    if loc_name(path).lower().endswith(".zip"):
        with open_read(path) as fh, zipfile.ZipFile(fh) as archive:
            infos: dict[str, list[zipfile.ZipInfo]] = {}
            for info in archive.infolist():
                infos.setdefault(info.filename, []).append(info)
            for name in names:
                if not infos.get(name):
                    continue
                try:
                    yield name, _read_zip(archive, infos[name].pop(0), limits)
                except Exception as exc:  # noqa: BLE001
                    yield name, exc
        return
    with open_read(path) as fh, tarfile.open(fileobj=fh, mode="r|*") as tar:
        for member in tar:
            if left == 0:
                break
            if not wanted[member.name] or not member.isfile() or unsafe_reason(member.name):
                continue
            wanted[member.name] -= 1
            left -= 1
            if member.size > limits.max_member_bytes:
                yield member.name, ValueError(
                    f"member too large: {member.size} bytes > limits.max_member_bytes={limits.max_member_bytes}")
                continue
            extracted = tar.extractfile(member)
            yield member.name, extracted.read() if extracted else ValueError("member has no data")
