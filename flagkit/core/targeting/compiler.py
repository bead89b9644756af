"""The code generator: each targeted flag and segment becomes one small Python function.

An optimisation of :mod:`~flagkit.core.targeting.interpreter`, which is the
specification: tests generate flags and contexts and check that the generated function
and the interpreter give identical decisions. What is generated:

- a rule's clauses become one boolean expression over the context; each clause tests a
  plain ``str``/``int``/``float``/``bool`` attribute value inline (the inline form of the
  operator, :meth:`_Codegen.inline_test`), and hands any other value (a list, a ``str``
  subclass) to the operator's own test through ``operators.match_any``;
- every constant (value sets, compiled regexes, parsed dates and versions, the rollout
  hash prefix and thresholds) and every possible :class:`Decision` is prepared here, once;
- a rollout hashes inline with ``bucketing.DIGEST_STATEMENTS``;
- segment lists and prerequisites call the interpreter's own helpers.

Only identifiers generated here appear in the source: every value taken from a flag lives
in the function's namespace, never in its text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from types import CodeType
from typing import Any, Final

from flagkit.core.targeting.attributes import (
    BUILTIN_ATTRIBUTES,
    EMPTY_CONTEXT,
    anonymous_of,
    custom_name,
)
from flagkit.core.targeting.bucketing import (
    BUCKET_SCALE,
    DIGEST_NAMESPACE,
    DIGEST_STATEMENTS,
    bucket_prefix,
    bucketing_value,
    digest_threshold,
)
from flagkit.core.targeting.interpreter import check_prerequisites, first_segment_containing
from flagkit.core.targeting.model import (
    Clause,
    Decision,
    FlagModel,
    FlagSpec,
    Rule,
    SegmentModel,
    SegmentSpec,
    Serve,
)
from flagkit.core.targeting.operators import (
    EXACT_SCALARS,
    MAX_MATCH_INPUT_LENGTH,
    OPERATOR_TABLE,
    InValues,
    date_key,
    match_any,
    parse_semver,
)
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import EvaluationReason

__all__ = ["compile_flag_function", "compile_segment_function"]

R = EvaluationReason


def _run_compiled(
    flag: FlagModel,
    ctx: EvaluationContext,
    flags: Mapping[str, FlagModel],
    segments: Mapping[str, SegmentModel],
    chain: tuple[str, ...],
) -> Decision:
    return flag._evaluate(ctx, flags, segments, chain)


def _compiled_contains(segment: SegmentModel, ctx: EvaluationContext) -> bool:
    return segment._contains(ctx)


def _segment_match(
    ctx: EvaluationContext, segments: Mapping[str, SegmentModel], keys: tuple[str, ...]
) -> str | None:
    return first_segment_containing(ctx, segments, keys, _compiled_contains)


def _prerequisites(
    flag_key: str,
    prerequisites: tuple[tuple[str, str], ...],
    failed: Decision,
    ctx: EvaluationContext,
    flags: Mapping[str, FlagModel],
    segments: Mapping[str, SegmentModel],
    stack: tuple[str, ...],
) -> Decision | None:
    return check_prerequisites(
        flag_key, prerequisites, failed, ctx, flags, segments, stack, _run_compiled
    )


_RUNTIME_NAMES: Final[dict[str, Any]] = {
    "_EMPTY_CTX": EMPTY_CONTEXT,
    "_EMPTY_MAP": {},
    "_EXACT": EXACT_SCALARS,
    "_anon": anonymous_of,
    "_generic": match_any,
    "_date": date_key,
    "_semver": parse_semver,
    "_segmatch": _segment_match,
    "_prereq": _prerequisites,
    "_bucket_value": bucketing_value,
    **DIGEST_NAMESPACE,
}

_SYMBOLS: Final = {
    "lt": "<",
    "lte": "<=",
    "gt": ">",
    "gte": ">=",
    "before": "<",
    "after": ">",
    "semverLt": "<",
    "semverLte": "<=",
    "semverGt": ">",
    "semverGte": ">=",
}


@functools.lru_cache(maxsize=512)
def _compile_source(source: str) -> CodeType:
    # Flags of the same shape share generated source; only their namespaces differ.
    return compile(source, "<flagkit-targeting>", "exec")


class _Codegen:
    """Builds the source and namespace of one generated function."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = dict(_RUNTIME_NAMES)
        self.count = 0
        self.uses_custom = False

    def const(self, value: Any) -> str:
        name = f"_c{self.count}"
        self.count += 1
        self.ns[name] = value
        return name

    def attribute(self, attribute: str) -> str:
        custom = custom_name(attribute)
        if custom is not None:
            self.uses_custom = True
            return f"cu.get({self.const(custom)})"
        if attribute == "anonymous":
            return "_anon(ctx)"
        return f"ctx.{BUILTIN_ATTRIBUTES[attribute]}"

    def inline_test(self, clause: Clause) -> str:
        """An expression over ``v`` for the un-negated clause, exact for a plain built-in
        scalar ``v`` (what ``OPERATOR_TABLE[op].test`` computes).

        The first use of ``v`` is written ``@v@`` so the caller can put the assignment
        of the attribute value there (saving a separate ``is not None`` test).
        """
        op, prepared = clause.op, clause.prepared
        if op in ("in", "equals"):
            assert isinstance(prepared, InValues)
            bools, strings, numbers = prepared
            parts = []
            # Cheapest forms first: identity for booleans, == for a single string (never
            # raises, and a list falls through to the generic path), a set otherwise.
            if len(bools) == 1:
                parts.append(f"(@v@ is {next(iter(bools))})")
            elif bools:
                parts.append("(@v@ is True or v is False)")
            if len(strings) == 1:
                parts.append(f"(@v@ == {self.const(next(iter(strings)))})")
            elif strings:
                parts.append(f"(@v@.__class__ is str and v in {self.const(strings)})")
            if numbers:
                number_set = self.const(numbers)
                parts.append(
                    f"((@v@.__class__ is int or v.__class__ is float) and v in {number_set})"
                )
            return "(" + " or ".join([parts[0], *(p.replace("@v@", "v") for p in parts[1:])]) + ")"
        if op == "contains":
            alts = " or ".join(f"{self.const(v)} in v" for v in prepared)
            return f"(@v@.__class__ is str and ({alts}))"
        if op in ("startsWith", "endsWith"):
            if "" in prepared:
                return "(@v@.__class__ is str)"
            # removeprefix/removesuffix change ``v`` exactly when it has the (non-empty)
            # affix; as one-argument methods they are called much faster than
            # startswith/endswith (tuple + argument parsing on CPython 3.11) or a slice, and
            # the unchanged result is ``v`` itself, so ``!=`` is an identity check then.
            method = "removeprefix" if op == "startsWith" else "removesuffix"
            alts = " or ".join(f"v.{method}({self.const(v)}) != v" for v in prepared)
            return f"(@v@.__class__ is str and ({alts}))"
        if op == "matches":
            alts = " or ".join(f"{self.const(p.search)}(v) is not None" for p in prepared)
            return f"(@v@.__class__ is str and len(v) <= {MAX_MATCH_INPUT_LENGTH} and ({alts}))"
        if op in ("lt", "lte", "gt", "gte"):
            limit = self.const(prepared)
            return f"((@v@.__class__ is int or v.__class__ is float) and v {_SYMBOLS[op]} {limit})"
        if op in ("before", "after"):
            return f"((t := _date(@v@)) is not None and t {_SYMBOLS[op]} {self.const(prepared)})"
        # semantic versions
        head = "(@v@.__class__ is str and (t := _semver(v)) is not None and "
        if op == "semverEq":
            return head + f"t in {self.const(prepared)})"
        return head + f"t {_SYMBOLS[op]} {self.const(prepared)})"

    def clause(self, clause: Clause, assign_segment: bool) -> str:
        if clause.op == "segmentMatch":
            call = f"_segmatch(ctx, segments, {self.const(tuple(clause.values))})"
            if clause.negate:
                return f"({call} is None)"
            if assign_segment:
                return f"((s := {call}) is not None)"
            return f"({call} is not None)"
        attr = self.attribute(clause.attribute)
        if clause.op == "exists":
            return f"({attr} is {'' if clause.negate else 'not '}None)"
        template = self.inline_test(clause)
        test = template.replace("@v@", "v")
        table_test = self.const(OPERATOR_TABLE[clause.op].test)
        prepared = self.const(clause.prepared)
        fallback = f"(v.__class__ not in _EXACT and _generic({table_test}, {prepared}, v))"
        if clause.negate:
            # A missing attribute never matches, negated or not.
            return f"((v := {attr}) is not None and not ({test} or {fallback}))"
        # None fails the inline test and is in _EXACT, so no separate None check is needed.
        return f"({template.replace('@v@', f'(v := {attr})', 1)} or {fallback})"

    def condition(self, rule: Rule) -> str:
        return " and ".join(
            self.clause(clause, index == rule.segment_clause)
            for index, clause in enumerate(rule.clauses)
        )

    def build(self, body: list[str], name: str) -> Callable[..., Any]:
        prologue = ["    if ctx is None:", "        ctx = _EMPTY_CTX"]
        if self.uses_custom:
            prologue.append("    cu = ctx.custom or _EMPTY_MAP")
        signature = (
            f"def {name}(ctx, flags, segments, stack):\n"
            if name == "_evaluate"
            else f"def {name}(ctx):\n"
        )
        source = signature + "\n".join(prologue + body) + "\n"
        exec(_compile_source(source), self.ns)
        function: Callable[..., Any] = self.ns[name]
        return function


