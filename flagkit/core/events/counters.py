"""What the event pipeline counts, and a log that does not flood.

:class:`Counters` is the one piece of state the caller's side and the events thread share
besides the inbox: every field is written under its lock, and :meth:`Counters.snapshot`
turns it into the public :class:`~flagkit.types.events.EventStats`.
"""

from __future__ import annotations

import logging
import threading
import time

from flagkit.types.events import EventStats

__all__ = ["Counters", "RateLimitedLog"]


class Counters:
    """Event counters shared by the caller's threads and the events thread (under ``lock``)."""

    __slots__ = (
        "callside_dropped",
        "controls",
        "failed_batches",
        "ingested",
        "invalid_dropped",
        "lock",
        "outstanding",
        "persisted",
        "recovered",
        "rejected",
        "sent",
        "unreadable",
        "worker_dropped",
    )

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ingested = 0  # events the events thread took from the inbox
        self.controls = 0  # control messages (flush, stop) waiting in the inbox
        self.callside_dropped = 0  # trimmed from an over-full inbox by track()
        self.invalid_dropped = 0  # refused by validation in lenient mode
        self.worker_dropped = 0  # given up by the events thread (full, closed, cap, ...)
        self.rejected = 0  # refused for good by the server, or held back by a rejected key
        self.unreadable = 0  # event-log lines or records that could not be read or sent
        self.sent = 0
        self.persisted = 0
        self.recovered = 0
        self.failed_batches = 0
        self.outstanding = 0  # events held by the events thread after its last pass

    def add_dropped(self, count: int, *, rejected: bool = False) -> None:
        with self.lock:
            self.worker_dropped += count
            if rejected:
                self.rejected += count

    def snapshot(self, inbox_length: int) -> EventStats:
        with self.lock:
            waiting = max(inbox_length - self.controls, 0)
            return EventStats(
                accepted=self.ingested + waiting + self.callside_dropped,
                sent=self.sent,
                dropped=self.callside_dropped + self.invalid_dropped + self.worker_dropped,
                persisted=self.persisted,
                recovered=self.recovered,
                failed_batches=self.failed_batches,
                rejected=self.rejected,
                unreadable=self.unreadable,
            )


class RateLimitedLog:
    """Logs a message at most once per ``interval`` seconds, counting what it held back."""

    def __init__(self, logger: logging.Logger, level: int, interval: float = 10.0) -> None:
        self._logger = logger
        self._level = level
        self._interval = interval
        self._next = 0.0
        self._suppressed = 0

    def __call__(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._suppressed += 1
            return
        self._next = now + self._interval
        suppressed, self._suppressed = self._suppressed, 0
        if suppressed:
            message += " (%d similar messages suppressed)"
            args = (*args, suppressed)
        self._logger.log(self._level, message, *args)
