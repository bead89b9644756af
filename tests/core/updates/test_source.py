"""The data source's first load: transient answers are retried, only a rejected key is final.

Against the scripted fault server on loopback (real HTTP, status sequences).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from flagkit import AuthenticationError, FlagKitError, FlagKitOptions, FlagState, StreamingOptions
from flagkit.client import ClientState, FlagKitClient
from flagkit.core.store import FlagStore
from flagkit.core.updates.source import DataSource
from flagkit.http import HttpClient, HttpConfig
from tests.support.clients import loopback_client
from tests.support.fault_server import FaultServer, Reply

KEY = "sdk_test_key_123456"
TRANSIENT = [404, 408, 302, 400, 409, 425]
OK = Reply.json(
    {
        "flags": [
            {"key": "a", "value": True, "enabled": True, "flagType": "boolean", "version": 1}
        ],
        "serverTime": "2025-03-01T12:00:00Z",
    }
)


def _client(server: FaultServer, **overrides: Any) -> FlagKitClient:
    return loopback_client(
        server.base_url, api_key=KEY, polling_interval=0.05, enable_polling=False, **overrides
    )


@pytest.mark.parametrize("status", TRANSIENT)
def test_one_transient_answer_to_the_first_load_is_retried_within_initialize(status: int) -> None:
    """One 404/408/302/400/409/425 and then a healthy answer: initialize() succeeds."""
    with FaultServer() as server:
        server.script("GET", "/sdk/init", Reply.error(status), OK)
        client = _client(server)
        client.initialize()
        assert client.state is ClientState.READY
        assert client.get_boolean_value("a", False) is True
        assert len(server.requests("GET", "/sdk/init")) == 2


@pytest.mark.parametrize("status", TRANSIENT)
def test_transient_answers_past_the_start_timeout_are_retried_in_the_background(
    status: int,
) -> None:
    """Failures that outlast initialize()'s timeout leave the client STARTING (not FAILED);
    it keeps retrying with backoff and becomes ready once the server answers."""
    with FaultServer() as server:
        server.set_default("GET", "/sdk/init", Reply.error(status))
        client = _client(server, timeout=0.3)
        with pytest.raises(Exception) as info:
            client.initialize()
        assert not isinstance(info.value, AuthenticationError)
        assert client.state is ClientState.STARTING
        server.set_default("GET", "/sdk/init", OK)
        assert client.wait_for_ready(10)
        assert client.get_boolean_value("a", False) is True


@pytest.mark.parametrize("status", TRANSIENT)
def test_start_retries_transient_answers_until_ready(status: int) -> None:
    """start(): three transient answers, then success; never FAILED on the way."""
    with FaultServer() as server:
        server.script("GET", "/sdk/init", Reply.error(status), Reply.error(status), OK)
        client = _client(server)
        client.start()
        assert client.wait_for_ready(10)
        assert client.state is ClientState.READY
        assert len(server.requests("GET", "/sdk/init")) == 3


@pytest.mark.parametrize("status", [401, 403])
def test_only_a_rejected_key_is_final(status: int) -> None:
    """401/403 at start: AuthenticationError, FAILED, and no further request."""
    with FaultServer() as server:
        server.set_default("GET", "/sdk/init", Reply.error(status))
        client = _client(server)
        with pytest.raises(AuthenticationError):
            client.initialize()
        assert client.state is ClientState.FAILED
        assert client.wait_for_ready(0.3) is False
        assert len(server.requests("GET", "/sdk/init")) == 1


def test_close_with_a_rejected_key_sends_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """Once the key is rejected, close() does not POST the queued events, and logs no 401."""
    with FaultServer() as server:
        server.set_default("GET", "/sdk/init", Reply.error(401))
        server.set_default("POST", "/sdk/events/batch", Reply.error(401))
        client = _client(server, event_flush_interval=60.0)
        with pytest.raises(AuthenticationError):
            client.initialize()
        for n in range(5):
            client.track("clicked", {"n": n})
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="flagkit"):
            client.close(timeout=2)
        assert server.requests("POST", "/sdk/events/batch") == []
        assert not [r for r in caplog.records if "401" in r.getMessage()]


class _Recorder:
    """A SourceListener that records what the data source reports."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def source_ready(self) -> None:
        self.calls.append(("ready", None))

    def source_failed(self, error: FlagKitError) -> None:
        self.calls.append(("failed", error.code))

    def source_error(self, error: FlagKitError) -> None:
        self.calls.append(("error", error.code))

    def source_changed(self, flags: list[FlagState] | None) -> None:
        self.calls.append(("changed", None if flags is None else [f.key for f in flags]))


def _source(server: FaultServer, listener: _Recorder) -> tuple[DataSource, FlagStore, HttpClient]:
    options = FlagKitOptions(
        api_key=KEY,
        base_url=server.base_url,
        timeout=2.0,
        streaming=StreamingOptions(enabled=False),
        polling_interval=60.0,
    )
    store = FlagStore(ttl=300.0, logger=logging.getLogger("flagkit.test"))
    http = HttpClient(HttpConfig(base_url=server.base_url, api_key=KEY, timeout=2.0))
    return (
        DataSource(options, store, lambda: http, listener, logging.getLogger("flagkit")),
        store,
        http,
    )


def test_the_source_writes_the_store_and_reports_through_its_listener() -> None:
    """The data source parses and applies payloads itself; its owner only hears ready,
    changed (None for the first load, then the changed flags) and errors."""
    with FaultServer() as server:
        server.script("GET", "/sdk/init", OK)
        server.set_default(
            "GET",
            "/sdk/updates",
            Reply.json(
                {
                    "flags": [
                        {
                            "key": "b",
                            "value": "x",
                            "enabled": True,
                            "flagType": "string",
                            "version": 1,
                        }
                    ],
                    "checkedAt": "2025-03-01T12:00:05Z",
                }
            ),
        )
        listener = _Recorder()
        source, store, http = _source(server, listener)
        try:
            source.initialize(2.0)
            assert source.state is ClientState.READY
            assert store.snapshot.bools["a"] is True
            assert source.cursor == "2025-03-01T12:00:00Z"
            assert source.refresh(2.0)
            assert store.snapshot.strings["b"] == "x"
            assert source.cursor == "2025-03-01T12:00:05Z"
            assert listener.calls == [("changed", None), ("ready", None), ("changed", ["b"])]
        finally:
            source.close()
            http.close()


def test_a_rejected_key_is_reported_as_failed_once() -> None:
    """401 at the first load: error then failed, FAILED state, waiters released."""
    with FaultServer() as server:
        server.set_default("GET", "/sdk/init", Reply.error(401))
        listener = _Recorder()
        source, _store, http = _source(server, listener)
        try:
            with pytest.raises(AuthenticationError):
                source.initialize(2.0)
            assert source.state is ClientState.FAILED
            assert source.wait_ready(5.0) is False
            assert listener.calls == [("error", "AUTH_INVALID_KEY"), ("failed", "AUTH_INVALID_KEY")]
        finally:
            source.close()
            http.close()
