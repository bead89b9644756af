"""Timestamps of the local server: integer microseconds, ISO-8601 with ``Z``, lenient parsing.

The server keeps every time as integer microseconds since the Unix epoch so that cursor
comparisons (PROTOCOL §20.2) are exact, and renders them as
``YYYY-MM-DDTHH:MM:SS.ffffffZ``.
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

_ISO_RE = re.compile(
    r"""^(\d{4})-(\d{2})-(\d{2})
        (?:[Tt\ ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?
        \s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$""",
    re.VERBOSE,
)
# "...59.123456 00:00": a "+" that form-decoding turned into a space.
_SPACE_OFFSET_RE = re.compile(r"(\d) (\d{2}(?::?\d{2})?)$")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def now_micros() -> int:
    """The current UTC time in integer microseconds since the epoch."""
    return time.time_ns() // 1000


def format_micros(micros: int) -> str:
    """``2025-03-01T12:00:00.123456Z`` for a time in microseconds since the epoch."""
    seconds, fraction = divmod(micros, 1_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:06d}Z"


def parse_timestamp(raw: str) -> int | None:
    """Parse an update cursor leniently into microseconds; ``None`` when unparsable.

    Accepts ISO-8601 dates and times with ``Z``, ``+00:00``/``+0000``/``+00`` offsets or no
    offset (taken as UTC), any number of fraction digits (kept to microseconds), a space
    where a ``+`` was form-decoded, and plain integers (epoch milliseconds when 11 digits or
    more, else seconds).

    >>> parse_timestamp("1970-01-01T00:00:01.5 00:00")
    1500000
    """
    text = raw.strip()
    if not text:
        return None
    if text.isdigit():
        value = int(text)
        return value * 1000 if len(text) >= 11 else value * 1_000_000
    match = _ISO_RE.match(text) or _ISO_RE.match(_SPACE_OFFSET_RE.sub(r"\1+\2", text))
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    tz = timezone.utc
    if offset and offset not in ("Z", "z"):
        digits = offset[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        if delta >= timedelta(hours=24):
            return None
        tz = timezone(-delta if offset[0] == "-" else delta)
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:
        return None
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
