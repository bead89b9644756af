"""Event-queue test helpers: a recording sender, and queues wired to a real ``HttpClient``.

:class:`Recorder` is the queue's own seam (what the client wires to ``HttpClient.post_json``),
so the mechanics tests need no network. :class:`Delivery` builds queues that POST over real
HTTP to a loopback server (``FlagKitServer`` or the fault server).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from flagkit.core.events import EventQueue
from flagkit.errors import NetworkError
from flagkit.http.http_client import HttpClient, HttpConfig
from flagkit.testing import FlagKitServer
from flagkit.types.config import CircuitBreakerOptions, RetryOptions
from flagkit.types.events import EventQueueConfig
from tests.support.fault_server import FaultServer

__all__ = ["Delivery", "MakeQueue", "Recorder", "deliveries", "event_queues"]

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


class Delivery:
    """Builds queues wired to a real HttpClient, and closes everything afterwards."""

    def __init__(self) -> None:
        self.clients: list[HttpClient] = []
        self.queues: list[EventQueue] = []

    def http(self, server: FlagKitServer | FaultServer, **overrides: Any) -> HttpClient:
        """An ``HttpClient`` for ``server`` with short retries; ``overrides`` are
        ``HttpConfig`` fields (the fault server checks no key: any valid one works)."""
        api_key = server.api_key if isinstance(server, FlagKitServer) else "sdk_fault_server_key"
        settings: dict[str, Any] = {
            "base_url": server.base_url,
            "api_key": api_key,
            "timeout": 2.0,
            "retries": 2,
            "retry": RetryOptions(base_delay=0.01, max_delay=0.05, jitter=0.0),
            "circuit_breaker": CircuitBreakerOptions(failure_threshold=3, reset_timeout=0.1),
        }
        settings.update(overrides)
        client = HttpClient(HttpConfig(**settings))
        self.clients.append(client)
        return client

    def queue(
        self,
        http: HttpClient,
        *,
        on_error: Callable[[Exception], None] | None = None,
        **overrides: Any,
    ) -> EventQueue:
        settings: dict[str, Any] = {
            "flush_interval": 60.0,
            "retry_backoff_base": 0.02,
            "retry_backoff_max": 0.1,
        }
        settings.update(overrides)
        queue = EventQueue(
            EventQueueConfig(**settings),
            sender=lambda events: http.post_json("/sdk/events/batch", {"events": events}),
            session_id=str(uuid.uuid4()),
            sdk_version="1.1.0",
            logger=_LOGGER,
            on_error=on_error,
        )
        self.queues.append(queue)
        return queue

    def close(self) -> None:
        for queue in self.queues:
            queue.close(timeout=2.0)
        for client in self.clients:
            client.close()


def deliveries() -> Iterator[Delivery]:
    """Yield a :class:`Delivery`; close its queues and clients after. Use as a fixture body."""
    made = Delivery()
    yield made
    made.close()
