"""The targeting interpreter: evaluation written plainly, as the specification.

:func:`interpret` reads a flag's parsed targeting (:class:`FlagSpec`) and decides, step
by step, what it serves to a context, in the order ``docs/targeting.md`` documents:

1. malformed targeting -> the flag's value, ``EVALUATION_ERROR``;
2. a simple flag -> its value, ``CACHED``;
3. disabled -> the off variation (or the value), ``FLAG_DISABLED``;
4. prerequisites in order -> the first unmet one: the off variation, ``PREREQUISITE_FAILED``;
5. individual targets -> ``TARGET_MATCH``;
6. rules in order -> ``RULE_MATCH`` or, matched through a segment, ``SEGMENT_MATCH``;
7. the fallthrough -> ``FALLTHROUGH``.

The client runs the compiled functions of :mod:`~flagkit.core.targeting.compiler`
instead, which are faster; tests generate flags and contexts and check that both give
identical decisions. The prerequisite and segment-list helpers below are shared: the
generated code calls them too.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from flagkit.core.targeting.attributes import EMPTY_CONTEXT, context_key, read_attribute
from flagkit.core.targeting.bucketing import bucket, bucket_prefix, bucketing_value, select_index
from flagkit.core.targeting.model import (
    Clause,
    Decision,
    EvaluationFailure,
    FlagModel,
    FlagSpec,
    Rule,
    SegmentModel,
    Serve,
    error_decision,
)
from flagkit.core.targeting.operators import value_matches
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import EvaluationReason

__all__ = [
    "MAX_PREREQUISITE_DEPTH",
    "check_prerequisites",
    "first_segment_containing",
    "interpret",
    "segment_contains",
]

MAX_PREREQUISITE_DEPTH: Final = 32
"""Prerequisite chains longer than this are an evaluation error (a cycle guard)."""

R = EvaluationReason
# (model, context, flags, segments, chain of flag keys being evaluated) -> decision
EvaluateOne = Callable[
    [
        FlagModel,
        EvaluationContext,
        Mapping[str, FlagModel],
        Mapping[str, SegmentModel],
        tuple[str, ...],
    ],
    Decision,
]
# (segment, context) -> whether the context is in it
Contains = Callable[[SegmentModel, EvaluationContext], bool]


def interpret(
    flag: FlagModel,
    context: EvaluationContext | None,
    *,
    flags: Mapping[str, FlagModel],
    segments: Mapping[str, SegmentModel],
) -> Decision:
    """What ``flag`` serves to ``context``: the same decision as ``evaluate``, computed
    by reading the model. Never raises; pure and thread-safe."""
    try:
        return _flag(flag, context or EMPTY_CONTEXT, flags, segments, ())
    except Exception as exc:  # the evaluation boundary: a lookup never raises
        return error_decision(flag.state.value, exc)


def _flag(
    flag: FlagModel,
    ctx: EvaluationContext,
    flags: Mapping[str, FlagModel],
    segments: Mapping[str, SegmentModel],
    stack: tuple[str, ...],
) -> Decision:
    value = flag.state.value
    if flag.error is not None:
        return error_decision(value, flag.error)
    spec = flag.spec
    if spec is None:
        return Decision(value, R.CACHED)
    if not flag.state.enabled:
        return spec.off_decision(value, R.FLAG_DISABLED)
    if spec.prerequisites:
        failed = spec.off_decision(value, R.PREREQUISITE_FAILED)
        unmet = check_prerequisites(
            flag.key, spec.prerequisites, failed, ctx, flags, segments, stack, _flag
        )
        if unmet is not None:
            return unmet
    if spec.targets:
        key = context_key(ctx)
        if key is not None:
            for variation, ids in spec.targets:
                if key in ids:
                    return spec.decision(variation, R.TARGET_MATCH)
    for rule in spec.rules:
        matched, segment_id = _rule_matches(rule, ctx, segments)
        if not matched:
            continue
        assert rule.serve is not None
        reason = R.RULE_MATCH if rule.segment_clause is None else R.SEGMENT_MATCH
        served = _serve(flag, spec, rule.serve, ctx, reason, rule.id, segment_id)
        if served is not None:  # None: a rollout that cannot bucket the context
            return served
    if spec.fallthrough is None:
        return Decision(value, R.FALLTHROUGH)
    served = _serve(flag, spec, spec.fallthrough, ctx, R.FALLTHROUGH, None, None)
    return served if served is not None else Decision(value, R.FALLTHROUGH)


def _serve(
    flag: FlagModel,
    spec: FlagSpec,
    serve: Serve,
    ctx: EvaluationContext,
    reason: EvaluationReason,
    rule_id: str | None,
    segment_id: str | None,
) -> Decision | None:
    """The decision ``serve`` gives, or None when its rollout cannot bucket ``ctx``."""
    if serve.variation is not None:
        return spec.decision(serve.variation, reason, rule_id, segment_id)
    rollout = serve.rollout
    assert rollout is not None
    preferred = None if rollout.bucket_by is None else read_attribute(ctx, rollout.bucket_by)
    hashed = bucketing_value(ctx, preferred)
    if hashed is None:
        return None
    index = select_index(bucket(bucket_prefix(flag.key, spec.salt), hashed), rollout.weights)
    return spec.decision(rollout.variations[index], reason, rule_id, segment_id)


def _rule_matches(
    rule: Rule, ctx: EvaluationContext, segments: Mapping[str, SegmentModel]
) -> tuple[bool, str | None]:
    """Whether every clause of ``rule`` matches, and the segment reported for it."""
    segment_id = None
    for index, clause in enumerate(rule.clauses):
        if clause.op == "segmentMatch":
            found = first_segment_containing(ctx, segments, clause.values, segment_contains)
            if (found is None) != clause.negate:
                return False, None
            if index == rule.segment_clause:
                segment_id = found
        elif not _clause_matches(clause, ctx):
            return False, None
    return True, segment_id


def _clause_matches(clause: Clause, ctx: EvaluationContext) -> bool:
    """A clause over an attribute. A missing (None) attribute never matches, negated or
    not, except with ``exists``."""
    value = read_attribute(ctx, clause.attribute)
    if clause.op == "exists":
        return (value is not None) != clause.negate
    if value is None:
        return False
    return value_matches(clause.op, clause.prepared, value) != clause.negate


def segment_contains(segment: SegmentModel, ctx: EvaluationContext) -> bool:
    """Whether ``ctx`` is in ``segment``: its key is included; else not when excluded;
    else when a segment rule matches. Raises EvaluationFailure for a malformed segment."""
    spec = segment.spec
    if spec is None:
        raise segment.failure()
    if spec.included or spec.excluded:
        key = context_key(ctx)
        if key is not None:
            if key in spec.included:
                return True
            if key in spec.excluded:
                return False
    return any(_rule_matches(rule, ctx, {})[0] for rule in spec.rules)


def first_segment_containing(
    ctx: EvaluationContext,
    segments: Mapping[str, SegmentModel],
    keys: tuple[str, ...],
    contains: Contains,
) -> str | None:
    """The first of ``keys`` whose segment contains ``ctx``, or None.

    Raises :class:`EvaluationFailure` for a segment missing from ``segments``.
    """
    for key in keys:
        segment = segments.get(key)
        if segment is None:
            raise EvaluationFailure(f"unknown segment {key!r}")
        if contains(segment, ctx):
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
    evaluate_one: EvaluateOne,
) -> Decision | None:
    """None when every prerequisite is met, else ``failed``.

    A prerequisite ``(key, variation)`` is met when flag ``key`` exists, is enabled and
    serves ``variation`` for ``ctx`` (``evaluate_one`` decides what it serves). Raises
    :class:`EvaluationFailure` on a cycle, a chain deeper than
    :data:`MAX_PREREQUISITE_DEPTH` or a prerequisite that cannot be evaluated.
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
            decision = evaluate_one(prerequisite, ctx, flags, segments, chain)
        except EvaluationFailure:
            raise
        except Exception as exc:
            raise EvaluationFailure(f"prerequisite {key!r}: {type(exc).__name__}: {exc}") from exc
        if decision.reason is R.EVALUATION_ERROR:
            raise EvaluationFailure(f"prerequisite {key!r} is malformed: {decision.error}")
        if not prerequisite.state.enabled or decision.variation_id != variation:
            return failed
    return None
