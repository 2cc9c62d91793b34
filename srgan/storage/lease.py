"""A lock on object storage that expires by itself: a lease object renewed while its holder lives.

flock does not exist on object storage, and a lock left by a dead machine must not block the next
night. A lease is a small JSON object (holder, host, pid, key, attempt). It is taken with a
conditional PUT that succeeds only if the object does not exist (``If-None-Match: *``), renewed every
``ttl / 4`` seconds by a background thread with a PUT that succeeds only if the object is still the
one this holder wrote (``If-Match: <ETag>``), and deleted on release. A lease whose object was not
rewritten for ``ttl`` seconds (plus ``SKEW_S``) belongs to a dead holder: the next taker replaces it
with an ``If-Match`` PUT, so of two takers only one wins. A later attempt of the same Prefect flow run
(same ``key``, higher ``attempt``) may take its own earlier attempt's lease sooner, once it is older
than its TTL without ``SKEW_S``: the earlier attempt may still be alive behind a partition, but by then
it has fenced itself.

Fencing: the holder may write only while its last renewal is younger than ``renew_deadline_s``
(``ttl / 2``), shorter than any takeover time; ``check`` raises ``FencedError`` past it, and a holder
past it, or whose renewal was refused, counts the lease as lost for good (``srgan.storage.fence`` makes
every write under the output call ``check`` first). The gap between the deadline and the takeover
(``ttl / 2 + SKEW_S``, 40 s at the defaults; ``ttl / 2``, 30 s, for the run's own next attempt) is
longer than one write attempt may take (about 20 s on S3: ``srgan.storage.files.write_filesystem``), so
a write that passed its check lands before anyone can take over.

Clocks: an age is the store's own clock against the store's own clock (the ``Date`` header of the HEAD
answer minus the object's ``LastModified``), so a taker whose clock is ahead or behind takes over
neither early nor never; the holder's deadline is measured on its own monotonic clock from before the
renewal it sent.

S3 and S3-compatible stores (AWS, MinIO, Ceph; moto in the tests) support both conditions. Other
fsspec stores have no conditional writes: an expired lease is replaced by delete and create, which two
simultaneous takers could both win, so a lease there is refused unless the environment accepts the
risk by name (``SRGAN_UNSAFE_LEASES=accept``); the docs say so.
"""

from __future__ import annotations

import datetime
import email.utils
import hashlib
import json
import logging
import os
import socket
import threading
import time

from srgan.storage.fence import FencedError
from srgan.storage.files import filesystem

log = logging.getLogger(__name__)

TTL_S = 60.0
SKEW_S = 10.0
UNSAFE_ENV = "SRGAN_UNSAFE_LEASES"  # =accept: leases on stores without conditional writes (not race-free)


