"""Fixtures for the local-server tests: a running server, HTTP clients and an SSE reader."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from flagkit.server import FlagKitServer
from tests.server.helpers import SSEReader

BASE_FLAGS: list[dict[str, Any]] = [
    {"key": "dark-mode", "value": True},
    {"key": "banner", "flagType": "string", "value": "Hello", "enabled": False},
    {"key": "limit", "value": 10},
    {
        "key": "config",
        "value": {"theme": "blue", "sizes": [1, 2]},
        "variations": [{"id": "blue", "value": {"theme": "blue"}}, {"id": "red", "value": {}}],
        "fallthrough": {"variation": "blue"},
    },
]
FALLTHROUGH = {"variation": "blue"}
BASE_SEGMENTS: list[dict[str, Any]] = [{"key": "beta-users", "included": ["u1", "u2"]}]


@pytest.fixture
def server() -> Iterator[FlagKitServer]:
    """A started server with four flags of every type and one segment."""
    with FlagKitServer(flags=BASE_FLAGS, segments=BASE_SEGMENTS, heartbeat_interval=30) as srv:
        yield srv


@pytest.fixture
def http(server: FlagKitServer) -> Iterator[httpx.Client]:
    """An httpx client for the SDK endpoints, sending the server's API key."""
    with httpx.Client(
        base_url=server.base_url, headers={"X-API-Key": server.api_key}, timeout=5.0
    ) as client:
        yield client


@pytest.fixture
def admin(server: FlagKitServer) -> Iterator[httpx.Client]:
    """An httpx client for the admin API, with the bearer token."""
    with httpx.Client(
        base_url=server.base_url + "/admin",
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=5.0,
    ) as client:
        yield client


@pytest.fixture
def open_stream(server: FlagKitServer) -> Callable[..., SSEReader]:
    """Open an SSE stream the way the SDK does (token, then GET) and wait until it is live."""

    def _open(target: FlagKitServer | None = None) -> SSEReader:
        srv = target or server
        before = srv.stream_count
        token = httpx.post(
            srv.base_url + "/sdk/stream/token", headers={"X-API-Key": srv.api_key}, json={}
        ).json()["token"]
        reader = SSEReader(f"{srv.base_url}/sdk/stream?token={token}")
        srv.wait_for_streams(before + 1)
        assert reader.connected.wait(5)
        return reader

    return _open
