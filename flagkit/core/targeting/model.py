"""The targeting model: parsed flags and segments, the models the client keeps, decisions.

:mod:`~flagkit.core.targeting.parse` builds :class:`FlagSpec` and :class:`SegmentSpec`
from wire objects; :mod:`~flagkit.core.targeting.engine` wraps them into
:class:`FlagModel` / :class:`SegmentModel` with their compiled functions. The
interpreter reads the specs; the compiled functions are proven equal to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from flagkit.types.context import EvaluationContext
from flagkit.types.flag import EvaluationReason, FlagState

__all__ = [
    "Clause",
    "Decision",
    "EvaluationFailure",
    "Experiment",
    "FlagModel",
    "FlagSpec",
    "Metric",
    "Rollout",
    "Rule",
    "SegmentModel",
    "SegmentSpec",
    "Serve",
    "TargetingError",
    "describe",
    "error_decision",
]

_ERROR_TEXT_LIMIT: Final = 300


class TargetingError(ValueError):
    """A targeting field is invalid; ``path`` names it (``flags[2].rules[0].clauses[1].op``).

    ``reason`` is the message without the path; ``str(error)`` is ``"{path}: {reason}"``.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


def describe(value: object) -> str:
    """The JSON type of ``value`` for error messages: "a string", "null", "an array"..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


class EvaluationFailure(Exception):
    """Raised while evaluating when a flag cannot be evaluated (never escapes
    ``evaluate``): unknown or malformed segment, prerequisite cycle, ..."""


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
# Parsed form (paths kept for error messages and document checks)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    """One clause. ``values`` are the checked clause values (regexes compiled, dates and
    versions parsed); ``prepared`` is what the operator's test takes (see
    :mod:`~flagkit.core.targeting.operators`); ``value_paths`` locate each value."""

    attribute: str
    op: str
    values: tuple[Any, ...]
    negate: bool
    value_paths: tuple[str, ...]
    prepared: Any = None


@dataclass(frozen=True)
class Rollout:
    variations: tuple[str, ...]
    weights: tuple[int, ...]
    bucket_by: str | None


@dataclass(frozen=True)
class Serve:
    """Exactly one of ``variation`` and ``rollout`` is set."""

    variation: str | None
    rollout: Rollout | None


@dataclass(frozen=True)
class Rule:
    """A flag rule (``serve`` set) or a segment rule (``serve`` None).

    ``segment_clause`` is the index of the clause whose matching segment is reported as
    ``segment_id`` (the rule's ``segments``, appended as a last ``segmentMatch`` clause,
    else its first positive ``segmentMatch`` clause), None for a plain rule.
    """

    id: str
    clauses: tuple[Clause, ...]
    segment_clause: int | None
    serve: Serve | None


@dataclass(frozen=True)
class Metric:
    """One metric an experiment is judged by: an event type, ``"conversion"`` (did the
    user send it) or ``"numeric"`` (the value of ``value_field`` in its data)."""

    event: str
    kind: str = "conversion"
    value_field: str | None = None


@dataclass(frozen=True)
class Experiment:
    """A flag's ``experiment`` field: the control variation id and the metrics."""

    control: str
    metrics: tuple[Metric, ...] = ()


@dataclass(frozen=True)
class FlagSpec:
    """A flag's targeting. ``targets`` pairs a variation with the user ids served it.

    ``experiment`` is set when the flag is an experiment (exposures are recorded for it).
    """

    variations: dict[str, Any]
    off_variation: str | None
    targets: tuple[tuple[str, frozenset[str]], ...]
    rules: tuple[Rule, ...]
    fallthrough: Serve | None
    prerequisites: tuple[tuple[str, str], ...]
    prerequisite_paths: tuple[str, ...]
    salt: str
    experiment: Experiment | None = None

    def decision(
        self,
        variation: str,
        reason: EvaluationReason,
        rule_id: str | None = None,
        segment_id: str | None = None,
    ) -> Decision:
        """The decision serving ``variation`` for ``reason``."""
        return Decision(self.variations[variation], reason, variation, rule_id, segment_id)

    def off_decision(self, value: Any, reason: EvaluationReason) -> Decision:
        """What a disabled flag or one with an unmet prerequisite serves: the off
        variation, else the flag's ``value``."""
        if self.off_variation is None:
            return Decision(value, reason)
        return self.decision(self.off_variation, reason)


