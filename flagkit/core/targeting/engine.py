"""What the rest of the SDK calls: compile flags and segments, evaluate, check documents."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

from flagkit.core.targeting.compiler import compile_flag_function, compile_segment_function
from flagkit.core.targeting.model import (
    Decision,
    FlagModel,
    FlagSpec,
    SegmentModel,
    TargetingError,
    error_decision,
)
from flagkit.core.targeting.parse import check_document, has_targeting, parse_flag, parse_segment
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import EvaluationReason, FlagState

__all__ = ["compile_flag", "compile_segment", "evaluate", "validate_flags_document"]

logger = logging.getLogger("flagkit.targeting")

# What else compiling a flag or segment may raise on input that parsed (a pathological
# size, say); such a flag is reported as malformed instead of breaking the snapshot.
_COMPILE_ERRORS = (RecursionError, MemoryError, SyntaxError, ValueError, TypeError)


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

    >>> model = compile_flag(FlagState.from_dict({"key": "a", "value": True,
    ...     "enabled": True, "version": 1}))
    >>> evaluate(model, None, flags={}, segments={}).reason.value
    'CACHED'

    Runs the flag's compiled function. Pure and thread-safe.
    """
    try:
        return flag._evaluate(context, flags, segments, ())
    except Exception as exc:  # the evaluation boundary: a lookup never raises
        return error_decision(flag.state.value, exc)


def _constant(decision: Decision) -> Callable[..., Decision]:
    def evaluate_constant(
        ctx: object, flags: object = None, segments: object = None, stack: object = None
    ) -> Decision:
        return decision

    return evaluate_constant


_NO_KEYS: Final[frozenset[str]] = frozenset()


def _segment_keys(spec: FlagSpec) -> frozenset[str]:
    keys = frozenset(
        key
        for rule in spec.rules
        for clause in rule.clauses
        if clause.op == "segmentMatch"
        for key in clause.values
    )
    return keys or _NO_KEYS  # one shared empty set (216 bytes a flag otherwise)


def compile_flag(state: FlagState) -> FlagModel:
    """Parse a flag for evaluation; never raises.

    >>> model = compile_flag(FlagState.from_dict({"key": "a", "value": False,
    ...     "enabled": True, "version": 1, "variations": [{"id": "x", "value": True}],
    ...     "fallthrough": {"variation": "x"}}))
    >>> model.is_simple, model.error
    (False, None)

    The targeting is parsed and checked here, so malformed targeting gives a model whose
    ``error`` reads like ``"rules[0].clauses[1].op: unknown operator 'near'"`` (also logged
    once, as a warning on ``flagkit.targeting``). The Python function of an enabled
    targeted flag is generated lazily, on its first evaluation (see :func:`_compile_now`):
    a large flag set becomes ready without generating code for flags nobody reads.
    Thread-safe.
    """
    raw = state.raw
    if not has_targeting(raw):
        return FlagModel(
            state,
            is_simple=True,
            error=None,
            spec=None,
            variations={},
            prerequisites=(),
            segment_keys=frozenset(),
            evaluate=_constant(Decision(state.value, EvaluationReason.CACHED)),
        )
    try:
        spec = parse_flag(raw, state.key)
        function = (
            None
            if state.enabled
            else _constant(spec.off_decision(state.value, EvaluationReason.FLAG_DISABLED))
        )
    except TargetingError as exc:
        return _broken_flag(state, str(exc))
    except _COMPILE_ERRORS as exc:
        return _broken_flag(state, f"cannot compile targeting: {type(exc).__name__}: {exc}")
    return FlagModel(
        state,
        is_simple=False,
        error=None,
        spec=spec,
        variations=MappingProxyType(spec.variations),
        prerequisites=spec.prerequisites,
        segment_keys=_segment_keys(spec),
        evaluate=function,
        compile=_compile_now,
    )


# One lock for every lazy compilation: a flag is compiled once in its life, so contention is
# rare, and a lock per flag would cost memory for each of a large set's targeted flags.
_compile_lock = threading.Lock()


def _compile_now(model: FlagModel) -> Callable[..., Decision]:
    """Generate ``model``'s function (once: concurrent first calls wait for the first one).

    Parsing already succeeded at load, so only a pathological input (a size that exhausts
    the recursion limit or memory) can fail here: the flag then serves its value with
    ``EVALUATION_ERROR`` from now on, and the failure is logged once.
    """
    with _compile_lock:
        done = model.compiled_function()
        if done is not None:
            return done  # another thread compiled it while this one waited
        spec = model.spec
        assert spec is not None  # only a well-formed, enabled, targeted model gets here
        state = model.state
        function: Callable[..., Decision]
        try:
            function = compile_flag_function(state.key, spec, state.value)
        except _COMPILE_ERRORS as exc:
            error = f"cannot compile targeting: {type(exc).__name__}: {exc}"
            logger.warning(
                "flag %r has malformed targeting, serving its value: %s", state.key, error
            )
            function = _constant(error_decision(state.value, error))
        model.set_compiled(function)
        return function


def _broken_flag(state: FlagState, error: str) -> FlagModel:
    logger.warning("flag %r has malformed targeting, serving its value: %s", state.key, error)
    return FlagModel(
        state,
        is_simple=False,
        error=error,
        spec=None,
        variations={},
        prerequisites=(),
        segment_keys=frozenset(),
        evaluate=_constant(error_decision(state.value, error)),
    )


def compile_segment(raw: Mapping[str, Any]) -> SegmentModel:
    """Compile a segment object (``key``, ``included``, ``excluded``, ``rules``); never raises.

    A malformed segment gets ``error`` set (logged once as a warning); any rule
    referencing it then evaluates to ``EVALUATION_ERROR``. Thread-safe.
    """
    key = raw.get("key") if isinstance(raw, Mapping) else None
    key_text = key if isinstance(key, str) else ""
    try:
        spec = parse_segment(raw)
        contains = compile_segment_function(spec)
    except TargetingError as exc:
        return _broken_segment(key_text, raw, str(exc))
    except _COMPILE_ERRORS as exc:
        return _broken_segment(key_text, raw, f"cannot compile: {type(exc).__name__}: {exc}")
    return SegmentModel(spec.key, raw, error=None, spec=spec, contains=contains)


def _broken_segment(key: str, raw: Any, error: str) -> SegmentModel:
    logger.warning("segment %r is malformed: %s", key, error)
    model: SegmentModel

    def contains(ctx: EvaluationContext) -> bool:
        raise model.failure()

    model = SegmentModel(
        key, raw if isinstance(raw, Mapping) else {}, error=error, spec=None, contains=contains
    )
    return model


def validate_flags_document(doc: Mapping[str, Any]) -> None:
    """Check every targeting field of a flags document; raise on the first problem.

    ``doc`` is the flags file object: ``flags`` and ``segments`` arrays (other top-level
    keys are not looked at). Checks, strictly (unknown fields inside targeting objects
    are errors): each flag's and segment's targeting, that rules reference existing
    segments, that prerequisites name existing flags and variations, and that
    prerequisites have no cycle. Compiles each flag, so a file that passes compiles
    without ``error`` in the client.

    Raises :class:`TargetingError` whose ``path`` is e.g.
    ``flags[2].rules[0].clauses[1].op`` or ``flags[0].prerequisites[0].key``.
    Thread-safe (pure).
    """
    segments, flags = check_document(doc)
    for segment in segments:
        compile_segment_function(segment)
    for key, (raw, spec) in flags.items():
        if spec is not None:
            compile_flag_function(key, spec, raw.get("value"))
