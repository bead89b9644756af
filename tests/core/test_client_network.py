"""FlagKitClient over real HTTP: start-up, polling, streaming, faults and the persisted cache.

Every test talks to a real server on 127.0.0.1 — the local FlagKit server
(``flagkit.testing.FlagKitServer``) or the scripted fault server — never to mocks.
"""

from __future__ import annotations

import itertools
import logging
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from flagkit import (
    AuthenticationError,
    CircuitBreakerOptions,
    EvaluationContext,
    EvaluationReason,
    FlagState,
    NetworkError,
    StreamingOptions,
)
from flagkit.client import ClientState, FlagKitClient
from flagkit.testing import FlagKitServer
from tests.support import poll_until
from tests.support.clients import loopback_client
from tests.support.fault_server import FaultServer, Reply, SseReply, sse_event

KEY = "sdk_test_key_123456"
FAST_STREAM = StreamingOptions(
    reconnect_interval=0.05, max_backoff=0.1, max_reconnect_attempts=2, retry_after_fallback=0.3
)


def make_client(base_url: str, **overrides: Any) -> FlagKitClient:
    """A client with tiny intervals and fast retries, closed after the test."""
    return loopback_client(base_url, **{"api_key": KEY, "polling_interval": 0.05, **overrides})


def init_body(flags: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "flags": flags,
        "environment": "test",
        "environmentId": "env-1",
        "serverTime": "2025-03-01T12:00:00Z",
        "pollingIntervalSeconds": 0,
    }
    body.update(extra)
    return body


