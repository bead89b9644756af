"""Servers for the web adapters' start-wait tests: a slow one and a dead one (real
loopback servers, no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flagkit.testing import FlagKitServer
from tests.support.fault_server import FaultServer, Reply

__all__ = ["dead_base_url", "slow_server"]

_NEW_CHECKOUT_ON = {
    "key": "new-checkout",
    "value": True,
    "enabled": True,
    "version": 1,
    "flagType": "boolean",
    "lastModified": "2025-03-01T12:00:00Z",
}


@contextmanager
def slow_server(delay: float = 0.5) -> Iterator[FaultServer]:
    """A server whose ``/sdk/init`` answers after ``delay`` seconds with one flag,
    ``new-checkout`` on (any API key is accepted)."""
    body = {
        "flags": [_NEW_CHECKOUT_ON],
        "environment": "test",
        "serverTime": "2025-03-01T12:00:00Z",
    }
    with FaultServer() as server:
        server.set_default("GET", "/sdk/init", Reply.json(body, delay=delay))
        yield server


def dead_base_url() -> str:
    """The base URL of a server that was started and stopped: connections are refused."""
    with FlagKitServer() as server:
        return server.base_url