def _serve_lines(
    gen: _Codegen,
    spec: FlagSpec,
    serve: Serve,
    reason: EvaluationReason,
    prefix: bytes,
    rule: Rule | None,
    value: Any,
    indent: str,
) -> list[str]:
    """Statements returning the Decision for ``serve`` (``s`` holds the matched segment).

    When the context has no bucketing value, a rule's rollout emits no ``return`` (the
    next rule is tried) and the fallthrough's returns the flag's value.
    """
    rule_id = rule.id if rule is not None else None
    segment_keys = (
        tuple(rule.clauses[rule.segment_clause].values)
        if rule is not None and rule.segment_clause is not None
        else None
    )

    def decision_expr(variation: str) -> str:
        if segment_keys is None:
            return gen.const(spec.decision(variation, reason, rule_id))
        table = {k: spec.decision(variation, reason, rule_id, k) for k in segment_keys}
        return f"{gen.const(table)}[s]"

    if serve.variation is not None:
        return [f"{indent}return {decision_expr(serve.variation)}"]
    rollout = serve.rollout
    assert rollout is not None
    lines: list[str] = []
    if rollout.bucket_by in (None, "userId"):
        lines += [
            f"{indent}v = ctx.user_id",
            f"{indent}if v.__class__ is not str:",
            f"{indent}    v = _bucket_value(ctx, None)",
        ]
    else:
        lines.append(f"{indent}v = _bucket_value(ctx, {gen.attribute(rollout.bucket_by)})")
    lines.append(f"{indent}if v is not None:")
    head = gen.const(prefix)
    lines += [
        f"{indent}    {line.format(digest='h', prefix=head, value='v')}"
        for line in DIGEST_STATEMENTS
    ]
    upper = 0
    bounds: list[tuple[int, str]] = []
    for variation, weight in zip(rollout.variations, rollout.weights, strict=True):
        upper += weight
        if weight:
            bounds.append((upper, variation))
    for bound, variation in bounds[:-1]:
        # bound < BUCKET_SCALE here: only the last non-zero weight reaches the total.
        assert bound < BUCKET_SCALE
        lines += [
            f"{indent}    if h < {gen.const(digest_threshold(bound))}:",
            f"{indent}        return {decision_expr(variation)}",
        ]
    lines.append(f"{indent}    return {decision_expr(bounds[-1][1])}")
    if rule is None:
        lines.append(f"{indent}return {gen.const(Decision(value, reason))}")
    return lines