class UnsafeLeaseError(RuntimeError):
    """A lease on a store without conditional writes, not accepted by SRGAN_UNSAFE_LEASES=accept."""


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

    def __init__(self, url: str, holder: str, key: str = "", attempt: int = 1, ttl_s: float | None = None):
        ttl_s = ttl_s or TTL_S
        self.url, self.ttl_s, self.key, self.attempt = url, ttl_s, key, attempt
        self.fs, self.path = filesystem(url)
        self.info = {"holder": holder, "pid": os.getpid(), "host": socket.gethostname(), "key": key,
                     "attempt": attempt, "ttl_s": ttl_s,
                     "since": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        self.renew_deadline_s = ttl_s / 2  # writes stop this long after the last renewal (< any takeover)
        self.etag: str | None = None
        self.lost = False
        self._renewed_at = 0.0  # monotonic time the last successful PUT was sent
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
        sent = time.monotonic()
        etag = self._put_body(body, if_match)
        if etag is not None:
            self._renewed_at = sent
        return etag

    def _put_body(self, body: bytes, if_match: str | None) -> str | None:
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
        return _digest(body)

    def _read(self) -> tuple[dict, str | None, float | None]:
        """(lease content, ETag, age in seconds); ({}, None, None) if absent. On S3 the age is the store's
        clock against itself (its answer's Date minus the object's LastModified); elsewhere the local clock."""
        try:
            if self._s3:
                meta = self._head()
            else:
                meta = self.fs.info(self.path)
                meta["now"] = time.time()
            raw = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return {}, None, None
        try:
            content = json.loads(raw or b"{}")
        except ValueError:
            content = {}
        modified = meta.get("LastModified") or meta.get("mtime") or meta.get("created")
        if isinstance(modified, datetime.datetime):
            age = meta["now"] - modified.timestamp()
        elif isinstance(modified, (int, float)):
            age = meta["now"] - float(modified)
        else:
            age = None
        return content, meta.get("ETag") or meta.get("etag") or _digest(raw), age

    def _head(self) -> dict:
        """HEAD of the lease object with the store's time of answering in ``now`` (its Date header)."""
        bucket, key, _ = self.fs.split_path(self.path)
        head = self.fs.call_s3("head_object", Bucket=bucket, Key=key)
        date = head.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        head["now"] = email.utils.parsedate_to_datetime(date).timestamp() if date else time.time()
        return head

    # ------------------------------------------------------------------ take, renew, release

    def acquire(self) -> None:
        """Take the lease or raise LeaseBusyError naming its live holder; renews it in the background."""
        if not self._s3 and os.environ.get(UNSAFE_ENV) != "accept":
            raise UnsafeLeaseError(
                f"{self.url}: this store has no conditional writes, so two runs could both take its lease; "
                f"use S3 (or a shared folder), or accept the risk with {UNSAFE_ENV}=accept")
        waited = False
        for _ in range(3):  # a lease released or replaced between our read and write: look again
            etag = self._put(None)
            if etag is not None:
                self.etag = etag
                break
            held, held_etag, age = self._read()
            if held_etag is None:
                continue
            held_ttl = float(held.get("ttl_s") or self.ttl_s)
            own_earlier = bool(self.key) and held.get("key") == self.key and held.get("attempt", 0) < self.attempt
            fenced_off = own_earlier and age is not None and age > held_ttl
            if not (fenced_off or self._expired(held, age)):
                if own_earlier and not waited and age is not None:
                    # An earlier attempt of this run that fenced itself (a store or network outage) may have
                    # renewed once more as the link came back; it writes nothing now, and past its TTL its
                    # lease is this attempt's. Wait for that once rather than fail and burn a retry.
                    pause = min(held_ttl, max(0.0, held_ttl - age)) + 1.0
                    log.info("%s: an earlier attempt of this run holds the lease (renewed %.0f s ago); waiting "
                             "%.0f s, past its TTL, to take it over", self.url, age, pause)
                    time.sleep(pause)
                    waited = True
                    continue
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
        wait = self.ttl_s / 4
        while not self._stop.wait(wait):
            if self._overdue():
                self._lose(f"not renewed for {self.renew_deadline_s:.0f} s")
                return
            try:
                etag = self._put(self.etag)
            except Exception as exc:  # noqa: BLE001 - a store outage: try again soon, until the deadline
                log.warning("%s: lease not renewed: %s", self.url, str(exc).splitlines()[0] if str(exc) else exc)
                wait = self.ttl_s / 12
                continue
            if etag is None:
                self._lose("taken over after it expired")
                return
            if self._overdue():  # the answer came after the deadline: this run has stopped writing already
                self._lose(f"renewed only after {self.renew_deadline_s:.0f} s")
                return
            self.etag, wait = etag, self.ttl_s / 4

    def _overdue(self) -> bool:
        return time.monotonic() - self._renewed_at > self.renew_deadline_s

    def _lose(self, why: str) -> None:
        self.lost = True
        log.error("%s: lease lost (%s); this run stops writing to the output", self.url, why)

    def check(self) -> None:
        """FencedError unless this holder may still write: the lease is held and its last renewal is
        younger than the renewal deadline (called before every write under the output)."""
        if self.lost or self.etag is None or self._overdue():
            self.lost = True
            raise FencedError(f"{self.url}: lease lost or not renewed within {self.renew_deadline_s:.0f} s; "
                              "this run stops writing (its unit runs again elsewhere)")

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


def _digest(body: bytes) -> str:
    """The tag of a lease on a store without ETags: its content's hash (tells one holder's object from
    another's: each holds its own holder, pid, host and start time)."""
    return hashlib.sha256(body).hexdigest()


def _precondition_failed(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, FileExistsError) or "PreconditionFailed" in text or "pre-conditions" in text \
        or "412" in text or "ConditionalRequestConflict" in text
