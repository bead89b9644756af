"""Client factories for loopback tests: fast settings, and every client closed after the test.

- :func:`loopback_client` builds a ``FlagKitClient`` and remembers it; the autouse fixture in
  ``tests/core/conftest.py`` calls :func:`close_open_clients` after each test, so a client is
  closed even when its test failed half-way.
- :func:`http_clients` is the body of a ``make_client`` fixture building ``HttpClient``\\ s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flagkit.client import FlagKitClient
from flagkit.http import HttpClient, HttpConfig
from flagkit.types.config import RetryOptions, StreamingOptions

__all__ = [
    "FAST_RETRY",
    "NO_STREAM",
    "MakeClient",
    "close_open_clients",
    "http_clients",
    "loopback_client",
]

FAST_RETRY = RetryOptions(base_delay=0.01, max_delay=0.02, jitter=0.0)
NO_STREAM = StreamingOptions(enabled=False)

MakeClient = Callable[..., HttpClient]

_OPEN: list[FlagKitClient] = []


def loopback_client(base_url: str, **overrides: Any) -> FlagKitClient:
    """A client with a 2 s timeout, two fast retries, no streaming and manual event flushes.

    ``overrides`` (``api_key`` among them) replace or add ``FlagKitClient`` keywords. Not
    thread-safe: call it from the test's own thread.
    """
    options: dict[str, Any] = {
        "base_url": base_url,
        "timeout": 2.0,
        "retries": 2,
        "retry": FAST_RETRY,
        "streaming": NO_STREAM,
        "event_flush_interval": 60.0,
    }
    options.update(overrides)
    client = FlagKitClient(**options)
    _OPEN.append(client)
    return client


def close_open_clients() -> None:
    """Close every client :func:`loopback_client` made since the last call."""
    while _OPEN:
        _OPEN.pop().close(timeout=1)


def http_clients(base_url: str, **defaults: Any) -> Iterator[MakeClient]:
    """Yield ``make(**overrides)`` building ``HttpClient``\\ s on ``defaults``; close them after.

    Use as a fixture body: ``yield from http_clients(server.base_url, api_key=KEY)``. Every
    client gets a 2 s timeout unless ``defaults`` or ``overrides`` say otherwise.
    """
    clients: list[HttpClient] = []

    def make(**overrides: Any) -> HttpClient:
        settings: dict[str, Any] = {"base_url": base_url, "timeout": 2.0, **defaults}
        settings.update(overrides)
        client = HttpClient(HttpConfig(**settings))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
