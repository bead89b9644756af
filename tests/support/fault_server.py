"""A scripted HTTP server on loopback for fault-injection tests (no mocks of httpx).

The server is a ``ThreadingHTTPServer`` bound to ``127.0.0.1`` on port 0 (the real port is
read back), serving HTTP/1.1 with keep-alive from a daemon thread. For each
``(method, path)`` it plays a *script*: a queue of replies consumed one per request; when a
route's script is empty its default reply is used (a route default, else the server
default, else a 404 JSON error). Every request is recorded.

Quick start::

    from tests.support.fault_server import FaultServer, Reply, SseReply, sse_event

    with FaultServer() as server:                       # paths are relative to /api/v1
        server.script("GET", "/sdk/init",
                      Reply.error(503, retry_after=1),   # 503 + Retry-After: 1
                      Reply.dropped(),                   # close the socket, no response
                      Reply.json({"flags": []}))         # then 200 JSON
        server.set_default("GET", "/sdk/init", Reply.json({"flags": []}))
        client = HttpClient(HttpConfig(base_url=server.base_url, api_key="sdk_..."))
        ...
        [first, second, third] = server.requests("GET", "/sdk/init")
        assert third.header("X-API-Key") == "sdk_..."

Replies (:class:`Reply`, all keyword fields, frozen):

- ``Reply.json(obj, status=200, headers=None, delay=0.0, gate=None)`` — JSON body,
  ``Content-Type: application/json``.
- ``Reply.text(text, status=200, content_type="text/plain")`` — any text body.
- ``Reply.error(status, code="ERROR", message="...", retry_after=None, headers=None)`` —
  the §2.4 error body ``{"error", "message", "requestId"}``; ``retry_after`` (int seconds or
  a raw string such as an HTTP-date) becomes a ``Retry-After`` header.
- ``Reply.malformed_json(status=200)`` — truncated JSON with a JSON content type.
- ``Reply.dropped(delay=0.0)`` — read the request, then close the connection without any
  response (clients see "server disconnected").
- ``Reply.dripping(obj, interval=1.0, headers_too=False)`` — a JSON answer written one byte
  per ``interval`` seconds (the status line and headers too with ``headers_too``).
- ``Reply.huge(size, declare_length=True)`` — a 200 JSON body of ``size`` bytes generated on
  the fly (without ``Content-Length`` and with ``Connection: close`` when not declared).
- ``Reply(status=..., body=b"...", content_type=..., headers={...}, delay=..., gate=...,
  drop=..., close=...)`` — the raw form. ``delay`` waits before answering; ``gate`` (a
  ``threading.Event``) holds the answer until set (both give up when the server closes);
  ``close=True`` adds ``Connection: close``.

Server-sent events (:class:`SseReply`): answers ``200 text/event-stream`` (``Connection:
close``, no length), writes ``frames`` in order (``str`` or ``bytes``, written raw and
flushed one by one, ``frame_delay`` seconds apart), then ``then=``:

- ``"close"`` — end the response (the client sees EOF);
- ``"hold"`` — stay open, sending ``heartbeat_frame`` every ``heartbeat_interval`` s;
- ``"hang"`` — stay open and send nothing (no heartbeats); ends when the client hangs up;
- ``"flood"`` — send ``data:`` lines of 64 KiB forever, never a blank line (an event
  without an end); ends when the client hangs up.

Held/hung streams end on :meth:`FaultServer.end_streams` or when the server closes.
``sse_event(event, data)`` builds one frame (``data`` JSON-encoded with ``\\uXXXX`` escapes
unless it is already a ``str``).

Dynamic replies: anywhere a reply is accepted, a callable ``(RecordedRequest) -> Reply |
SseReply`` may be given instead (e.g. to answer based on a header). An exception in it is
recorded in ``server.errors`` and answered with a 500.

Inspection (thread-safe):

- ``server.requests(method=None, path=None)`` — list of :class:`RecordedRequest`
  (``method``, ``path`` relative to the prefix, ``raw_path``, ``query`` (dict of lists),
  ``headers`` (lower-case names), ``body`` (bytes), ``received_at`` (``time.monotonic()``),
  ``client_address`` (host, port: tells connections apart); helpers ``header(name)``,
  ``param(name)``, ``json()``).
- ``server.wait_for_requests(count, method=None, path=None, timeout=5.0)`` — blocks until at
  least ``count`` matching requests were recorded; raises ``AssertionError`` on timeout.
- ``server.open_streams`` / ``server.wait_for_open_streams(count, timeout=5.0)``.
- ``server.clear_requests()``, ``server.errors``.

URLs: ``server.port``, ``server.root_url`` (``http://127.0.0.1:PORT``), ``server.base_url``
(``root_url + prefix``, default prefix ``/api/v1``), ``server.url(path)``. A request whose
path does not start with the prefix is matched and recorded with its full path.

Lifecycle: ``FaultServer(...)`` does nothing until ``start()`` (or ``with``); ``close()``
wakes every delay/gate/stream, calls ``shutdown()`` and ``server_close()``, shuts down open
connections and joins the serving thread. Idempotent.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, TypeAlias
from urllib.parse import parse_qs, urlsplit

from flagkit.server.requests_log import wait_for_matches

__all__ = [
    "FaultServer",
    "RecordedRequest",
    "Reply",
    "SseReply",
    "sse_event",
]

HEARTBEAT_FRAME = 'event: heartbeat\ndata: {"timestamp":0}\n\n'


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    raw_path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    received_at: float
    client_address: tuple[str, int] = ("", 0)

    def header(self, name: str) -> str | None:
        """A request header (case-insensitive), or ``None``."""
        return self.headers.get(name.lower())

    def param(self, name: str) -> str | None:
        """The first value of a query parameter, or ``None``."""
        values = self.query.get(name)
        return values[0] if values else None

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True, kw_only=True)
class Reply:
    """A scripted HTTP answer (see the module docstring)."""

    status: int = 200
    body: bytes = b""
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    gate: threading.Event | None = None
    drop: bool = False
    close: bool = False
    drip: float = 0.0
    drip_headers: bool = False
    filler: int = 0
    declare_length: bool = True

    @classmethod
    def dripping(cls, obj: Any, *, interval: float, headers_too: bool = False) -> Reply:
        """A JSON answer written one byte every ``interval`` seconds (its status line and
        headers too with ``headers_too``), ending early when the client hangs up."""
        base = cls.json(obj)
        return cls(
            body=base.body,
            content_type=base.content_type,
            drip=interval,
            drip_headers=headers_too,
        )

    @classmethod
    def huge(cls, size: int, *, declare_length: bool = True) -> Reply:
        """A 200 ``application/json`` body of ``size`` bytes, generated while it is written
        (a JSON object padded with spaces), with or without ``Content-Length``."""
        return cls(content_type="application/json", filler=size, declare_length=declare_length)

    @classmethod
    def json(
        cls,
        obj: Any,
        status: int = 200,
        *,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        gate: threading.Event | None = None,
    ) -> Reply:
        """A JSON body with ``Content-Type: application/json``."""
        return cls(
            status=status,
            body=json.dumps(obj).encode("utf-8"),
            content_type="application/json",
            headers=dict(headers or {}),
            delay=delay,
            gate=gate,
        )

    @classmethod
    def text(
        cls,
        text: str,
        status: int = 200,
        *,
        content_type: str = "text/plain",
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> Reply:
        """A text body with the given content type."""
        return cls(
            status=status,
            body=text.encode("utf-8"),
            content_type=content_type,
            headers=dict(headers or {}),
            delay=delay,
        )

    @classmethod
    def error(
        cls,
        status: int,
        *,
        code: str = "ERROR",
        message: str = "scripted failure",
        retry_after: int | str | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str = "req-fault",
    ) -> Reply:
        """A §2.4 error body, optionally with ``Retry-After``."""
        all_headers = dict(headers or {})
        if retry_after is not None:
            all_headers["Retry-After"] = str(retry_after)
        body = {"error": code, "message": message, "requestId": request_id}
        return cls.json(body, status, headers=all_headers)

    @classmethod
    def malformed_json(cls, status: int = 200) -> Reply:
        """A truncated JSON document served as ``application/json``."""
        return cls(status=status, body=b'{"flags": [{"key": "a",', content_type="application/json")

    @classmethod
    def dropped(cls, *, delay: float = 0.0) -> Reply:
        """Close the connection without answering."""
        return cls(drop=True, delay=delay)


@dataclass(frozen=True, kw_only=True)
class SseReply:
    """A scripted ``text/event-stream`` answer (see the module docstring)."""

    frames: tuple[str | bytes, ...] = ()
    then: Literal["close", "hold", "hang", "flood"] = "hold"
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    gate: threading.Event | None = None
    frame_delay: float = 0.0
    heartbeat_interval: float = 0.05
    heartbeat_frame: str = HEARTBEAT_FRAME


def sse_event(event: str, data: Any) -> str:
    """One SSE frame: ``event: <event>\\ndata: <data>\\n\\n`` (non-``str`` data as ASCII JSON).

    >>> sse_event("flag_deleted", {"key": "a"})
    'event: flag_deleted\\ndata: {"key": "a"}\\n\\n'
    """
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=True)
    return f"event: {event}\ndata: {payload}\n\n"


Scripted: TypeAlias = "Reply | SseReply | Callable[[RecordedRequest], Reply | SseReply]"

_NOT_FOUND = Reply.error(404, code="NOT_FOUND", message="no script for this route")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fault: FaultServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-response is normal in fault tests: stay quiet.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def setup(self) -> None:
        super().setup()
        self.server.fault._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fault._untrack(self.connection)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _serve(self) -> None:
        fault = self.server.fault
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        route = parts.path
        if fault.prefix and (route == fault.prefix or route.startswith(fault.prefix + "/")):
            route = route[len(fault.prefix) :] or "/"
        request = RecordedRequest(
            method=self.command,
            path=route,
            raw_path=self.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            received_at=time.monotonic(),
            client_address=(str(self.client_address[0]), int(self.client_address[1])),
        )
        reply = fault._next_reply(request)
        if not fault._pause(reply.delay, reply.gate):
            self.close_connection = True
            return
        if isinstance(reply, SseReply):
            self._stream(reply)
        else:
            self._answer(reply)

    def _answer(self, reply: Reply) -> None:
        if reply.drop:
            self.close_connection = True
            return
        if reply.drip:
            self._drip(reply)
            return
        if reply.filler:
            self._huge(reply)
            return
        self.send_response(reply.status)
        if reply.content_type is not None:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if reply.close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)
        self.wfile.flush()

    def _drip(self, reply: Reply) -> None:
        """Write the answer one byte at a time, ``reply.drip`` seconds apart."""
        self.close_connection = True
        head = (
            f"HTTP/1.1 {reply.status} OK\r\nContent-Type: {reply.content_type}\r\n"
            f"Content-Length: {len(reply.body)}\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        closing = self.server.fault._closing
        try:
            if not reply.drip_headers:
                self.wfile.write(head)
                self.wfile.flush()
                head = b""
            data = head + reply.body
            for index in range(len(data)):
                self.wfile.write(data[index : index + 1])
                self.wfile.flush()
                if closing.wait(reply.drip) or self._client_gone():
                    return
        except OSError:
            return  # the client gave up

    def _huge(self, reply: Reply) -> None:
        """Write a ``reply.filler``-byte JSON object in 64 KiB slices, never held whole."""
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        if reply.declare_length:
            self.send_header("Content-Length", str(reply.filler))
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        slice_ = b" " * 65536
        left = reply.filler - 2
        try:
            self.wfile.write(b"{")
            while left > 0:
                self.wfile.write(slice_[: min(left, len(slice_))])
                left -= len(slice_)
            self.wfile.write(b"}")
            self.wfile.flush()
        except OSError:
            return  # the client stopped reading and hung up

    def _client_gone(self) -> bool:
        """Whether the client closed its end (a hung stream still notices a hang-up)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _stream(self, reply: SseReply) -> None:
        fault = self.server.fault
        self.close_connection = True
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()
        ended = fault._open_stream()
        try:
            for frame in reply.frames:
                data = frame if isinstance(frame, bytes) else frame.encode("utf-8")
                self.wfile.write(data)
                self.wfile.flush()
                if reply.frame_delay and ended.wait(reply.frame_delay):
                    return
            if reply.then == "hold":
                beat = reply.heartbeat_frame.encode("utf-8")
                while not ended.wait(reply.heartbeat_interval):
                    self.wfile.write(beat)
                    self.wfile.flush()
            elif reply.then == "hang":
                while not ended.wait(0.02) and not self._client_gone():
                    pass
            elif reply.then == "flood":
                line = b"data: " + b"x" * 65536 + b"\n"
                while not ended.is_set():
                    self.wfile.write(line)
        except OSError:
            return  # the client went away
        finally:
            fault._close_stream(ended)


