"""Timestamps of the local server: integer microseconds, ISO-8601 with ``Z``, lenient parsing.

The server keeps every time as integer microseconds since the Unix epoch so that cursor
comparisons (docs/protocol.md §20.2) are exact, and renders them as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``. Lenient parsing of cursors (:func:`parse_timestamp`) lives
in :mod:`flagkit.utils.timeparse`, next to the targeting evaluator's strict ISO-8601 parser.
"""

from __future__ import annotations

import time

from flagkit.utils.timeparse import parse_timestamp as parse_timestamp


def now_micros() -> int:
    """The current UTC time in integer microseconds since the epoch."""
    return time.time_ns() // 1000


def format_micros(micros: int) -> str:
    """``2025-03-01T12:00:00.123456Z`` for a time in microseconds since the epoch."""
    seconds, fraction = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:06d}Z"