def wire(key: str, value: Any, version: int = 1, **extra: Any) -> dict[str, Any]:
    kind = {bool: "boolean", str: "string", int: "number", float: "number"}.get(type(value), "json")
    return {
        "key": key,
        "value": value,
        "enabled": True,
        "version": version,
        "flagType": kind,
        "lastModified": "2025-03-01T12:00:00Z",
        **extra,
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- start-up ------------------------------------------------------------------------------


def test_initialize_loads_flags_with_the_sdk_headers() -> None:
    """``initialize`` fetches /sdk/init with the API key and serves the flags."""
    with FlagKitServer(flags={"dark-mode": True}) as server:
        client = make_client(server.base_url)
        client.initialize()
        assert client.get_boolean_value("dark-mode", False) is True
        assert client.environment_id == server.environment.id
        [request] = server.requests_to("init")
        assert request.headers.get("X-API-Key") == KEY
        client.close()


def test_start_loads_in_the_background_and_wait_for_ready_reports_it() -> None:
    """``start`` returns at once; ``wait_for_ready`` says when the flags are in."""
    ready = threading.Event()
    with FlagKitServer(flags={"a": "x"}) as server:
        client = make_client(server.base_url, on_ready=ready.set)
        client.start()
        assert client.wait_for_ready(10)
        assert ready.wait(5)
        assert client.get_string_value("a", "") == "x"
        client.close()


def test_server_down_at_start_then_up() -> None:
    """Unreachable at start: a recoverable NetworkError, defaults served, retries succeed."""
    port = free_port()
    errors: list[Exception] = []
    client = make_client(
        f"http://127.0.0.1:{port}/api/v1", bootstrap={"a": "boot"}, on_error=errors.append
    )
    with pytest.raises(NetworkError) as info:
        client.initialize()
    assert info.value.recoverable
    assert client.state is ClientState.STARTING and not client.is_ready()
    assert client.get_string_value("a", "d") == "boot"
    assert client.evaluate("a").reason is EvaluationReason.BOOTSTRAP
    assert client.wait_for_ready(0.05) is False
    with FlagKitServer(flags={"a": "server"}, port=port):
        assert client.wait_for_ready(15)
        assert client.get_string_value("a", "d") == "server"
    assert client.wait_for_callbacks(5)
    assert errors and isinstance(errors[0], NetworkError)
    client.close()


def test_start_never_raises_when_the_server_is_down() -> None:
    """``start()`` with nothing listening returns, and ``wait_for_ready`` says False."""
    client = make_client(f"http://127.0.0.1:{free_port()}/api/v1", timeout=0.5)
    client.start()
    assert client.wait_for_ready(0.3) is False
    assert client.get_boolean_value("x", True) is True
    client.close()


def test_rejected_key_raises_and_stops_retrying() -> None:
    """A 401 raises AuthenticationError; the client does not retry a rejected key."""
    with FlagKitServer(flags={"a": True}, api_keys=["sdk_the_right_key_1"]) as server:
        client = make_client(server.base_url)
        with pytest.raises(AuthenticationError) as info:
            client.initialize()
        assert not info.value.recoverable
        assert client.state is ClientState.FAILED
        assert client.wait_for_ready() is False
        assert client.refresh() is False
        with pytest.raises(AuthenticationError):
            client.initialize()
        assert len(server.requests_to("init")) == 1
        client.close()


def test_secondary_key_takes_over_after_a_401() -> None:
    """With a rejected primary and a valid secondary key the client rotates and loads."""
    with FlagKitServer(flags={"a": True}, api_keys=["sdk_secondary_key_42"]) as server:
        client = make_client(server.base_url, secondary_api_key="sdk_secondary_key_42")
        client.initialize()
        assert client.get_boolean_value("a", False) is True
        assert client.is_in_key_rotation()
        client.close()


def test_5xx_then_success_within_one_initialize() -> None:
    """503, 503, 200: the retries inside one ``initialize`` get through."""
    with FaultServer() as fault:
        fault.script(
            "GET",
            "/sdk/init",
            Reply.error(503),
            Reply.error(503),
            Reply.json(init_body([wire("a", True)])),
        )
        client = make_client(fault.base_url, retries=3)
        client.initialize()
        assert client.get_boolean_value("a", False) is True
        assert len(fault.requests("GET", "/sdk/init")) == 3
        client.close()


def test_429_is_recoverable_and_the_client_gets_there() -> None:
    """A 429 with Retry-After is honoured and the client still becomes ready."""
    with FaultServer() as fault:
        fault.script("GET", "/sdk/init", Reply.error(429, retry_after=0))
        fault.set_default("GET", "/sdk/init", Reply.json(init_body([wire("a", 1)])))
        client = make_client(fault.base_url, retries=1)
        try:
            client.initialize()
        except AuthenticationError as exc:
            assert exc.recoverable and exc.code == "AUTH_RATE_LIMITED"
        assert client.wait_for_ready(10)
        assert client.get_number_value("a", 0) == 1.0
        client.close()


def test_slow_init_beyond_the_timeout_fails_fast_and_retries_in_background() -> None:
    """A response slower than ``timeout`` gives NetworkError; a later attempt succeeds."""
    gate = threading.Event()
    with FaultServer() as fault:
        fault.script("GET", "/sdk/init", Reply.json(init_body([wire("a", "slow")]), gate=gate))
        fault.set_default("GET", "/sdk/init", Reply.json(init_body([wire("a", "fast")])))
        client = make_client(fault.base_url, timeout=0.3, retries=1)
        with pytest.raises(NetworkError) as info:
            client.initialize()
        assert info.value.recoverable
        gate.set()
        assert client.wait_for_ready(10)
        assert client.get_string_value("a", "") == "fast"
        client.close()


@pytest.mark.parametrize(
    "reply",
    [
        Reply.malformed_json(),
        Reply.json(init_body("not a list")),  # type: ignore[arg-type]
        Reply.json({"environmentId": "x"}),
        Reply.json(["not", "an", "object"]),
        Reply.text("<html>proxy error</html>", content_type="text/html"),
    ],
    ids=["truncated", "flags-not-a-list", "no-flags", "array-body", "html"],
)
def test_garbage_init_is_refused_and_bootstrap_still_served(reply: Reply) -> None:
    """A body that is not a valid init response raises a recoverable error, keeps bootstrap."""
    with FaultServer() as fault:
        fault.set_default("GET", "/sdk/init", reply)
        client = make_client(fault.base_url, retries=1, bootstrap={"a": False})
        with pytest.raises(NetworkError) as info:
            client.initialize()
        assert info.value.code == "NETWORK_INVALID_RESPONSE" and info.value.recoverable
        assert client.get_boolean_value("a", True) is False
        client.close()


def test_wrong_typed_init_fields_are_tolerated() -> None:
    """Bad optional fields are ignored and a malformed flag entry is skipped."""
    with FaultServer() as fault:
        fault.set_default(
            "GET",
            "/sdk/init",
            Reply.json(
                init_body(
                    [wire("a", True), {"key": "bad", "value": 1, "enabled": "yes", "version": 1}],
                    pollingIntervalSeconds="soon",
                    serverTime=12,
                    environmentId=None,
                    metadata=[1],
                )
            ),
        )
        client = make_client(fault.base_url, retries=1)
        client.initialize()
        assert client.get_boolean_value("a", False) is True
        assert not client.has_flag("bad")
        assert client.environment_id == ""
        client.close()


# -- polling ---------------------------------------------------------------------------------


def test_polling_delivers_updates_and_on_update() -> None:
    """A changed flag reaches the client by polling; ``on_update`` gets the changed flags."""
    updates: list[list[FlagState]] = []
    got = threading.Event()

    def on_update(flags: list[FlagState]) -> None:
        updates.append(flags)
        got.set()

    with FlagKitServer(flags={"a": "v1", "b": 1}) as server:
        client = make_client(server.base_url, on_update=on_update)
        client.initialize()
        server.set_flag("a", "v2")
        assert got.wait(10)
        assert client.get_string_value("a", "") == "v2"
        assert [f.key for f in updates[0]] == ["a"]
        since = server.requests_to("updates")[0]
        assert "%3A" in since.raw_query  # the cursor is URL-encoded
        client.close()


def test_poll_with_no_changes_keeps_flags_fresh() -> None:
    """Successful empty polls renew freshness: flags stay CACHED past ``cache_ttl``."""
    with FlagKitServer(flags={"a": True}) as server:
        client = make_client(server.base_url, cache_ttl=0.3)
        client.initialize()
        first_expiry = client.snapshot.expires_at
        assert poll_until(lambda: time.monotonic() > first_expiry + 0.1)
        assert poll_until(lambda: client.evaluate("a").reason is EvaluationReason.CACHED)
        assert client.snapshot.expires_at > first_expiry
        server.stop()  # no more confirmations: the flags go stale, values stay
        assert poll_until(lambda: client.evaluate("a").reason is EvaluationReason.STALE_CACHE)
        assert client.get_boolean_value("a", False) is True
        client.close()


def test_polling_applies_deletions() -> None:
    """A flag deleted on the server disappears from a polling client."""
    with FlagKitServer(flags={"a": True, "b": True}) as server:
        client = make_client(server.base_url)
        client.initialize()
        server.delete_flag("a")
        assert poll_until(lambda: not client.has_flag("a"))
        assert client.get_boolean_value("a", False) is False
        assert client.get_boolean_value("b", False) is True
        client.close()


def test_polling_backs_off_exponentially_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Failing polls wait longer each time (doubling) and a success brings the update."""
    with FaultServer() as fault:
        fault.set_default("GET", "/sdk/init", Reply.json(init_body([wire("a", "v1")])))
        fault.script("GET", "/sdk/updates", *[Reply.error(500) for _ in range(4)])
        fault.set_default(
            "GET",
            "/sdk/updates",
            Reply.json(
                {"flags": [wire("a", "v2", version=2)], "checkedAt": "2025-03-01T12:00:05Z"}
            ),
        )
        client = make_client(fault.base_url, retries=1, polling_interval=0.02)
        with caplog.at_level(logging.WARNING, logger="flagkit"):
            client.initialize()
            assert poll_until(lambda: client.get_string_value("a", "") == "v2")
        delays = [
            float(m.group(1))
            for r in caplog.records
            if (m := re.search(r"next attempt in ([0-9.]+)s", r.getMessage()))
        ]
        # 0.04, 0.08, 0.16, 0.32 s (+ at most 10% jitter): each wait is longer than the last.
        assert len(delays) == 4
        assert all(later > earlier * 1.5 for earlier, later in itertools.pairwise(delays))
        requests = fault.requests("GET", "/sdk/updates")
        assert len(requests) == 5
        assert requests[0].param("since") == "2025-03-01T12:00:00Z"


def test_malformed_and_wrong_typed_updates_keep_the_last_good_flags() -> None:
    """Broken update bodies are skipped; good flags in a partly bad list still apply."""
    with FaultServer() as fault:
        fault.set_default(
            "GET", "/sdk/init", Reply.json(init_body([wire("a", "v1"), wire("b", 1)]))
        )
        fault.script(
            "GET",
            "/sdk/updates",
            Reply.malformed_json(),
            Reply.text("<html>oops</html>", content_type="text/html"),
            Reply.json({"flags": {"a": "v9"}}),
            Reply.json(
                {
                    "flags": [
                        wire("a", "v2", version=2),
                        {"key": "b", "value": 2, "enabled": "yes", "version": 5},
                    ],
                    "checkedAt": 17,
                }
            ),
        )
        fault.set_default("GET", "/sdk/updates", Reply.json({"flags": []}))
        client = make_client(fault.base_url, retries=1, polling_interval=0.01)
        client.initialize()
        assert poll_until(lambda: client.get_string_value("a", "") == "v2")
        assert client.get_number_value("b", 0) == 1.0  # the bad entry changed nothing
        assert poll_until(lambda: len(fault.requests("GET", "/sdk/updates")) >= 6)
        assert client.state is ClientState.READY
        client.close()


def test_circuit_opens_on_repeated_failures_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After repeated failures the breaker stops sending; half-open probing recovers."""
    with FlagKitServer(flags={"a": "v1"}) as server:
        client = make_client(
            server.base_url,
            retries=1,
            polling_interval=0.01,
            circuit_breaker=CircuitBreakerOptions(failure_threshold=2, reset_timeout=0.3),
        )
        client.initialize()
        server.inject_fault("updates", statuses=[503, 503])
        with caplog.at_level(logging.WARNING, logger="flagkit"):
            server.set_flag("a", "v2")
            assert poll_until(lambda: client.get_string_value("a", "") == "v2", 15)
        assert any("NETWORK_CIRCUIT_OPEN" in r.getMessage() for r in caplog.records)
        client.close()


def test_refresh_fetches_now() -> None:
    """``refresh()`` applies server changes immediately, without waiting for a poll."""
    with FlagKitServer(flags={"a": 1}) as server:
        client = make_client(server.base_url, enable_polling=False)
        client.initialize()
        server.set_flag("a", 2)
        assert client.refresh() is True
        assert client.get_number_value("a", 0) == 2.0
        client.close()


# -- streaming -------------------------------------------------------------------------------


def test_stream_updates_arrive_promptly() -> None:
    """With streaming on (and slow polling), an admin change arrives over SSE."""
    changed = threading.Event()
    with FlagKitServer(flags={"a": "v1", "b": True}) as server:
        client = make_client(server.base_url, streaming=FAST_STREAM, polling_interval=60.0)
        client.add_update_listener(lambda flags: changed.set() if flags else None)
        client.initialize()
        server.wait_for_streams(1, timeout=10)
        server.set_flag("a", "v2")
        assert changed.wait(5)
        assert client.get_string_value("a", "") == "v2"
        server.delete_flag("b")
        assert poll_until(lambda: not client.has_flag("b"), 5)
        assert server.requests_to("updates") == [] or all(
            r.path.endswith("/sdk/updates") for r in server.requests_to("updates")
        )
        client.close()


def test_stream_segment_updates_change_targeting() -> None:
    """A ``segment_updated`` event changes who a segment rule matches."""
    flag = {
        "key": "beta",
        "value": False,
        "flagType": "boolean",
        "variations": [{"id": "on", "value": True}, {"id": "off", "value": False}],
        "rules": [{"id": "r", "segments": ["testers"], "variation": "on"}],
        "fallthrough": {"variation": "off"},
    }
    with FlagKitServer(flags=[flag], segments=[{"key": "testers", "included": ["u1"]}]) as srv:
        client = make_client(srv.base_url, streaming=FAST_STREAM, polling_interval=60.0)
        client.initialize()
        u2 = EvaluationContext(user_id="u2")
        assert client.get_boolean_value("beta", False, u2) is False
        srv.wait_for_streams(1, timeout=10)
        srv.set_segment("testers", included=["u1", "u2"])
        assert poll_until(lambda: client.get_boolean_value("beta", False, u2), 5)
        assert client.evaluate("beta", u2).reason is EvaluationReason.SEGMENT_MATCH
        client.close()


def test_stream_events_are_applied_and_malformed_ones_ignored() -> None:
    """SSE upserts, deletes and resets apply; junk events change nothing; old versions lose."""
    frames = (
        sse_event("flag_updated", wire("a", "v2", version=2)),
        sse_event("flag_updated", wire("a", "stale", version=1)),
        sse_event("flag_updated", {"value": "no key"}),
        sse_event("flag_deleted", {"nokey": 1}),
        sse_event("flag_deleted", {"key": "b"}),
        sse_event("unknown_event", {"x": 1}),
        sse_event("flags_reset", [wire("a", "v3", version=3), wire("c", True)]),
        sse_event("flag_updated", wire("marker", True)),
    )
    with FaultServer() as fault:
        fault.set_default(
            "GET", "/sdk/init", Reply.json(init_body([wire("a", "v1"), wire("b", True)]))
        )
        fault.set_default(
            "POST", "/sdk/stream/token", Reply.json({"token": "tok", "expiresIn": 3600})
        )
        fault.script("GET", "/sdk/stream", SseReply(frames=frames, then="hold"))
        fault.set_default("GET", "/sdk/updates", Reply.json({"flags": []}))
        client = make_client(fault.base_url, streaming=FAST_STREAM, polling_interval=60.0)
        client.initialize()
        assert poll_until(lambda: client.has_flag("marker"), 10)
        assert client.get_string_value("a", "") == "v3"
        assert not client.has_flag("b") and client.has_flag("c")
        client.close()


def test_streaming_falls_back_to_polling() -> None:
    """When the stream cannot connect, updates keep coming by polling."""
    with FlagKitServer(flags={"a": "v1"}) as server:
        server.inject_fault("stream_token", statuses=[500] * 50)
        client = make_client(server.base_url, streaming=FAST_STREAM, polling_interval=0.05)
        client.initialize()
        server.set_flag("a", "v2")
        assert poll_until(lambda: client.get_string_value("a", "") == "v2", 10)
        client.close()


def test_server_dying_and_coming_back() -> None:
    """Values survive a server outage; the client picks up changes once it is back."""
    with FlagKitServer(flags={"a": "v1"}) as first:
        port = first.port
        client = make_client(first.base_url, streaming=FAST_STREAM, polling_interval=0.05)
        client.initialize()
        first.wait_for_streams(1, timeout=10)
    assert client.get_string_value("a", "") == "v1"
    with FlagKitServer(flags={"a": "v2"}, port=port) as second:
        second.set_flag("a", "v3", version=7)
        assert poll_until(lambda: client.get_string_value("a", "") == "v3", 15)
    client.close()


# -- persisted cache -------------------------------------------------------------------------


def test_restart_with_server_down_serves_the_persisted_flags(tmp_path: Path) -> None:
    """Flags persisted by one client are served by the next one while the server is down."""
    with FlagKitServer(flags={"a": "persisted", "n": 4}) as server:
        port = server.port
        first = make_client(server.base_url, cache_storage_path=str(tmp_path), encrypt_cache=True)
        first.initialize()
        first.close()
    second = make_client(
        f"http://127.0.0.1:{port}/api/v1",
        cache_storage_path=str(tmp_path),
        encrypt_cache=True,
        timeout=0.5,
    )
    assert second.get_string_value("a", "") == "persisted"  # before any network
    with pytest.raises(NetworkError):
        second.initialize()
    result = second.evaluate("n")
    assert (result.value, result.reason) == (4, EvaluationReason.CACHED)
    second.close()
    third = make_client(
        f"http://127.0.0.1:{port}/api/v1",
        cache_storage_path=str(tmp_path),
        encrypt_cache=True,
        cache_ttl=0.0,
    )
    assert third.evaluate("n").reason is EvaluationReason.STALE_CACHE
    third.close()


def test_tampered_persisted_cache_is_reported_and_replaced(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A corrupted cache file is refused with a warning, then overwritten by the next save."""
    (tmp_path / "junk").mkdir()
    with FlagKitServer(flags={"a": "good"}) as server:
        c1 = make_client(server.base_url, cache_storage_path=str(tmp_path), encrypt_cache=True)
        c1.initialize()
        c1.close()
        [cache_file] = [p for p in tmp_path.iterdir() if p.is_file()]
        cache_file.write_text('{"iv": "AAAA", "data": "AAAA", "tag": "AAAA", "version": 1}')
        with caplog.at_level(logging.WARNING, logger="flagkit"):
            c2 = make_client(server.base_url, cache_storage_path=str(tmp_path), encrypt_cache=True)
        assert c2.get_string_value("a", "default") == "default"
        assert any("persisted flag cache rejected" in r.getMessage() for r in caplog.records)
        c2.initialize()
        c2.close()
    c3 = make_client(
        "http://127.0.0.1:9/api/v1", cache_storage_path=str(tmp_path), encrypt_cache=True
    )
    assert c3.get_string_value("a", "") == "good"
    c3.close()
