"""One request and its answer: strict parsing of hostile input and the JSON error envelope.

Every error the server answers is ``{"error", "message", "requestId"}`` with
``Content-Type: application/json`` (docs/protocol.md §2.4). Input that cannot be read is a
400, never a 500: bodies are bounded (``Content-Length`` and chunked alike), chunk sizes
and integers are checked before use, and JSON with ``NaN``/``Infinity`` or numbers that
do not fit a float is refused, so everything stored can be sent back as valid JSON.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import re
import socket
import time
from collections.abc import Mapping
from email.message import Message
from http.server import BaseHTTPRequestHandler
from typing import Any, Final

from flagkit.server.requests_log import RecordedRequest

__all__ = [
    "DeadlineReader",
    "Exchange",
    "HTTPError",
    "bad_request",
    "parse_json",
    "parse_nonnegative_int",
    "shown",
]

_CONTENT_LENGTH: Final = re.compile(r"[0-9]{1,19}")
_CHUNK_SIZE: Final = re.compile(rb"([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?\r?\n")
_NONNEGATIVE_INT: Final = re.compile(r"[0-9]{1,18}")
_MAX_LINE: Final = 4096
_MAX_TRAILERS: Final = 64
_MAX_SHOWN: Final = 40


class HTTPError(Exception):
    """Raised inside handlers to answer with a JSON error body."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str) -> HTTPError:
    """A 400 ``INVALID_REQUEST``."""
    return HTTPError(400, "INVALID_REQUEST", message)


def shown(text: str) -> str:
    """``text`` for an error message: repr'd and cut to a readable length."""
    return repr(text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "...")


def parse_nonnegative_int(raw: str, name: str) -> int:
    """An integer of ASCII digits (at most 18, so it fits any JSON reader); else a 400."""
    if _NONNEGATIVE_INT.fullmatch(raw) is None:
        raise bad_request(f"{name}: must be an integer >= 0 (ASCII digits), got {shown(raw)}")
    return int(raw)


class _Refused(ValueError):
    """A JSON number the server does not accept."""


def _refuse_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"the number {shown(text)} is out of range")
    return value


