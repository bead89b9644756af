"""Server-sent events framing: bytes in, lines, then named events out (docs/protocol.md §4.5).

:meth:`flagkit.http.HttpClient.open_event_stream` yields an :class:`EventStream` (the
response's lines, split by :func:`iter_lines`); the streaming state machine feeds them to an
:class:`SseParser`.

Both stages are bounded, so a hostile or broken server cannot grow memory without end: a
line longer than :data:`MAX_SSE_LINE_BYTES` or an event whose data lines add up to more than
:data:`MAX_SSE_EVENT_BYTES` fails the stream with a :class:`~flagkit.errors.NetworkError`
(``NETWORK_RESPONSE_TOO_LARGE``), which the streaming manager handles like any stream
error (reconnect, then fall back to polling).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

import httpx

from flagkit.errors import NetworkError
from flagkit.http._transport import translate_errors

__all__ = [
    "MAX_SSE_EVENT_BYTES",
    "MAX_SSE_LINE_BYTES",
    "EventStream",
    "SseEvent",
    "SseParser",
    "iter_lines",
    "parse_sse_lines",
]

MAX_SSE_LINE_BYTES: Final = 16 * 1024 * 1024
"""Longest SSE line accepted (a ``flags_reset`` of many flags is one line)."""

MAX_SSE_EVENT_BYTES: Final = 16 * 1024 * 1024
"""Largest event accepted: the sum of its data lines (as large as the longest line, so one
``flags_reset`` line that was accepted before still is)."""

_TRIM: Final = " \t\f\v\ufeff"
_EOL: Final = re.compile(rb"\r\n|\r|\n")


def _too_large(what: str, limit: int) -> NetworkError:
    return NetworkError(
        "NETWORK_RESPONSE_TOO_LARGE", f"event stream {what} larger than {limit} bytes"
    )


# -- bytes -> lines --------------------------------------------------------------------------


class _LineSplitter:
    """Split a byte stream into lines on ``\\n``, ``\\r\\n`` and ``\\r`` only
    (docs/protocol.md §20.1).

    Works on bytes, so UTF-8 encoded U+2028/U+0085 never split a line, and a ``\\r\\n``
    pair divided between two chunks counts as one line break.
    """

    def __init__(self, max_line: int = MAX_SSE_LINE_BYTES) -> None:
        # The unfinished line, as chunks: joined only when a line break arrives, so a long
        # line costs linear time, not a copy of the whole buffer per chunk.
        self._parts: list[bytes] = []
        self._size = 0
        self._pending_cr = False
        self._max_line = max_line

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        if not chunk:
            return []
        self._pending_cr = False
        if b"\n" not in chunk and b"\r" not in chunk:
            self._keep(chunk)
            return []
        data = b"".join((*self._parts, chunk)) if self._parts else chunk
        self._parts, self._size = [], 0
        lines: list[bytes] = []
        start = 0
        for match in _EOL.finditer(data):
            lines.append(data[start : match.start()])
            start = match.end()
            if match.group() == b"\r" and start == len(data):
                self._pending_cr = True
        if start < len(data):
            self._keep(data[start:])
        return lines

    def _keep(self, part: bytes) -> None:
        self._parts.append(part)
        self._size += len(part)
        if self._size > self._max_line:
            raise _too_large("line", self._max_line)

    def flush(self) -> list[bytes]:
        rest = b"".join(self._parts)
        self._parts, self._size = [], 0
        return [rest] if rest else []


def iter_lines(chunks: Iterable[bytes], *, max_line: int = MAX_SSE_LINE_BYTES) -> Iterator[str]:
    """Decoded lines of a byte stream, split on ``\\n``, ``\\r\\n``, ``\\r`` only.

    >>> list(iter_lines([b"a\\r", b"\\nb\\rc\\n", "d\\u2028e".encode()]))
    ['a', 'b', 'c', 'd\\u2028e']
    """
    splitter = _LineSplitter(max_line)
    for chunk in chunks:
        for line in splitter.feed(chunk):
            yield line.decode("utf-8", "replace")
    for line in splitter.flush():
        yield line.decode("utf-8", "replace")


class EventStream(Iterator[str]):
    """The lines of an open ``/sdk/stream`` response.

    Iterate it on one thread; :meth:`close` may be called from any other thread and makes
    the iteration end promptly (it shuts the socket down, which wakes a blocked read).
    Transport failures while reading raise :class:`~flagkit.errors.NetworkError`, as does a
    line over :data:`MAX_SSE_LINE_BYTES`; after :meth:`close` the iteration just stops.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._closed = threading.Event()
        self._lines = iter_lines(response.iter_bytes())

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> str:
        if self._closed.is_set():
            raise StopIteration
        try:
            with translate_errors(None):
                return next(self._lines)
        except NetworkError:
            if self._closed.is_set():
                raise StopIteration from None
            raise
        except OSError as exc:
            # httpcore maps socket errors itself; a raw one means the socket was closed
            # under a read (close() or HttpClient.close() raced it).
            if self._closed.is_set():
                raise StopIteration from None
            raise NetworkError("NETWORK_ERROR", f"event stream read failed: {exc}") from exc

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed.is_set()

    def close(self) -> None:
        """Stop the stream from any thread; idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        network_stream = self._response.extensions.get("network_stream")
        sock = network_stream.get_extra_info("socket") if network_stream is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


# -- lines -> events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched SSE event: its name and its (concatenated) data text."""

    event: str
    data: str


class SseParser:
    """Turn SSE lines into events the way FlagKit clients do (docs/protocol.md §4.5).

    Each line is trimmed; ``event:`` sets the name; ``data:`` appends its trimmed content
    (several data lines are concatenated with no separator); a blank line dispatches the
    event only if both name and data are non-empty, then starts afresh. Comments (``:``),
    ``id:``, ``retry:`` and anything else are ignored. Data lines adding up to more than
    ``max_event`` characters raise ``NetworkError("NETWORK_RESPONSE_TOO_LARGE")``.

    >>> parser = SseParser()
    >>> [parser.feed(line) for line in ["event: heartbeat", "data: {}", ""]][-1]
    SseEvent(event='heartbeat', data='{}')

    Not thread-safe: one parser per stream.
    """

    def __init__(self, *, max_event: int = MAX_SSE_EVENT_BYTES) -> None:
        self._event = ""
        self._data: list[str] = []
        self._size = 0
        self._max_event = max_event

    def feed(self, line: str) -> SseEvent | None:
        """Consume one line; return the event it completes, if any."""
        text = line.strip(_TRIM)
        if not text:
            event, data = self._event, "".join(self._data)
            self.reset()
            return SseEvent(event, data) if event and data else None
        if text.startswith("event:"):
            self._event = text[6:].strip(_TRIM)
        elif text.startswith("data:"):
            data = text[5:].strip(_TRIM)
            self._size += len(data)
            if self._size > self._max_event:
                self.reset()
                raise _too_large("event", self._max_event)
            self._data.append(data)
        return None

    def reset(self) -> None:
        """Forget a partially read event."""
        self._event = ""
        self._data = []
        self._size = 0


def parse_sse_lines(lines: Iterable[str]) -> Iterator[SseEvent]:
    """Events of a sequence of lines.

    >>> list(parse_sse_lines(["event: a", "data: 1", "data: 2", "", "data: lost", ""]))
    [SseEvent(event='a', data='12')]
    """
    parser = SseParser()
    for line in lines:
        event = parser.feed(line)
        if event is not None:
            yield event
