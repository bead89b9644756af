"""The scripted fault server used by the network tests behaves as documented."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator

import pytest

from tests.support.fault_server import FaultServer, RecordedRequest, Reply, SseReply, sse_event


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault:
        yield fault


def request(
    server: FaultServer, method: str, path: str, body: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request(method, server.prefix + path, body=body, headers={"X-Test": "1"})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_script_is_consumed_in_order_then_the_default_applies(server: FaultServer) -> None:
    """Scripted replies are used once each; then the route default, else a 404."""
    server.script("GET", "/a", Reply.error(503), Reply.json({"n": 2}))
    server.set_default("GET", "/a", Reply.json({"n": "default"}))
    assert request(server, "GET", "/a")[0] == 503
    assert json.loads(request(server, "GET", "/a")[2]) == {"n": 2}
    assert json.loads(request(server, "GET", "/a")[2]) == {"n": "default"}
    assert request(server, "GET", "/unscripted")[0] == 404


def test_requests_are_recorded_with_query_headers_and_body(server: FaultServer) -> None:
    """Each request is recorded relative to the prefix, with query, headers and body."""
    server.set_default("POST", "/b", Reply.json({}))
    request(server, "POST", "/b?x=1&x=2&y=", body=b'{"k": 1}')
    [recorded] = server.requests("POST", "/b")
    assert recorded.raw_path == "/api/v1/b?x=1&x=2&y="
    assert recorded.query == {"x": ["1", "2"], "y": [""]}
    assert recorded.header("x-test") == "1"
    assert recorded.json() == {"k": 1}


def test_error_reply_has_the_protocol_body_and_retry_after(server: FaultServer) -> None:
    """``Reply.error`` sends the §2.4 JSON error body and a Retry-After header."""
    server.script("GET", "/c", Reply.error(429, code="RATE", message="slow down", retry_after=3))
    status, headers, body = request(server, "GET", "/c")
    assert status == 429
    assert headers["Retry-After"] == "3"
    assert json.loads(body) == {"error": "RATE", "message": "slow down", "requestId": "req-fault"}


def test_dropped_reply_closes_without_a_response(server: FaultServer) -> None:
    """``Reply.dropped()`` makes the client see a connection closed with no status line."""
    server.script("GET", "/d", Reply.dropped())
    with pytest.raises(http.client.RemoteDisconnected):
        request(server, "GET", "/d")
    assert len(server.requests("GET", "/d")) == 1


def test_dynamic_reply_and_its_errors(server: FaultServer) -> None:
    """A callable reply sees the request; if it raises, the error is kept and a 500 sent."""

    def echo(req: RecordedRequest) -> Reply:
        if req.param("fail"):
            raise RuntimeError("broken script")
        return Reply.json({"path": req.path})

    server.set_default("GET", "/e", echo)
    assert json.loads(request(server, "GET", "/e")[2]) == {"path": "/e"}
    assert request(server, "GET", "/e?fail=1")[0] == 500
    assert [str(e) for e in server.errors] == ["broken script"]


def test_gate_holds_the_reply_until_set(server: FaultServer) -> None:
    """A gated reply is sent only after its event is set."""
    gate = threading.Event()
    server.script("GET", "/f", Reply.json({"released": True}, gate=gate))
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(request(server, "GET", "/f")[0]))
    thread.start()
    server.wait_for_requests(1, "GET", "/f")
    assert result == []
    gate.set()
    thread.join(5)
    assert result == [200]


def test_sse_reply_sends_frames_then_heartbeats_until_ended(server: FaultServer) -> None:
    """A held stream sends its frames, then heartbeats, and ends on ``end_streams()``."""
    server.script(
        "GET", "/s", SseReply(frames=(sse_event("x", {"a": 1}),), heartbeat_interval=0.01)
    )
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", server.prefix + "/s")
        response = conn.getresponse()
        assert response.getheader("Content-Type") == "text/event-stream"
        first = response.readline() + response.readline() + response.readline()
        assert first == b'event: x\ndata: {"a": 1}\n\n'
        assert response.readline() == b"event: heartbeat\n"
        server.wait_for_open_streams(1)
        server.end_streams()
        rest = response.read()  # returns once the server closes the stream
        assert rest.endswith(b"\n\n") or rest == b""
    finally:
        conn.close()
    assert server.open_streams == 0


def test_wait_for_requests_times_out_with_an_assertion(server: FaultServer) -> None:
    """Waiting for requests that never come raises AssertionError after the timeout."""
    with pytest.raises(AssertionError, match="expected 1 GET /never"):
        server.wait_for_requests(1, "GET", "/never", timeout=0.05)


def test_close_releases_held_replies_and_is_idempotent() -> None:
    """Closing the server wakes a gated handler and a second close does nothing."""
    fault = FaultServer().start()
    gate = threading.Event()
    fault.script("GET", "/g", Reply.json({}, gate=gate))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            request(fault, "GET", "/g")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    fault.wait_for_requests(1)
    fault.close()
    fault.close()
    thread.join(5)
    assert not thread.is_alive()
    assert len(errors) == 1
