"""The ``flagkit-events`` thread: one loop over the messages in the inbox.

Callers talk to the worker only through one FIFO inbox of messages
(:mod:`~flagkit.core.events.messages`): event tuples from ``track()``, a ``FlushRequest``
from ``flush()``/``close()``, an ``Abort`` when ``close()`` gives up. As it is in call
order, "everything tracked before this flush" is exactly the events ahead of the request.
The worker owns every other piece of state; the only other shared object is
:class:`~flagkit.core.events.counters.Counters`. A second thread, ``flagkit-events-send``,
only calls the sender and hands back each outcome, so a slow POST never delays persistence.

Each pass: read the inbox, take send outcomes, write the log when due, trim to
``max_queue_size``, claim orphans from the log, send a batch, answer finished flushes.

Send outcomes (``docs/protocol.md §10.4``):

- delivered: counted, marked ``sent`` in the log;
- the API key was rejected (401 or 403, or the HTTP layer refusing to send with it):
  sending stops for good; events stay in the log when persistence is on, else are dropped and
  counted as ``rejected``; reported once through ``on_error``;
- a permanent client error (400, a refused signature, 413, ...): that batch is dropped,
  counted as ``rejected`` and reported once through ``on_error``;
- anything else (5xx, 408, 429, network, a sender bug): the batch goes back to the front of
  the queue and is retried with exponential backoff and jitter.

Only a stop ends the loop: an unexpected exception is logged, reported once per type
through ``on_error``, and the loop goes on.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from flagkit.core.events.counters import Counters, RateLimitedLog
from flagkit.core.events.log import EventLog, ScanResult, default_event_storage_path
from flagkit.core.events.messages import (
    FlushRequest,
    Message,
    Sender,
    SendThread,
    classify,
)
from flagkit.core.events.summaries import summary_event
from flagkit.core.events.wire import Incoming, Pending, WireBuilder
from flagkit.errors import FlagKitError, StorageError
from flagkit.types.events import EventQueueConfig, FlushResult

__all__ = ["Worker"]

_BATCH_BYTES: Final = 1024 * 1024  # estimated JSON per POST, besides max_batch_events
_PERSIST_AT: Final = 1000  # write the log early once this many records wait


class Worker:
    """The state and loop of the events thread (see the module docstring)."""

    def __init__(
        self,
        config: EventQueueConfig,
        *,
        inbox: deque[Message],
        wake: threading.Event,
        counters: Counters,
        sender: Sender,
        builder: WireBuilder,
        logger: logging.Logger,
        report: Callable[[Exception], None],
        summary: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        self._config = config
        self._summary = summary
        self._inbox = inbox
        self._wake = wake
        self._counters = counters
        self._builder = builder
        self._logger = logger
        self._report = report
        self._max_queue_size = config.max_queue_size
        self._batch_threshold = min(config.batch_size, config.max_queue_size)
        self._log_full = RateLimitedLog(logger, logging.WARNING)
        self._log_send = RateLimitedLog(logger, logging.WARNING)
        self._log_unexpected = RateLimitedLog(logger, logging.ERROR)
        self._reported: set[str] = set()
        self.finished = threading.Event()  # set once the loop ended and the log is closed
        self.send = SendThread(sender, wake)
        self._pending: deque[Pending] = deque()
        self._inflight: list[Pending] | None = None
        self._unpersisted: list[Pending] = []
        self._requests: list[FlushRequest] = []
        self._seq = 0
        self._log: EventLog | None = None
        self._failed_log: EventLog | None = None
        self._compact_at = config.compaction_threshold_bytes
        self._unclaimed = 0
        self._spilled = 0
        self._drain_mode = False  # send what is queued without waiting for a full batch
        self._failures = 0
        self._retry_at = 0.0
        self._next_tick = self._next_persist = self._next_rescan = 0.0
        self._stopping = False
        self._hard_stop = False
        self._refused: Exception | None = None  # the API key was rejected: never send

    # ---------------------------------------------------------------- the loop

    def run(self) -> None:
        config = self._config
        now = time.monotonic()
        self._next_tick = now + config.flush_interval
        self._next_persist = now + config.persistence_flush_interval_ms / 1000.0
        self._next_rescan = now + config.recovery_interval
        if config.persist:
            self._guarded(self._open_log)
        while True:
            self._wake.clear()
            try:
                delay = self._cycle()
            except Exception as exc:
                self._unexpected(exc)
                delay = None if self._stopping else min(1.0, config.flush_interval)
            if delay is None:
                break
            if delay > 0:
                self._wake.wait(delay)
        self._guarded(self._teardown)
        self.send.stop()
        self.finished.set()

    def _guarded(self, step: Callable[[], None]) -> None:
        try:
            step()
        except Exception as exc:
            self._unexpected(exc)

    def _unexpected(self, error: Exception) -> None:
        self._log_unexpected("unexpected error in the events thread, carrying on: %r", error)
        self._logger.debug("traceback", exc_info=error)
        self._report_once(type(error).__name__, error)

    def _report_once(self, key: str, error: Exception) -> None:
        if key not in self._reported:
            self._reported.add(key)
            self._report(error)

    def _cycle(self) -> float | None:
        """One pass; returns how long to sleep, or None to stop."""
        config = self._config
        now = time.monotonic()
        self._read_inbox()
        self._collect_outcomes(now)
        if self._log is not None and (
            now >= self._next_persist
            or self._requests
            or self._stopping
            or len(self._unpersisted) >= _PERSIST_AT
        ):
            self._persist()
        if now >= self._next_persist:
            self._next_persist = now + config.persistence_flush_interval_ms / 1000.0
        if now >= self._next_tick:
            while self._next_tick <= now:
                self._next_tick += config.flush_interval
            self._add_summary()
            if self._pending:
                self._drain_mode = True
        self._enforce_bound()
        self._maybe_rescan(now)
        if not self._hard_stop:
            self._dispatch(now)
        if not self._pending:
            self._drain_mode = False
        self._settle_requests()
        with self._counters.lock:
            self._counters.outstanding = self._outstanding()
        if self._hard_stop or (self._stopping and not self._requests):
            return None
        wake_at = [self._next_tick]
        if self._log is not None:
            wake_at.append(self._next_persist)
            if not config.offline:
                wake_at.append(self._next_rescan)
        if self._retry_at > now and self._pending:
            wake_at.append(self._retry_at)
        return max(min(wake_at) - time.monotonic(), 0.0)

    def _read_inbox(self) -> None:
        """Take every message, in order; events between control messages go in one batch."""
        popleft = self._inbox.popleft
        taken: list[Incoming] = []
        while True:
            try:
                message = popleft()
            except IndexError:
                break
            if type(message) is tuple:
                taken.append(message)
                continue
            if taken:
                self._ingest(taken)
                taken = []
            with self._counters.lock:
                self._counters.controls -= 1
            if isinstance(message, FlushRequest):
                self._add_summary()  # every flush carries the counts since the last one
                message.target = self._seq
                self._requests.append(message)
                if message.final:
                    self._stopping = True
            else:
                self._stopping = self._hard_stop = True
        if taken:
            self._ingest(taken)

    def _ingest(self, taken: list[Incoming]) -> None:
        first = self._seq + 1
        self._seq += len(taken)
        if self._refused is not None and self._log is None:
            self._counters.add_dropped(len(taken), rejected=True)
            with self._counters.lock:
                self._counters.ingested += len(taken)
            return
        persist = self._log is not None
        try:
            records = self._builder.build(taken, first, not persist)
        except Exception:
            self._counters.add_dropped(len(taken))  # counted, then reported by the loop
            with self._counters.lock:
                self._counters.ingested += len(taken)
            raise
        self._pending.extend(records)
        if persist:
            self._unpersisted.extend(records)
        with self._counters.lock:
            self._counters.ingested += len(taken)

    def _add_summary(self) -> None:
        """Queue the ``$evaluation_summary`` of the lookups since the last one, if any."""
        event = summary_event(self._summary, self._logger)
        if event is not None:
            self._ingest([event])

    # ---------------------------------------------------------------- sending

    def _dispatch(self, now: float) -> None:
        config = self._config
        if config.offline or self._refused is not None:
            return
        if self._inflight is not None or not self._pending:
            return
        open_requests = [r for r in self._requests if not r.done.is_set()]
        if not (open_requests or self._drain_mode or len(self._pending) >= self._batch_threshold):
            return
        if now < self._retry_at and all(r.attempted for r in open_requests):
            return
        if self._unpersisted:
            self._persist()
        pending = self._pending
        batch: list[Pending] = []
        budget = 0
        while pending and len(batch) < config.max_batch_events:
            head = pending[0]
            if batch and budget + head.size > _BATCH_BYTES:
                break
            budget += head.size
            batch.append(pending.popleft())
        self._mark(batch, "sending")
        for request in open_requests:
            request.attempted = True
        self._inflight = batch
        self.send.submit([p.wire for p in batch])

    def _collect_outcomes(self, now: float) -> None:
        outcomes = self.send.outcomes
        while outcomes:
            outcome = outcomes.popleft()
            batch = self._inflight or []
            self._inflight = None
            if outcome is None:
                with self._counters.lock:
                    self._counters.sent += len(batch)
                self._failures = 0
                self._retry_at = 0.0
                self._mark(batch, "sent")
                continue
            error = outcome if isinstance(outcome, Exception) else RuntimeError(repr(outcome))
            kind = classify(error)
            if kind == "key":
                self._key_rejected(batch, error)
            elif kind == "batch":
                self._batch_rejected(batch, error)
            else:
                self._retry_later(batch, error, now)
            for request in self._requests:
                if request.attempted and not request.done.is_set():
                    self._finish(request, error)

    def _retry_later(self, batch: list[Pending], error: Exception, now: float) -> None:
        self._pending.extendleft(reversed(batch))
        self._failures += 1
        config = self._config
        delay = min(
            config.retry_backoff_base * 2 ** min(self._failures - 1, 30),
            config.retry_backoff_max,
        ) * (0.5 + random.random() / 2)
        self._retry_at = now + delay
        self._drain_mode = True
        with self._counters.lock:
            self._counters.failed_batches += 1
        self._mark(batch, "pending")
        if not isinstance(error, FlagKitError):
            self._logger.error("event sender raised a non-FlagKit error", exc_info=error)
        self._log_send(
            "sending %d event(s) failed (%s); %d queued, retrying in %.1fs",
            len(batch),
            error,
            len(self._pending),
            delay,
        )

    def _batch_rejected(self, batch: list[Pending], error: Exception) -> None:
        self._mark(batch, "dropped")
        self._counters.add_dropped(len(batch), rejected=True)
        self._logger.error(
            "the server refused a batch of %d event(s) for good (%s); dropped",
            len(batch),
            error,
        )
        self._report(error)

    def _key_rejected(self, batch: list[Pending], error: Exception) -> None:
        """Stop sending for good: keep the events in the log, or drop and count them."""
        self._pending.extendleft(reversed(batch))
        self._mark(batch, "pending")
        first = self._refused is None
        self._refused = error
        if self._log is None:
            dropped = len(self._pending)
            self._pending.clear()
            self._counters.add_dropped(dropped, rejected=True)
            kept = f"{dropped} queued event(s) dropped"
        else:
            self._persist()
            kept = "queued events stay in the event log"
        if first:
            self._logger.error(
                "the API key was rejected (%s); events are no longer sent, %s",
                error,
                kept,
            )
            self._report(error)

    # ---------------------------------------------------------------- flush requests

    def _outstanding(self) -> int:
        return len(self._pending) + (len(self._inflight) if self._inflight else 0)

    def _finish(self, request: FlushRequest, error: Exception | None) -> None:
        counters = self._counters
        with counters.lock:
            sent = counters.sent - request.sent_base
            dropped = counters.worker_dropped + counters.callside_dropped - request.dropped_base
        pending = self._outstanding() + self._spilled
        if error is None and dropped > 0:
            error = FlagKitError(
                "EVENT_QUEUE_FULL", f"{dropped} event(s) were dropped while flushing (queue full)"
            )
        request.result = FlushResult(sent, pending, error)
        request.done.set()

    def _settle_requests(self) -> None:
        if not self._requests:
            return
        head: int | None = None
        if self._inflight:
            head = self._inflight[0].seq
        elif self._pending:
            head = self._pending[0].seq
        for request in self._requests:
            if request.done.is_set():
                continue
            if self._refused is not None:
                if not self._unpersisted:
                    self._finish(request, self._refused)
            elif self._config.offline:
                if not self._unpersisted:
                    self._finish(request, None)
            elif head is None or head > request.target:
                self._finish(request, None)
        self._requests = [r for r in self._requests if not r.done.is_set()]

    # ---------------------------------------------------------------- the event log

    def _open_log(self) -> None:
        config = self._config
        log = EventLog(
            config.storage_path or default_event_storage_path(),
            max_persisted_events=config.max_persisted_events,
        )
        self._log = log
        try:
            log.open()
            result = log.scan(claim_limit=self._claimable(), compact=True)
        except StorageError as exc:
            self._storage_failed(exc)
            return
        except Exception as exc:  # e.g. a NUL byte in the path: carry on in memory
            self._storage_failed(
                StorageError(
                    "CACHE_WRITE_ERROR",
                    f"event persistence cannot use {log.directory!r}: {exc!r}",
                    details={"path": log.directory},
                    cause=exc,
                )
            )
            return
        self._adopt(result)
        self._compact_at = max(config.compaction_threshold_bytes, 2 * result.size)

    def _own_ids(self) -> set[str]:
        """Ids of the persisted events this worker holds (the log need not parse them)."""
        own = {p.event_id for p in self._pending}
        own.update(p.event_id for p in self._inflight or ())
        return own

    def _claimable(self) -> int:
        """How many orphaned events to claim from the log now."""
        if self._config.offline or self._stopping or self._refused is not None:
            return 0
        return max(self._max_queue_size - self._outstanding(), 0)

    def _adopt(self, result: ScanResult) -> None:
        owner = self._log.owner if self._log is not None else None
        for recovered in result.claimed:
            self._seq += 1
            self._pending.append(self._builder.rebuild(recovered, self._seq))
            if recovered.released_by is not None and recovered.released_by == owner:
                self._spilled = max(self._spilled - 1, 0)
        if result.claimed:
            self._drain_mode = True  # send them now, not at the next tick
        self._unclaimed = result.unclaimed
        self._spilled = min(self._spilled, result.unclaimed)
        with self._counters.lock:
            self._counters.recovered += len(result.claimed)
            self._counters.worker_dropped += result.dropped + result.unencodable
            self._counters.unreadable += result.unreadable + result.unencodable
        if result.claimed:
            self._logger.info(
                "recovered %d unsent event(s) from the event log", len(result.claimed)
            )

    def _storage_failed(self, error: StorageError) -> None:
        log, self._log = self._log, None
        if log is not None:
            self._failed_log = log  # keep the owner lock until we stop
        for pending in self._unpersisted:
            pending.persisted = True  # nothing more to wait for
        self._unpersisted = []
        path = (error.details or {}).get("path", "?")
        self._logger.error(
            "%s (path: %s); event persistence is off, events stay in memory only",
            error.message,
            path,
        )
        self._report(error)

    def _persist(self) -> None:
        log = self._log
        batch = self._unpersisted
        if log is None or not batch:
            return
        self._unpersisted = []
        try:
            skipped = log.append(
                [(p.event_id, p.event_type, p.timestamp_ms, p.wire) for p in batch]
            )
        except StorageError as exc:
            self._storage_failed(exc)
            return
        finally:
            for pending in batch:
                pending.persisted = True
        if skipped:
            self._logger.warning("%d event(s) could not be written to the log", len(skipped))
        with self._counters.lock:
            self._counters.persisted += len(batch) - len(skipped)
        self._maybe_compact()

    def _maybe_compact(self) -> None:
        log = self._log
        if log is None or log.size < self._compact_at:
            return
        try:
            result = log.scan(claim_limit=self._claimable(), compact=True, own=self._own_ids())
        except StorageError as exc:
            self._storage_failed(exc)
            return
        self._adopt(result)
        self._compact_at = max(self._config.compaction_threshold_bytes, 2 * result.size)

    def _mark(self, batch: list[Pending], status: str) -> None:
        log = self._log
        if log is None or not batch:
            return
        try:
            log.mark([p.event_id for p in batch], status)
        except StorageError as exc:
            self._storage_failed(exc)
            return
        if status == "sent":
            self._maybe_compact()

    def _enforce_bound(self) -> None:
        over = self._outstanding() - self._max_queue_size
        if over <= 0:
            return
        over = min(over, len(self._pending))
        if self._log is not None:
            self._persist()
        victims = [self._pending.popleft() for _ in range(over)]
        log = self._log
        if log is not None:
            try:
                log.release([p.event_id for p in victims])
            except StorageError as exc:
                self._storage_failed(exc)
            else:
                self._spilled += len(victims)
                self._unclaimed += len(victims)
                self._log_full(
                    "event queue full (max_queue_size=%d): %d oldest event(s) left in "
                    "the event log to send later",
                    self._max_queue_size,
                    len(victims),
                )
                return
        self._counters.add_dropped(len(victims))
        self._log_full(
            "event queue full (max_queue_size=%d): dropped the oldest event(s)",
            self._max_queue_size,
        )

    def _maybe_rescan(self, now: float) -> None:
        log = self._log
        if log is None or self._config.offline or self._stopping or self._refused is not None:
            return
        room = self._claimable()
        due = now >= self._next_rescan
        wanted = self._unclaimed > 0 and room >= max(self._max_queue_size // 2, 1)
        if not (due or wanted):
            return
        self._next_rescan = now + self._config.recovery_interval
        compact = log.size >= self._compact_at
        try:
            result = log.scan(claim_limit=room, compact=compact, own=self._own_ids())
        except StorageError as exc:
            self._storage_failed(exc)
            return
        self._adopt(result)
        if compact:
            self._compact_at = max(self._config.compaction_threshold_bytes, 2 * result.size)

    # ---------------------------------------------------------------- stopping, forking

    def _teardown(self) -> None:
        self._read_inbox()  # events tracked up to the stop are kept (or counted) too
        self._persist()
        outstanding = self._outstanding()
        log = self._log
        if log is not None:
            if outstanding:
                self._logger.info(
                    "%d unsent event(s) left in the event log %s",
                    outstanding,
                    log.log_path,
                )
            log.close()
        elif outstanding:
            self._counters.add_dropped(outstanding)
            self._logger.warning(
                "%d event(s) could not be delivered before close() and were dropped",
                outstanding,
            )
        if self._failed_log is not None:
            self._failed_log.close()
        with self._counters.lock:
            self._counters.outstanding = outstanding
        for request in self._requests:
            if not request.done.is_set():
                self._finish(request, self._refused)

    def after_fork(self) -> None:
        """In a forked child: let go of the parent's event log without releasing its locks."""
        for log in (self._log, self._failed_log):
            if log is not None:
                log.after_fork()
