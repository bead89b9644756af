"""The crash-resilient event log shared by processes (``docs/protocol.md §11``).

One directory (mode 0700) holds::

    flagkit-events.lock                 taken with flock(LOCK_EX) around every read and write
    flagkit-events-current.jsonl        the log: JSON lines, appended (full records fsync'd)
    flagkit-events-owner-<owner>.lock   one per live queue, flock'ed for the queue's lifetime

Lines of the log::

    {"id": <eventId>, "type": <eventType>, "timestamp": <ms>, "status": "pending",
     "owner": <owner>, "event": {<the exact wire event>}}                      full record
    {"id": ..., "status": "sending"}                                           before a POST
    {"id": ..., "status": "sent", "sentAt": <ms>}                              after a 2xx
    {"id": ..., "status": "pending"}                                           after a failure
    {"id": ..., "status": "pending", "owner": <owner>}                         a claim
    {"id": ..., "status": "pending", "owner": null, "releasedBy": <owner>}     handed back
    {"id": ..., "status": "dropped"}                                           the disk cap

A line with a ``type`` key is a full record; other lines update the status (and owner) of an
id already seen. Unreadable lines (torn by a crash, invalid UTF-8, nested too deep for the
reader, not an object) are skipped and counted, lines for unknown ids ignored: a bad line
costs only itself (the next writer starts on a fresh line). A record that cannot be sent (a
``NaN`` the reader accepts but the encoder refuses) is marked ``dropped`` and counted.

**Ownership.** Each queue writes its records with its own owner id and holds an ``flock`` on
its owner file while it lives; the kernel releases that lock when the process dies, even by
SIGKILL. An unsent record (``pending``/``sending``) may be *claimed* by another queue only if
its owner is ``null`` (released) or its owner file is not locked (the owner is gone). Claims
are decided and written under the log lock, so two live processes never claim the same
records. A queue that crashed after a POST but before writing ``sent`` leaves its records
``sending``; whoever claims them sends them again: delivery is at least once, and the server
drops duplicates by ``eventId`` (``docs/protocol.md §20.6``).

**Compaction** rewrites the log keeping only unsent records (with their status and owner
folded into the full record) and drops the oldest claimable records beyond
``max_persisted_events``.

Not thread-safe: one :class:`EventLog` is driven by one thread (the events thread).
Several instances, in one process or many, may share a directory. POSIX only (``fcntl``).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from flagkit.core.events.records import (
    STATUSES,
    UNSENT,
    Entry,
    dumps,
    encoded_size,
    read_entries,
    status_line,
)
from flagkit.errors import StorageError

__all__ = [
    "LOCK_FILE_NAME",
    "LOG_FILE_NAME",
    "OWNER_FILE_PREFIX",
    "EventLog",
    "RecoveredEvent",
    "ScanResult",
    "default_event_storage_path",
]

LOCK_FILE_NAME: Final = "flagkit-events.lock"
LOG_FILE_NAME: Final = "flagkit-events-current.jsonl"
OWNER_FILE_PREFIX: Final = "flagkit-events-owner-"

_FULL_DISK_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

_log = logging.getLogger("flagkit.events")


def default_event_storage_path() -> str:
    """``<system temp dir>/flagkit/events`` (``docs/protocol.md §11``); read only when called."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), "flagkit", "events")


