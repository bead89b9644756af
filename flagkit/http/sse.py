"""Server-sent events framing: lines in, named events out (docs/protocol.md §4.5).

The streaming state machine (:class:`flagkit.core.updates.streaming.StreamingManager`) feeds the
lines that :meth:`flagkit.http.HttpClient.open_event_stream` reads to an :class:`SseParser`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

__all__ = ["SseEvent", "SseParser", "parse_sse_lines"]

_TRIM: Final = " \t\f\v\ufeff"


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
    ``id:``, ``retry:`` and anything else are ignored.

    >>> parser = SseParser()
    >>> [parser.feed(line) for line in ["event: heartbeat", "data: {}", ""]][-1]
    SseEvent(event='heartbeat', data='{}')

    Not thread-safe: one parser per stream.
    """

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

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
            self._data.append(text[5:].strip(_TRIM))
        return None

    def reset(self) -> None:
        """Forget a partially read event."""
        self._event = ""
        self._data = []


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
