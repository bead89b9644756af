"""The compiled functions give exactly the interpreter's decisions (property-based).

The interpreter (``flagkit/core/targeting/interpreter.py``) is the specification; the
generated code is an optimisation. Hypothesis builds whole snapshots — segments and
flags with every operator, negation, segments, prerequisites (cycles included), targets,
rollouts, off flags, the odd malformed flag or segment — and contexts with awkward
values (None, wrong types, lists, subclasses, unicode, huge numbers, NaN), then checks
that ``evaluate`` and ``interpret`` agree on value, reason, variation, rule, segment and
error for every flag. Derandomized: the same examples run on every machine.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flagkit.core.targeting import (
    OPERATORS,
    FlagModel,
    SegmentModel,
    compile_flag,
    compile_segment,
    evaluate,
    interpret,
)
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import FlagState

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class StrSub(str):
    """A str subclass (like Django's SafeString)."""


class IntSub(int):
    """An int subclass (like an IntEnum member)."""


FLAG_KEYS = ["f0", "f1", "f2", "f3"]
SEGMENT_KEYS = ["s0", "s1", "s2"]
LISTED_IDS = ["u1", "u2", "üser-3"]  # in targets and segment lists
USER_IDS = [*LISTED_IDS, "user-40", "\ud800", ""]
# Few attribute names, so that generated clauses and contexts meet often.
ATTRIBUTES = ["userId", "email", "country", "anonymous", "plan", "tags", "custom.a.b"]
STRINGS = ["NL", "nl", "pro", "a@corp.io", "@corp.io", "Mozilla/5", "", "用户", "café", "1"]
NUMBERS = [0, 1, -1, 1.5, 10, 10**30, 2**63, -2.5, 1e308]
DATES = ["2025-01-01", "2025-01-01T00:00:00Z", "2024-06-01T12:00:00+02:00", 1735689600000]
VERSIONS = ["1.0.0", "2.0.0-rc.1", "v2", "1.2", "10.0.0"]
PATTERNS = ["^a", "io$", "[0-9]+", "(?i)PRO", "é", ""]

scalar = st.one_of(
    st.sampled_from(STRINGS),
    st.sampled_from(NUMBERS),
    st.booleans(),
    st.text(max_size=4),
)
# The values clauses are made of, as attribute values (so that clauses match often).
pooled = st.sampled_from([*STRINGS, *NUMBERS, True, False, *DATES, *VERSIONS])

# Attribute values as callers pass them, including the awkward ones.
odd_value = st.one_of(
    pooled,
    st.none(),
    scalar,
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.builds(StrSub, st.sampled_from(STRINGS + VERSIONS)),
    st.builds(IntSub, st.sampled_from([0, 1, 10, 42])),
    st.sampled_from(
        [
            datetime(2024, 12, 31, 23, 59),
            datetime(2025, 6, 1, tzinfo=timezone.utc),
            date(2025, 1, 1),
        ]
    ),
    st.lists(st.one_of(st.none(), scalar), max_size=3),
    st.tuples(st.sampled_from(STRINGS)),
    st.just({"a": 1}),
    st.just({"a"}),
)


def _values(pool: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(pool, min_size=1, max_size=3)


# Valid clause values per operator (the parser's rejection paths have their own tests).
# Strategies are built once, here: building them inside the draws costs more than running.
CLAUSE_VALUES: dict[str, st.SearchStrategy[list[Any]]] = {
    "in": _values(scalar),
    "equals": _values(scalar),
    "contains": _values(st.sampled_from(STRINGS)),
    "startsWith": _values(st.sampled_from(STRINGS)),
    "endsWith": _values(st.sampled_from(STRINGS)),
    "matches": _values(st.sampled_from(PATTERNS)),
    "before": _values(st.sampled_from(DATES)),
    "after": _values(st.sampled_from(DATES)),
    "segmentMatch": _values(st.sampled_from([*SEGMENT_KEYS, "ghost"])),
    **{op: _values(st.sampled_from(NUMBERS)) for op in ("lt", "lte", "gt", "gte")},
    **{
        op: _values(st.sampled_from(VERSIONS))
        for op in ("semverEq", "semverLt", "semverLte", "semverGt", "semverGte")
    },
}
ATTRIBUTE = st.sampled_from(ATTRIBUTES)
FLAG_OPS = st.sampled_from(OPERATORS)
SEGMENT_OPS = st.sampled_from([op for op in OPERATORS if op != "segmentMatch"])


@st.composite
def clause(draw: st.DrawFn, ops: st.SearchStrategy[str]) -> dict[str, Any]:
    op = draw(ops)
    out: dict[str, Any] = {"op": op, "negate": draw(st.booleans())}
    if op != "segmentMatch":
        out["attribute"] = draw(ATTRIBUTE)
    if op != "exists":
        out["values"] = draw(CLAUSE_VALUES[op])
    return out


FLAG_CLAUSES = st.lists(clause(FLAG_OPS), max_size=3)
SEGMENT_CLAUSES = st.lists(clause(SEGMENT_OPS), min_size=1, max_size=2)
RULE_SEGMENTS = st.lists(st.sampled_from([*SEGMENT_KEYS, "ghost"]), min_size=1, max_size=2)
LISTED = st.lists(st.sampled_from(LISTED_IDS), min_size=1, max_size=2)
CUTS = st.lists(st.integers(0, 100_000), min_size=2, max_size=2)


@st.composite
def rollout(draw: st.DrawFn, ids: st.SearchStrategy[list[str]]) -> dict[str, Any]:
    chosen = draw(ids)
    cuts = sorted(draw(CUTS))[: len(chosen) - 1]
    edges = [0, *cuts, 100_000]
    weights = [edges[i + 1] - edges[i] for i in range(len(chosen))]
    out: dict[str, Any] = {
        "variations": [{"variation": v, "weight": w} for v, w in zip(chosen, weights, strict=True)]
    }
    if draw(st.booleans()):
        out["bucketBy"] = draw(ATTRIBUTE)
    return out


class Kind:
    """Strategies for one flag type: its variations, values and ways to serve them."""

    def __init__(self, name: str, variations: dict[str, Any], values: list[Any]) -> None:
        self.name = name
        self.variations = [{"id": i, "value": v} for i, v in variations.items()]
        self.value = st.sampled_from(values)
        self.variation = st.sampled_from(list(variations))
        subsets = st.lists(self.variation, min_size=1, max_size=3, unique=True)
        self.serve = st.one_of(
            st.builds(lambda v: {"variation": v}, self.variation),
            st.builds(lambda r: {"rollout": r}, rollout(subsets)),
        )
        self.targets = st.lists(
            st.fixed_dictionaries({"variation": self.variation, "values": LISTED}),
            min_size=1,
            max_size=2,
        )


KINDS = st.sampled_from(
    [
        Kind("boolean", {"on": True, "off": False}, [True, False]),
        Kind("string", {"a": "A", "b": "B", "c": ""}, ["A", "default"]),
    ]
)


@st.composite
def flag(draw: st.DrawFn, key: str) -> dict[str, Any]:
    kind = draw(KINDS)
    raw: dict[str, Any] = {
        "key": key,
        "value": draw(kind.value),
        "flagType": kind.name,
        "enabled": True,
        "version": 1,
    }
    if draw(st.integers(0, 7)) == 5:  # a simple flag
        return raw
    raw["variations"] = kind.variations
    raw["enabled"] = draw(st.integers(0, 3)) != 2
    if draw(st.booleans()):
        raw["salt"] = draw(st.sampled_from(["", "2025", "é"]))
    if draw(st.booleans()):
        raw["offVariation"] = draw(kind.variation)
    if draw(st.integers(0, 3)) == 2:
        others = st.sampled_from([*(k for k in FLAG_KEYS if k != key), "missing"])
        raw["prerequisites"] = [
            {"key": draw(others), "variation": draw(kind.variation)}
            for _ in range(draw(st.integers(1, 2)))
        ]
    if draw(st.booleans()):
        raw["targets"] = draw(kind.targets)
    rules = []
    for index in range(draw(st.integers(0, 3))):
        rule: dict[str, Any] = {"clauses": draw(FLAG_CLAUSES)}
        if draw(st.booleans()):
            rule["id"] = f"r{index}"
        if not rule["clauses"] or draw(st.integers(0, 3)) == 2:
            rule["segments"] = draw(RULE_SEGMENTS)
        rule.update(draw(kind.serve))
        rules.append(rule)
    if rules:
        raw["rules"] = rules
    if draw(st.booleans()):
        raw["fallthrough"] = draw(kind.serve)
    if draw(st.integers(0, 15)) == 9:  # now and then a malformed flag
        raw["rules"] = [{"clauses": [{"attribute": "x", "op": "near", "values": [1]}]}]
    return raw


@st.composite
def segment(draw: st.DrawFn, key: str) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "key": key,
        "included": draw(LISTED),
        "excluded": draw(LISTED),
        "rules": [{"clauses": draw(SEGMENT_CLAUSES)} for _ in range(draw(st.integers(0, 2)))],
    }
    if draw(st.integers(0, 15)) == 9:  # now and then a malformed segment
        raw["rules"] = [{"clauses": [{"attribute": "x", "op": "?"}]}]
    return raw


FLAGS = [flag(key) for key in FLAG_KEYS]
SEGMENTS = [segment(key) for key in SEGMENT_KEYS]


@st.composite
def snapshot(draw: st.DrawFn) -> tuple[dict[str, FlagModel], dict[str, SegmentModel]]:
    segments = {k: compile_segment(draw(s)) for k, s in zip(SEGMENT_KEYS, SEGMENTS, strict=True)}
    flags = {}
    for key, strategy in zip(FLAG_KEYS, FLAGS, strict=True):
        flags[key] = compile_flag(FlagState.from_dict(draw(strategy)))
    return flags, segments


CUSTOM_NAMES = st.sampled_from(["plan", "tags", "a.b", "email"])
custom = st.one_of(
    st.dictionaries(CUSTOM_NAMES, odd_value, max_size=5),
    st.just(None),
    st.just(["not", "a", "dict"]),
)


identifier = st.one_of(st.sampled_from(USER_IDS), st.none(), st.just(5), st.just(["u1"]))

context = st.one_of(
    st.builds(
        EvaluationContext,
        user_id=identifier,
        user_key=identifier,
        email=st.one_of(st.none(), odd_value),
        name=st.one_of(st.none(), st.text(max_size=3)),
        country=st.one_of(st.none(), odd_value),
        ip=st.none() | st.just("10.0.0.1"),
        user_agent=st.none() | st.sampled_from(["Mozilla/5.0", "curl/8"]),
        anonymous=st.none() | st.booleans(),
        custom=custom,
    ),
    st.none(),
)


@SETTINGS
@given(world=snapshot(), contexts=st.lists(context, min_size=1, max_size=4))
def test_compiled_flags_decide_like_the_interpreter(
    world: tuple[dict[str, FlagModel], dict[str, SegmentModel]],
    contexts: list[EvaluationContext | None],
) -> None:
    """For every flag of a generated snapshot and every generated context, the compiled
    function and the interpreter return equal decisions (error texts included)."""
    flags, segments = world
    for ctx in contexts:
        for model in flags.values():
            compiled = evaluate(model, ctx, flags=flags, segments=segments)
            interpreted = interpret(model, ctx, flags=flags, segments=segments)
            assert compiled == interpreted, (model.state.raw, ctx)


def test_generated_worlds_reach_every_outcome() -> None:
    """The strategies above are not vacuous: over the derandomized examples every reason
    and every operator occurs (so the equivalence test covers them)."""
    reasons: set[str] = set()
    ops: set[str] = set()

    @SETTINGS
    @given(world=snapshot(), contexts=st.lists(context, min_size=1, max_size=4))
    def collect(
        world: tuple[dict[str, FlagModel], dict[str, SegmentModel]],
        contexts: list[EvaluationContext | None],
    ) -> None:
        flags, segments = world
        for model in flags.values():
            for ctx in contexts:
                reasons.add(evaluate(model, ctx, flags=flags, segments=segments).reason.value)
            for rule in model.spec.rules if model.spec is not None else ():
                ops.update(c.op for c in rule.clauses)

    collect()
    assert reasons >= {
        "CACHED",
        "FALLTHROUGH",
        "RULE_MATCH",
        "SEGMENT_MATCH",
        "TARGET_MATCH",
        "PREREQUISITE_FAILED",
        "FLAG_DISABLED",
        "EVALUATION_ERROR",
    }
    assert ops == set(OPERATORS)


@st.composite
def clause_case(draw: st.DrawFn) -> tuple[dict[str, Any], Any]:
    """A clause over the custom attribute ``attr`` and a value for it: often one of the
    clause's own values (or a neighbour of it), else any awkward value."""
    op = draw(st.sampled_from([op for op in OPERATORS if op not in ("segmentMatch", "exists")]))
    values = draw(CLAUSE_VALUES[op])
    near = st.sampled_from(values)
    value = draw(
        st.one_of(
            near,
            near.map(lambda v: [v]),
            near.filter(lambda v: isinstance(v, str)).map(StrSub),
            near.filter(lambda v: type(v) is int).map(lambda v: v + 1),
            near.filter(lambda v: type(v) is int).map(float),
            odd_value,
        )
    )
    return {"attribute": "attr", "op": op, "values": values, "negate": draw(st.booleans())}, value


@settings(SETTINGS, max_examples=600)
@given(case=clause_case())
def test_compiled_clauses_match_like_the_operator_table(case: tuple[dict[str, Any], Any]) -> None:
    """Each operator's inline test in generated code agrees with the operator table for
    values at and around the clause's own values (bounds, types, subclasses, lists)."""
    clause, value = case
    raw = {
        "key": "c",
        "value": False,
        "enabled": True,
        "version": 1,
        "variations": [{"id": "on", "value": True}],
        "rules": [{"id": "r", "clauses": [clause], "variation": "on"}],
    }
    model = compile_flag(FlagState.from_dict(raw))
    assert model.error is None, model.error
    ctx = EvaluationContext(custom={"attr": value})
    compiled = evaluate(model, ctx, flags={}, segments={})
    assert compiled == interpret(model, ctx, flags={}, segments={}), (clause, value)
