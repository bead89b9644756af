"""The pure targeting evaluator: ``evaluate(flag, context, flags=..., segments=...)``.

Flags and segments are compiled ahead of time by :mod:`flagkit.core.targeting` into
small Python functions (rules become one boolean expression, every constant and every
:class:`Decision` is built at compile time), so evaluating does no parsing, no regex
compilation, no allocation of results and no logging. This module holds what runs at
evaluation time: :class:`Decision`, :func:`evaluate` and the helpers the compiled code
calls (attribute access, segment membership, prerequisites, rollouts, value parsing).

Everything here is side-effect free and thread-safe; the only state is the bounded
``functools.lru_cache`` of semantic-version parses.
"""

from __future__ import annotations

import functools
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final

from flagkit.core.bucketing import bucketing_string
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import EvaluationReason
from flagkit.utils.timeparse import parse_iso_datetime as parse_iso_datetime

if TYPE_CHECKING:
    from flagkit.core.targeting import FlagModel, SegmentModel

__all__ = ["MAX_PREREQUISITE_DEPTH", "Decision", "evaluate"]

MAX_PREREQUISITE_DEPTH: Final = 32
"""Prerequisite chains longer than this are an evaluation error (a cycle guard)."""

_ERROR_TEXT_LIMIT: Final = 300


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of evaluating one flag for one context.

    ``variation_id`` is set whenever a variation was served; ``rule_id`` for
    ``RULE_MATCH``/``SEGMENT_MATCH``; ``segment_id`` for ``SEGMENT_MATCH``; ``error`` for
    ``EVALUATION_ERROR`` (then ``value`` is the flag's own ``value``). Decisions are shared
    between calls: treat ``value`` as read-only. Immutable and thread-safe.
    """

    value: Any
    reason: EvaluationReason
    variation_id: str | None = None
    rule_id: str | None = None
    segment_id: str | None = None
    error: str | None = None


class EvaluationFailure(Exception):
    """Raised inside compiled code when a flag cannot be evaluated (never escapes
    :func:`evaluate`): unknown or malformed segment, prerequisite cycle, ..."""


def evaluate(
    flag: FlagModel,
    context: EvaluationContext | None,
    *,
    flags: Mapping[str, FlagModel],
    segments: Mapping[str, SegmentModel],
) -> Decision:
    """Evaluate ``flag`` for ``context``; never raises.

    ``flags`` (for prerequisites) and ``segments`` are the current snapshot, keyed by key.
    A simple flag (no targeting fields) gives its ``value`` with reason ``CACHED``. A flag
    that cannot be evaluated (malformed targeting, unknown segment, prerequisite cycle,
    an attribute of an unusable type, ...) gives its ``value`` with ``EVALUATION_ERROR``
    and ``error`` set; other flags are unaffected.

    >>> from flagkit.core.targeting import compile_flag
    >>> from flagkit.types.flag import FlagState
    >>> model = compile_flag(FlagState.from_dict({"key": "a", "value": True,
    ...     "enabled": True, "version": 1}))
    >>> evaluate(model, None, flags={}, segments={}).reason.value
    'CACHED'

    Pure and thread-safe.
    """
    try:
        return flag._evaluate(context, flags, segments, ())
    except Exception as exc:  # the evaluation boundary: a lookup never raises
        return error_decision(flag.state.value, exc)


def error_decision(value: Any, exc: BaseException | str) -> Decision:
    """An ``EVALUATION_ERROR`` decision serving ``value``, with a short error text."""
    if isinstance(exc, str):
        text = exc
    elif isinstance(exc, EvaluationFailure):
        text = str(exc)
    else:
        text = f"{type(exc).__name__}: {exc}"
    if len(text) > _ERROR_TEXT_LIMIT:
        text = text[: _ERROR_TEXT_LIMIT - 3] + "..."
    return Decision(value, EvaluationReason.EVALUATION_ERROR, error=text)


# --------------------------------------------------------------------------------------
# Attributes
# --------------------------------------------------------------------------------------

BUILTIN_ATTRIBUTES: Final[Mapping[str, str]] = {
    "userId": "user_id",
    "userKey": "user_key",
    "key": "user_key",
    "email": "email",
    "name": "name",
    "country": "country",
    "ip": "ip",
    "userAgent": "user_agent",
}
"""Targeting attribute name -> ``EvaluationContext`` field (``anonymous`` is derived)."""

EMPTY_CONTEXT: Final = EvaluationContext()
"""Stands in for a missing context: every attribute is absent."""

_EMPTY_MAPPING: Final[Mapping[str, Any]] = {}


def anonymous_of(ctx: EvaluationContext) -> bool:
    """The ``anonymous`` attribute: the context's flag if set, else "has no user id"."""
    flag = ctx.anonymous
    return ctx.user_id is None if flag is None else bool(flag)


def custom_name(attribute: str) -> str | None:
    """The custom key an attribute name refers to, or None for a built-in attribute."""
    if attribute.startswith("custom."):
        return attribute[7:]
    if attribute in BUILTIN_ATTRIBUTES or attribute == "anonymous":
        return None
    return attribute


def attribute_getter(attribute: str) -> Callable[[EvaluationContext], Any]:
    """A function reading ``attribute`` from a context (``None`` when absent)."""
    name = custom_name(attribute)
    if name is None:
        if attribute == "anonymous":
            return anonymous_of
        getter: Callable[[EvaluationContext], Any] = operator.attrgetter(
            BUILTIN_ATTRIBUTES[attribute]
        )
        return getter

    def get_custom(ctx: EvaluationContext) -> Any:
        return (ctx.custom or _EMPTY_MAPPING).get(name)

    return get_custom


_EXACT_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def _normalize(value: Any) -> Any:
    cls = value.__class__
    if cls in _EXACT_SCALARS:
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


def match_generic(scalar: Callable[[Any], bool], value: Any) -> bool:
    """Apply a clause's scalar test to a value that is not a plain built-in scalar:
    any element of a list/tuple, or a ``str``/``int``/``float`` subclass as its base type."""
    if isinstance(value, (list, tuple)):
        return any(scalar(_normalize(item)) for item in value if item is not None)
    return bool(scalar(_normalize(value)))


# --------------------------------------------------------------------------------------
# Dates and semantic versions (shared with the compiler for clause values)
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


def semver_key(value: Any) -> SemverKey | None:
    """:func:`parse_semver` for a string attribute value, None for anything else."""
    if value.__class__ is not str:
        return None
    return parse_semver(value)


# --------------------------------------------------------------------------------------
# Segments, prerequisites, rollouts (called from compiled code)
# --------------------------------------------------------------------------------------


def segment_match(
    ctx: EvaluationContext, segments: Mapping[str, SegmentModel], keys: tuple[str, ...]
) -> str | None:
    """The first of ``keys`` whose segment contains ``ctx``, or None.

    Raises :class:`EvaluationFailure` for an unknown or malformed segment.
    """
    for key in keys:
        segment = segments.get(key)
        if segment is None:
            raise EvaluationFailure(f"unknown segment {key!r}")
        if segment._contains(ctx):
            return key
    return None


def check_prerequisites(
    flag_key: str,
    prerequisites: tuple[tuple[str, str], ...],
    failed: Decision,
    ctx: EvaluationContext,
    flags: Mapping[str, FlagModel],
    segments: Mapping[str, SegmentModel],
    stack: tuple[str, ...],
) -> Decision | None:
    """None when every prerequisite is met, else ``failed`` (``PREREQUISITE_FAILED``).

    A prerequisite ``(key, variation)`` is met when flag ``key`` exists, is enabled and
    serves ``variation`` for ``ctx``. Raises :class:`EvaluationFailure` on a cycle, a
    chain deeper than :data:`MAX_PREREQUISITE_DEPTH` or a prerequisite that errors.
    """
    chain = (*stack, flag_key)
    if len(chain) > MAX_PREREQUISITE_DEPTH:
        raise EvaluationFailure(f"prerequisites nested deeper than {MAX_PREREQUISITE_DEPTH} flags")
    for key, variation in prerequisites:
        if key in chain:
            cycle = " -> ".join((*chain[chain.index(key) :], key))
            raise EvaluationFailure(f"prerequisite cycle: {cycle}")
        prerequisite = flags.get(key)
        if prerequisite is None:
            return failed
        try:
            decision = prerequisite._evaluate(ctx, flags, segments, chain)
        except EvaluationFailure:
            raise
        except Exception as exc:
            raise EvaluationFailure(f"prerequisite {key!r}: {type(exc).__name__}: {exc}") from exc
        if decision.reason is EvaluationReason.EVALUATION_ERROR:
            raise EvaluationFailure(f"prerequisite {key!r} is malformed: {decision.error}")
        if not prerequisite.state.enabled or decision.variation_id != variation:
            return failed
    return None


def bucketing_value(
    ctx: EvaluationContext, getter: Callable[[EvaluationContext], Any] | None
) -> str | None:
    """The string a rollout hashes for ``ctx``: the ``bucketBy`` attribute read by
    ``getter`` when it is a string or an integer, else the user id, else the user key;
    None when the context has none of them (it cannot be bucketed)."""
    if getter is not None:
        found = bucketing_string(getter(ctx))
        if found is not None:
            return found
    for candidate in (ctx.user_id, ctx.user_key):
        found = bucketing_string(candidate)
        if found is not None:
            return found
    return None
