"""Limits that hold against any server: total deadline per request, abort on close, response
and SSE event sizes. Each test plays the hostile server for real on loopback."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Iterator

import pytest

from flagkit.errors import FlagKitError, NetworkError
from flagkit.http.responses import DEFAULT_RESPONSE_LIMIT, MB
from flagkit.http.sse import SseParser, iter_lines
from flagkit.types.config import RetryOptions, StreamingOptions
from tests.support import wait_until
from tests.support.clients import MakeClient, http_clients, loopback_client
from tests.support.fault_server import FaultServer, Reply, SseReply

API_KEY = "sdk_primary_key_0001"
SLOW = 0.05  # seconds between two bytes: a 2 KB body takes well over a minute


@pytest.fixture
def make_client(server: FaultServer) -> Iterator[MakeClient]:
    yield from http_clients(
        server.base_url, api_key=API_KEY, retry=RetryOptions(base_delay=0.01, jitter=0.0)
    )


def padded(size: int) -> dict[str, str]:
    return {"pad": "x" * size}


# -- total deadline --------------------------------------------------------------------------


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_dripping_server_cannot_hold_a_request_past_its_timeout(
    server: FaultServer, make_client: MakeClient, headers_too: bool
) -> None:
    """Each byte arrives well within the per-read timeout, but the request as a whole
    ends with NETWORK_TIMEOUT once ``timeout`` has passed."""
    server.set_default(
        "GET", "/sdk/init", Reply.dripping(padded(2000), interval=SLOW, headers_too=headers_too)
    )
    client = make_client(timeout=0.5, retries=1)
    started = time.monotonic()
    with pytest.raises(NetworkError) as info:
        client.get_json("/sdk/init")
    elapsed = time.monotonic() - started
    assert info.value.code == "NETWORK_TIMEOUT"
    assert elapsed < 0.5 + 1.0, f"request took {elapsed:.1f}s"


def test_the_callers_deadline_bounds_a_dripping_body_too(
    server: FaultServer, make_client: MakeClient
) -> None:
    """A deadline nearer than ``timeout`` ends the dripping request at the deadline."""
    server.set_default("GET", "/sdk/updates", Reply.dripping(padded(2000), interval=SLOW))
    client = make_client(timeout=30.0, retries=3)
    started = time.monotonic()
    with pytest.raises(NetworkError) as info:
        client.get_json("/sdk/updates", deadline=time.monotonic() + 0.5)
    assert info.value.code == "NETWORK_TIMEOUT"
    assert time.monotonic() - started < 0.5 + 1.0


def test_event_posts_are_bounded_like_gets(server: FaultServer, make_client: MakeClient) -> None:
    """An event batch answered by a dripping server fails by its timeout."""
    server.set_default("POST", "/sdk/events/batch", Reply.dripping(padded(2000), interval=SLOW))
    client = make_client(timeout=0.5, retries=1)
    started = time.monotonic()
    with pytest.raises(NetworkError):
        client.post_json("/sdk/events/batch", {"events": []})
    assert time.monotonic() - started < 0.5 + 1.0


def test_close_aborts_a_request_in_flight(server: FaultServer, make_client: MakeClient) -> None:
    """``close()`` from another thread ends a request stuck reading a dripping body."""
    server.set_default("GET", "/sdk/updates", Reply.dripping(padded(2000), interval=SLOW))
    client = make_client(timeout=60.0, retries=3)
    errors: list[BaseException] = []

    def poll() -> None:
        try:
            client.get_json("/sdk/updates")
        except BaseException as exc:
            errors.append(exc)

    poller = threading.Thread(target=poll)
    poller.start()
    server.wait_for_requests(1, "GET", "/sdk/updates")
    client.close()
    poller.join(5)
    assert not poller.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], FlagKitError)
    assert errors[0].code == "INTERNAL_STATE_ERROR"
    assert len(server.requests()) == 1  # and no retry after the close


# -- response size ----------------------------------------------------------------------------


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "unannounced"])
def test_a_response_over_its_limit_is_refused_without_being_held(
    server: FaultServer, make_client: MakeClient, declared: bool
) -> None:
    """A 2xx body over the limit raises NETWORK_RESPONSE_TOO_LARGE (recoverable); reading
    stops at the limit, so memory stays near it (here 1 MB for the event endpoint)."""
    size = 20 * DEFAULT_RESPONSE_LIMIT
    server.set_default("POST", "/sdk/events/batch", Reply.huge(size, declare_length=declared))
    client = make_client(retries=1)
    tracemalloc.start()
    try:
        with pytest.raises(NetworkError) as info:
            client.post_json("/sdk/events/batch", {"events": []})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.code == "NETWORK_RESPONSE_TOO_LARGE"
    assert info.value.recoverable
    assert str(DEFAULT_RESPONSE_LIMIT) in info.value.message
    assert peak < 4 * DEFAULT_RESPONSE_LIMIT, f"peak {peak / MB:.1f} MB"


def test_flag_endpoints_accept_bodies_above_the_general_limit(
    server: FaultServer, make_client: MakeClient
) -> None:
    """``/sdk/init`` may carry a large flag set: 3 MB is over 1 MB but under its 50 MB."""
    server.set_default("GET", "/sdk/init", Reply.huge(3 * MB))
    assert make_client().get_json("/sdk/init") == {}


def test_a_huge_error_body_is_read_only_for_its_message(
    server: FaultServer, make_client: MakeClient
) -> None:
    """A 503 with a 30 MB body still raises the 503 error: the body is cut, not refused."""
    server.set_default("GET", "/sdk/init", Reply(status=503, filler=30 * MB))
    with pytest.raises(NetworkError) as info:
        make_client(retries=1).get_json("/sdk/init")
    assert info.value.code == "NETWORK_SERVER_ERROR"
    assert info.value.status_code == 503


# -- SSE event size ---------------------------------------------------------------------------


def test_an_event_that_never_ends_fails_the_stream(
    server: FaultServer, make_client: MakeClient
) -> None:
    """``data:`` lines with no blank line: the parser raises NETWORK_RESPONSE_TOO_LARGE at
    the event bound instead of collecting them forever; the stream is then given up."""
    server.script("GET", "/sdk/stream", SseReply(then="flood"))
    client = make_client()
    parser = SseParser(max_event=2 * MB)
    lines = 0
    with client.open_event_stream("tok") as stream, pytest.raises(NetworkError) as info:
        for line in stream:
            lines += 1
            parser.feed(line)
    assert info.value.code == "NETWORK_RESPONSE_TOO_LARGE"
    assert 2 * MB // 65536 <= lines <= 2 * MB // 65536 + 1
    wait_until(lambda: server.open_streams == 0, message="stream closed")


def test_event_bound_counts_the_data_of_one_event_only() -> None:
    """Many events whose total exceeds the bound pass; one event over it raises."""
    parser = SseParser(max_event=10)
    for _ in range(5):
        for line in ("event: e", "data: 12345678", ""):
            parser.feed(line)
    parser.feed("event: big")
    parser.feed("data: 123456")
    with pytest.raises(NetworkError):
        parser.feed("data: 123456")
    # The parser starts afresh after the error.
    assert [parser.feed(line) for line in ("event: ok", "data: 1", "")][-1] is not None


def test_a_line_over_the_line_bound_fails_the_stream() -> None:
    """A line without a break, longer than the bound, raises instead of growing."""
    with pytest.raises(NetworkError) as info:
        list(iter_lines([b"x" * 6, b"x" * 6, b"\n"], max_line=10))
    assert info.value.code == "NETWORK_RESPONSE_TOO_LARGE"


# -- through the SDK client -------------------------------------------------------------------


def test_initialize_returns_by_its_timeout_against_a_dripping_server(
    server: FaultServer,
) -> None:
    """``initialize()`` with ``timeout=1`` against a 1-byte-at-a-time ``/sdk/init`` raises
    a recoverable timeout within about a second, instead of reading for minutes."""
    server.set_default("GET", "/sdk/init", Reply.dripping(padded(2000), interval=SLOW))
    client = loopback_client(server.base_url, api_key=API_KEY, timeout=1.0)
    started = time.monotonic()
    with pytest.raises(NetworkError) as info:
        client.initialize()
    assert time.monotonic() - started < 1.0 + 1.0
    assert info.value.code == "NETWORK_TIMEOUT"
    assert info.value.recoverable


def test_close_leaves_no_poller_stuck_on_a_dripping_poll(server: FaultServer) -> None:
    """A poll stuck reading a dripping ``/sdk/updates`` ends when the client closes."""
    server.set_default("GET", "/sdk/init", Reply.json({"flags": []}))
    server.set_default(
        "GET", "/sdk/updates", Reply.dripping({"flags": [], "pad": "x" * 2000}, interval=SLOW)
    )
    client = loopback_client(server.base_url, api_key=API_KEY, timeout=60.0, polling_interval=0.05)
    client.initialize()
    server.wait_for_requests(1, "GET", "/sdk/updates")
    client.close(timeout=1)
    wait_until(
        lambda: not any(t.name == "flagkit-poller" for t in threading.enumerate()),
        timeout=3,
        message="poller thread ended",
    )


def test_a_client_drops_an_endless_event_and_reconnects(server: FaultServer) -> None:
    """Through the SDK client: a stream that floods one event is given up at the event
    bound and the client connects again (it does not keep growing one event)."""
    server.set_default("GET", "/sdk/init", Reply.json({"flags": []}))
    server.set_default("POST", "/sdk/stream/token", Reply.json({"token": "t", "expiresIn": 60}))
    server.set_default("GET", "/sdk/stream", SseReply(then="flood"))
    client = loopback_client(
        server.base_url,
        api_key=API_KEY,
        streaming=StreamingOptions(reconnect_interval=0.05, max_backoff=0.1),
    )
    client.initialize()
    server.wait_for_requests(2, "GET", "/sdk/stream", timeout=10)