def parse_json(body: bytes) -> Any:
    """Decode a request body as strict JSON; raises a 400 :class:`HTTPError` otherwise.

    Refused: invalid UTF-8 or JSON, ``NaN``/``Infinity``, numbers beyond a float's range,
    integers longer than Python converts (``ValueError`` from ``int``) and nesting deeper
    than the parser's recursion limit.
    """
    if not body.strip():
        raise bad_request("the request body is empty; a JSON object is required")
    try:
        return json.loads(
            body.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except json.JSONDecodeError as exc:
        raise bad_request(
            f"malformed JSON body: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    except UnicodeDecodeError:
        raise bad_request("the request body is not valid UTF-8") from None
    except RecursionError:
        raise bad_request("the request body is nested too deeply") from None
    except _Refused as exc:
        raise bad_request(f"the request body is not usable JSON: {exc}") from None
    except ValueError:  # from int(): more digits than Python converts
        raise bad_request(
            "the request body is not usable JSON: an integer has too many digits"
        ) from None


class DeadlineReader(io.RawIOBase):
    """The receiving side of a connection, with a total deadline while a request is read.

    While armed (:meth:`arm`), each receive waits at most until the deadline, so a client
    sending one byte at a time still loses the connection when the deadline passes
    (``TimeoutError``). Disarmed, receives wait ``idle_timeout`` seconds as usual.
    """

    def __init__(self, sock: socket.socket, idle_timeout: float) -> None:
        super().__init__()
        self._sock = sock
        self._idle_timeout = idle_timeout
        self._deadline: float | None = None
        self.received = 0
        """Bytes received since :meth:`arm`."""
        self.timed_out = False
        """Whether the deadline passed since :meth:`arm`."""

    def arm(self, seconds: float) -> None:
        """Start the deadline for the next request."""
        self._deadline = time.monotonic() + seconds
        self.received = 0
        self.timed_out = False

    @property
    def armed(self) -> bool:
        """Whether a request is being read under the deadline."""
        return self._deadline is not None

    def disarm(self) -> None:
        """The request has been read: back to the idle timeout (also used for sends)."""
        self._deadline = None
        self._sock.settimeout(self._idle_timeout)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._deadline is not None:
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                self.timed_out = True
                raise TimeoutError("the request was not received in time")
            self._sock.settimeout(remaining)
        try:
            count = self._sock.recv_into(buffer)
        except TimeoutError:
            self.timed_out = self._deadline is not None
            raise
        self.received += count
        return count


class Exchange:
    """The request being answered on a connection, and the ways to answer it.

    Built by the request handler after the request line and headers were read; the
    endpoints use only this object and the :class:`~flagkit.server.context.ServerContext`.
    """

    def __init__(
        self,
        handler: BaseHTTPRequestHandler,
        *,
        request_id: str,
        path: str,
        raw_query: str,
        params: dict[str, str],
        reader: DeadlineReader | None = None,
    ) -> None:
        self._handler = handler
        self._reader = reader
        self._body_read = False
        self.request_id = request_id
        self.method: str = getattr(handler, "command", None) or ""
        self.headers: Message = getattr(handler, "headers", None) or Message()
        self.path = path
        self.raw_query = raw_query
        self.params = params
        self.body = b""
        self.record: RecordedRequest | None = None

    # reading -----------------------------------------------------------------------------

    def has_body(self) -> bool:
        """Whether the request announces a body (which must be read or the connection ended)."""
        length = self.headers.get("Content-Length", "").strip()
        return bool(length and length != "0") or "Transfer-Encoding" in self.headers

    def done_reading(self) -> None:
        """The request has been read as far as it will be: stop its read deadline."""
        if self._reader is not None:
            self._reader.disarm()

    def read_body(self, limit: int) -> bytes:
        """Read the body (at most ``limit`` bytes) into :attr:`body`; 400/413 otherwise.

        Call it only once the request is authenticated. A body that is refused is left
        unread, so the connection is closed after the answer.
        """
        self._read_body(limit)
        self._body_read = True
        self.done_reading()
        return self.body

    def _read_body(self, limit: int) -> None:
        encoding = self.headers.get("Transfer-Encoding")
        lengths = self.headers.get_all("Content-Length") or []
        if len(lengths) > 1 or len(self.headers.get_all("Transfer-Encoding") or []) > 1:
            self.close_connection()
            raise bad_request("repeated Content-Length or Transfer-Encoding header")
        if encoding is not None:
            if lengths:  # both: the chunked framing wins, but the connection is not reused
                self.close_connection()
            if encoding.strip().lower() != "chunked":
                self.close_connection()
                raise HTTPError(
                    501, "NOT_IMPLEMENTED", f"Transfer-Encoding {shown(encoding)} is not supported"
                )
            self.body = self._read_chunked(limit)
            return
        raw = self.headers.get("Content-Length")
        if raw is None:
            return
        if _CONTENT_LENGTH.fullmatch(raw.strip()) is None:
            self.close_connection()
            raise bad_request(f"invalid Content-Length {shown(raw)}")
        length = int(raw)
        if length > limit:
            self.close_connection()
            raise _too_large(limit, length)
        body = self._handler.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection()
            raise ConnectionError("client closed the connection mid-body")
        self.body = body

    def _read_chunked(self, limit: int) -> bytes:
        rfile = self._handler.rfile
        parts: list[bytes] = []
        total = 0
        while True:
            line = rfile.readline(_MAX_LINE)
            match = _CHUNK_SIZE.fullmatch(line)
            if match is None:
                self.close_connection()
                raise bad_request("invalid chunked encoding: bad chunk-size line")
            size = int(match.group(1), 16)
            if size == 0:
                break
            total += size
            if total > limit:
                self.close_connection()
                raise _too_large(limit)
            chunk = rfile.read(size)
            if len(chunk) < size:
                self.close_connection()
                raise ConnectionError("client closed the connection mid-chunk")
            parts.append(chunk)
            if rfile.readline(3) not in (b"\r\n", b"\n"):
                self.close_connection()
                raise bad_request("invalid chunked encoding: chunk data not followed by CRLF")
        for _ in range(_MAX_TRAILERS):
            trailer = rfile.readline(_MAX_LINE)
            if trailer in (b"\r\n", b"\n"):
                return b"".join(parts)
            if not trailer.endswith(b"\n"):
                break
        self.close_connection()
        raise bad_request("invalid chunked encoding: bad or too many trailer lines")

    def json_body(self) -> Any:
        """:attr:`body` parsed as strict JSON (see :func:`parse_json`)."""
        return parse_json(self.body)

    def json_object(self, what: str) -> dict[str, Any]:
        """:attr:`body` as a JSON object; 400 naming ``what`` was expected otherwise."""
        parsed = self.json_body()
        if not isinstance(parsed, dict):
            raise bad_request(f"the body must be a JSON object ({what})")
        return parsed

    def require_method(self, *allowed: str) -> None:
        """405 unless the method is one of ``allowed`` (HEAD counts as GET)."""
        if self.method not in allowed and not (self.method == "HEAD" and "GET" in allowed):
            raise HTTPError(
                405,
                "METHOD_NOT_ALLOWED",
                f"{self.method} is not allowed here; use {' or '.join(allowed)}",
                {"Allow": ", ".join(allowed)},
            )

    # answering ---------------------------------------------------------------------------

    def close_connection(self) -> None:
        """End the connection after this answer (e.g. an unread body makes it unusable)."""
        self._handler.close_connection = True

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Send a complete response."""
        handler = self._handler
        if not self._body_read and self.has_body():
            handler.close_connection = True  # the unread body would be taken for a request
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("X-Request-Id", self.request_id)
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        if handler.close_connection:
            handler.send_header("Connection", "close")
        if self.record is not None:
            self.record.status = status  # before the client can see the response
        handler.end_headers()
        if self.method != "HEAD":
            handler.wfile.write(body)

    def send_json(self, status: int, obj: object, headers: Mapping[str, str] | None = None) -> None:
        """Send ``obj`` as compact ASCII JSON (``NaN``/``Infinity`` never reach it)."""
        body = json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("ascii")
        self.send(status, body, headers=headers)

    def send_error(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        """Send the JSON error envelope."""
        body = {"error": code, "message": message, "requestId": self.request_id}
        self.send_json(status, body, headers)

    def start_event_stream(self) -> None:
        """Send the headers of an SSE response (the connection ends with the stream)."""
        handler = self._handler
        handler.close_connection = True
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Cache-Control", "no-cache")
        handler.send_header("Connection", "close")
        handler.send_header("X-Accel-Buffering", "no")
        handler.send_header("X-Request-Id", self.request_id)
        if self.record is not None:
            self.record.status = 200
        handler.end_headers()

    def write(self, data: bytes) -> None:
        """Write raw bytes (SSE frames) to the client."""
        self._handler.wfile.write(data)

    def drop(self) -> None:
        """Close the connection without any response."""
        self.close_connection()
        if self.record is not None:
            self.record.status = 0
        with contextlib.suppress(OSError):
            self._handler.connection.shutdown(socket.SHUT_RDWR)


def _too_large(limit: int, length: int | None = None) -> HTTPError:
    size = f"request body of {length} bytes" if length is not None else "request body"
    return HTTPError(413, "PAYLOAD_TOO_LARGE", f"{size} exceeds the limit of {limit} bytes")