class FaultServer:
    """A scripted loopback HTTP server (see the module docstring for the full API)."""

    def __init__(self, *, prefix: str = "/api/v1", default: Scripted | None = None) -> None:
        self.prefix = prefix.rstrip("/")
        self._default = default
        self._lock = threading.Condition()
        self._scripts: dict[tuple[str, str], deque[Scripted]] = {}
        self._defaults: dict[tuple[str, str], Scripted] = {}
        self._requests: list[RecordedRequest] = []
        self._streams: set[threading.Event] = set()
        self._connections: set[socket.socket] = set()
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> FaultServer:
        """Bind ``127.0.0.1:0`` and serve from a daemon thread; returns ``self``."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fault = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="fault-server",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, end streams and delays, close connections, join. Idempotent."""
        server = self._server
        if server is None or self._closing.is_set():
            return
        self._closing.set()
        with self._lock:
            streams = list(self._streams)
            connections = list(self._connections)
        for ended in streams:
            ended.set()
        server.shutdown()
        server.server_close()
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- addresses ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port."""
        if self._server is None:
            raise RuntimeError("FaultServer is not started")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """``root_url`` + prefix (``/api/v1`` by default): what an SDK client is given."""
        return self.root_url + self.prefix

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` under the prefix."""
        return f"{self.base_url}/{path.lstrip('/')}"

    # -- scripting ----------------------------------------------------------------------

    def script(self, method: str, path: str, *replies: Scripted) -> None:
        """Append replies to the route's script (each used once, in order)."""
        key = (method.upper(), path)
        with self._lock:
            self._scripts.setdefault(key, deque()).extend(replies)

    def set_default(self, method: str, path: str, reply: Scripted) -> None:
        """The reply for the route once its script is empty."""
        with self._lock:
            self._defaults[(method.upper(), path)] = reply

    def clear_script(self, method: str, path: str) -> None:
        """Forget the route's remaining scripted replies."""
        with self._lock:
            self._scripts.pop((method.upper(), path), None)

    def end_streams(self) -> None:
        """End every open SSE response (held or hung) now."""
        with self._lock:
            streams = list(self._streams)
        for ended in streams:
            ended.set()

    # -- inspection ---------------------------------------------------------------------

    def requests(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded requests, oldest first, optionally filtered by method and path."""
        with self._lock:
            return [r for r in self._requests if self._matches(r, method, path)]

    def wait_for_requests(
        self,
        count: int,
        method: str | None = None,
        path: str | None = None,
        *,
        timeout: float = 5.0,
    ) -> list[RecordedRequest]:
        """Block until ``count`` matching requests were recorded; ``AssertionError`` if not."""
        reached, found = wait_for_matches(
            self._lock,
            lambda: [r for r in self._requests if self._matches(r, method, path)],
            count,
            timeout,
        )
        if reached:
            return found
        raise AssertionError(
            f"expected {count} {method or '*'} {path or '*'} requests "
            f"within {timeout}s, got {len(found)}"
        )

    @property
    def open_streams(self) -> int:
        """SSE responses currently open."""
        with self._lock:
            return len(self._streams)

    def wait_for_open_streams(self, count: int, *, timeout: float = 5.0) -> None:
        """Block until ``count`` SSE responses are open; ``AssertionError`` if not."""
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._streams) >= count, timeout):
                raise AssertionError(
                    f"expected {count} open streams within {timeout}s, got {len(self._streams)}"
                )

    def clear_requests(self) -> None:
        """Forget recorded requests."""
        with self._lock:
            self._requests.clear()

    # -- used by the handler ------------------------------------------------------------

    @staticmethod
    def _matches(request: RecordedRequest, method: str | None, path: str | None) -> bool:
        return (method is None or request.method == method.upper()) and (
            path is None or request.path == path
        )

    def _next_reply(self, request: RecordedRequest) -> Reply | SseReply:
        key = (request.method, request.path)
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
            queue = self._scripts.get(key)
            scripted: Scripted | None = queue.popleft() if queue else None
            if scripted is None:
                scripted = self._defaults.get(key, self._default)
        if scripted is None:
            return _NOT_FOUND
        if isinstance(scripted, (Reply, SseReply)):
            return scripted
        try:
            return scripted(request)
        except Exception as exc:  # a test's dynamic reply is broken: make it visible
            self.errors.append(exc)
            return Reply.error(500, code="FAULT_SERVER_ERROR", message=repr(exc))

    def _pause(self, delay: float, gate: threading.Event | None) -> bool:
        """Wait ``delay`` then for ``gate``; ``False`` if the server closed meanwhile."""
        if delay > 0 and self._closing.wait(delay):
            return False
        while gate is not None and not gate.wait(0.02):
            if self._closing.is_set():
                return False
        return not self._closing.is_set()

    def _open_stream(self) -> threading.Event:
        ended = threading.Event()
        with self._lock:
            self._streams.add(ended)
            self._lock.notify_all()
        if self._closing.is_set():
            ended.set()
        return ended

    def _close_stream(self, ended: threading.Event) -> None:
        with self._lock:
            self._streams.discard(ended)
            self._lock.notify_all()

    def _track(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self._lock:
            self._connections.discard(conn)