def compile_flag_function(key: str, spec: FlagSpec, value: Any) -> Callable[..., Decision]:
    """The generated ``_evaluate(ctx, flags, segments, stack)`` of an enabled flag."""
    gen = _Codegen()
    prefix = bucket_prefix(key, spec.salt)
    body: list[str] = []
    if spec.prerequisites:
        failed = spec.off_decision(value, R.PREREQUISITE_FAILED)
        body += [
            f"    d = _prereq({gen.const(key)}, {gen.const(spec.prerequisites)}, "
            f"{gen.const(failed)}, ctx, flags, segments, stack)",
            "    if d is not None:",
            "        return d",
        ]
    if spec.targets:
        table: dict[str, Decision] = {}
        for variation, ids in spec.targets:
            decision = spec.decision(variation, R.TARGET_MATCH)
            for user in ids:
                table.setdefault(user, decision)
        body += [
            "    k = ctx.user_id",
            "    if k is None:",
            "        k = ctx.user_key",
            "    if k is not None:",
            f"        d = {gen.const(table)}.get(k)",
            "        if d is not None:",
            "            return d",
        ]
    for rule in spec.rules:
        assert rule.serve is not None
        reason = R.SEGMENT_MATCH if rule.segment_clause is not None else R.RULE_MATCH
        body.append(f"    if {gen.condition(rule)}:")
        body += _serve_lines(gen, spec, rule.serve, reason, prefix, rule, value, " " * 8)
    if spec.fallthrough is not None:
        body += _serve_lines(
            gen, spec, spec.fallthrough, R.FALLTHROUGH, prefix, None, value, " " * 4
        )
    else:
        body.append(f"    return {gen.const(Decision(value, R.FALLTHROUGH))}")
    return gen.build(body, "_evaluate")


def compile_segment_function(spec: SegmentSpec) -> Callable[[EvaluationContext], bool]:
    """The generated ``_contains(ctx)`` of a segment."""
    gen = _Codegen()
    body: list[str] = []
    if spec.included or spec.excluded:
        body += [
            "    k = ctx.user_id",
            "    if k is None:",
            "        k = ctx.user_key",
            "    if k is not None:",
            f"        if k in {gen.const(spec.included)}:",
            "            return True",
            f"        if k in {gen.const(spec.excluded)}:",
            "            return False",
        ]
    for rule in spec.rules:
        body += [f"    if {gen.condition(rule)}:", "        return True"]
    body.append("    return False")
    return gen.build(body, "_contains")
