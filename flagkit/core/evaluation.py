"""The rules of one flag lookup, written once (docs/protocol.md §8).

:func:`evaluate_key` is the whole algorithm::

    invalid key            → default, DEFAULT, EVAL_DEFAULT_USED
    override               → the override, OVERRIDE        (type-checked for typed getters)
    server flag, simple    → its value, CACHED (STALE_CACHE once older than cache_ttl)
    server flag, targeted  → the targeting evaluator's value and reason (a context that
                             cannot be resolved → default, EVAL_INVALID_CONTEXT)
      typed getter, wrong declared type or value type → default, EVAL_TYPE_MISMATCH
    bootstrap value        → the value, BOOTSTRAP           (type-checked for typed getters)
    otherwise              → default, FLAG_NOT_FOUND, EVAL_FLAG_NOT_FOUND

Fast paths in :class:`flagkit.FlagKitClient` skip it for speed and agree with it by
construction, which ``tests/core/test_evaluation.py`` checks on generated flags, contexts
and defaults: a typed getter reads the snapshot's fast table of its type (which holds only
simple flags and bootstrap values whose value has that type: exactly the cases where the
rules above serve the stored value); for a targeted flag it calls :func:`targeted_value`,
which serves the decision's value only when the rules above would serve that same value
(no error, the value of the getter's type) and otherwise hands over to them; and
``evaluate_all`` builds the ``CACHED`` / ``STALE_CACHE`` result of a simple server flag
inline.

Also here: the process-wide "warn once per key" memory for unknown keys and type
mismatches (a typo or a wrong getter is logged once per process, never on every call).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, NamedTuple

from flagkit.core.context_manager import ContextManager, context_from_mapping
from flagkit.core.snapshot import FlagSnapshot
from flagkit.core.targeting import evaluate as evaluate_flag
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import EvaluationReason, EvaluationResult, FlagType
from flagkit.utils.validators import flag_key_problem, is_valid_flag_key

__all__ = [
    "MISS",
    "LazyContext",
    "Outcome",
    "coerce_context",
    "evaluate_all",
    "evaluate_key",
    "evaluate_safely",
    "matches",
    "result_of",
    "safe_key",
    "targeted_value",
    "warn_once",
]

_NUMBER: Final = FlagType.NUMBER
_BOOLEAN: Final = FlagType.BOOLEAN  # module constants: ``FlagType.X`` costs ~80 ns a read
_STRING: Final = FlagType.STRING
_R_OVERRIDE: Final = EvaluationReason.OVERRIDE
_R_CACHED: Final = EvaluationReason.CACHED
_R_STALE: Final = EvaluationReason.STALE_CACHE
_R_BOOTSTRAP: Final = EvaluationReason.BOOTSTRAP
_R_NOT_FOUND: Final = EvaluationReason.FLAG_NOT_FOUND
_R_DEFAULT: Final = EvaluationReason.DEFAULT
_R_ERROR: Final = EvaluationReason.EVALUATION_ERROR

NOT_FOUND: Final = "EVAL_FLAG_NOT_FOUND"
TYPE_MISMATCH: Final = "EVAL_TYPE_MISMATCH"


class Outcome(NamedTuple):
    """What a lookup served and why (an :class:`EvaluationResult` without key and time)."""

    value: Any
    enabled: bool
    reason: EvaluationReason
    version: int = 0
    variation_id: str | None = None
    rule_id: str | None = None
    segment_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    flag_type: FlagType | None = None  # the flag's declared type, for a type mismatch


class LazyContext:
    """Resolves the merged context once, on first need, for one lookup or evaluate_all()."""

    __slots__ = ("_done", "_manager", "_per_call", "_value")

    def __init__(self, manager: ContextManager, per_call: object) -> None:
        self._manager = manager
        self._per_call = per_call
        self._done = False
        self._value: EvaluationContext | None = None

    def get(self) -> EvaluationContext | None:
        """The merged context (global, scope, per call); raises for an unusable one."""
        if not self._done:
            self._value = self._manager.resolve(coerce_context(self._per_call))
            self._done = True
        return self._value


def coerce_context(context: object) -> EvaluationContext | None:
    """``context`` as an :class:`EvaluationContext` (a mapping is converted).

    Raises ``TypeError`` for anything that is not a context, a mapping or ``None``.
    """
    if context is None or isinstance(context, EvaluationContext):
        return context
    if isinstance(context, Mapping):
        return context_from_mapping(context)
    raise TypeError(
        f"context must be an EvaluationContext, a mapping or None, got {type(context).__name__}"
    )


def matches(expected: FlagType, value: Any) -> bool:
    """Whether ``value`` has the Python type a getter of ``expected`` returns."""
    if expected is FlagType.BOOLEAN:
        return isinstance(value, bool)
    if expected is FlagType.STRING:
        return isinstance(value, str)
    if expected is _NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        try:
            return math.isfinite(float(value))
        except OverflowError:
            return False
    return isinstance(value, dict)


def safe_key(key: object) -> str:
    """A plain ``str`` naming ``key`` for results and logs, whatever ``key`` is."""
    try:
        if isinstance(key, str):
            return str.__str__(key)  # a plain copy: a str subclass's own methods never run
        return repr(key)[:64]
    except Exception:
        return "<unprintable key>"


def _mismatch(
    default: Any, version: int, expected: FlagType, value: Any, declared: FlagType | None = None
) -> Outcome:
    shown = declared.value if declared is not None else type(value).__name__
    return Outcome(
        default,
        False,
        _R_ERROR,
        version,
        error_code=TYPE_MISMATCH,
        error_message=f"flag is {shown}, a {expected.value} was asked for",
        flag_type=declared if declared is not None else FlagType.infer(value),
    )


def _typed(outcome: Outcome, default: Any, expected: FlagType | None) -> Outcome:
    """``outcome`` checked against a typed getter's ``expected`` type (numbers as float)."""
    if expected is None:
        return outcome
    value = outcome.value
    if not matches(expected, value):
        return _mismatch(default, outcome.version, expected, value)
    if expected is _NUMBER:
        return outcome._replace(value=float(value))
    return outcome


