"""The event queue: a cheap ``track()`` on the caller's thread, everything else on a thread.

::

    track() ─▶ validate + copy ─▶ incoming deque ─▶ "flagkit-events" thread
                 (caller)                            ├─▶ wire event (eventId, ISO time, context)
                                                     ├─▶ event log (JSONL, fsync)   [persist]
                                                     └─▶ "flagkit-events-send" thread ─▶ POST

``track()`` validates the event type and the data (a bounded walk that also copies the data
and estimates its JSON size), then appends a small tuple to a deque: no lock, no I/O. The
events thread assigns the ``eventId`` (UUID4), formats the timestamp, strips the context of
private attributes, scans for PII (non-strict mode), writes the event log and hands batches
to a second thread that only calls ``sender`` — so a slow POST never delays persistence.

Delivery is at least once: a failed batch goes back to the front of the queue in order and
is retried with backoff; every event carries an ``eventId`` the server uses to drop
duplicates. See ``docs/events.md`` for the full behaviour.
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from queue import SimpleQueue
from typing import Any, Final

from flagkit.core.event_persistence import (
    EventPersistence,
    RecoveredEvent,
    ScanResult,
    default_event_storage_path,
)
from flagkit.errors import EventError, FlagKitError, SecurityError, StorageError
from flagkit.types.context import EvaluationContext
from flagkit.types.events import EventQueueConfig, EventStats, FlushResult

__all__ = ["EventQueue", "Sender"]

Sender = Callable[[list[dict[str, Any]]], object]  # the return value is ignored

_TYPE_RE: Final = re.compile(r"[a-zA-Z0-9._-]{1,128}")
_MAX_KNOWN_TYPES: Final = 4096
_FAST_KEYS: Final = 16  # larger dicts take the general walk
_INT_LIMIT: Final = 10**18  # fast path only; the walk allows bigger ones
_MAX_INT_BITS: Final = 4096  # ~1233 digits; Python refuses to print ints past 4300 digits
_MAX_DEPTH: Final = 32
_BATCH_BYTES: Final = 1024 * 1024  # estimated JSON per POST, besides max_batch_events
_EVENT_OVERHEAD: Final = 200  # estimated JSON of the fixed wire fields
_PERSIST_AT: Final = 1000  # write the log early once this many records wait
_PII_WARNED_MAX: Final = 256

_now = time.time
_monotonic = time.monotonic


class _Invalid(Exception):
    """Raised by the data walk; ``path`` is filled in as the exception unwinds."""

    def __init__(self, message: str, *, located: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.located = located  # False: about the data as a whole (the size limit)
        self.path: list[str] = []

    def describe(self) -> str:
        where = "".join(self.path) if self.located else ""
        return f"event data{where}: {self.message}" if where else f"event data: {self.message}"


class _Walk:
    __slots__ = ("limit", "size")

    def __init__(self, limit: int) -> None:
        self.size = 0
        self.limit = limit


def _copy_json(value: object, walk: _Walk, depth: int) -> Any:
    """A JSON-safe copy of ``value``; raises ``_Invalid`` past the size or depth bounds.

    The walk stops as soon as the estimated size passes the limit, so its cost is bounded by
    the limit, not by the input.
    """
    if value is None or value is True or value is False:
        walk.size += 5
        result: Any = value
    elif isinstance(value, str):
        walk.size += len(value) + 2
        result = value
    elif isinstance(value, int):
        bits = value.bit_length()
        if bits > _MAX_INT_BITS:
            raise _Invalid(f"integer with {bits} bits is too large to send")
        walk.size += bits // 3 + 2
        result = int(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _Invalid(f"{value!r} is not a finite number; JSON cannot carry NaN or Infinity")
        walk.size += 24
        result = float(value)
    elif isinstance(value, Mapping):
        if depth >= _MAX_DEPTH:
            raise _Invalid(f"nested deeper than {_MAX_DEPTH} levels")
        walk.size += 2
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Invalid(f"keys must be strings, got {type(key).__name__} {key!r:.40}")
            walk.size += len(key) + 4
            try:
                copied[key] = _copy_json(item, walk, depth + 1)
            except _Invalid as exc:
                exc.path.insert(0, f"[{_short(key)}]")
                raise
        result = copied
    elif isinstance(value, (list, tuple)):
        if depth >= _MAX_DEPTH:
            raise _Invalid(f"nested deeper than {_MAX_DEPTH} levels")
        walk.size += 2
        items: list[Any] = []
        for index, item in enumerate(value):
            walk.size += 1
            try:
                items.append(_copy_json(item, walk, depth + 1))
            except _Invalid as exc:
                exc.path.insert(0, f"[{index}]")
                raise
        result = items
    else:
        raise _Invalid(
            f"{type(value).__name__} is not JSON-serialisable "
            "(allowed: str, int, float, bool, None, list, tuple, dict)"
        )
    if walk.size > walk.limit:
        raise _Invalid(
            f"larger than the limit of {walk.limit} characters of JSON (max_event_size)",
            located=False,
        )
    return result


def _short(key: str) -> str:
    return repr(key) if len(key) <= 40 else repr(key[:40]) + "..."


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat()


class _RateLimitedLog:
    """Logs a message at most once per ``interval`` seconds, counting what it held back."""

    def __init__(self, logger: logging.Logger, level: int, interval: float = 10.0) -> None:
        self._logger = logger
        self._level = level
        self._interval = interval
        self._next = 0.0
        self._suppressed = 0

    def __call__(self, message: str, *args: object) -> None:
        now = _monotonic()
        if now < self._next:
            self._suppressed += 1
            return
        self._next = now + self._interval
        suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            message += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        self._logger.log(self._level, message, *args)


class _Pending:
    """An event on the events thread: its wire form and bookkeeping."""

    __slots__ = ("event_id", "event_type", "persisted", "seq", "size", "timestamp_ms", "wire")

    def __init__(
        self,
        seq: int,
        event_id: str,
        event_type: str,
        timestamp_ms: int,
        wire: dict[str, Any],
        size: int,
        persisted: bool,
    ) -> None:
        self.seq = seq
        self.event_id = event_id
        self.event_type = event_type
        self.timestamp_ms = timestamp_ms
        self.wire = wire
        self.size = size
        self.persisted = persisted


class _FlushRequest:
    __slots__ = (
        "attempted",
        "done",
        "dropped_base",
        "final",
        "result",
        "sent_base",
        "target_seq",
    )

    def __init__(self, *, final: bool = False) -> None:
        self.final = final
        self.done = threading.Event()
        self.result: FlushResult | None = None
        self.target_seq = 0
        self.sent_base = 0
        self.dropped_base = 0
        self.attempted = False


_Incoming = tuple[str, dict[str, Any] | None, float, EvaluationContext | None, int]


class EventQueue:
    """Validates, batches, persists and delivers analytics events.

    >>> queue = EventQueue(EventQueueConfig(batch_size=20), sender=send_batch,
    ...                    session_id=str(uuid.uuid4()), sdk_version="1.1.0",
    ...                    logger=logging.getLogger("flagkit.events"))  # doctest: +SKIP
    >>> queue.start()                                                     # doctest: +SKIP
    >>> queue.track("purchase", {"amount": 9.99}, context=ctx)            # doctest: +SKIP
    >>> queue.close(timeout=5.0)                                          # doctest: +SKIP
    FlushResult(sent=1, pending=0, error=None)

    ``sender(events)`` posts one batch (a list of wire events) and raises a
    :class:`~flagkit.errors.FlagKitError` on failure; it is called only on the
    ``flagkit-events-send`` thread. ``on_error`` receives a
    :class:`~flagkit.errors.StorageError` when the event log cannot be used (the queue then
    carries on in memory). ``pii_check(data, "event")`` returns the paths of fields that look
    like PII.

    Thread-safety: every public method may be called from any thread. ``track()`` takes no
    lock and does no I/O; ``flush()`` and ``close()`` block up to their timeout.
    """

    def __init__(
        self,
        config: EventQueueConfig,
        *,
        sender: Sender,
        session_id: str,
        sdk_version: str,
        logger: logging.Logger,
        on_error: Callable[[Exception], None] | None = None,
        pii_check: Callable[[Mapping[str, Any], str], list[str]] | None = None,
    ) -> None:
        self._config = config
        self._sender = sender
        self._session_id = session_id
        self._sdk_version = sdk_version
        self._logger = logger
        self._on_error = on_error
        self._pii_check = pii_check
        self._strict_pii_check = pii_check if config.strict_pii else None
        self._scan_pii_check = None if config.strict_pii else pii_check
        self._environment_id = ""
        self._max_queue_size = config.max_queue_size
        self._batch_threshold = min(config.batch_size, config.max_queue_size)
        self._max_event_size = config.max_event_size
        self._lenient = config.lenient
        self._known_types: set[str] = set()
        self._log_full = _RateLimitedLog(logger, logging.WARNING)
        self._log_invalid = _RateLimitedLog(logger, logging.WARNING)
        self._log_send = _RateLimitedLog(logger, logging.WARNING)
        self._log_closed = _RateLimitedLog(logger, logging.WARNING)
        self._log_context = _RateLimitedLog(logger, logging.WARNING)
        self._pii_warned: set[tuple[str, ...]] = set()
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        """All per-process state: called at construction and in a forked child."""
        config = self._config
        # Shared with callers (lock-free or under _lock).
        self._incoming: deque[_Incoming] = deque()
        self._threshold = self._batch_threshold
        self._wake_requested = False
        self._wake = threading.Event()
        self._lock = threading.Lock()  # counters, requests, lifecycle flags; never held for I/O
        self._closed = False
        self._stopping = False
        self._hard_stop = False
        self._final_drained = False
        self._new_requests: list[_FlushRequest] = []
        self._worker: threading.Thread | None = None
        self._close_result: FlushResult | None = None
        self._close_done = threading.Event()
        # Counters (written under _lock).
        self._ingested = 0
        self._callside_dropped = 0
        self._invalid_dropped = 0
        self._sent = 0
        self._worker_dropped = 0
        self._persisted = 0
        self._recovered = 0
        self._failed_batches = 0
        self._outstanding = 0  # published by the events thread after each cycle
        # Owned by the events thread.
        self._pending: deque[_Pending] = deque()
        self._inflight: list[_Pending] | None = None
        self._unpersisted: list[_Pending] = []
        self._requests: list[_FlushRequest] = []
        self._seq = 0
        self._store: EventPersistence | None = None
        self._failed_store: EventPersistence | None = None
        self._compact_at = config.compaction_threshold_bytes
        self._unclaimed = 0
        self._spilled = 0
        self._drain_mode = False
        self._failures = 0
        self._retry_at = 0.0
        self._next_tick = 0.0
        self._next_persist = 0.0
        self._next_rescan = 0.0
        self._sender_thread: threading.Thread | None = None
        self._jobs: SimpleQueue[list[dict[str, Any]] | None] = SimpleQueue()
        self._results: deque[BaseException | None] = deque()

    # ------------------------------------------------------------------ caller's side

    def track(
        self,
        event_type: str,
        data: Mapping[str, Any] | None = None,
        *,
        context: EvaluationContext | None = None,
    ) -> None:
        """Queue one event; returns at once (no I/O, no lock).

        >>> queue.track("button_clicked", {"button": "signup"})  # doctest: +SKIP

        ``event_type``: 1 to 128 characters from ``a-z A-Z 0-9 . _ -``. ``data``: ``None`` or
        a mapping with string keys whose values are str, int, float (finite), bool, None,
        lists/tuples or mappings of the same, at most ``max_event_size`` (32 KiB) of JSON;
        it is copied, so later changes do not leak into the event. ``context``: its private
        attributes are stripped before the event leaves the process.

        Raises :class:`~flagkit.errors.EventError` (``EVENT_INVALID_TYPE`` or
        ``EVENT_INVALID_DATA``) for bad input — in lenient mode it logs and drops instead —
        and :class:`~flagkit.errors.SecurityError` (``SECURITY_PII_DETECTED``) in strict PII
        mode. Thread-safe.
        """
        try:
            known = event_type in self._known_types
        except TypeError:  # unhashable
            known = False
        if not known and not self._admit_type(event_type):
            return
        size = 0
        if data is not None:
            admitted: dict[str, Any] | None = None
            if type(data) is dict and len(data) <= _FAST_KEYS:
                # Fast path for small flat dicts; anything unusual takes the general walk.
                copied = dict(data)
                for key, value in copied.items():
                    kind = type(value)
                    if type(key) is not str:
                        break
                    if kind is str:
                        size += len(value) + len(key) + 6
                    elif kind is float:
                        if value - value != 0.0:  # NaN or infinite
                            break
                        size += len(key) + 28
                    elif kind is int:
                        if not -_INT_LIMIT < value < _INT_LIMIT:
                            break
                        size += len(key) + 24
                    elif kind is bool or value is None:
                        size += len(key) + 9
                    else:
                        break
                else:
                    if size <= self._max_event_size:
                        admitted = copied
            if admitted is None:
                walked = self._admit_data(data)
                if walked is None:
                    return
                admitted, size = walked
            data = admitted
        if (
            context is not None
            and type(context) is not EvaluationContext
            and not self._admit_context(context)
        ):
            return
        if self._strict_pii_check is not None and data:
            self._check_strict_pii(data)
        incoming = self._incoming
        incoming.append((event_type, data, _now(), context, size))
        if len(incoming) >= self._threshold:
            self._on_threshold()

    def _reject(self, code: str, message: str) -> None:
        if not self._lenient:
            raise EventError(code, message)
        with self._lock:
            self._invalid_dropped += 1
        self._log_invalid("flagkit: event dropped (lenient_tracking): [%s] %s", code, message)

    def _admit_type(self, event_type: object) -> bool:
        if not isinstance(event_type, str):
            self._reject(
                "EVENT_INVALID_TYPE",
                f"event type must be a string, got {type(event_type).__name__}",
            )
            return False
        if not _TYPE_RE.fullmatch(event_type):
            shown = event_type if len(event_type) <= 64 else event_type[:64] + "..."
            self._reject(
                "EVENT_INVALID_TYPE",
                f"invalid event type {shown!r} ({len(event_type)} characters): use 1 to 128 "
                "characters from a-z, A-Z, 0-9, '.', '_' and '-'",
            )
            return False
        if len(self._known_types) < _MAX_KNOWN_TYPES:
            self._known_types.add(event_type)
        return True

    def _admit_data(self, data: object) -> tuple[dict[str, Any], int] | None:
        if not isinstance(data, Mapping):
            self._reject(
                "EVENT_INVALID_DATA",
                f"event data must be a dict (mapping) or None, got {type(data).__name__}",
            )
            return None
        walk = _Walk(self._max_event_size)
        try:
            copied = _copy_json(data, walk, 0)
        except _Invalid as exc:
            self._reject("EVENT_INVALID_DATA", exc.describe())
            return None
        except RecursionError:
            self._reject("EVENT_INVALID_DATA", "event data: too deeply nested")
            return None
        return copied, walk.size

    def _admit_context(self, context: object) -> bool:
        if isinstance(context, EvaluationContext):
            return True
        self._reject(
            "EVENT_INVALID_DATA",
            f"context must be an EvaluationContext or None, got {type(context).__name__}",
        )
        return False

    def _check_strict_pii(self, data: dict[str, Any]) -> None:
        check = self._strict_pii_check
        if check is None:
            return
        paths = check(data, "event")
        if paths:
            raise SecurityError(
                "SECURITY_PII_DETECTED",
                f"event data contains potential PII in {', '.join(paths)}; strict_pii_mode is "
                "on, so the event was not queued (remove or rename these fields)",
            )

    def _on_threshold(self) -> None:
        """Slow path of ``track()``: wake the events thread, trim an over-full queue."""
        if self._closed:
            if self._final_drained:
                dropped = self._drop_incoming(None)
                if dropped:
                    self._log_closed("flagkit: track() after close(): %d event(s) dropped", dropped)
            return
        over = len(self._incoming) - self._max_queue_size
        if over > 0 and self._drop_incoming(over):
            self._log_full(
                "flagkit: event queue full (max_queue_size=%d): dropped the oldest event(s)",
                self._max_queue_size,
            )
        if not self._wake_requested:
            # Until the events thread drains, only an overflow brings us back here.
            self._threshold = self._max_queue_size
            self._wake_requested = True
            self._wake.set()

    def _drop_incoming(self, limit: int | None) -> int:
        """Discard up to ``limit`` (None: all) of the oldest not-yet-ingested events,
        counting them as dropped; returns how many were discarded. Lock-free pops (other
        threads may pop concurrently); the lock is taken only to add to the counter."""
        incoming = self._incoming
        dropped = 0
        while limit is None or dropped < limit:
            try:
                incoming.popleft()
            except IndexError:
                break
            dropped += 1
        if dropped:
            with self._lock:
                self._callside_dropped += dropped
        return dropped

    # ------------------------------------------------------------------ public control

    def set_environment_id(self, environment_id: str) -> None:
        """Set the ``environmentId`` of events built from now on (from ``/sdk/init``)."""
        if not isinstance(environment_id, str):
            raise TypeError(f"environment_id must be a str, got {type(environment_id).__name__}")
        self._environment_id = environment_id

    def start(self) -> None:
        """Start the ``flagkit-events`` thread (recovering persisted events). Idempotent.

        Raises ``RuntimeError`` after :meth:`close`.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("EventQueue is closed; create a new one")
        self._start_worker()

    def _start_worker(self) -> None:
        with self._lock:
            if self._worker is not None:
                return
            worker = threading.Thread(target=self._run, name="flagkit-events", daemon=True)
            self._worker = worker
        worker.start()

    @property
    def stats(self) -> EventStats:
        """A consistent snapshot of the counters (see :class:`EventStats`)."""
        with self._lock:
            return EventStats(
                accepted=self._ingested + len(self._incoming) + self._callside_dropped,
                sent=self._sent,
                dropped=self._callside_dropped + self._invalid_dropped + self._worker_dropped,
                persisted=self._persisted,
                recovered=self._recovered,
                failed_batches=self._failed_batches,
            )

    def _outstanding_estimate(self) -> int:
        return len(self._incoming) + self._outstanding

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Send everything queued so far; wait at most ``timeout`` seconds (None: no limit).

        Persists first (when persistence is on), then sends in batches. Returns when all
        events tracked before the call are delivered, when a send fails (``error`` says why;
        the events stay queued and are retried), or at the deadline (``error`` is a
        ``FlagKitError`` with code ``EVENT_SEND_FAILED``). Offline, it only persists. Starts
        the events thread if needed. Thread-safe.
        """
        request = _FlushRequest()
        with self._lock:
            if self._closed:
                return FlushResult(0, self._outstanding_estimate(), None)
            self._new_requests.append(request)
            sent_before = request.sent_base = self._sent
            request.dropped_base = self._worker_dropped + self._callside_dropped
        if threading.current_thread() is self._worker:
            return FlushResult(0, self._outstanding_estimate(), None)  # called from on_error
        self._start_worker()
        self._wake.set()
        if request.done.wait(timeout) and request.result is not None:
            return request.result
        with self._lock:
            sent = self._sent - sent_before
        pending = self._outstanding_estimate()
        return FlushResult(
            sent,
            pending,
            FlagKitError(
                "EVENT_SEND_FAILED",
                f"flush() timed out after {timeout}s with {pending} event(s) pending",
            ),
        )

    def close(self, timeout: float | None = None) -> FlushResult:
        """Flush (one attempt), persist the rest, stop the threads. Idempotent.

        Without persistence, events that could not be delivered are dropped and counted;
        with it they stay in the event log for the next process on the same path.
        ``timeout`` bounds the whole call (None: no limit beyond the HTTP timeouts).
        Thread-safe; later calls return the first call's result.
        """
        deadline = None if timeout is None else _monotonic() + max(timeout, 0.0)
        request = _FlushRequest(final=True)
        with self._lock:
            if self._closed:
                first = False
            else:
                first = True
                self._closed = True
                self._threshold = 0
                self._stopping = True
                self._new_requests.append(request)
                sent_before = request.sent_base = self._sent
                request.dropped_base = self._worker_dropped + self._callside_dropped
                worker = self._worker
        if not first:
            self._close_done.wait(timeout)
            return self._close_result or FlushResult(0, self._outstanding_estimate(), None)
        if worker is threading.current_thread():
            return FlushResult(0, self._outstanding_estimate(), None)  # from a callback
        if worker is None and self._incoming:
            self._start_worker()
            worker = self._worker
        error: Exception | None = None
        if worker is not None:
            self._wake.set()
            remaining = None if deadline is None else max(deadline - _monotonic(), 0.0)
            if not request.done.wait(remaining):
                error = FlagKitError(
                    "EVENT_SEND_FAILED", f"close() timed out after {timeout}s; stopping anyway"
                )
                with self._lock:
                    self._hard_stop = True
                self._wake.set()
            worker.join(None if deadline is None else max(deadline - _monotonic(), 0.0) + 1.0)
            sender_thread = self._sender_thread
            if sender_thread is not None and not worker.is_alive():
                # It exits after its current POST (bounded by the HTTP timeout).
                sender_thread.join(None if deadline is None else max(deadline - _monotonic(), 0.1))
        else:
            self._final_drained = True
        self._on_threshold()  # drops anything tracked after the final drain
        with self._lock:
            sent = self._sent - sent_before
        result = request.result
        if result is not None:
            self._close_result = FlushResult(sent, result.pending, error or result.error)
        else:
            self._close_result = FlushResult(sent, self._outstanding_estimate(), error)
        self._close_done.set()
        return self._close_result

    def after_fork_in_child(self) -> None:
        """Reset per-process state in a forked child; restart the thread if it was running.

        The child does not send the parent's queued events: the parent still holds them (and,
        with persistence, still owns their records on disk). Counters restart at zero.
        """
        was_closed = self._closed
        was_running = self._worker is not None and not was_closed
        for store in (self._store, self._failed_store):
            if store is not None:
                store.abandon_after_fork()
        self._reset_runtime()
        if was_closed:
            self._closed = True
            self._threshold = 0
            self._final_drained = True
            self._close_result = FlushResult(0, 0, None)
            self._close_done.set()
        elif was_running:
            self._start_worker()

    # ------------------------------------------------------------------ events thread

    def _run(self) -> None:
        now = _monotonic()
        self._next_tick = now + self._config.flush_interval
        self._next_persist = now + self._config.persistence_flush_interval_ms / 1000.0
        self._next_rescan = now + self._config.recovery_interval
        if self._config.persist:
            self._open_store()
        while True:
            self._wake.clear()
            try:
                delay = self._cycle()
            except Exception:
                self._logger.exception("flagkit-events: unexpected error in the events thread")
                delay = None if self._stopping else min(1.0, self._config.flush_interval)
            if delay is None:
                break
            if delay > 0:
                self._wake.wait(delay)
        try:
            self._teardown()
        except Exception:
            self._logger.exception("flagkit-events: error while stopping")

    def _report(self, error: Exception) -> None:
        callback = self._on_error
        if callback is None:
            return
        try:
            callback(error)
        except Exception:
            self._logger.exception("flagkit: on_error callback raised")

    def _storage_failed(self, error: StorageError) -> None:
        store, self._store = self._store, None
        if store is not None:
            self._failed_store = store  # keep the owner lock until we stop
        for pending in self._unpersisted:
            pending.persisted = True  # nothing more to wait for
        self._unpersisted = []
        path = (error.details or {}).get("path", "?")
        self._logger.error(
            "flagkit: %s (path: %s); event persistence is off, events stay in memory only",
            error.message,
            path,
        )
        self._report(error)

    def _open_store(self) -> None:
        path = self._config.storage_path or default_event_storage_path()
        store = EventPersistence(path, max_persisted_events=self._config.max_persisted_events)
        self._store = store
        try:
            store.open()
            claim = 0 if (self._config.offline or self._stopping) else self._room()
            result = store.scan(claim_limit=claim, compact=True)
        except StorageError as exc:
            self._storage_failed(exc)
            return
        self._adopt(result)
        self._compact_at = max(self._config.compaction_threshold_bytes, 2 * result.size)

    def _room(self) -> int:
        inflight = len(self._inflight) if self._inflight else 0
        return max(self._max_queue_size - len(self._pending) - inflight, 0)

    def _adopt(self, result: ScanResult) -> None:
        store = self._store
        owner = store.owner if store is not None else None
        for recovered in result.claimed:
            self._seq += 1
            pending = self._recovered_pending(recovered)
            self._pending.append(pending)
            if recovered.released_by is not None and recovered.released_by == owner:
                self._spilled = max(self._spilled - 1, 0)
        if result.claimed:
            self._drain_mode = True  # send them now, not at the next tick
        self._unclaimed = result.unclaimed
        self._spilled = min(self._spilled, result.unclaimed)
        with self._lock:
            self._recovered += len(result.claimed)
            self._worker_dropped += result.dropped
        if result.claimed:
            self._logger.info(
                "flagkit: recovered %d unsent event(s) from the event log", len(result.claimed)
            )

    def _recovered_pending(self, recovered: RecoveredEvent) -> _Pending:
        wire = recovered.wire
        if wire is None or not isinstance(wire.get("eventType"), str):
            # Written by the published SDK: rebuild the wire event around its id.
            wire = {
                "eventType": recovered.event_type,
                "timestamp": _iso(recovered.timestamp_ms / 1000.0),
                "sdkVersion": self._sdk_version,
                "sdkLanguage": "python",
                "sessionId": self._session_id,
                "environmentId": self._environment_id,
            }
            if recovered.data:
                wire["eventData"] = recovered.data
        wire["eventId"] = recovered.event_id
        return _Pending(
            self._seq,
            recovered.event_id,
            recovered.event_type,
            recovered.timestamp_ms,
            wire,
            _EVENT_OVERHEAD + len(str(wire.get("eventData", ""))),
            True,
        )

    def _drain(self) -> None:
        """Turn everything in the incoming deque into wire events."""
        incoming = self._incoming
        popleft = incoming.popleft
        taken: list[_Incoming] = []
        while True:
            try:
                taken.append(popleft())
            except IndexError:
                break
        if not taken:
            return
        environment_id = self._environment_id
        session_id = self._session_id
        sdk_version = self._sdk_version
        pending = self._pending
        persist = self._store is not None
        unpersisted = self._unpersisted
        scan = self._scan_pii_check
        for event_type, data, timestamp, context, size in taken:
            self._seq += 1
            event_id = str(uuid.uuid4())
            wire: dict[str, Any] = {
                "eventType": event_type,
                "timestamp": _iso(timestamp),
                "sdkVersion": sdk_version,
                "sdkLanguage": "python",
                "sessionId": session_id,
                "environmentId": environment_id,
            }
            if data:
                wire["eventData"] = data
                if scan is not None:
                    self._scan_pii(scan, data)
            wire["eventId"] = event_id
            if context is not None:
                stripped = self._context_dict(context)
                if stripped:
                    wire["context"] = stripped
                    size += 16 * len(stripped) + 64
            record = _Pending(
                self._seq,
                event_id,
                event_type,
                int(timestamp * 1000),
                wire,
                size + _EVENT_OVERHEAD,
                not persist,
            )
            pending.append(record)
            if persist:
                unpersisted.append(record)
        with self._lock:
            self._ingested += len(taken)

    def _context_dict(self, context: EvaluationContext) -> dict[str, Any] | None:
        try:
            stripped = context.to_dict()
            result = _copy_json(stripped, _Walk(self._max_event_size), 0)
        except (_Invalid, RecursionError, AttributeError, TypeError) as exc:
            reason = exc.describe() if isinstance(exc, _Invalid) else repr(exc)
            self._log_context(
                "flagkit: an event's context cannot be sent and was left out: %s", reason
            )
            return None
        return result if isinstance(result, dict) else None

    def _scan_pii(self, check: Callable[[Mapping[str, Any], str], list[str]], data: Any) -> None:
        try:
            paths = check(data, "event")
        except Exception:
            self._logger.exception("flagkit: PII check failed")
            return
        if not paths:
            return
        key = tuple(sorted(paths))
        if key in self._pii_warned:
            return
        if len(self._pii_warned) < _PII_WARNED_MAX:
            self._pii_warned.add(key)
        self._logger.warning(
            "flagkit: event data contains potential PII in %s; consider removing these fields "
            "(strict_pii_mode makes track() refuse such events)",
            ", ".join(key),
        )

    def _persist(self) -> None:
        store = self._store
        batch = self._unpersisted
        if store is None or not batch:
            return
        self._unpersisted = []
        try:
            skipped = store.append(
                [(p.event_id, p.event_type, p.timestamp_ms, p.wire) for p in batch]
            )
        except StorageError as exc:
            self._storage_failed(exc)
            for pending in batch:
                pending.persisted = True
            return
        for pending in batch:
            pending.persisted = True
        if skipped:
            self._logger.warning(
                "flagkit: %d event(s) could not be written to the log", len(skipped)
            )
        with self._lock:
            self._persisted += len(batch) - len(skipped)
        self._maybe_compact()

    def _maybe_compact(self) -> None:
        store = self._store
        if store is None or store.size < self._compact_at:
            return
        claim = 0 if (self._config.offline or self._stopping) else self._room()
        try:
            result = store.scan(claim_limit=claim, compact=True)
        except StorageError as exc:
            self._storage_failed(exc)
            return
        self._adopt(result)
        self._compact_at = max(self._config.compaction_threshold_bytes, 2 * result.size)

    def _mark(self, batch: list[_Pending], status: str) -> None:
        store = self._store
        if store is None:
            return
        try:
            store.mark([p.event_id for p in batch], status)
        except StorageError as exc:
            self._storage_failed(exc)
            return
        if status == "sent":
            self._maybe_compact()

    def _collect_results(self, now: float) -> None:
        while self._results:
            outcome = self._results.popleft()
            batch = self._inflight or []
            self._inflight = None
            if outcome is None:
                with self._lock:
                    self._sent += len(batch)
                self._failures = 0
                self._retry_at = 0.0
                self._mark(batch, "sent")
                continue
            self._pending.extendleft(reversed(batch))
            self._failures += 1
            delay = min(
                self._config.retry_backoff_base * 2 ** min(self._failures - 1, 30),
                self._config.retry_backoff_max,
            ) * (0.5 + random.random() / 2)
            self._retry_at = now + delay
            self._drain_mode = True
            with self._lock:
                self._failed_batches += 1
            self._mark(batch, "pending")
            error = outcome if isinstance(outcome, Exception) else RuntimeError(repr(outcome))
            if not isinstance(outcome, FlagKitError):
                self._logger.error(
                    "flagkit: event sender raised a non-FlagKit error", exc_info=outcome
                )
            self._log_send(
                "flagkit: sending %d event(s) failed (%s); %d queued, retrying in %.1fs",
                len(batch),
                error,
                len(self._pending),
                delay,
            )
            for request in self._requests:
                if request.attempted and not request.done.is_set():
                    self._finish(request, error)

    def _enforce_bound(self) -> None:
        inflight = len(self._inflight) if self._inflight else 0
        over = len(self._pending) + inflight - self._max_queue_size
        if over <= 0:
            return
        over = min(over, len(self._pending))
        if self._store is not None:
            self._persist()
        victims = [self._pending.popleft() for _ in range(over)]
        store = self._store
        if store is not None:
            try:
                store.release([p.event_id for p in victims])
            except StorageError as exc:
                self._storage_failed(exc)
            else:
                self._spilled += len(victims)
                self._unclaimed += len(victims)
                self._log_full(
                    "flagkit: event queue full (max_queue_size=%d): %d oldest event(s) left in "
                    "the event log to send later",
                    self._max_queue_size,
                    len(victims),
                )
                return
        with self._lock:
            self._worker_dropped += len(victims)
        self._log_full(
            "flagkit: event queue full (max_queue_size=%d): dropped the oldest event(s)",
            self._max_queue_size,
        )

    def _maybe_rescan(self, now: float) -> None:
        store = self._store
        if store is None or self._config.offline or self._stopping:
            return
        room = self._room()
        due = now >= self._next_rescan
        wanted = self._unclaimed > 0 and room >= max(self._max_queue_size // 2, 1)
        if not (due or wanted):
            return
        self._next_rescan = now + self._config.recovery_interval
        compact = store.size >= self._compact_at
        try:
            result = store.scan(claim_limit=room, compact=compact)
        except StorageError as exc:
            self._storage_failed(exc)
            return
        self._adopt(result)
        if compact:
            self._compact_at = max(self._config.compaction_threshold_bytes, 2 * result.size)

    def _ensure_sender(self) -> None:
        if self._sender_thread is not None:
            return
        thread = threading.Thread(
            target=self._send_loop,
            args=(self._jobs, self._results, self._wake),
            name="flagkit-events-send",
            daemon=True,
        )
        self._sender_thread = thread
        thread.start()

    def _send_loop(
        self,
        jobs: SimpleQueue[list[dict[str, Any]] | None],
        results: deque[BaseException | None],
        wake: threading.Event,
    ) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            outcome: BaseException | None = None
            try:
                self._sender(job)
            except Exception as exc:
                outcome = exc
            results.append(outcome)
            wake.set()

    def _dispatch(self, now: float) -> None:
        if self._config.offline or self._inflight is not None or not self._pending:
            return
        open_requests = [r for r in self._requests if not r.done.is_set()]
        flushing = bool(open_requests)
        if not (flushing or self._drain_mode or len(self._pending) >= self._batch_threshold):
            return
        if now < self._retry_at and not any(not r.attempted for r in open_requests):
            return
        if self._hard_stop:
            return
        if self._unpersisted:
            self._persist()
        limit = self._config.max_batch_events
        pending = self._pending
        batch: list[_Pending] = []
        budget = 0
        while pending and len(batch) < limit:
            head = pending[0]
            if batch and budget + head.size > _BATCH_BYTES:
                break
            budget += head.size
            batch.append(pending.popleft())
        self._mark(batch, "sending")
        for request in open_requests:
            request.attempted = True
        self._inflight = batch
        self._ensure_sender()
        self._jobs.put([p.wire for p in batch])

    def _outstanding_count(self) -> int:
        return len(self._pending) + (len(self._inflight) if self._inflight else 0)

    def _finish(self, request: _FlushRequest, error: Exception | None) -> None:
        with self._lock:
            sent = self._sent - request.sent_base
            dropped = self._worker_dropped + self._callside_dropped - request.dropped_base
        pending = self._outstanding_count() + self._spilled
        if error is None and dropped > 0:
            error = FlagKitError(
                "EVENT_QUEUE_FULL", f"{dropped} event(s) were dropped while flushing (queue full)"
            )
        request.result = FlushResult(sent, pending, error)
        request.done.set()

    def _settle_requests(self) -> None:
        if not self._requests:
            return
        head_seq: int | None = None
        if self._inflight:
            head_seq = self._inflight[0].seq
        elif self._pending:
            head_seq = self._pending[0].seq
        for request in self._requests:
            if request.done.is_set():
                continue
            if self._config.offline:
                if not self._unpersisted:
                    self._finish(request, None)
            elif head_seq is None or head_seq > request.target_seq:
                self._finish(request, None)
        self._requests = [r for r in self._requests if not r.done.is_set()]

    def _cycle(self) -> float | None:
        """One pass of the events thread; returns how long to sleep, or None to stop."""
        now = _monotonic()
        with self._lock:
            new_requests, self._new_requests = self._new_requests, []
            stopping = self._stopping
            hard_stop = self._hard_stop
        self._collect_results(now)
        self._drain()
        if not self._closed:
            self._wake_requested = False
            self._threshold = self._batch_threshold
        for request in new_requests:
            request.target_seq = self._seq
            self._requests.append(request)
        interval = self._config.persistence_flush_interval_ms / 1000.0
        if self._store is not None and (
            now >= self._next_persist
            or self._requests
            or stopping
            or len(self._unpersisted) >= _PERSIST_AT
        ):
            self._persist()
        if now >= self._next_persist:
            self._next_persist = now + interval
        if now >= self._next_tick:
            while self._next_tick <= now:
                self._next_tick += self._config.flush_interval
            if self._pending:
                self._drain_mode = True
        self._enforce_bound()
        self._maybe_rescan(now)
        if not hard_stop:
            self._dispatch(now)
        if not self._pending:
            self._drain_mode = False
        self._settle_requests()
        self._outstanding = self._outstanding_count()
        if stopping and (hard_stop or not self._requests):
            return None
        if hard_stop:
            return None
        wake_at = [self._next_tick]
        if self._store is not None:
            wake_at.append(self._next_persist)
            if not self._config.offline:
                wake_at.append(self._next_rescan)
        if self._retry_at > now and self._pending:
            wake_at.append(self._retry_at)
        return max(min(wake_at) - _monotonic(), 0.0)

    def _teardown(self) -> None:
        self._final_drained = True
        self._drain()
        self._persist()
        outstanding = self._outstanding_count()
        store = self._store
        if store is not None:
            if outstanding:
                self._logger.info(
                    "flagkit: %d unsent event(s) left in the event log %s",
                    outstanding,
                    store.log_path,
                )
            store.close()
        elif outstanding:
            with self._lock:
                self._worker_dropped += outstanding
            self._logger.warning(
                "flagkit: %d event(s) could not be delivered before close() and were dropped",
                outstanding,
            )
        if self._failed_store is not None:
            self._failed_store.close()
        self._outstanding = outstanding
        for request in self._requests:
            if not request.done.is_set():
                self._finish(request, None)
        self._jobs.put(None)