@dataclass(frozen=True)
class SegmentSpec:
    key: str
    included: frozenset[str]
    excluded: frozenset[str]
    rules: tuple[Rule, ...]


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


class FlagModel:
    """A flag ready for ``evaluate``.

    Attributes: ``state`` (the :class:`FlagState`), ``key``, ``is_simple`` (no targeting
    fields: callers may serve ``state.value`` with reason ``CACHED`` directly), ``error``
    (why the targeting is malformed, else None), ``variations`` (id -> value),
    ``prerequisites`` (``(flag key, variation id)`` pairs), ``segment_keys`` (segments
    its rules reference) and ``spec`` (the parsed targeting, None when simple or
    malformed). Immutable and thread-safe; build with ``compile_flag``.

    The evaluating function may be generated lazily: built with ``evaluate=None`` and a
    ``compile`` callable, the model's first evaluation calls ``compile(model)``, which
    generates the function and installs it with :meth:`set_compiled` (the engine makes
    this thread-safe); later evaluations call the installed function directly.
    """

    __slots__ = (
        "_compile",
        "_evaluate",
        "error",
        "is_simple",
        "key",
        "prerequisites",
        "segment_keys",
        "spec",
        "state",
        "variations",
    )

    def __init__(
        self,
        state: FlagState,
        *,
        is_simple: bool,
        error: str | None,
        spec: FlagSpec | None,
        variations: Mapping[str, Any],
        prerequisites: tuple[tuple[str, str], ...],
        segment_keys: frozenset[str],
        evaluate: Callable[..., Decision] | None,
        compile: Callable[[FlagModel], Callable[..., Decision]] | None = None,
    ) -> None:
        self.state = state
        self.key = state.key
        self.is_simple = is_simple
        self.error = error
        self.spec = spec
        self.variations = variations
        self.prerequisites = prerequisites
        self.segment_keys = segment_keys
        self._compile = compile
        if evaluate is not None:
            self._evaluate: Callable[..., Decision] = evaluate
            self._compile = None
        elif compile is not None:
            self._evaluate = self._first_evaluation
        else:
            raise ValueError("FlagModel needs 'evaluate' or 'compile'")

    def _first_evaluation(
        self,
        ctx: EvaluationContext | None,
        flags: Mapping[str, FlagModel],
        segments: Mapping[str, SegmentModel],
        stack: tuple[str, ...],
    ) -> Decision:
        compile = self._compile
        if compile is None:  # another thread installed the function meanwhile
            return self._evaluate(ctx, flags, segments, stack)
        return compile(self)(ctx, flags, segments, stack)

    def compiled_function(self) -> Callable[..., Decision] | None:
        """The installed evaluating function, ``None`` while it is still to be generated."""
        return None if self._compile is not None else self._evaluate

    def set_compiled(self, function: Callable[..., Decision]) -> None:
        """Install the generated function (the engine calls this once, under its lock)."""
        self._evaluate = function
        self._compile = None  # after the function: a reader seeing None finds it installed

    def __repr__(self) -> str:
        kind = "simple" if self.is_simple else ("malformed" if self.error else "targeted")
        return f"FlagModel(key={self.key!r}, version={self.state.version}, {kind})"


class SegmentModel:
    """A segment: ``key``, ``error`` (None when valid), ``included``/``excluded`` user
    ids, ``raw`` (the wire object) and ``spec`` (None when malformed). Evaluating a rule
    that references a malformed segment gives ``EVALUATION_ERROR``. Immutable and
    thread-safe; build with ``compile_segment``.
    """

    __slots__ = ("_contains", "error", "excluded", "included", "key", "raw", "spec")

    def __init__(
        self,
        key: str,
        raw: Mapping[str, Any],
        *,
        error: str | None,
        spec: SegmentSpec | None,
        contains: Callable[[EvaluationContext], bool],
    ) -> None:
        self.key = key
        self.raw = raw
        self.error = error
        self.spec = spec
        self.included = spec.included if spec is not None else frozenset()
        self.excluded = spec.excluded if spec is not None else frozenset()
        self._contains = contains

    def failure(self) -> EvaluationFailure:
        """The error raised when a rule reaches this segment while it is malformed."""
        return EvaluationFailure(f"segment {self.key!r} is malformed: {self.error}")

    def __repr__(self) -> str:
        return f"SegmentModel(key={self.key!r}{', malformed' if self.error else ''})"
