"""A lock on object storage that expires by itself: a lease object renewed while its holder lives.

flock does not exist on object storage, and a lock left by a dead machine must not block the next
night. A lease is a small JSON object (holder, host, pid, key, attempt). It is taken with a
conditional PUT that succeeds only if the object does not exist (``If-None-Match: *``), renewed every
``ttl / 4`` seconds by a background thread with a PUT that succeeds only if the object is still the
one this holder wrote (``If-Match: <ETag>``), and deleted on release. A lease whose object was not
rewritten for ``ttl`` seconds (the store's own ``LastModified``, plus ``SKEW_S`` for clocks) belongs
to a dead holder: the next taker replaces it with an ``If-Match`` PUT, so of two takers only one
wins. A later attempt of the same Prefect flow run (same ``key``, higher ``attempt``) takes its own
dead attempt's lease at once: Prefect runs an attempt again only once the earlier one ended.

S3 and S3-compatible stores (AWS, MinIO, Ceph; moto in the tests) support both conditions. Other
fsspec stores get create-only semantics (``mode="create"``) and replace an expired lease by delete
and create, which two simultaneous takers could both win; the docs say so.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import socket
import threading
import time

from srgan.storage.files import filesystem

log = logging.getLogger(__name__)

TTL_S = 60.0
SKEW_S = 10.0


class LeaseBusyError(RuntimeError):
    """A live lease is held by someone else (its description in ``holder``)."""

    def __init__(self, url: str, holder: dict):
        super().__init__(f"{url} held by {describe(holder)}")
        self.holder = holder


def describe(info: dict) -> str:
    if not info:
        return "another run (no description in the lease)"
    return (f"{info.get('holder', 'a run')} (pid {info.get('pid', '?')} on {info.get('host', '?')}, "
            f"since {info.get('since', '?')})")


class Lease:
    """One lease object at `url` (an s3:// or other fsspec URL)."""

    def __init__(self, url: str, holder: str, key: str = "", attempt: int = 1, ttl_s: float = TTL_S):
        self.url, self.ttl_s, self.key, self.attempt = url, ttl_s, key, attempt
        self.fs, self.path = filesystem(url)
        self.info = {"holder": holder, "pid": os.getpid(), "host": socket.gethostname(), "key": key,
                     "attempt": attempt, "ttl_s": ttl_s,
                     "since": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        self.etag: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the store's conditional writes

    @property
    def _s3(self) -> bool:
        return hasattr(self.fs, "call_s3")

    def _put(self, if_match: str | None) -> str | None:
        """PUT the lease: create-only (if_match None) or replace-if-unchanged; its new ETag, or None if
        the condition failed."""
        body = json.dumps(self.info).encode()
        if self._s3:
            bucket, key, _ = self.fs.split_path(self.path)
            cond = {"IfMatch": if_match} if if_match else {"IfNoneMatch": "*"}
            try:
                return self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=body, **cond)["ETag"]
            except (FileExistsError, OSError) as exc:
                if _precondition_failed(exc):
                    return None
                raise
        if if_match:
            self.fs.rm_file(self.path)
        try:
            self.fs.pipe_file(self.path, body, mode="create")
        except FileExistsError:
            return None
        return self._read()[1]

    def _read(self) -> tuple[dict, str | None, float | None]:
        """(lease content, ETag, age in seconds by the store's LastModified); ({}, None, None) if absent."""
        try:
            meta = self.fs.info(self.path, refresh=True) if self._s3 else self.fs.info(self.path)
            content = json.loads(self.fs.cat_file(self.path) or b"{}")
        except FileNotFoundError:
            return {}, None, None
        except ValueError:
            content = {}
        modified = meta.get("LastModified") or meta.get("mtime") or meta.get("created")
        if isinstance(modified, datetime.datetime):
            age = time.time() - modified.timestamp()
        elif isinstance(modified, (int, float)):
            age = time.time() - float(modified)
        else:
            age = None
        return content, meta.get("ETag") or meta.get("etag"), age

    # ------------------------------------------------------------------ take, renew, release

    def acquire(self) -> None:
        """Take the lease or raise LeaseBusyError naming its live holder; renews it in the background."""
        for _ in range(3):  # a lease released or replaced between our read and write: look again
            etag = self._put(None)
            if etag is not None:
                self.etag = etag
                break
            held, held_etag, age = self._read()
            if held_etag is None:
                continue
            own_earlier = bool(self.key) and held.get("key") == self.key and held.get("attempt", 0) < self.attempt
            if not (own_earlier or self._expired(held, age)):
                raise LeaseBusyError(self.url, held)
            etag = self._put(held_etag)
            if etag is not None:
                log.info("%s: took over the lease of %s (%s)", self.url, describe(held),
                         "an earlier attempt of this run" if own_earlier else f"silent for {age:.0f} s")
                self.etag = etag
                break
        else:
            raise LeaseBusyError(self.url, self._read()[0])
        self._thread = threading.Thread(target=self._renew_loop, name=f"lease {self.url}", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            try:
                etag = self._put(self.etag)
            except Exception as exc:  # noqa: BLE001 - a store outage: try again next period (ttl allows 3 misses)
                log.warning("%s: lease not renewed: %s", self.url, exc)
                continue
            if etag is None:
                self.lost = True
                log.error("%s: lease lost (taken over after it expired); this run should stop", self.url)
                return
            self.etag = etag

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self.lost or self.etag is None:
            return
        held, etag, _ = self._read()
        if etag == self.etag:  # still ours
            try:
                self.fs.rm_file(self.path)
            except FileNotFoundError:
                pass

    def live(self) -> dict | None:
        """The content of the lease at this URL if a live holder has it (for checks), else None."""
        held, etag, age = self._read()
        return None if etag is None or self._expired(held, age) else held

    def _expired(self, held: dict, age: float | None) -> bool:
        """Not rewritten for its holder's TTL (+ SKEW_S for clocks): its holder is gone."""
        return age is not None and age > float(held.get("ttl_s") or self.ttl_s) + SKEW_S


def _precondition_failed(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, FileExistsError) or "PreconditionFailed" in text or "pre-conditions" in text \
        or "412" in text or "ConditionalRequestConflict" in text
