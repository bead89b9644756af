"""Clause operators: one table, operator name -> how its values are checked, prepared and
tested. This is the meaning of every operator; the interpreter applies it as written.

Each :class:`Operator` has three small functions:

- ``check(value)``: one clause value as written in the flag -> its checked form (a
  compiled regex, a date in microseconds, a version key, or the value itself); raises
  ``ValueError`` with the message the parser reports next to the value's path;
- ``prepare(values)``: all checked values of a clause -> what ``test`` takes, computed
  once when the flag is loaded (a set of strings, the bound of an ordered comparison);
- ``test(prepared, value)``: whether one attribute value that is a plain ``str``,
  ``int``, ``float``, ``bool`` matches.

How a whole attribute value is tested (a missing value, a list, a ``str`` subclass) is
:func:`value_matches`. ``exists`` and ``segmentMatch`` test no value: the interpreter
handles them itself. The code generator (``compiler.py``) has its own inline form of each
test, which the property-based tests prove equal to this table.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final, NamedTuple

from flagkit.core.targeting.model import describe
from flagkit.utils.timeparse import parse_iso_datetime

__all__ = [
    "EXACT_SCALARS",
    "MAX_MATCH_INPUT_LENGTH",
    "MAX_PATTERN_LENGTH",
    "OPERATORS",
    "OPERATOR_TABLE",
    "InValues",
    "Operator",
    "check_segment_key",
    "date_key",
    "match_any",
    "parse_semver",
    "value_matches",
]

MAX_PATTERN_LENGTH: Final = 500
"""Longest regular expression accepted by ``matches`` (longer ones are rejected at load)."""
MAX_MATCH_INPUT_LENGTH: Final = 4096
"""``matches`` never matches an attribute string longer than this (bounds the cost)."""

EXACT_SCALARS: Final = frozenset({str, int, float, bool, type(None)})
"""Classes tested directly; other values go through :func:`match_any`."""


# --------------------------------------------------------------------------------------
# Values: dates and semantic versions
# --------------------------------------------------------------------------------------

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICRO: Final = timedelta(microseconds=1)


def date_key(value: Any) -> int | float | None:
    """A comparable instant in microseconds since the epoch, or None if not a date.

    Strings are ISO-8601 (see :func:`parse_iso_datetime`); numbers (not bools) are Unix
    epoch milliseconds; ``datetime`` (naive = UTC) and ``date`` (midnight UTC) objects
    are accepted from Python callers.
    """
    cls = value.__class__
    if cls is str:
        return parse_iso_datetime(value)
    if cls is int:
        return int(value) * 1000
    if cls is float:
        return float(value) * 1000 if math.isfinite(value) else None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int((value - _EPOCH) // _MICRO)
    if isinstance(value, date):
        return (
            datetime(value.year, value.month, value.day, tzinfo=timezone.utc) - _EPOCH
        ) // _MICRO
    return None


_SEMVER_RE: Final = re.compile(
    r"[vV]?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?",
    re.ASCII,
)
_MAX_SEMVER_TEXT: Final = 256

SemverKey = tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]


@functools.lru_cache(maxsize=2048)
def parse_semver(text: str) -> SemverKey | None:
    """A precedence key for a semantic version (SemVer 2.0.0 ordering), else None.

    Lenient in two ways: a leading ``v`` is allowed and missing minor/patch parts are 0
    (``"2"`` == ``"2.0.0"``). Build metadata (``+...``) is ignored; a pre-release sorts
    before its release, numeric identifiers numerically and below alphanumeric ones.
    Cached (bounded): attribute values repeat.
    """
    if len(text) > _MAX_SEMVER_TEXT:
        return None
    match = _SEMVER_RE.fullmatch(text)
    if match is None:
        return None
    major, minor, patch, pre = match.groups()
    if pre is None:
        return (int(major), int(minor or 0), int(patch or 0), 1, ())
    ids = tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))
    return (int(major), int(minor or 0), int(patch or 0), 0, ids)


# --------------------------------------------------------------------------------------
# Checking clause values
# --------------------------------------------------------------------------------------


def _check_equal(value: object) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be finite, got {value!r}")
    if not isinstance(value, (str, int, float)):
        hint = " (use the 'exists' operator)" if value is None else ""
        raise ValueError(f"must be a string, number or boolean, got {describe(value)}{hint}")
    return value


def _check_string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, got {describe(value)}")
    return value


def check_segment_key(value: object) -> str:
    """Check one ``segmentMatch`` value (a segment key), like ``Operator.check``."""
    if not _check_string(value):
        raise ValueError("must be a non-empty segment key")
    return str(value)


def _check_pattern(value: object) -> re.Pattern[str]:
    text = _check_string(value)
    if len(text) > MAX_PATTERN_LENGTH:
        raise ValueError(f"regular expression longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re.compile(text)
    except (re.error, RecursionError, OverflowError) as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None


def _check_number(value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a number, got {describe(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"must be finite, got {value!r}")
    return value


def _check_date(value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(
            f"must be an ISO-8601 date string or epoch milliseconds, got {describe(value)}"
        )
    key = date_key(value)
    if key is None:
        raise ValueError(f"invalid date {value!r} (use ISO-8601)")
    return key


def _check_version(value: object) -> SemverKey:
    if not isinstance(value, str):
        raise ValueError(f"must be a version string, got {describe(value)}")
    parsed = parse_semver(value)
    if parsed is None:
        raise ValueError(f"invalid semantic version {value!r}")
    return parsed


# --------------------------------------------------------------------------------------
# Preparing and testing
# --------------------------------------------------------------------------------------


class InValues(NamedTuple):
    """``in``/``equals`` values split by type, so that matching is type-strict."""

    bools: frozenset[bool]
    strings: frozenset[str]
    numbers: frozenset[int | float]


def _prepare_in(values: tuple[Any, ...]) -> InValues:
    return InValues(
        frozenset(v for v in values if isinstance(v, bool)),
        frozenset(v for v in values if isinstance(v, str)),
        frozenset(v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)),
    )


def _test_in(values: InValues, v: Any) -> bool:
    cls = v.__class__
    if cls is bool:
        return v in values.bools
    if cls is str:
        return v in values.strings
    if cls is int or cls is float:
        return v in values.numbers
    return False


def _test_contains(values: tuple[str, ...], v: Any) -> bool:
    return v.__class__ is str and any(part in v for part in values)


def _test_starts_with(values: tuple[str, ...], v: Any) -> bool:
    return v.__class__ is str and any(v.startswith(prefix) for prefix in values)


def _test_ends_with(values: tuple[str, ...], v: Any) -> bool:
    return v.__class__ is str and any(v.endswith(suffix) for suffix in values)


def _test_matches(patterns: tuple[re.Pattern[str], ...], v: Any) -> bool:
    if v.__class__ is not str or len(v) > MAX_MATCH_INPUT_LENGTH:
        return False
    return any(pattern.search(v) is not None for pattern in patterns)


def _is_number(v: Any) -> bool:
    return v.__class__ is int or v.__class__ is float


def _test_version_in(versions: frozenset[SemverKey], v: Any) -> bool:
    return v.__class__ is str and parse_semver(v) in versions


def _version_test(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def test(bound: Any, v: Any) -> bool:
        if v.__class__ is not str:
            return False
        key = parse_semver(v)
        return key is not None and compare(key, bound)

    return test


def _date_test(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def test(bound: Any, v: Any) -> bool:
        key = date_key(v)
        return key is not None and compare(key, bound)

    return test


def _number_test(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def test(bound: Any, v: Any) -> bool:
        return _is_number(v) and compare(v, bound)

    return test


def _all(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return values


@dataclass(frozen=True, slots=True)
class Operator:
    """How one operator checks, prepares and tests clause values (see the module doc)."""

    check: Callable[[object], Any]
    prepare: Callable[[tuple[Any, ...]], Any]
    test: Callable[[Any, Any], bool]


def _lt(a: Any, b: Any) -> bool:
    return bool(a < b)


def _le(a: Any, b: Any) -> bool:
    return bool(a <= b)


def _gt(a: Any, b: Any) -> bool:
    return bool(a > b)


def _ge(a: Any, b: Any) -> bool:
    return bool(a >= b)


# "Any of the values" for an ordered comparison is one comparison with the loosest value:
# ``lt [1, 100]`` is ``< 100`` and ``gt [1, 100]`` is ``> 1``.
OPERATOR_TABLE: Final[dict[str, Operator]] = {
    "in": Operator(_check_equal, _prepare_in, _test_in),
    "equals": Operator(_check_equal, _prepare_in, _test_in),
    "contains": Operator(_check_string, _all, _test_contains),
    "startsWith": Operator(_check_string, _all, _test_starts_with),
    "endsWith": Operator(_check_string, _all, _test_ends_with),
    "matches": Operator(_check_pattern, _all, _test_matches),
    "lt": Operator(_check_number, max, _number_test(_lt)),
    "lte": Operator(_check_number, max, _number_test(_le)),
    "gt": Operator(_check_number, min, _number_test(_gt)),
    "gte": Operator(_check_number, min, _number_test(_ge)),
    "before": Operator(_check_date, max, _date_test(_lt)),
    "after": Operator(_check_date, min, _date_test(_gt)),
    "semverEq": Operator(_check_version, frozenset, _test_version_in),
    "semverLt": Operator(_check_version, max, _version_test(_lt)),
    "semverLte": Operator(_check_version, max, _version_test(_le)),
    "semverGt": Operator(_check_version, min, _version_test(_gt)),
    "semverGte": Operator(_check_version, min, _version_test(_ge)),
}
"""Every operator that tests an attribute value."""

OPERATORS: Final = (*OPERATOR_TABLE, "exists", "segmentMatch")
"""Every clause operator (``op``)."""


# --------------------------------------------------------------------------------------
# Testing a whole attribute value
# --------------------------------------------------------------------------------------


def _normalize(value: Any) -> Any:
    cls = value.__class__
    if cls in EXACT_SCALARS:
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return value


def match_any(test: Callable[[Any, Any], bool], prepared: Any, value: Any) -> bool:
    """``test`` applied to a value that is not a plain built-in scalar: true when any
    non-null element of a list/tuple matches; a ``str``/``int``/``float`` subclass is
    tested as its base type; anything else as it is (and usually does not match)."""
    if isinstance(value, (list, tuple)):
        return any(test(prepared, _normalize(item)) for item in value if item is not None)
    return bool(test(prepared, _normalize(value)))


def value_matches(op: str, prepared: Any, value: Any) -> bool:
    """Whether a present (not None) attribute value matches an un-negated clause."""
    test = OPERATOR_TABLE[op].test
    if value.__class__ in EXACT_SCALARS:
        return test(prepared, value)
    return match_any(test, prepared, value)