@dataclass(frozen=True, slots=True)
class RecoveredEvent:
    """An unsent event claimed from the log.

    ``wire`` is the stored wire event; it is ``None`` for records in the older format of
    ``docs/protocol.md §11`` (only ``type``/``data``/``timestamp``): the queue rebuilds those.
    ``released_by`` names the queue that handed the event back (``None`` if its owner died).
    """

    event_id: str
    event_type: str
    timestamp_ms: int
    wire: dict[str, Any] | None
    data: dict[str, Any] | None
    released_by: str | None
    size: int = 0  # of its JSON, to bound the POSTs it goes in


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What :meth:`EventLog.scan` found and did."""

    claimed: list[RecoveredEvent]
    dropped: int  # unsent records dropped for the max_persisted_events cap
    unclaimed: int
    size: int
    unreadable: int = 0  # lines skipped because they could not be read
    unencodable: int = 0  # records dropped because their event cannot be encoded as JSON


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class EventLog:
    """The JSON-lines event log in one directory, shared safely by processes.

    >>> store = EventLog("/tmp/flagkit-demo"); store.open()                 # doctest: +SKIP
    >>> store.append([("3f0c...", "purchase", 1700000000000, {})])  # doctest: +SKIP

    Every method raises :class:`~flagkit.errors.StorageError` (``CACHE_STORAGE_FULL`` when the
    disk or a quota is full, ``CACHE_READ_ERROR`` / ``CACHE_WRITE_ERROR`` otherwise) naming the
    path and the OS reason. Not thread-safe; see the module docstring for the file protocol.
    """

    def __init__(self, directory: str | os.PathLike[str], *, max_persisted_events: int = 10000):
        self.directory: str = os.fspath(directory)
        self.max_persisted_events = max_persisted_events
        self._lock_path = os.path.join(self.directory, LOCK_FILE_NAME)
        self.log_path: str = os.path.join(self.directory, LOG_FILE_NAME)
        self._owner = self._new_owner_id()
        self._owner_fd: int | None = None
        self._held_fd: int | None = None  # the log lock's descriptor while it is held
        self._size = 0
        self._unreadable = 0  # lines skipped by the last read

    @staticmethod
    def _new_owner_id() -> str:
        return f"{os.getpid()}-{uuid.uuid4().hex[:12]}"

    @property
    def owner(self) -> str:
        """This instance's owner id (``<pid>-<12 hex>``)."""
        return self._owner

    @property
    def size(self) -> int:
        """Size of the log in bytes as of this instance's last read or write."""
        return self._size

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` succeeded and :meth:`close` has not run."""
        return self._owner_fd is not None

    def _owner_path(self, owner: str) -> str:
        return os.path.join(self.directory, f"{OWNER_FILE_PREFIX}{owner}.lock")

    # -- errors and locking ------------------------------------------------------------

    def _error(self, action: str, path: str, exc: OSError) -> StorageError:
        if exc.errno in _FULL_DISK_ERRNOS:
            code = "CACHE_STORAGE_FULL"
        elif action == "read":
            code = "CACHE_READ_ERROR"
        else:
            code = "CACHE_WRITE_ERROR"
        reason = exc.strerror or type(exc).__name__
        return StorageError(
            code,
            f"event persistence cannot {action} {path!r}: {reason}",
            details={"path": path, "errno": exc.errno},
            cause=exc,
        )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import fcntl

        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise self._error("lock", self._lock_path, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._held_fd = fd
            yield
        finally:
            self._held_fd = None
            os.close(fd)  # closing releases the flock

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory (0700) and take this instance's owner lock. Idempotent."""
        import fcntl

        if self._owner_fd is not None:
            return
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise self._error("create the directory", self.directory, exc) from exc
        if not os.path.isdir(self.directory):
            raise self._error(
                "use", self.directory, NotADirectoryError(errno.ENOTDIR, "not a directory")
            )
        with self._locked():
            path = self._owner_path(self._owner)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            except OSError as exc:
                raise self._error("create", path, exc) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                raise self._error("lock", path, exc) from exc
            self._owner_fd = fd
            try:
                self._size = os.stat(self.log_path).st_size
            except FileNotFoundError:
                self._size = 0
            except OSError as exc:
                raise self._error("read", self.log_path, exc) from exc

    def close(self) -> None:
        """Drop the owner lock: this instance's unsent records become claimable. Idempotent."""
        fd, self._owner_fd = self._owner_fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self._owner_path(self._owner))
        os.close(fd)

    def after_fork(self) -> None:
        """In a forked child: forget the parent's owner lock without releasing it.

        The parent still owns its records; the child takes a new owner id and must call
        :meth:`open` again to persist anything.
        """
        for fd in (self._owner_fd, self._held_fd):
            if fd is not None:
                # Closing our copy of a descriptor leaves the parent's flock in place (and a
                # log lock the parent held at the fork is freed once the parent closes its own).
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._owner_fd = None
        self._held_fd = None
        self._owner = self._new_owner_id()

    # -- writes ------------------------------------------------------------------------

    def _append_lines(self, lines: Sequence[str], *, sync: bool = False) -> None:
        if lines:
            with self._locked():
                self._append_lines_locked(lines, sync=sync)

    def append(self, events: Sequence[tuple[str, str, int, Mapping[str, Any]]]) -> list[str]:
        """Append full ``pending`` records owned by this instance, then fsync.

        ``events`` holds ``(event_id, event_type, timestamp_ms, wire_event)``. Returns the ids
        that could not be serialised (skipped); everything else is on disk when it returns.
        """
        lines: list[str] = []
        skipped: list[str] = []
        for event_id, event_type, timestamp_ms, wire in events:
            record = {
                "id": event_id,
                "type": event_type,
                "timestamp": timestamp_ms,
                "status": "pending",
                "owner": self._owner,
                "event": wire,
            }
            try:
                lines.append(dumps(record))
            except (TypeError, ValueError):
                skipped.append(event_id)
        self._append_lines(lines, sync=True)
        return skipped

    def mark(self, ids: Sequence[str], status: str, *, sent_at_ms: int | None = None) -> None:
        """Append a status line per id (``sending``, ``sent``, ``pending`` or ``dropped``)."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        sent_at = None
        if status == "sent":
            sent_at = sent_at_ms if sent_at_ms is not None else int(time.time() * 1000)
        self._append_lines([status_line(i, status, sent_at) for i in ids])

    def release(self, ids: Sequence[str]) -> None:
        """Hand unsent records back: any queue on this directory may claim them."""
        lines = [
            dumps({"id": i, "status": "pending", "owner": None, "releasedBy": self._owner})
            for i in ids
        ]
        self._append_lines(lines)

    # -- reads -------------------------------------------------------------------------

    def _read(self, own: Collection[str]) -> dict[str, Entry]:
        try:
            handle = open(self.log_path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            self._size = 0
            return {}
        except OSError as exc:
            raise self._error("read", self.log_path, exc) from exc
        try:
            with handle:
                entries, skipped = read_entries(handle)
                self._size = handle.tell()
        except OSError as exc:
            raise self._error("read", self.log_path, exc) from exc
        # Full records are parsed only now, and only those a status line did not settle and
        # that are not this instance's own (those it holds in memory).
        owner = self._owner
        for event_id, entry in list(entries.items()):
            if entry.settled or (event_id in own and entry.adopt(owner)):
                continue
            if not entry.load():
                del entries[event_id]
                skipped += 1
        self._unreadable = skipped
        if skipped:
            _log.warning("event log %s: skipped %d unreadable line(s)", self.log_path, skipped)
        return entries

    def _owner_alive(self, owner: str) -> bool:
        import fcntl

        path = self._owner_path(owner)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise self._error("read", path, exc) from exc
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            # Its owner died: the file is litter. We hold the log lock, and owner files are
            # only created under it, so removing it here races with nobody.
            with contextlib.suppress(OSError):
                os.unlink(path)
            return False
        finally:
            os.close(fd)

    def scan(self, *, claim_limit: int, compact: bool, own: Collection[str] = ()) -> ScanResult:
        """Claim up to ``claim_limit`` orphaned unsent records (oldest first); maybe compact.

        Under the log lock: read the log, find unsent records that are released or whose
        owner is gone, apply the ``max_persisted_events`` cap (dropping the oldest claimable
        records), claim the oldest of the rest for this instance, and either rewrite the log
        (``compact=True``: only unsent records remain) or append the claim lines. ``own``:
        ids of events this instance holds, whose records need not be parsed.
        """
        with self._locked():
            entries = self._read(own)
            alive: dict[str, bool] = {self._owner: True}
            unsent = [e for e in entries.values() if e.status in UNSENT]
            claimable: list[Entry] = []
            for entry in unsent:
                owner = entry.owner
                if owner is None:
                    claimable.append(entry)
                    continue
                if owner == self._owner:
                    continue
                if owner not in alive:
                    alive[owner] = self._owner_alive(owner)
                if not alive[owner]:
                    claimable.append(entry)
            dropped: set[int] = set()
            excess = len(unsent) - self.max_persisted_events
            if excess > 0 and claimable:
                for entry in claimable[:excess]:
                    dropped.add(id(entry))
                    entry.status = "dropped"
                _log.warning(
                    "event log %s holds %d unsent events (max_persisted_events=%d): "
                    "dropped the %d oldest unowned ones",
                    self.log_path,
                    len(unsent),
                    self.max_persisted_events,
                    len(dropped),
                )
            remaining = [e for e in claimable if id(e) not in dropped]
            claims: list[tuple[Entry, int]] = []
            unencodable = 0
            for entry in remaining:
                if len(claims) >= claim_limit:
                    break
                size = encoded_size(entry.record)
                if size is not None:
                    claims.append((entry, size))
                else:
                    dropped.add(id(entry))
                    entry.status = "dropped"
                    unencodable += 1
            if unencodable:
                _log.warning(
                    "event log %s: dropped %d record(s) that cannot be sent (not a JSON event)",
                    self.log_path,
                    unencodable,
                )
            for entry, _ in claims:
                entry.owner = self._owner
                entry.status = "pending"
            if compact:
                self._rewrite([e for e in unsent if id(e) not in dropped])
            else:
                lines = [
                    dumps({"id": e.event_id, "status": "pending", "owner": self._owner})
                    for e, _ in claims
                ]
                lines.extend(
                    dumps({"id": e.event_id, "status": "dropped"})
                    for e in unsent
                    if id(e) in dropped
                )
                self._append_lines_locked(lines)
            return ScanResult(
                claimed=[self._recovered(e, size) for e, size in claims],
                dropped=len(dropped) - unencodable,
                unclaimed=len(remaining) - len(claims) - unencodable,
                size=self._size,
                unreadable=self._unreadable,
                unencodable=unencodable,
            )

    def _append_lines_locked(self, lines: Sequence[str], *, sync: bool = False) -> None:
        # The caller holds the log lock. Only full records are fsync'd: a status line lost to
        # a power cut leaves its record unsent, and the worst outcome is a resend, which the
        # server drops by eventId (docs/protocol.md §20.6).
        if not lines:
            return
        payload = ("\n".join(lines) + "\n").encode("ascii")
        try:
            fd = os.open(self.log_path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise self._error("open", self.log_path, exc) from exc
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                payload = b"\n" + payload
            try:
                _write_all(fd, payload)
                if sync:
                    os.fsync(fd)
            except OSError:
                # Leave no torn tail behind (we hold the lock, nobody else appended).
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
                raise
            self._size = size + len(payload)
        except OSError as exc:
            raise self._error("write", self.log_path, exc) from exc
        finally:
            os.close(fd)

    def _rewrite(self, keep: Sequence[Entry]) -> None:
        lines: list[bytes] = []
        for entry in keep:
            raw = entry.raw_line
            if raw is not None:
                lines.append(raw)
                continue
            if not entry.load():
                continue
            record = dict(entry.record)
            record["status"] = entry.status
            record["owner"] = entry.owner
            if entry.released_by is not None:
                record["releasedBy"] = entry.released_by
            else:
                record.pop("releasedBy", None)
            try:
                lines.append(dumps(record).encode("ascii"))
            except (TypeError, ValueError):
                continue
        payload = b"".join(line + b"\n" for line in lines)
        tmp = f"{self.log_path}.tmp-{self._owner}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                _write_all(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.log_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise self._error("write", self.log_path, exc) from exc
        self._size = len(payload)
        with contextlib.suppress(OSError):
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    @staticmethod
    def _recovered(entry: Entry, size: int) -> RecoveredEvent:
        record = entry.record
        timestamp = record.get("timestamp")
        timestamp_ms = (
            int(timestamp)
            if isinstance(timestamp, (int, float))
            and not isinstance(timestamp, bool)
            and math.isfinite(timestamp)
            else int(time.time() * 1000)
        )
        wire = record.get("event")
        data = record.get("data")
        return RecoveredEvent(
            event_id=record["id"],
            event_type=str(record["type"]),
            timestamp_ms=timestamp_ms,
            wire=wire if isinstance(wire, dict) else None,
            data=data if isinstance(data, dict) else None,
            released_by=entry.released_by,
            size=size,
        )
