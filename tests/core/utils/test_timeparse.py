"""The shared ISO-8601 parsers: strict (targeting values) and lenient (server cursors)."""

from __future__ import annotations

import pytest

from flagkit.core.targeting import date_key
from flagkit.server._time import format_micros
from flagkit.server._time import parse_timestamp as server_parse_timestamp
from flagkit.utils.timeparse import parse_iso_datetime, parse_timestamp


@pytest.mark.parametrize(
    "text",
    [
        "2025-03-01",
        "2025-03-01T12:30Z",
        "2025-03-01T12:30:15.123456Z",
        "2025-03-01 12:30:15,5+05:30",
        "2025-03-01T12:30:15-0800",
        "1969-12-31T23:59:59.999999Z",
    ],
)
def test_both_grammars_agree_on_common_forms(text: str) -> None:
    """Forms both grammars accept give the same instant from the strict and the lenient parser."""
    strict = parse_iso_datetime(text)
    assert strict is not None
    assert parse_timestamp(text) == strict


@pytest.mark.parametrize(
    ("text", "lenient"),
    [
        ("1970-01-01T00:00:01+01", -3_599_000_000),  # hour-only offset
        ("1970-01-01T00:00:01 +00:00", 1_000_000),  # space before the offset
        ("1970-01-01T00:00:01.1234567891Z", 1_123_456),  # more than 9 fraction digits
        ("1970-01-01T00:00:01 00:00", 1_000_000),  # "+" form-decoded into a space
        (" 1970-01-01T00:00:01Z ", 1_000_000),  # surrounding white space
        ("1000", 1_000_000_000),  # epoch seconds
    ],
)
def test_only_the_lenient_grammar_accepts_cursor_forms(text: str, lenient: int) -> None:
    """Cursor spellings the server tolerates stay invalid as targeting dates."""
    assert parse_timestamp(text) == lenient
    assert parse_iso_datetime(text) is None


def test_strict_parser_rejects_bad_offsets_and_long_text() -> None:
    """Offsets beyond 23:59 and texts over 64 characters are not targeting dates."""
    assert parse_iso_datetime("1970-01-01T00:00:00+23:59") == -86_340_000_000
    assert parse_iso_datetime("1970-01-01T00:00:00+24:00") is None
    assert parse_iso_datetime("1970-01-01T00:00:00+05:60") is None
    assert parse_iso_datetime("1970-01-01T00:00:00" + "0" * 50) is None


def test_impossible_dates_are_rejected_by_both() -> None:
    """February 30 and hour 24 are None for both grammars, never an exception."""
    for text in ("2025-02-30", "2025-01-01T24:00:00Z"):
        assert parse_iso_datetime(text) is None
        assert parse_timestamp(text) is None


def test_callers_use_the_shared_parsers() -> None:
    """The evaluator's date_key and the server's cursor parser go through this module."""
    assert date_key("1970-01-01T00:00:01Z") == parse_iso_datetime("1970-01-01T00:00:01Z")
    assert server_parse_timestamp is parse_timestamp
    micros = 1_700_000_000_123_456
    assert parse_timestamp(format_micros(micros)) == micros
    assert parse_iso_datetime(format_micros(micros)) == micros