def evaluate_key(
    key: Any,
    default: Any,
    expected: FlagType | None,
    *,
    overrides: Mapping[str, Any],
    snapshot: FlagSnapshot,
    context: LazyContext,
) -> Outcome:
    """Apply the rules in the module docstring to ``key``.

    ``expected`` is the typed getter's type (``None`` for ``evaluate``: no type check).
    May raise on hostile input (a key whose ``__hash__`` raises, ...): callers use
    :func:`evaluate_safely`.
    """
    if not is_valid_flag_key(key):
        return Outcome(
            default,
            False,
            _R_DEFAULT,
            error_code="EVAL_DEFAULT_USED",
            error_message=flag_key_problem(key),
        )
    if key in overrides:
        return _typed(Outcome(overrides[key], True, _R_OVERRIDE), default, expected)

    entry = snapshot.entries.get(key)
    if entry is not None:
        fresh = time.monotonic() <= snapshot.expires_at
        model = entry.model
        if model is None:
            outcome = Outcome(
                entry.value, entry.enabled, _R_CACHED if fresh else _R_STALE, entry.version
            )
        else:
            try:
                resolved = context.get()
            except Exception as exc:
                return Outcome(
                    default,
                    False,
                    _R_ERROR,
                    entry.version,
                    error_code="EVAL_INVALID_CONTEXT",
                    error_message=str(exc),
                )
            decision = evaluate_flag(
                model, resolved, flags=snapshot.models, segments=snapshot.segments
            )
            reason = decision.reason
            if not fresh and reason is not _R_ERROR:
                reason = _R_STALE
            outcome = Outcome(
                decision.value,
                entry.enabled,
                reason,
                entry.version,
                decision.variation_id,
                decision.rule_id,
                decision.segment_id,
                "EVAL_RULE_ERROR" if decision.error else None,
                decision.error,
            )
        if expected is not None and entry.flag_type is not expected:
            return _mismatch(default, entry.version, expected, outcome.value, entry.flag_type)
        return _typed(outcome, default, expected)

    bootstrap = snapshot.bootstrap
    if key in bootstrap:
        return _typed(Outcome(bootstrap[key], False, _R_BOOTSTRAP), default, expected)
    return Outcome(
        default,
        False,
        _R_NOT_FOUND,
        error_code=NOT_FOUND,
        error_message=f"flag {key!r} not found",
    )


MISS: Final[Any] = object()
"""What :func:`targeted_value` returns when the full rules must decide."""


def targeted_value(
    snapshot: FlagSnapshot,
    key: str,
    expected: FlagType,
    manager: ContextManager,
    per_call: object,
) -> Any:
    """The typed getter's value of targeted flag ``key``, or :data:`MISS`.

    The short form of :func:`evaluate_key` for a server flag with targeting, no override
    and a caller asking for the flag's declared type: the flag's decision for the resolved
    context, when it has no error and its value has the getter's type, is exactly what the
    rules serve (freshness changes only the reason). Anything else (another declared type,
    an unusable context, an error decision, a value of another type, an experiment flag,
    whose exposure only the full path records, an exception) returns :data:`MISS` and the
    caller applies the full rules, which report it. Never raises.
    """
    try:
        entry = snapshot.entries[key]
        model = entry.model
        if model is None or entry.flag_type is not expected:
            return MISS
        spec = model.spec
        if spec is not None and spec.experiment is not None:
            return MISS  # an experiment flag records its exposure on the full path
        if (
            per_call.__class__ is EvaluationContext
            and manager._global is None  # read inline: a method call costs a fifth of the path
            and (not manager.scoped or manager._var.get() is None)
        ):
            context: EvaluationContext | None = per_call
            # (nothing to merge it with: what resolve() would return)
        else:
            context = manager.resolve(coerce_context(per_call))
        decision = model._evaluate(context, snapshot.models, snapshot.segments, ())
        if decision.error is not None:
            return MISS
        value = decision.value
        kind = value.__class__
        if expected is _BOOLEAN:
            return value if kind is bool else MISS
        if expected is _STRING:
            return value if kind is str else MISS
        if expected is _NUMBER:
            return float(value) if matches(_NUMBER, value) else MISS
        return value if kind is dict else MISS
    except Exception:  # the full rules decide, and report, whatever went wrong here
        return MISS


