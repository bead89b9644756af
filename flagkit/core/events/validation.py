"""The checks ``track()`` makes on the caller's thread: cheap, bounded, and copying.

:class:`Admission` checks the event type, copies the data (so later changes by the caller do
not leak into the event) while estimating its JSON size, checks the context's type and, in
strict PII mode, refuses data that looks personal. Bad input raises
:class:`~flagkit.errors.EventError` naming what is wrong and where; in lenient mode it is
logged (rate-limited), counted as dropped, and ``admit`` returns ``None``.

:class:`PiiWarner` is the non-strict PII scan: it runs on the events thread and warns once
per set of suspicious fields.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from flagkit.core.events.counters import RateLimitedLog
from flagkit.errors import EventError, SecurityError
from flagkit.types.context import EvaluationContext

__all__ = [
    "RESERVED_EVENT_TYPES",
    "Admission",
    "Invalid",
    "PiiCheck",
    "PiiWarner",
    "json_copy",
]

PiiCheck = Callable[[Mapping[str, Any], str], list[str]]

_TYPE_RE: Final = re.compile(r"[a-zA-Z0-9._-]{1,128}")
#: The event types only the SDK itself queues (``EventQueue.track_builtin``): the ``$``
#: makes them impossible to send through ``track()``, whose types match ``_TYPE_RE``.
RESERVED_EVENT_TYPES: Final = frozenset({"$exposure", "$evaluation_summary"})
_MAX_KNOWN_TYPES: Final = 4096
_FAST_KEYS: Final = 16  # larger dicts take the general walk
_INT_LIMIT: Final = 10**18  # fast path only; the walk allows bigger ones
_MAX_INT_BITS: Final = 4096  # ~1233 digits; Python refuses to print ints past 4300 digits
_MAX_DEPTH: Final = 32
_PII_WARNED_MAX: Final = 256
_PII_CACHE_MAX: Final = 4096  # cached verdicts per kind; past it, the check runs each time
_PII_CACHED_VALUE: Final = 64  # longer strings are checked each time, not cached
_SCALARS: Final = frozenset({int, float, bool, type(None)})
_NOTHING: Final[tuple[None, int]] = (None, 0)  # admit() for an event without data or context


class Invalid(Exception):
    """Raised by the data walk; ``path`` is filled in as the exception unwinds."""

    def __init__(self, message: str, *, located: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.located = located  # False: about the data as a whole (the size limit)
        self.path: list[str] = []

    def describe(self, what: str = "event data") -> str:
        where = "".join(self.path) if self.located else ""
        return f"{what}{where}: {self.message}"


class _Walk:
    __slots__ = ("limit", "size")

    def __init__(self, limit: int) -> None:
        self.size = 0
        self.limit = limit


def json_copy(value: object, limit: int) -> tuple[Any, int]:
    """A JSON-safe copy of ``value`` and its estimated JSON size; raises :class:`Invalid`.

    The walk stops as soon as the estimated size passes ``limit``, so its cost is bounded by
    the limit, not by the input.
    """
    walk = _Walk(limit)
    try:
        return _copy(value, walk, 0), walk.size
    except RecursionError:
        raise Invalid("too deeply nested", located=False) from None


def _copy(value: object, walk: _Walk, depth: int) -> Any:
    if value is None or value is True or value is False:
        walk.size += 5
        result: Any = value
    elif isinstance(value, str):
        walk.size += len(value) + 2
        result = value
    elif isinstance(value, int):
        bits = value.bit_length()
        if bits > _MAX_INT_BITS:
            raise Invalid(f"integer with {bits} bits is too large to send")
        walk.size += bits // 3 + 2
        result = int(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid(f"{value!r} is not a finite number; JSON cannot carry NaN or Infinity")
        walk.size += 24
        result = float(value)
    elif isinstance(value, Mapping):
        if depth >= _MAX_DEPTH:
            raise Invalid(f"nested deeper than {_MAX_DEPTH} levels")
        walk.size += 2
        copied: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise Invalid(f"keys must be strings, got {type(key).__name__} {key!r:.40}")
            walk.size += len(key) + 4
            try:
                copied[key] = _copy(item, walk, depth + 1)
            except Invalid as exc:
                exc.path.insert(0, f"[{_short(key)}]")
                raise
        result = copied
    elif isinstance(value, (list, tuple)):
        if depth >= _MAX_DEPTH:
            raise Invalid(f"nested deeper than {_MAX_DEPTH} levels")
        walk.size += 2
        items: list[Any] = []
        for index, item in enumerate(value):
            walk.size += 1
            try:
                items.append(_copy(item, walk, depth + 1))
            except Invalid as exc:
                exc.path.insert(0, f"[{index}]")
                raise
        result = items
    else:
        raise Invalid(
            f"{type(value).__name__} is not JSON-serialisable "
            "(allowed: str, int, float, bool, None, list, tuple, dict)"
        )
    if walk.size > walk.limit:
        raise Invalid(
            f"larger than the limit of {walk.limit} characters of JSON (max_event_size)",
            located=False,
        )
    return result


def _short(key: str) -> str:
    return repr(key) if len(key) <= 40 else repr(key[:40]) + "..."


class Admission:
    """Validates and copies what ``track()`` is given. Thread-safe (no shared mutable state
    but a set of known-good event types, which only grows)."""

    def __init__(
        self,
        *,
        max_event_size: int,
        lenient: bool,
        strict_pii_check: PiiCheck | None,
        on_dropped: Callable[[], None],
        logger: logging.Logger,
    ) -> None:
        self._max_event_size = max_event_size
        self._lenient = lenient
        self._strict_pii_check = strict_pii_check
        self._on_dropped = on_dropped
        self._known_types: set[str] = set()
        self._log_invalid = RateLimitedLog(logger, logging.WARNING)

    def admit(
        self, event_type: object, data: object, context: object
    ) -> tuple[dict[str, Any] | None, int] | None:
        """``(copied data, estimated JSON size)``, or ``None`` when refused in lenient mode.

        Raises :class:`~flagkit.errors.EventError` for bad input (unless lenient) and
        :class:`~flagkit.errors.SecurityError` for PII in strict mode.
        """
        try:
            known = event_type in self._known_types
        except TypeError:  # unhashable
            known = False
        if not known and not self._admit_type(event_type):
            return None
        if data is None and context is None:
            return _NOTHING
        size = 0
        admitted: dict[str, Any] | None = None
        if data is not None:
            if type(data) is dict and len(data) <= _FAST_KEYS:
                # Fast path for small flat dicts; anything unusual takes the general walk.
                copied = dict(data)
                for key, value in copied.items():
                    kind = type(value)
                    if type(key) is not str:
                        break
                    if kind is str:
                        size += len(value) + len(key) + 6
                    elif kind is float:
                        if value - value != 0.0:  # NaN or infinite
                            break
                        size += len(key) + 28
                    elif kind is int:
                        if not -_INT_LIMIT < value < _INT_LIMIT:
                            break
                        size += len(key) + 24
                    elif kind is bool or value is None:
                        size += len(key) + 9
                    else:
                        break
                else:
                    if size <= self._max_event_size:
                        admitted = copied
            if admitted is None:
                walked = self._admit_data(data)
                if walked is None:
                    return None
                admitted, size = walked
        if (
            context is not None
            and type(context) is not EvaluationContext
            and not isinstance(context, EvaluationContext)
        ):
            self._reject(
                "EVENT_INVALID_DATA",
                f"context must be an EvaluationContext or None, got {type(context).__name__}",
            )
            return None
        if self._strict_pii_check is not None and admitted:
            self._check_strict_pii(self._strict_pii_check, admitted)
        return admitted, size

    def _reject(self, code: str, message: str) -> None:
        if not self._lenient:
            raise EventError(code, message)
        self._on_dropped()
        self._log_invalid("flagkit: event dropped (lenient_tracking): [%s] %s", code, message)

    def _admit_type(self, event_type: object) -> bool:
        if not isinstance(event_type, str):
            self._reject(
                "EVENT_INVALID_TYPE",
                f"event type must be a string, got {type(event_type).__name__}",
            )
            return False
        if not _TYPE_RE.fullmatch(event_type):
            shown = event_type if len(event_type) <= 64 else event_type[:64] + "..."
            self._reject(
                "EVENT_INVALID_TYPE",
                f"invalid event type {shown!r} ({len(event_type)} characters): use 1 to 128 "
                "characters from a-z, A-Z, 0-9, '.', '_' and '-'",
            )
            return False
        if len(self._known_types) < _MAX_KNOWN_TYPES:
            self._known_types.add(event_type)
        return True

    def _admit_data(self, data: object) -> tuple[dict[str, Any], int] | None:
        if not isinstance(data, Mapping):
            self._reject(
                "EVENT_INVALID_DATA",
                f"event data must be a dict (mapping) or None, got {type(data).__name__}",
            )
            return None
        try:
            copied, size = json_copy(data, self._max_event_size)
        except Invalid as exc:
            self._reject("EVENT_INVALID_DATA", exc.describe())
            return None
        return copied, size

    @staticmethod
    def _check_strict_pii(check: PiiCheck, data: dict[str, Any]) -> None:
        paths = check(data, "event")
        if paths:
            raise SecurityError(
                "SECURITY_PII_DETECTED",
                f"event data contains potential PII in {', '.join(paths)}; strict_pii_mode is "
                "on, so the event was not queued (remove or rename these fields)",
            )


class PiiWarner:
    """The non-strict PII scan on the events thread: warns once per set of fields.

    Most events carry small flat data whose field names repeat from event to event, so the
    check runs per field and its verdict is cached: by field name for a number, boolean or
    null value (values of those types are never personal data), by name and value for a
    short string. Nested data, or a field the cache cannot hold, goes to the check itself.
    Not thread-safe (the events thread owns it).
    """

    def __init__(self, check: PiiCheck, logger: logging.Logger) -> None:
        self._check = check
        self._logger = logger
        self._warned: set[tuple[str, ...]] = set()
        self._by_name: dict[str, tuple[str, ...]] = {}
        self._by_value: dict[tuple[str, str], tuple[str, ...]] = {}

    def scan(self, data: Mapping[str, Any]) -> None:
        try:
            paths = self._findings(data)
        except Exception:
            self._logger.exception("flagkit: PII check failed")
            return
        if not paths:
            return
        key = tuple(sorted(set(paths)))
        if key in self._warned:
            return
        if len(self._warned) < _PII_WARNED_MAX:
            self._warned.add(key)
        self._logger.warning(
            "flagkit: event data contains potential PII in %s; consider removing these fields "
            "(strict_pii_mode makes track() refuse such events)",
            ", ".join(key),
        )

    def _findings(self, data: Mapping[str, Any]) -> list[str]:
        found: list[str] = []
        for name, value in data.items():
            kind = type(value)
            if kind is str:
                if len(value) > _PII_CACHED_VALUE:
                    found.extend(self._check({name: value}, "event"))
                    continue
                cache = self._by_value
                pair = (name, value)
                verdict = cache.get(pair)
                if verdict is None:
                    verdict = tuple(self._check({name: value}, "event"))
                    if len(cache) < _PII_CACHE_MAX:
                        cache[pair] = verdict
            elif kind in _SCALARS:
                verdict = self._by_name.get(name)
                if verdict is None:
                    verdict = tuple(self._check({name: value}, "event"))
                    if len(self._by_name) < _PII_CACHE_MAX:
                        self._by_name[name] = verdict
            else:
                return self._check(data, "event")  # nested: the check walks it whole
            found.extend(verdict)
        return found
