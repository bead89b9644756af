"""SSE lines from HttpClient.open_event_stream (docs/protocol.md §4.5, §20.1) over real HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from flagkit.errors import AuthenticationError, FlagKitError, NetworkError
from flagkit.http import HttpClient, iter_lines
from flagkit.http.http_client import EventStream
from flagkit.types.config import RetryOptions
from tests.support import wait_until
from tests.support.clients import MakeClient, http_clients
from tests.support.fault_server import FaultServer, Reply, SseReply, sse_event

API_KEY = "sdk_primary_key_0001"


@pytest.fixture
def make_client(server: FaultServer) -> Iterator[MakeClient]:
    yield from http_clients(
        server.base_url, api_key=API_KEY, retry=RetryOptions(base_delay=0.01, jitter=0.0)
    )


# -- line splitting (pure) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"a\nb\n"], ["a", "b"]),
        ([b"a\r\nb\r\n"], ["a", "b"]),
        ([b"a\rb\r"], ["a", "b"]),
        ([b"a\r", b"\nb\n"], ["a", "b"]),  # CRLF split across chunks is one break
        ([b"a\r", b"", b"\nb\n"], ["a", "b"]),  # an empty chunk in between changes nothing
        ([b"a\r", b"\r\nb"], ["a", "", "b"]),  # CR, then CRLF: an empty line between
        ([b"\n\n"], ["", ""]),
        ([b"par", b"tial", b" line\n"], ["partial line"]),
        ([b"no newline at end"], ["no newline at end"]),
    ],
)
def test_lines_split_on_lf_crlf_and_cr_only(chunks: list[bytes], expected: list[str]) -> None:
    """Line breaks are exactly \\n, \\r\\n and \\r, wherever chunk boundaries fall."""
    assert list(iter_lines(chunks)) == expected


def test_unicode_line_separators_do_not_split_lines() -> None:
    """U+2028, U+2029, U+0085, VT and FF stay inside a line, even split across chunks."""
    text = "a\u2028b\u2029c\u0085d\x0be\x0cf"
    raw = text.encode("utf-8")
    chunks = [raw[:2], raw[2:3], raw[3:] + b"\n"]
    assert list(iter_lines(chunks)) == [text]


# -- over HTTP ------------------------------------------------------------------------------


def read_all(client: HttpClient, token: str = "tok") -> list[str]:
    with client.open_event_stream(token) as lines:
        return list(lines)


def test_stream_request_sends_only_the_sse_headers(
    server: FaultServer, make_client: MakeClient
) -> None:
    """The SSE GET carries the token in the query and no API key or SDK headers."""
    server.script("GET", "/sdk/stream", SseReply(then="close"))
    read_all(make_client(), "tok_abc-123")
    [request] = server.requests("GET", "/sdk/stream")
    assert request.param("token") == "tok_abc-123"
    assert request.header("Accept") == "text/event-stream"
    assert request.header("Cache-Control") == "no-cache"
    for absent in ("X-API-Key", "X-FlagKit-SDK-Version", "X-FlagKit-SDK-Language"):
        assert request.header(absent) is None


def test_mixed_line_endings_and_unicode_over_the_wire(
    server: FaultServer, make_client: MakeClient
) -> None:
    """CR, LF and CRLF frames split across writes arrive as the right lines; U+2028 stays."""
    frames: tuple[bytes, ...] = (
        b"event: a\r",
        b'\ndata: {"v": "x\\u2028y"}\r\n\r\n',
        b"event: b\rdata: 1\r\r",
        'event: c\ndata: "raw\u2028sep"\n\n'.encode(),
    )
    server.script("GET", "/sdk/stream", SseReply(frames=frames, then="close"))
    lines = read_all(make_client())
    assert lines == [
        "event: a",
        'data: {"v": "x\\u2028y"}',
        "",
        "event: b",
        "data: 1",
        "",
        "event: c",
        'data: "raw\u2028sep"',
        "",
    ]


def test_silence_longer_than_timeout_does_not_break_the_stream(
    server: FaultServer, make_client: MakeClient
) -> None:
    """The body has no read timeout: a gap longer than ``timeout`` is not an error."""
    frames = (sse_event("one", {}), sse_event("two", {}))
    server.script("GET", "/sdk/stream", SseReply(frames=frames, frame_delay=0.4, then="close"))
    lines = read_all(make_client(timeout=0.15))
    assert [line for line in lines if line.startswith("event:")] == ["event: one", "event: two"]


def test_response_headers_are_bounded_by_timeout(
    server: FaultServer, make_client: MakeClient
) -> None:
    """A server that never sends response headers fails the open with NETWORK_TIMEOUT."""
    gate = threading.Event()
    server.script("GET", "/sdk/stream", SseReply(gate=gate))
    try:
        with pytest.raises(NetworkError) as info:
            read_all(make_client(timeout=0.2))
    finally:
        gate.set()
    assert info.value.code == "NETWORK_TIMEOUT"


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply.error(401), "AUTH_INVALID_KEY"),
        (Reply.error(503), "NETWORK_SERVER_ERROR"),
        (Reply.json({"not": "sse"}), "NETWORK_INVALID_RESPONSE"),
    ],
)
def test_bad_stream_responses_raise_mapped_errors(
    server: FaultServer, make_client: MakeClient, reply: Reply, code: str
) -> None:
    """Non-2xx or non-SSE answers raise the §2.4 error, without key rotation."""
    server.set_default("GET", "/sdk/stream", reply)
    client = make_client(secondary_api_key="sdk_secondary_key_0002")
    with pytest.raises(FlagKitError) as info:
        read_all(client)
    assert info.value.code == code
    assert len(server.requests("GET", "/sdk/stream")) == 1
    if isinstance(info.value, AuthenticationError):
        assert not client.is_in_key_rotation()


def test_close_from_another_thread_ends_a_blocked_read(
    server: FaultServer, make_client: MakeClient
) -> None:
    """``close()`` on a stream that sends nothing wakes the reader, which ends quietly."""
    server.script("GET", "/sdk/stream", SseReply(frames=(sse_event("hello", {}),), then="hang"))
    client = make_client()
    opened = threading.Event()
    holder: list[EventStream] = []
    seen: list[str] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            with client.open_event_stream("tok") as lines:
                holder.append(lines)
                opened.set()
                seen.extend(lines)
        except BaseException as exc:  # pragma: no cover - asserted below
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    assert opened.wait(5)
    wait_until(lambda: "event: hello" in seen, message="first frame")
    holder[0].close()
    thread.join(5)
    assert not thread.is_alive()
    assert errors == []
    assert holder[0].closed


def test_client_close_ends_open_streams(server: FaultServer, make_client: MakeClient) -> None:
    """``HttpClient.close()`` also ends an event stream being read on another thread."""
    server.script("GET", "/sdk/stream", SseReply(then="hang"))
    client = make_client()
    opened = threading.Event()

    def reader() -> None:
        with client.open_event_stream("tok") as lines:
            opened.set()
            for _ in lines:
                pass

    thread = threading.Thread(target=reader)
    thread.start()
    assert opened.wait(5)
    client.close()
    thread.join(5)
    assert not thread.is_alive()


def test_server_closing_mid_stream_ends_iteration(
    server: FaultServer, make_client: MakeClient
) -> None:
    """When the server ends the response, iterating the lines simply stops (EOF)."""
    server.script("GET", "/sdk/stream", SseReply(frames=(sse_event("x", 1),), then="hang"))
    client = make_client()
    lines_seen: list[str] = []
    done = threading.Event()

    def reader() -> None:
        with client.open_event_stream("tok") as lines:
            lines_seen.extend(lines)
        done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    server.wait_for_open_streams(1)
    wait_until(lambda: "event: x" in lines_seen, message="first frame")
    server.end_streams()
    assert done.wait(5)
    thread.join(5)