def evaluate_safely(
    key: Any,
    default: Any,
    expected: FlagType | None,
    *,
    overrides: Mapping[str, Any],
    snapshot: FlagSnapshot,
    context: LazyContext,
    logger: logging.Logger,
) -> Outcome:
    """:func:`evaluate_key`, with any exception turned into the default (``INTERNAL_ERROR``)."""
    try:
        return evaluate_key(
            key, default, expected, overrides=overrides, snapshot=snapshot, context=context
        )
    except Exception as exc:
        try:
            message = str(exc)
        except Exception:
            message = type(exc).__name__
        logger.warning("evaluating %s failed (%s); serving the default", safe_key(key), message)
        return Outcome(default, False, _R_ERROR, error_code="INTERNAL_ERROR", error_message=message)


def evaluate_all(
    keys: list[str],
    *,
    overrides: Mapping[str, Any],
    snapshot: FlagSnapshot,
    context: LazyContext,
    logger: logging.Logger,
) -> dict[str, EvaluationResult[Any]]:
    """``{key: result}`` for ``keys`` with one shared context; never raises."""
    try:
        entries = snapshot.entries
        now = datetime.now()
        plain = _R_CACHED if time.monotonic() <= snapshot.expires_at else _R_STALE
        out: dict[str, EvaluationResult[Any]] = {}
        for key in keys:
            entry = entries.get(key)
            if entry is not None and entry.model is None and key not in overrides:
                # Fast path: a simple server flag, built inline exactly as the rules build it.
                out[key] = EvaluationResult(
                    key, entry.value, entry.enabled, plain, entry.version, None, None, None, now
                )
                continue
            outcome = evaluate_safely(
                key,
                None,
                None,
                overrides=overrides,
                snapshot=snapshot,
                context=context,
                logger=logger,
            )
            out[key] = result_of(key, outcome, now)
        return out
    except Exception:
        logger.exception("evaluate_all failed")
        return {}


def result_of(key: object, outcome: Outcome, now: datetime | None = None) -> EvaluationResult[Any]:
    """The :class:`EvaluationResult` of ``outcome`` for ``key``."""
    return EvaluationResult(
        flag_key=safe_key(key),
        timestamp=now if now is not None else datetime.now(),
        value=outcome.value,
        enabled=outcome.enabled,
        reason=outcome.reason,
        version=outcome.version,
        variation_id=outcome.variation_id,
        rule_id=outcome.rule_id,
        segment_id=outcome.segment_id,
        error_code=outcome.error_code,
        error_message=outcome.error_message,
    )


# -- warn once per key ---------------------------------------------------------------------

_warned: set[tuple[str, str]] = set()  # process-wide: (code, key) already logged
_warned_lock = threading.Lock()
_WARNED_LIMIT: Final = 10_000  # a flood of generated keys cannot grow memory forever


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "json"
    return type(value).__name__


def warn_once(
    logger: logging.Logger, key: object, outcome: Outcome, default: Any, getter: str
) -> None:
    """Log a WARNING the first time (per process) ``key`` is unknown or of the wrong type.

    Costs one set lookup after the first time. Other outcomes are ignored.
    """
    code = outcome.error_code
    if code is not NOT_FOUND and code is not TYPE_MISMATCH:
        return
    name = safe_key(key)
    marker = (code, name)
    if marker in _warned:
        return
    with _warned_lock:
        if marker in _warned or len(_warned) >= _WARNED_LIMIT:
            return
        _warned.add(marker)
    if code is NOT_FOUND:
        logger.warning(
            "flag %r is not defined: %s() served the default %r; check the key for a typo",
            name,
            getter,
            default,
        )
        return
    flag_type = outcome.flag_type.value if outcome.flag_type is not None else "unknown"
    logger.warning(
        "flag %r is a %s flag but %s() was called with a default of type %s: the default "
        "%r was served; use the getter of the flag's type",
        name,
        flag_type,
        getter,
        _type_name(default),
        default,
    )


def _forget_warnings() -> None:
    """Test-only: clear the warn-once memory."""
    with _warned_lock:
        _warned.clear()
