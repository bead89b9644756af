"""The HTTP client across fork() and in the logs: a forked child builds its own connections,
and no log line (ours, httpx's, httpcore's) carries a stream token or an API key."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from flagkit.errors import NetworkError
from flagkit.types.config import RetryOptions
from tests.support import run_in_fork
from tests.support.clients import MakeClient, http_clients
from tests.support.fault_server import FaultServer, Reply, SseReply, sse_event

API_KEY = "sdk_primary_key_0001"
TOKEN = "tok_secret_0123456789"
OK = Reply.json({"ok": True})


@pytest.fixture
def make_client(server: FaultServer) -> Iterator[MakeClient]:
    yield from http_clients(
        server.base_url, api_key=API_KEY, retry=RetryOptions(base_delay=0.01, jitter=0.0)
    )


def test_forked_child_uses_new_connections_and_leaves_the_parents_alone(
    server: FaultServer, make_client: MakeClient
) -> None:
    """In a child the client connects anew (another client port) even while a parent
    thread holds its lock at fork(); the parent's keep-alive connection survives."""
    server.set_default("GET", "/sdk/init", OK)
    client = make_client()
    client.get_json("/sdk/init")
    client.get_json("/sdk/init")

    holding = threading.Event()
    release = threading.Event()

    def hold_the_lock() -> None:
        with client._lock:  # a parent thread inside the client at the moment of fork()
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    assert holding.wait(5)
    try:

        def child() -> dict[str, Any]:
            return {"answer": client.get_json("/sdk/init"), "again": client.get_json("/sdk/init")}

        report = run_in_fork(child)
    finally:
        release.set()
        holder.join(5)
    assert report == {"answer": {"ok": True}, "again": {"ok": True}}
    assert client.get_json("/sdk/init") == {"ok": True}
    ports = [r.client_address[1] for r in server.requests()]
    assert len(ports) == 5
    assert ports[0] == ports[1]  # keep-alive in the parent
    assert ports[2] not in (ports[0],)  # the child did not use the parent's connection
    assert ports[3] == ports[2]  # and kept its own
    assert ports[4] == ports[0]  # the parent's connection still works after the child


def test_stream_tokens_never_reach_any_log(
    server: FaultServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """httpx logs the stream URL at INFO and httpcore talks at DEBUG: the token is redacted
    from every record, which still says which request it was."""
    server.script("GET", "/sdk/stream", SseReply(frames=(sse_event("hello", {}),), then="close"))
    server.script("POST", "/sdk/stream/token", Reply.json({"token": TOKEN, "expiresIn": 60}))
    client = make_client()
    with caplog.at_level(logging.DEBUG):
        token, _ = client.fetch_stream_token()
        with client.open_event_stream(token) as lines:
            assert "event: hello" in list(lines)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "token=[REDACTED]" in text
    assert TOKEN not in text
    assert API_KEY not in text
    assert any(record.name == "httpx" for record in caplog.records)


def test_retry_warnings_name_the_server_without_secrets(
    server: FaultServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A retry warning says which server failed; user info in the URL is left out."""
    server.set_default("GET", "/sdk/init", Reply.error(503))
    base = server.base_url.replace("http://", "http://user:sdk_secret_password1@")
    client = make_client(base_url=base, retries=2)
    with caplog.at_level(logging.WARNING, logger="flagkit"), pytest.raises(NetworkError):
        client.get_json("/sdk/init")
    assert f"GET {server.base_url}/sdk/init failed (attempt 1/2)" in caplog.text
    assert "sdk_secret_password1" not in caplog.text
