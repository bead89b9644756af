"""SSE parsing (docs/protocol.md §4.5) and the StreamingManager (§6), over real HTTP."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from flagkit.core.updates.streaming import StreamingManager, reconnect_delay
from flagkit.http import HttpClient, HttpConfig
from flagkit.http.sse import SseEvent, SseParser, parse_sse_lines
from flagkit.types.config import CircuitBreakerOptions, RetryOptions, StreamingOptions
from tests.support import wait_until
from tests.support.fault_server import FaultServer, RecordedRequest, Reply, SseReply, sse_event

API_KEY = "sdk_primary_key_0001"
TOKEN_OK = Reply.json({"token": "tok-1", "expiresIn": 3600})
HOLD = SseReply(then="hold", heartbeat_interval=0.02)
FLAG = {"key": "dark-mode", "value": True, "enabled": True, "version": 2}

# -- parser ---------------------------------------------------------------------------------


def test_parser_dispatches_on_blank_line_with_event_and_data() -> None:
    """An ``event:`` and a ``data:`` line followed by a blank line make one event."""
    lines = ["event: flag_updated", 'data: {"key":"a"}', ""]
    assert list(parse_sse_lines(lines)) == [SseEvent("flag_updated", '{"key":"a"}')]


def test_parser_concatenates_data_lines_without_separator() -> None:
    """Several data lines are joined with no newline (FlagKit framing, not W3C SSE)."""
    lines = ["event: flags_reset", "data: [1,", "data:  2]", ""]
    assert list(parse_sse_lines(lines)) == [SseEvent("flags_reset", "[1,2]")]


def test_parser_ignores_events_without_name_or_data() -> None:
    """A frame with no ``event:`` line or no data is dropped and does not leak forward."""
    lines = ["data: orphan", "", "event: lonely", "", "event: ok", "data: 1", ""]
    assert list(parse_sse_lines(lines)) == [SseEvent("ok", "1")]


def test_parser_trims_and_ignores_comments_ids_and_retry() -> None:
    """Whitespace around fields is trimmed; comments, ``id:`` and ``retry:`` are skipped."""
    lines = [": keep-alive", "  event:   heartbeat  ", "id: 7", "retry: 10", "data:\t{} ", "   "]
    assert list(parse_sse_lines(lines)) == [SseEvent("heartbeat", "{}")]


def test_parser_keeps_unicode_separators_inside_data() -> None:
    """A U+2028 inside data (escaped or raw) is part of the data, not a line break."""
    parser = SseParser()
    assert parser.feed("event: x") is None
    assert parser.feed('data: {"v":"a\\u2028b","w":"c\u2028d"}') is None
    event = parser.feed("")
    assert event == SseEvent("x", '{"v":"a\\u2028b","w":"c\u2028d"}')


def test_reconnect_delay_doubles_up_to_the_cap() -> None:
    """Backoff is reconnect_interval * 2**(n-1), capped at max_backoff."""
    options = StreamingOptions(reconnect_interval=3.0, max_backoff=30.0)
    assert [reconnect_delay(n, options) for n in (1, 2, 3, 4, 5, 99)] == [
        3.0,
        6.0,
        12.0,
        24.0,
        30.0,
        30.0,
    ]


# -- manager fixtures -----------------------------------------------------------------------


@dataclass
class Recorder:
    """Collects callback invocations and lets tests wait for them."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    connected: int = 0
    fallbacks: list[str] = field(default_factory=list)
    states_at_fallback: list[str] = field(default_factory=list)
    manager: StreamingManager | None = None
    cond: threading.Condition = field(default_factory=threading.Condition)
    after_event: Callable[[str, Any], None] | None = None
    after_fallback: Callable[[str], None] | None = None

    def on_event(self, name: str, data: Any) -> None:
        with self.cond:
            self.events.append((name, data))
            self.cond.notify_all()
        if self.after_event is not None:
            self.after_event(name, data)

    def on_connected(self) -> None:
        with self.cond:
            self.connected += 1
            self.cond.notify_all()

    def on_fallback(self, reason: str) -> None:
        state = self.manager.state if self.manager is not None else ""
        with self.cond:
            self.fallbacks.append(reason)
            self.states_at_fallback.append(state)
            self.cond.notify_all()
        if self.after_fallback is not None:
            self.after_fallback(reason)

    def wait_for(self, predicate: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise AssertionError(f"timed out waiting for {what}")


Start = Callable[..., tuple[StreamingManager, Recorder]]


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault:
        yield fault


@pytest.fixture
def start(server: FaultServer) -> Iterator[Start]:
    managers: list[StreamingManager] = []
    clients: list[HttpClient] = []

    def make(
        *, recorder: Recorder | None = None, **overrides: Any
    ) -> tuple[StreamingManager, Recorder]:
        settings: dict[str, Any] = {
            "reconnect_interval": 0.02,
            "max_reconnect_attempts": 3,
            "heartbeat_interval": 5.0,
            "retry_after_fallback": 60.0,
            "max_backoff": 0.1,
        }
        settings.update(overrides)
        http = HttpClient(
            HttpConfig(
                base_url=server.base_url,
                api_key=API_KEY,
                timeout=2.0,
                retry=RetryOptions(base_delay=0.01, jitter=0.0),
                circuit_breaker=CircuitBreakerOptions(failure_threshold=1000),
            )
        )
        recorder = recorder or Recorder()
        manager = StreamingManager(
            http,
            StreamingOptions(**settings),
            on_event=recorder.on_event,
            on_connected=recorder.on_connected,
            on_fallback=recorder.on_fallback,
            logger=logging.getLogger("flagkit.streaming"),
        )
        recorder.manager = manager
        clients.append(http)
        managers.append(manager)
        manager.start()
        return manager, recorder

    yield make
    for manager in managers:
        manager.stop()
    for http in clients:
        http.close()


def token_requests(server: FaultServer) -> list[RecordedRequest]:
    return server.requests("POST", "/sdk/stream/token")


def stream_requests(server: FaultServer) -> list[RecordedRequest]:
    return server.requests("GET", "/sdk/stream")


# -- happy path -----------------------------------------------------------------------------


def test_connects_and_delivers_named_events_except_heartbeats(
    server: FaultServer, start: Start
) -> None:
    """Token, then stream with the token; data events reach on_event, heartbeats do not."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    frames = (
        sse_event("heartbeat", {}),
        sse_event("flag_updated", FLAG),
        sse_event("segment_deleted", {"key": "beta"}),
        sse_event("flags_reset", [FLAG]),
    )
    server.script("GET", "/sdk/stream", SseReply(frames=frames, then="hold"))
    manager, recorder = start()
    recorder.wait_for(lambda: len(recorder.events) >= 3, "three events")
    assert recorder.events == [
        ("flag_updated", FLAG),
        ("segment_deleted", {"key": "beta"}),
        ("flags_reset", [FLAG]),
    ]
    assert recorder.connected == 1
    assert manager.state == "connected"
    assert stream_requests(server)[0].param("token") == "tok-1"
    assert recorder.fallbacks == []


def test_invalid_json_in_a_data_event_is_skipped(server: FaultServer, start: Start) -> None:
    """Unparsable data is logged and skipped; later events still arrive on the same stream."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    frames = (sse_event("flag_updated", "{not json"), sse_event("flag_deleted", {"key": "a"}))
    server.script("GET", "/sdk/stream", SseReply(frames=frames, then="hold"))
    _, recorder = start()
    recorder.wait_for(lambda: bool(recorder.events), "an event")
    assert recorder.events == [("flag_deleted", {"key": "a"})]
    assert len(stream_requests(server)) == 1


def test_raising_callback_does_not_break_the_stream(
    server: FaultServer, start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """An on_event that raises is logged and the next events are still delivered."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    frames = (sse_event("flag_deleted", {"key": "boom"}), sse_event("flag_deleted", {"key": "b"}))
    server.script("GET", "/sdk/stream", SseReply(frames=frames, then="hold"))

    def explode(name: str, data: Any) -> None:
        if data == {"key": "boom"}:
            raise RuntimeError("listener bug")

    with caplog.at_level(logging.ERROR, logger="flagkit.streaming"):
        manager, recorder = start(recorder=Recorder(after_event=explode))
        recorder.wait_for(lambda: len(recorder.events) >= 2, "two events")
    assert [data for _, data in recorder.events] == [{"key": "boom"}, {"key": "b"}]
    assert "listener bug" in caplog.text
    assert manager.state == "connected"
    assert len(stream_requests(server)) == 1


# -- failures and reconnects --------------------------------------------------------------


def test_end_of_stream_is_a_failure_and_reconnects(server: FaultServer, start: Start) -> None:
    """A clean EOF counts as a failure: new token, new stream, on_connected again."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    server.script("GET", "/sdk/stream", SseReply(then="close"))
    server.set_default("GET", "/sdk/stream", HOLD)
    manager, recorder = start()
    recorder.wait_for(lambda: recorder.connected >= 2, "a reconnect")
    assert len(token_requests(server)) == 2
    assert manager.last_error == "the server ended the event stream"
    assert recorder.fallbacks == []


def test_reconnect_backoff_grows_then_falls_back(server: FaultServer, start: Start) -> None:
    """Failed token requests back off 0.1 s, 0.2 s, then streaming falls back to polling."""
    server.set_default("POST", "/sdk/stream/token", Reply.error(503))
    _, recorder = start(reconnect_interval=0.1, max_backoff=10.0, max_reconnect_attempts=3)
    recorder.wait_for(lambda: bool(recorder.fallbacks), "fallback")
    first, second, third = token_requests(server)[:3]
    assert second.received_at - first.received_at >= 0.1
    assert third.received_at - second.received_at >= 0.2
    assert "503" in recorder.fallbacks[0]
    assert recorder.states_at_fallback == ["failed"]
    assert len(token_requests(server)) == 3
    assert recorder.connected == 0


def test_after_fallback_streaming_is_retried_and_recovers(
    server: FaultServer, start: Start
) -> None:
    """After retry_after_fallback a fresh attempt is made; success calls on_connected."""
    server.script("POST", "/sdk/stream/token", Reply.error(503), Reply.error(503))
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    server.set_default("GET", "/sdk/stream", HOLD)
    manager, recorder = start(max_reconnect_attempts=2, retry_after_fallback=0.2)
    recorder.wait_for(lambda: recorder.connected == 1, "recovery")
    assert len(recorder.fallbacks) == 1
    assert manager.state == "connected"
    assert len(token_requests(server)) == 3


def test_missing_heartbeats_fail_the_connection(server: FaultServer, start: Start) -> None:
    """No heartbeat for 2 x heartbeat_interval drops the stream and reconnects."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    server.script(
        "GET", "/sdk/stream", SseReply(frames=(sse_event("flag_deleted", {"k": 1}),), then="hang")
    )
    server.set_default("GET", "/sdk/stream", HOLD)
    manager, recorder = start(heartbeat_interval=0.1)
    recorder.wait_for(lambda: recorder.connected >= 2, "reconnect after heartbeat timeout")
    assert manager.last_error == "no heartbeat for 0.2s"
    assert recorder.events == [("flag_deleted", {"k": 1})]  # data events are not heartbeats


def test_regular_heartbeats_keep_the_connection(server: FaultServer, start: Start) -> None:
    """Heartbeats every 0.05 s keep a 0.1 s-interval stream up for 3x its timeout limit."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    beats = (sse_event("heartbeat", {}),) * 12
    frames = (*beats, sse_event("flag_deleted", {"key": "late"}))
    server.script("GET", "/sdk/stream", SseReply(frames=frames, frame_delay=0.05, then="hold"))
    server.set_default("GET", "/sdk/stream", HOLD)
    manager, recorder = start(heartbeat_interval=0.1)
    recorder.wait_for(lambda: bool(recorder.events), "the late event")
    assert recorder.events == [("flag_deleted", {"key": "late"})]
    assert len(stream_requests(server)) == 1
    assert recorder.connected == 1
    assert manager.state == "connected"


def test_stream_http_error_counts_as_failure(server: FaultServer, start: Start) -> None:
    """A 401 on the stream GET is a connection failure that leads to fallback."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    server.set_default("GET", "/sdk/stream", Reply.error(401))
    _, recorder = start(max_reconnect_attempts=2)
    recorder.wait_for(lambda: bool(recorder.fallbacks), "fallback")
    assert "AUTH_INVALID_KEY" in recorder.fallbacks[0]
    assert len(stream_requests(server)) == 2


# -- error events ---------------------------------------------------------------------------


def error_event(code: str, message: str = "from test") -> str:
    return sse_event("error", {"code": code, "message": message})


def test_token_expired_after_traffic_reconnects_at_once(server: FaultServer, start: Start) -> None:
    """TOKEN_EXPIRED on a healthy stream reconnects immediately (no backoff, no fallback)."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    frames = (sse_event("heartbeat", {}), error_event("TOKEN_EXPIRED"))
    server.script("GET", "/sdk/stream", SseReply(frames=frames, then="hang"))
    server.set_default("GET", "/sdk/stream", HOLD)
    # A 60 s reconnect interval proves the reconnect did not wait for a backoff.
    manager, recorder = start(reconnect_interval=60.0, max_backoff=60.0)
    recorder.wait_for(lambda: recorder.connected >= 2, "immediate reconnect")
    assert len(token_requests(server)) == 2
    assert manager.last_error == "TOKEN_EXPIRED: from test"


def test_token_invalid_on_a_fresh_stream_is_a_failure(server: FaultServer, start: Start) -> None:
    """TOKEN_INVALID before any traffic counts as a failure, so it cannot spin."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    server.set_default("GET", "/sdk/stream", SseReply(frames=(error_event("TOKEN_INVALID"),)))
    _, recorder = start(max_reconnect_attempts=2)
    recorder.wait_for(lambda: bool(recorder.fallbacks), "fallback")
    assert recorder.fallbacks == ["TOKEN_INVALID: from test"]
    assert len(stream_requests(server)) == 2


@pytest.mark.parametrize("code", ["SUBSCRIPTION_SUSPENDED", "STREAMING_UNAVAILABLE"])
def test_permanent_errors_fall_back_without_retrying(
    server: FaultServer, start: Start, code: str
) -> None:
    """These codes end streaming for good: state failed, on_fallback once, thread ends."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    server.set_default("GET", "/sdk/stream", SseReply(frames=(error_event(code, "nope"),)))
    manager, recorder = start(retry_after_fallback=0.05)
    recorder.wait_for(lambda: bool(recorder.fallbacks), "fallback")
    wait_until(lambda: not manager.running, message="stream thread exit")
    assert recorder.fallbacks == [f"{code}: nope"]
    assert manager.state == "failed"
    assert len(token_requests(server)) == 1


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (error_event("CONNECTION_LIMIT", "too many"), "CONNECTION_LIMIT: too many"),
        (error_event("SOMETHING_NEW", "?"), "SOMETHING_NEW: ?"),
        ("event: error\ndata: not-json\n\n", "unparsable error event: 'not-json'"),
    ],
    ids=["connection-limit", "unknown-code", "unparsable"],
)
def test_other_error_events_are_connection_failures(
    server: FaultServer, start: Start, frame: str, reason: str
) -> None:
    """CONNECTION_LIMIT, unknown codes and bad error data count as failures and back off."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    server.set_default("GET", "/sdk/stream", SseReply(frames=(frame,)))
    manager, recorder = start(max_reconnect_attempts=2, retry_after_fallback=60.0)
    recorder.wait_for(lambda: bool(recorder.fallbacks), "fallback")
    assert recorder.fallbacks == [reason]
    assert recorder.connected == 2
    assert manager.running  # streaming will be retried after retry_after_fallback


# -- token refresh --------------------------------------------------------------------------


def counting_tokens(expires_in: int) -> Callable[[RecordedRequest], Reply]:
    counter = itertools.count(1)
    return lambda _: Reply.json({"token": f"tok-{next(counter)}", "expiresIn": expires_in})


def test_token_is_refreshed_while_the_stream_stays_open(server: FaultServer, start: Start) -> None:
    """At 0.8 x expiresIn a new token is fetched; the open stream is kept."""
    server.set_default("POST", "/sdk/stream/token", counting_tokens(expires_in=1))
    server.set_default("GET", "/sdk/stream", HOLD)
    manager, recorder = start()
    recorder.wait_for(lambda: recorder.connected == 1, "connect")
    server.wait_for_requests(2, "POST", "/sdk/stream/token")
    first, second = token_requests(server)[:2]
    assert second.received_at - first.received_at >= 0.8
    assert len(stream_requests(server)) == 1
    assert manager.state == "connected"


def test_failed_token_refresh_reconnects(server: FaultServer, start: Start) -> None:
    """If the refresh fails, the stream is dropped and a new connection is made."""
    server.script(
        "POST",
        "/sdk/stream/token",
        Reply.json({"token": "tok-a", "expiresIn": 1}),
        Reply.error(500),
    )
    server.set_default(
        "POST", "/sdk/stream/token", Reply.json({"token": "tok-b", "expiresIn": 600})
    )
    server.set_default("GET", "/sdk/stream", HOLD)
    manager, recorder = start()
    recorder.wait_for(lambda: recorder.connected >= 2, "reconnect after refresh failure")
    assert [r.param("token") for r in stream_requests(server)] == ["tok-a", "tok-b"]
    assert (manager.last_error or "").startswith("token refresh failed")
    assert recorder.fallbacks == []


# -- lifecycle ------------------------------------------------------------------------------


def test_stop_closes_a_silent_stream_promptly(server: FaultServer, start: Start) -> None:
    """``stop()`` returns with both threads ended although the server sends nothing."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    server.set_default("GET", "/sdk/stream", SseReply(then="hang"))
    manager, recorder = start(heartbeat_interval=600.0)
    recorder.wait_for(lambda: recorder.connected == 1, "connect")
    manager.stop()
    assert not manager.running
    assert not any(
        t.name in ("flagkit-stream", "flagkit-stream-monitor") and t.is_alive()
        for t in threading.enumerate()
    )
    assert manager.state == "disconnected"
    wait_until(lambda: server.open_streams == 0, message="server saw the disconnect")
    assert recorder.fallbacks == []


def test_stop_during_backoff_is_prompt(server: FaultServer, start: Start) -> None:
    """A manager waiting a long reconnect backoff stops at once."""
    server.set_default("POST", "/sdk/stream/token", Reply.error(503))
    manager, _ = start(reconnect_interval=60.0, max_backoff=60.0)
    wait_until(lambda: manager.state == "reconnecting", message="backoff")
    manager.stop()
    assert not manager.running
    assert len(token_requests(server)) == 1


def test_start_is_idempotent_and_restartable(server: FaultServer, start: Start) -> None:
    """A second ``start()`` adds no thread; after ``stop()`` it connects again."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    server.set_default("GET", "/sdk/stream", HOLD)
    manager, recorder = start()
    manager.start()
    recorder.wait_for(lambda: recorder.connected == 1, "connect")
    names = [t.name for t in threading.enumerate() if t.name == "flagkit-stream"]
    assert names == ["flagkit-stream"]
    manager.stop()
    manager.start()
    recorder.wait_for(lambda: recorder.connected == 2, "reconnect after restart")
    assert len(stream_requests(server)) == 2


def test_stop_from_a_callback_does_not_deadlock(server: FaultServer, start: Start) -> None:
    """Calling ``stop()`` inside on_fallback (on the stream thread) is allowed."""
    server.set_default("POST", "/sdk/stream/token", Reply.error(503))
    recorder = Recorder()
    recorder.after_fallback = lambda _reason: recorder.manager.stop() if recorder.manager else None
    manager, _ = start(recorder=recorder, max_reconnect_attempts=1)
    recorder.wait_for(lambda: bool(recorder.fallbacks), "fallback")
    wait_until(lambda: not manager.running, message="thread exit")
    assert manager.state == "disconnected"
    assert len(token_requests(server)) == 1


def test_successful_events_reset_the_failure_count(server: FaultServer, start: Start) -> None:
    """Streams that deliver events before dropping never add up to a fallback."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    flapping = SseReply(frames=(sse_event("heartbeat", {}),), then="close")
    server.script("GET", "/sdk/stream", flapping, flapping, flapping, flapping)
    server.set_default("GET", "/sdk/stream", HOLD)
    _, recorder = start(max_reconnect_attempts=2)
    recorder.wait_for(lambda: recorder.connected >= 5, "five connections")
    assert recorder.fallbacks == []


def test_streams_dropped_before_any_event_escalate_to_fallback(
    server: FaultServer, start: Start
) -> None:
    """A server accepting streams and closing them at once ends in the polling fallback."""
    server.set_default("POST", "/sdk/stream/token", TOKEN_OK)
    server.set_default("GET", "/sdk/stream", SseReply(then="close"))
    _, recorder = start(max_reconnect_attempts=3)
    recorder.wait_for(lambda: bool(recorder.fallbacks), "fallback")
    assert recorder.fallbacks == ["the server ended the event stream"]
    assert len(stream_requests(server)) == 3
