"""A recording event sender and an ``EventQueue`` factory for the event-queue tests.

The sender is the queue's own seam (what the client wires to ``HttpClient.post_json``), so
these tests need no network; delivery over real HTTP is tested in ``test_event_delivery.py``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from flagkit.core.events import EventQueue
from flagkit.errors import NetworkError
from flagkit.types.events import EventQueueConfig

__all__ = ["MakeQueue", "Recorder", "event_queues"]

MakeQueue = Callable[..., EventQueue]
Sender = Callable[[list[dict[str, Any]]], None]

_LOGGER = logging.getLogger("flagkit.events")


class Recorder:
    """A sender that records batches, can fail on demand and can block until released.

    ``fail_next`` fails that many calls; ``fail_always`` fails every call (a 503 as a
    ``NetworkError``). Clear ``gate`` to make calls block; ``entered`` is set once a call began.
    Thread-safe: the queue's sender thread calls it while the test reads it.
    """

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.threads: list[str] = []
        self.fail_next = 0
        self.fail_always = False
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, events: list[dict[str, Any]]) -> None:
        self.entered.set()
        self.gate.wait(10)
        with self.lock:
            self.threads.append(threading.current_thread().name)
            if self.fail_always or self.fail_next > 0:
                self.fail_next = max(self.fail_next - 1, 0)
                raise NetworkError("NETWORK_SERVICE_UNAVAILABLE", "server said 503")
            self.batches.append(list(events))

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every recorded event, in the order the batches arrived."""
        with self.lock:
            return [e for batch in self.batches for e in batch]

    def numbers(self) -> list[int]:
        """The ``eventData["i"]`` of every recorded event."""
        return [e["eventData"]["i"] for e in self.events]


def event_queues(
    recorder: Recorder, *, session_id: str | None = None, **defaults: Any
) -> Iterator[MakeQueue]:
    """Yield ``make(**overrides)`` building queues that send to ``recorder``; close them after.

    ``defaults`` and ``overrides`` are ``EventQueueConfig`` fields, except ``sender``,
    ``on_error``, ``pii_check`` and ``session_id``, which go to ``EventQueue`` itself. Without
    ``session_id`` each queue gets a fresh one. Use as a fixture body (``yield from``).
    """
    queues: list[EventQueue] = []

    def make(*, sender: Sender | None = None, **kwargs: Any) -> EventQueue:
        extra = {k: kwargs.pop(k) for k in ("on_error", "pii_check", "session_id") if k in kwargs}
        fresh = "session-" + uuid.uuid4().hex[:6]
        queue = EventQueue(
            EventQueueConfig(**(defaults | kwargs)),
            sender=sender or recorder,
            session_id=extra.pop("session_id", session_id or fresh),
            sdk_version="9.9.9",
            logger=_LOGGER,
            **extra,
        )
        queues.append(queue)
        return queue

    yield make
    recorder.gate.set()
    for queue in queues:
        queue.close(timeout=2.0)
