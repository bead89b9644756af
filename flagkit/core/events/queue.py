"""The event queue: a cheap ``track()`` on the caller's thread, everything else on a thread.

::

    track() ─▶ validate + copy ─▶ inbox (events, flush, stop) ─▶ "flagkit-events" thread
                 (caller)                                        ├─▶ wire event (id, time, context)
                                                                 ├─▶ event log (JSONL, fsync)
                                                                 └─▶ "flagkit-events-send" ─▶ POST

``track()`` validates the event type and the data (:mod:`~flagkit.core.events.validation`)
and appends a small tuple to the inbox: no lock, no I/O. ``flush()`` and ``close()`` append a
request to the same inbox and wait for its answer. The events thread
(:mod:`~flagkit.core.events.worker`) does the rest. Delivery is at least once: every event
carries an ``eventId`` the server uses to drop duplicates. See ``docs/events.md``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from flagkit.core.events.counters import Counters, RateLimitedLog
from flagkit.core.events.messages import Abort, FlushRequest, Message, Sender
from flagkit.core.events.validation import RESERVED_EVENT_TYPES, Admission, PiiCheck, PiiWarner
from flagkit.core.events.wire import WireBuilder
from flagkit.core.events.worker import Worker
from flagkit.errors import FlagKitError
from flagkit.types.context import EvaluationContext
from flagkit.types.events import EventQueueConfig, EventStats, FlushResult

__all__ = ["EventQueue", "Sender"]

_now = time.time


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
    carries on in memory), the error of a batch the server refused for good, the
    :class:`~flagkit.errors.AuthenticationError` that stopped sending, and any unexpected
    error of the events thread. ``pii_check(data, "event")`` returns the paths of fields that
    look like PII. ``summary()``, called on the events thread at every flush (the periodic
    one, ``flush()`` and ``close()``), returns the data of an ``$evaluation_summary`` event
    to queue ahead of the flush, or None.

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
        pii_check: PiiCheck | None = None,
        summary: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        self._config = config
        self._summary = summary
        self._sender = sender
        self._session_id = session_id
        self._sdk_version = sdk_version
        self._logger = logger
        self._on_error = on_error
        self._pii_check = pii_check
        self._environment_id = ""
        self._max_queue_size = config.max_queue_size
        self._log_full = RateLimitedLog(logger, logging.WARNING)
        self._log_closed = RateLimitedLog(logger, logging.WARNING)
        self._reset_runtime()

    def _reset_runtime(self) -> None:
        """All per-process state: called at construction and in a forked child."""
        config = self._config
        self._counters = counters = Counters()
        self._lock = counters.lock  # also guards the lifecycle fields below
        self._inbox: deque[Message] = deque()
        self._wake = threading.Event()
        # track() takes its slow path once the inbox holds `_threshold` events and the events
        # thread is not already woken, or holds more than `_trim_at` (then it trims).
        self._threshold = min(config.batch_size, config.max_queue_size)
        self._trim_at = config.max_queue_size
        self._closed = False
        self._close_result: FlushResult | None = None
        self._close_done = threading.Event()
        self._thread: threading.Thread | None = None
        self._admission = Admission(
            max_event_size=config.max_event_size,
            lenient=config.lenient,
            strict_pii_check=self._pii_check if config.strict_pii else None,
            on_dropped=self._count_invalid,
            logger=self._logger,
        )
        self._admit = self._admission.admit
        scan = self._pii_check if not config.strict_pii else None
        self._worker = Worker(
            config,
            inbox=self._inbox,
            wake=self._wake,
            counters=counters,
            sender=self._sender,
            builder=WireBuilder(
                session_id=self._session_id,
                sdk_version=self._sdk_version,
                max_event_size=config.max_event_size,
                pii=PiiWarner(scan, self._logger) if scan is not None else None,
                logger=self._logger,
                environment_id=lambda: self._environment_id,
            ),
            logger=self._logger,
            report=self._report,
            summary=self._summary,
        )

    def _count_invalid(self) -> None:
        with self._lock:
            self._counters.invalid_dropped += 1

    def _report(self, error: Exception) -> None:
        callback = self._on_error
        if callback is None:
            return
        try:
            callback(error)
        except Exception:
            self._logger.exception("flagkit: on_error callback raised")

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
        admitted = self._admit(event_type, data, context)
        if admitted is None:
            return
        copied, size = admitted
        inbox = self._inbox
        inbox.append((event_type, copied, _now(), context, size))
        if len(inbox) >= self._threshold and (
            len(inbox) > self._trim_at or not self._wake.is_set()
        ):
            self._on_threshold()

    def track_builtin(
        self,
        event_type: str,
        data: Mapping[str, Any],
        context: EvaluationContext | None = None,
    ) -> None:
        """Queue an event the SDK builds itself (``$exposure``, ``$evaluation_summary``).

        Its type is one of the reserved ``$``-prefixed names ``track()`` refuses, and its
        data is built by the SDK (flat, JSON-safe, small), so it is neither validated nor
        copied again: one append to the inbox, like ``track()``. Raises ``ValueError`` for
        any other type.
        """
        if event_type not in RESERVED_EVENT_TYPES:
            raise ValueError(f"{event_type!r} is not a built-in event type")
        size = 16 * len(data) + sum(len(v) for v in data.values() if type(v) is str)
        inbox = self._inbox
        inbox.append((event_type, dict(data), _now(), context, size))
        if len(inbox) >= self._threshold and (
            len(inbox) > self._trim_at or not self._wake.is_set()
        ):
            self._on_threshold()

    def _on_threshold(self) -> None:
        """Slow path of ``track()``: wake the events thread, trim an over-full inbox."""
        if self._closed:
            if self._worker.finished.is_set():
                dropped = self._drop_incoming(None)
                if dropped:
                    self._log_closed("flagkit: track() after close(): %d event(s) dropped", dropped)
            return
        over = len(self._inbox) - self._max_queue_size
        if over > 0 and self._drop_incoming(over):
            self._log_full(
                "flagkit: event queue full (max_queue_size=%d): dropped the oldest event(s)",
                self._max_queue_size,
            )
        if not self._wake.is_set():
            self._wake.set()

    def _drop_incoming(self, limit: int | None) -> int:
        """Discard up to ``limit`` (None: all, once the events thread is gone) of the oldest
        events in the inbox, counting them as dropped. Stops at a flush request while the
        events thread may still answer it. Lock-free pops; the lock only guards the count."""
        inbox = self._inbox
        dropped = 0
        while limit is None or dropped < limit:
            try:
                message = inbox.popleft()
            except IndexError:
                break
            if type(message) is not tuple:
                if limit is not None:
                    inbox.appendleft(message)
                    break
                continue
            dropped += 1
        if dropped:
            with self._lock:
                self._counters.callside_dropped += dropped
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
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._worker.run, name="flagkit-events", daemon=True)
            self._thread = thread
        thread.start()

    @property
    def stats(self) -> EventStats:
        """A consistent snapshot of the counters (see :class:`EventStats`)."""
        return self._counters.snapshot(len(self._inbox))

    def _outstanding_estimate(self) -> int:
        return len(self._inbox) + self._counters.outstanding

    def _post(self, message: FlushRequest | Abort) -> None:
        # The caller holds self._lock.
        self._counters.controls += 1
        self._inbox.append(message)

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Send everything queued so far; wait at most ``timeout`` seconds (None: no limit).

        Persists first (when persistence is on), then sends in batches. Returns when all
        events tracked before the call are delivered, when a send fails (``error`` says why;
        the events stay queued and are retried), or at the deadline (``error`` is a
        ``FlagKitError`` with code ``EVENT_SEND_FAILED``). Offline, it only persists. Once
        the API key was rejected it returns that error at once. Starts the events thread if
        needed. Thread-safe.
        """
        request = FlushRequest()
        with self._lock:
            if self._closed:
                return FlushResult(0, self._outstanding_estimate(), None)
            sent_before = request.sent_base = self._counters.sent
            request.dropped_base = self._counters.worker_dropped + self._counters.callside_dropped
            self._post(request)
        if threading.current_thread() is self._thread:
            return FlushResult(0, self._outstanding_estimate(), None)  # called from on_error
        self._start_worker()
        self._wake.set()
        if request.done.wait(timeout) and request.result is not None:
            return request.result
        with self._lock:
            sent = self._counters.sent - sent_before
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
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
        request = FlushRequest(final=True)
        with self._lock:
            first = not self._closed
            if first:
                self._closed = True
                self._threshold = self._trim_at = -1  # every later track() takes the slow path
                thread = self._thread
                sent_before = request.sent_base = self._counters.sent
                request.dropped_base = (
                    self._counters.worker_dropped + self._counters.callside_dropped
                )
                if thread is not None or self._inbox:
                    self._post(request)
        if not first:
            self._close_done.wait(timeout)
            return self._close_result or FlushResult(0, self._outstanding_estimate(), None)
        if thread is threading.current_thread():
            return FlushResult(0, self._outstanding_estimate(), None)  # from a callback
        if thread is None and self._inbox:
            self._start_worker()
            thread = self._thread
        error: Exception | None = None
        if thread is not None:
            self._wake.set()
            if not request.done.wait(_remaining(deadline)):
                error = FlagKitError(
                    "EVENT_SEND_FAILED", f"close() timed out after {timeout}s; stopping anyway"
                )
                with self._lock:
                    self._post(Abort())
                self._wake.set()
            remaining = _remaining(deadline)
            thread.join(None if remaining is None else remaining + 1.0)
            sender_thread = self._worker.send.thread
            if sender_thread is not None and not thread.is_alive():
                # It exits after its current POST (bounded by the HTTP timeout).
                remaining = _remaining(deadline)
                sender_thread.join(None if remaining is None else max(remaining, 0.1))
        else:
            self._worker.finished.set()
        self._on_threshold()  # drops anything tracked after the final drain
        with self._lock:
            sent = self._counters.sent - sent_before
        result = request.result
        if result is not None:
            self._close_result = FlushResult(sent, result.pending, error or result.error)
        else:
            self._close_result = FlushResult(sent, self._outstanding_estimate(), error)
        self._close_done.set()
        return self._close_result

    def after_fork(self) -> None:
        """In a forked child: fresh per-process state; restart the thread if it was running.

        The child does not send the parent's queued events: the parent still holds them (and,
        with persistence, still owns their records on disk). Counters restart at zero.
        """
        was_closed = self._closed
        was_running = self._thread is not None and not was_closed
        self._worker.after_fork()
        self._reset_runtime()
        if was_closed:
            self._closed = True
            self._threshold = self._trim_at = -1
            self._worker.finished.set()
            self._close_result = FlushResult(0, 0, None)
            self._close_done.set()
        elif was_running:
            self._start_worker()


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(deadline - time.monotonic(), 0.0)
