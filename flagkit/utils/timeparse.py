"""ISO-8601 text to integer microseconds since the Unix epoch, parsed by hand.

Two grammars share one conversion so every Python version agrees on the result:

- :func:`parse_iso_datetime`, strict: the date values of targeting clauses
  (``flagkit.core.targeting.operators.date_key``); on the evaluation hot path.
- :func:`parse_timestamp`, lenient: the ``since`` update cursor the local server accepts
  (docs/protocol.md §17.4/§20.2).

>>> parse_iso_datetime("1970-01-01T01:00:00+01:00")
0
>>> parse_timestamp("1970-01-01T00:00:01.5 00:00")
1500000

Pure functions (stdlib only, no state): thread-safe.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Final

__all__ = ["parse_iso_datetime", "parse_timestamp"]

_EPOCH: Final = datetime(1970, 1, 1)
_MICRO: Final = timedelta(microseconds=1)
_MICROS_PER_MINUTE: Final = 60_000_000
_MICROS_PER_DAY: Final = 86_400_000_000


def _utc_micros(
    year: str,
    month: str,
    day: str,
    hour: str | None,
    minute: str | None,
    second: str | None,
    fraction: str | None,
) -> int | None:
    """Microseconds since the epoch of a UTC date-time given as matched digit groups
    (missing time parts are zero; fraction digits beyond microseconds are truncated);
    None when the date or time does not exist (February 30, hour 24, ...)."""
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
        )
    except ValueError:
        return None
    return (moment - _EPOCH) // _MICRO


# --------------------------------------------------------------------------------------
# Strict: targeting clause values
# --------------------------------------------------------------------------------------

_STRICT_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?",
    re.ASCII,
)
_MAX_STRICT_TEXT: Final = 64


def parse_iso_datetime(text: str) -> int | None:
    """Microseconds since the Unix epoch for an ISO-8601 date or date-time, else None.

    Accepted: ``YYYY-MM-DD`` (midnight UTC), ``YYYY-MM-DDTHH:MM[:SS[.fraction]]`` with an
    optional ``Z`` or ``±HH:MM``/``±HHMM`` offset (no offset means UTC; offset hours
    0..23, minutes 0..59); fractions of up to 9 digits, truncated to microseconds; ASCII
    digits only, at most 64 characters.

    >>> parse_iso_datetime("1970-01-01T00:00:01Z")
    1000000
    """
    if len(text) > _MAX_STRICT_TEXT:
        return None
    match = _STRICT_RE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = match.groups()
    micros = _utc_micros(year, month, day, hour, minute, second, fraction)
    if micros is None or sign is None:
        return micros
    hours, minutes = int(off_h), int(off_m)
    if hours > 23 or minutes > 59:
        return None
    offset = (hours * 60 + minutes) * _MICROS_PER_MINUTE
    return micros - offset if sign == "+" else micros + offset


# --------------------------------------------------------------------------------------
# Lenient: the local server's update cursor
# --------------------------------------------------------------------------------------

_LENIENT_RE: Final = re.compile(
    r"""^(\d{4})-(\d{2})-(\d{2})
        (?:[Tt\ ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?
        \s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$""",
    re.VERBOSE,
)
# "...59.123456 00:00": a "+" that form-decoding turned into a space.
_SPACE_OFFSET_RE: Final = re.compile(r"(\d) (\d{2}(?::?\d{2})?)$")


def parse_timestamp(raw: str) -> int | None:
    """Parse an update cursor leniently into microseconds; ``None`` when unparsable.

    Accepts ISO-8601 dates and times with ``Z``, ``+00:00``/``+0000``/``+00`` offsets
    (under 24 hours) or no offset (taken as UTC), any number of fraction digits (kept to
    microseconds), a space where a ``+`` was form-decoded, surrounding white space, and
    plain integers (epoch milliseconds when 11 digits or more, else seconds).

    >>> parse_timestamp("1000")
    1000000000
    """
    text = raw.strip()
    if not text:
        return None
    if text.isdigit():
        value = int(text)
        return value * 1000 if len(text) >= 11 else value * 1_000_000
    match = _LENIENT_RE.match(text) or _LENIENT_RE.match(_SPACE_OFFSET_RE.sub(r"\1+\2", text))
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    offset_micros = 0
    if offset and offset not in ("Z", "z"):
        digits = offset[1:].replace(":", "")
        offset_micros = (int(digits[:2]) * 60 + int(digits[2:4] or 0)) * _MICROS_PER_MINUTE
        if offset_micros >= _MICROS_PER_DAY:
            return None
        if offset[0] == "-":
            offset_micros = -offset_micros
    micros = _utc_micros(year, month, day, hour, minute, second, fraction)
    return None if micros is None else micros - offset_micros
