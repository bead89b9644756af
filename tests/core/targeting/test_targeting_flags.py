"""Flag-level evaluation: off variation, targets, rules, segments, prerequisites, errors."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from flagkit.core.targeting import (
    MAX_PREREQUISITE_DEPTH,
    Decision,
    FlagModel,
    SegmentModel,
    compile_flag,
    compile_segment,
    evaluate,
)
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import EvaluationReason, FlagState

R = EvaluationReason
VARIATIONS = [
    {"id": "on", "value": True},
    {"id": "off", "value": False},
]


def flag(key: str = "f", *, value: Any = False, enabled: bool = True, **fields: Any) -> FlagModel:
    """Compile a boolean flag with on/off variations plus ``fields``."""
    raw: dict[str, Any] = {
        "key": key,
        "value": value,
        "enabled": enabled,
        "version": 3,
        "flagType": "boolean",
        "variations": VARIATIONS,
    }
    raw.update(fields)
    return compile_flag(FlagState.from_dict(raw))


def segment(key: str, **fields: Any) -> SegmentModel:
    """Compile a segment."""
    return compile_segment({"key": key, **fields})


def run(
    model: FlagModel,
    ctx: EvaluationContext | None = None,
    *,
    flags: Mapping[str, FlagModel] | None = None,
    segments: Mapping[str, SegmentModel] | None = None,
) -> Decision:
    """Evaluate with the given snapshot (the flag itself is in ``flags`` by default)."""
    return evaluate(
        model,
        ctx,
        flags=flags if flags is not None else {model.key: model},
        segments=segments or {},
    )


def user(uid: str | None = None, **custom: Any) -> EvaluationContext:
    """A context with a user id and custom attributes."""
    return EvaluationContext(user_id=uid, custom=custom)


# ---------------------------------------------------------------------------------------
# Simple flags, off variation, fallthrough
# ---------------------------------------------------------------------------------------


def test_simple_flag_is_served_as_today() -> None:
    """A flag without targeting fields serves its value with reason CACHED, even when
    disabled (the published behaviour), and is marked simple."""
    for enabled in (True, False):
        state = FlagState.from_dict(
            {"key": "s", "value": "blue", "enabled": enabled, "version": 1, "flagType": "string"}
        )
        model = compile_flag(state)
        assert model.is_simple and model.error is None
        assert run(model, user("u1")) == Decision("blue", R.CACHED)
        assert run(model, None) == Decision("blue", R.CACHED)


@pytest.mark.parametrize(
    "empty",
    [
        {"rules": []},
        {"rules": None},
        {"targets": [], "prerequisites": [], "variations": []},
        {"salt": "abc"},
        {"description": "extra fields are not targeting"},
    ],
)
def test_empty_targeting_fields_keep_a_flag_simple(empty: dict[str, Any]) -> None:
    """Null or empty targeting fields (and a lone salt) do not make a flag targeted."""
    raw = {"key": "s", "value": True, "enabled": True, "version": 1, **empty}
    assert compile_flag(FlagState.from_dict(raw)).is_simple


def test_flag_state_without_raw_fields_is_simple() -> None:
    """A FlagState built in code (no wire object) is simple."""
    assert compile_flag(FlagState("k", 1)).is_simple


def test_disabled_flag_serves_the_off_variation() -> None:
    """A disabled targeted flag serves ``offVariation`` with FLAG_DISABLED, ignoring
    targets and rules."""
    model = flag(
        enabled=False,
        value=True,
        offVariation="off",
        targets=[{"variation": "on", "values": ["u1"]}],
        fallthrough={"variation": "on"},
    )
    assert run(model, user("u1")) == Decision(False, R.FLAG_DISABLED, "off")


def test_disabled_flag_without_off_variation_serves_its_value() -> None:
    """Without ``offVariation`` a disabled flag serves its ``value`` (no variation id)."""
    model = flag(enabled=False, value=True, fallthrough={"variation": "off"})
    assert run(model, user("u1")) == Decision(True, R.FLAG_DISABLED)


def test_fallthrough_variation_and_missing_fallthrough() -> None:
    """No matching rule serves the fallthrough; without one, the flag's value."""
    assert run(flag(fallthrough={"variation": "on"}), user("u")) == Decision(
        True, R.FALLTHROUGH, "on"
    )
    no_fallthrough = flag(value=True, targets=[{"variation": "off", "values": ["x"]}])
    assert run(no_fallthrough, user("u")) == Decision(True, R.FALLTHROUGH)


def test_fallthrough_rollout_sets_the_variation_id() -> None:
    """A fallthrough rollout serves one of its variations, with its id."""
    model = flag(
        fallthrough={
            "rollout": {
                "variations": [
                    {"variation": "on", "weight": 50000},
                    {"variation": "off", "weight": 50000},
                ]
            }
        }
    )
    seen = {run(model, user(f"u{i}")) for i in range(100)}
    assert seen == {Decision(True, R.FALLTHROUGH, "on"), Decision(False, R.FALLTHROUGH, "off")}


def test_non_boolean_variations() -> None:
    """Variations may carry strings, numbers or JSON, matching the flag type."""
    raw = {
        "key": "theme",
        "value": {"color": "grey"},
        "enabled": True,
        "version": 1,
        "flagType": "json",
        "variations": [
            {"id": "blue", "value": {"color": "blue"}},
            {"id": "list", "value": [1, 2]},
            {"id": "none", "value": None},
        ],
        "rules": [
            {
                "id": "nl",
                "clauses": [{"attribute": "country", "op": "in", "values": ["NL"]}],
                "variation": "list",
            }
        ],
        "fallthrough": {"variation": "blue"},
    }
    model = compile_flag(FlagState.from_dict(raw))
    assert run(model, EvaluationContext(country="NL")) == Decision(
        [1, 2], R.RULE_MATCH, "list", "nl"
    )
    assert run(model, EvaluationContext(country="DE")).value == {"color": "blue"}


# ---------------------------------------------------------------------------------------
# Targets and rules
# ---------------------------------------------------------------------------------------


def test_individual_targets_win_over_rules() -> None:
    """Listed user ids get their variation with TARGET_MATCH, before any rule."""
    model = flag(
        targets=[
            {"variation": "on", "values": ["alice", "bob"]},
            {"variation": "off", "values": ["carol", "alice"]},
        ],
        rules=[
            {
                "id": "all-nl",
                "clauses": [{"attribute": "country", "op": "in", "values": ["NL"]}],
                "variation": "off",
            }
        ],
        fallthrough={"variation": "off"},
    )
    nl_alice = EvaluationContext(user_id="alice", country="NL")
    assert run(model, nl_alice) == Decision(True, R.TARGET_MATCH, "on")
    assert run(model, user("carol")) == Decision(False, R.TARGET_MATCH, "off")
    assert run(model, EvaluationContext(user_id="dave", country="NL")).reason is R.RULE_MATCH


def test_targets_use_the_anonymous_key_without_a_user_id() -> None:
    """An anonymous visitor is targeted by its ``user_key``; the user id wins when set."""
    model = flag(
        targets=[{"variation": "on", "values": ["anon-1"]}], fallthrough={"variation": "off"}
    )
    assert run(model, EvaluationContext(user_key="anon-1", anonymous=True)).reason is R.TARGET_MATCH
    assert run(model, EvaluationContext(user_id="u", user_key="anon-1")).reason is R.FALLTHROUGH
    assert run(model, None).reason is R.FALLTHROUGH


def test_first_matching_rule_wins_and_ids_default_to_position() -> None:
    """Rules are tried in order; a rule without ``id`` is reported as ``rule-<index>``."""
    model = flag(
        rules=[
            {"clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}], "variation": "on"},
            {
                "id": "everyone-with-plan",
                "clauses": [{"attribute": "plan", "op": "exists"}],
                "variation": "off",
            },
        ],
        fallthrough={"variation": "off"},
    )
    assert run(model, user("u", plan="pro")) == Decision(True, R.RULE_MATCH, "on", "rule-0")
    assert run(model, user("u", plan="free")) == Decision(
        False, R.RULE_MATCH, "off", "everyone-with-plan"
    )
    assert run(model, user("u")) == Decision(False, R.FALLTHROUGH, "off")


def test_rule_rollout_reports_the_rule() -> None:
    """A rule serving a rollout reports RULE_MATCH with the rule id and the variation."""
    model = flag(
        rules=[
            {
                "id": "beta-split",
                "clauses": [{"attribute": "beta", "op": "equals", "values": [True]}],
                "rollout": {
                    "variations": [
                        {"variation": "on", "weight": 100000},
                        {"variation": "off", "weight": 0},
                    ]
                },
            }
        ],
        fallthrough={"variation": "off"},
    )
    assert run(model, user("u", beta=True)) == Decision(True, R.RULE_MATCH, "on", "beta-split")


# ---------------------------------------------------------------------------------------
# Segments
# ---------------------------------------------------------------------------------------

BETA = segment(
    "beta",
    included=["inc-1"],
    excluded=["exc-1"],
    rules=[{"clauses": [{"attribute": "email", "op": "endsWith", "values": ["@beta.io"]}]}],
)
STAFF = segment(
    "staff", rules=[{"clauses": [{"attribute": "staff", "op": "equals", "values": [True]}]}]
)
SEGMENTS = {"beta": BETA, "staff": STAFF}


def segment_flag(**rule: Any) -> FlagModel:
    """A flag whose only rule is ``rule`` (serving 'on'), fallthrough 'off'."""
    return flag(
        rules=[{"id": "seg-rule", "variation": "on", **rule}], fallthrough={"variation": "off"}
    )


def test_segment_included_excluded_and_rules() -> None:
    """A context is in a segment when included, else not when excluded, else when a
    segment rule matches; the decision is SEGMENT_MATCH with segment and rule ids."""
    model = segment_flag(segments=["beta"])
    hit = Decision(True, R.SEGMENT_MATCH, "on", "seg-rule", "beta")
    assert run(model, user("inc-1"), segments=SEGMENTS) == hit
    assert run(model, EvaluationContext(user_id="x", email="a@beta.io"), segments=SEGMENTS) == hit
    excluded = EvaluationContext(user_id="exc-1", email="a@beta.io")
    assert run(model, excluded, segments=SEGMENTS).reason is R.FALLTHROUGH
    assert run(model, user("nobody"), segments=SEGMENTS).reason is R.FALLTHROUGH
    anonymous_included = EvaluationContext(user_key="inc-1")
    assert run(model, anonymous_included, segments=SEGMENTS) == hit


def test_included_wins_over_excluded() -> None:
    """A user listed in both ``included`` and ``excluded`` is in the segment."""
    both = {"both": segment("both", included=["u"], excluded=["u"])}
    model = segment_flag(segments=["both"])
    assert run(model, user("u"), segments=both).reason is R.SEGMENT_MATCH


def test_rule_with_several_segments_names_the_matching_one() -> None:
    """A rule's ``segments`` match if the context is in any; segment_id is the first
    segment (in the listed order) that contains it."""
    model = segment_flag(segments=["beta", "staff"])
    assert run(model, user("x", staff=True), segments=SEGMENTS).segment_id == "staff"
    both = EvaluationContext(user_id="inc-1", custom={"staff": True})
    assert run(model, both, segments=SEGMENTS).segment_id == "beta"


def test_segment_match_clause_and_negation() -> None:
    """``segmentMatch`` clauses work like rule segments; negated, they exclude members."""
    positive = segment_flag(clauses=[{"op": "segmentMatch", "values": ["staff"]}])
    assert run(positive, user("x", staff=True), segments=SEGMENTS).segment_id == "staff"
    negative = segment_flag(
        clauses=[
            {"attribute": "country", "op": "in", "values": ["NL"]},
            {"op": "segmentMatch", "values": ["staff"], "negate": True},
        ]
    )
    nl_staff = EvaluationContext(user_id="x", country="NL", custom={"staff": True})
    nl_guest = EvaluationContext(user_id="y", country="NL")
    assert run(negative, nl_staff, segments=SEGMENTS).reason is R.FALLTHROUGH
    assert run(negative, nl_guest, segments=SEGMENTS) == Decision(
        True, R.RULE_MATCH, "on", "seg-rule"
    )


def test_segment_rule_combined_with_clauses() -> None:
    """A rule with clauses and segments needs both."""
    model = segment_flag(
        clauses=[{"attribute": "country", "op": "in", "values": ["NL"]}], segments=["staff"]
    )
    assert run(model, user("x", staff=True), segments=SEGMENTS).reason is R.FALLTHROUGH
    ctx = EvaluationContext(user_id="x", country="NL", custom={"staff": True})
    assert run(model, ctx, segments=SEGMENTS).reason is R.SEGMENT_MATCH


def test_segment_rule_with_rollout() -> None:
    """A segment rule may serve a rollout; the decision keeps the segment id."""
    model = segment_flag(
        segments=["staff"],
        variation=None,
        rollout={"variations": [{"variation": "off", "weight": 100000}]},
    )
    decision = run(model, user("x", staff=True), segments=SEGMENTS)
    assert decision == Decision(False, R.SEGMENT_MATCH, "off", "seg-rule", "staff")


def test_unknown_segment_is_an_evaluation_error_for_that_flag_only() -> None:
    """A rule naming a segment missing from the snapshot makes that flag serve its value
    with EVALUATION_ERROR; a flag not using it is unaffected."""
    broken = segment_flag(segments=["gone"])
    fine = flag("g", fallthrough={"variation": "on"})
    decision = run(broken, user("x"), segments=SEGMENTS)
    assert decision.reason is R.EVALUATION_ERROR and decision.value is False
    assert "unknown segment 'gone'" in (decision.error or "")
    assert run(fine, user("x"), segments=SEGMENTS).reason is R.FALLTHROUGH


def test_malformed_segment_errors_only_flags_that_reach_it() -> None:
    """A malformed segment has ``error``; rules reaching it give EVALUATION_ERROR."""
    bad = compile_segment({"key": "bad", "rules": [{"clauses": [{"attribute": "a", "op": "?"}]}]})
    assert bad.error is not None and "rules[0].clauses[0].op" in bad.error
    segments = {**SEGMENTS, "bad": bad}
    model = flag(
        rules=[
            {
                "id": "nl",
                "clauses": [{"attribute": "country", "op": "in", "values": ["NL"]}],
                "variation": "on",
            },
            {"id": "bad", "segments": ["bad"], "variation": "on"},
        ],
        fallthrough={"variation": "off"},
    )
    nl = EvaluationContext(user_id="x", country="NL")
    assert run(model, nl, segments=segments).reason is R.RULE_MATCH  # never reaches 'bad'
    decision = run(model, user("x"), segments=segments)
    assert decision.reason is R.EVALUATION_ERROR
    assert "segment 'bad' is malformed" in (decision.error or "")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"key": "s", "included": "u1"}, "included: must be an array"),
        ({"key": "s", "excluded": [1]}, "excluded[0]: must be a non-empty string"),
        ({"key": "s", "rules": [{"clauses": []}]}, "rules[0]: a rule needs at least one clause"),
        (
            {"key": "s", "rules": [{"clauses": [{"op": "segmentMatch", "values": ["t"]}]}]},
            "segmentMatch cannot be used inside a segment",
        ),
        ({"included": ["u"]}, "key: must be a non-empty string"),
    ],
)
def test_bad_segments_get_an_error(raw: dict[str, Any], message: str) -> None:
    """compile_segment never raises; the error names the offending field."""
    model = compile_segment(raw)
    assert model.error is not None and message in model.error


def test_compile_segment_accepts_garbage_without_raising() -> None:
    """Even a non-mapping yields a segment model with an error."""
    model = compile_segment("nonsense")  # type: ignore[arg-type]
    assert model.error is not None and model.key == ""


# ---------------------------------------------------------------------------------------
# Prerequisites
# ---------------------------------------------------------------------------------------


def prerequisite_world() -> dict[str, FlagModel]:
    """'base' serves on to NL users; 'child' needs base=on; 'grandchild' needs child=on."""
    base = flag(
        "base",
        rules=[
            {
                "id": "nl",
                "clauses": [{"attribute": "country", "op": "in", "values": ["NL"]}],
                "variation": "on",
            }
        ],
        fallthrough={"variation": "off"},
    )
    child = flag(
        "child",
        offVariation="off",
        prerequisites=[{"key": "base", "variation": "on"}],
        fallthrough={"variation": "on"},
    )
    grandchild = flag(
        "grandchild",
        offVariation="off",
        prerequisites=[{"key": "child", "variation": "on"}],
        fallthrough={"variation": "on"},
    )
    return {m.key: m for m in (base, child, grandchild)}


def test_prerequisite_met_and_failed() -> None:
    """A flag serves normally when its prerequisite serves the named variation, else its
    off variation with PREREQUISITE_FAILED; chains propagate."""
    flags = prerequisite_world()
    nl, de = (
        EvaluationContext(user_id="u", country="NL"),
        EvaluationContext(user_id="u", country="DE"),
    )
    assert run(flags["child"], nl, flags=flags) == Decision(True, R.FALLTHROUGH, "on")
    assert run(flags["child"], de, flags=flags) == Decision(False, R.PREREQUISITE_FAILED, "off")
    assert run(flags["grandchild"], nl, flags=flags).reason is R.FALLTHROUGH
    assert run(flags["grandchild"], de, flags=flags).reason is R.PREREQUISITE_FAILED


def test_prerequisite_that_is_off_or_missing_fails() -> None:
    """A disabled or absent prerequisite flag is not met."""
    flags = prerequisite_world()
    off_base = flag("base", enabled=False, offVariation="on", fallthrough={"variation": "on"})
    flags_off = {**flags, "base": off_base}
    nl = EvaluationContext(user_id="u", country="NL")
    assert run(flags["child"], nl, flags=flags_off).reason is R.PREREQUISITE_FAILED
    flags_missing = {k: v for k, v in flags.items() if k != "base"}
    assert run(flags["child"], nl, flags=flags_missing).reason is R.PREREQUISITE_FAILED


def test_prerequisite_without_off_variation_serves_value() -> None:
    """Without ``offVariation`` a failed prerequisite serves the flag's value."""
    flags = prerequisite_world()
    model = flag(
        "child2",
        value=True,
        prerequisites=[{"key": "base", "variation": "on"}],
        fallthrough={"variation": "off"},
    )
    flags["child2"] = model
    assert run(model, EvaluationContext(country="DE"), flags=flags) == Decision(
        True, R.PREREQUISITE_FAILED
    )


def test_prerequisite_cycle_is_an_evaluation_error_and_isolated() -> None:
    """A prerequisite cycle gives EVALUATION_ERROR (naming the cycle) to the flags in it
    and to flags depending on them; unrelated flags keep working."""
    a = flag(
        "a",
        value=True,
        prerequisites=[{"key": "b", "variation": "on"}],
        fallthrough={"variation": "on"},
    )
    b = flag("b", prerequisites=[{"key": "a", "variation": "on"}], fallthrough={"variation": "on"})
    c = flag("c", prerequisites=[{"key": "a", "variation": "on"}], fallthrough={"variation": "on"})
    d = flag("d", fallthrough={"variation": "on"})
    flags = {m.key: m for m in (a, b, c, d)}
    decision = run(a, user("u"), flags=flags)
    assert decision == Decision(True, R.EVALUATION_ERROR, error="prerequisite cycle: a -> b -> a")
    assert run(b, user("u"), flags=flags).error == "prerequisite cycle: b -> a -> b"
    assert run(c, user("u"), flags=flags).error == "prerequisite cycle: a -> b -> a"
    assert run(d, user("u"), flags=flags) == Decision(True, R.FALLTHROUGH, "on")


def test_self_prerequisite_is_rejected_at_compile_time() -> None:
    """A flag naming itself as prerequisite is malformed."""
    model = flag("a", prerequisites=[{"key": "a", "variation": "on"}])
    assert model.error is not None and "prerequisites[0].key: prerequisite cycle" in model.error
    assert run(model, user("u")).reason is R.EVALUATION_ERROR


def test_diamond_prerequisites_are_not_a_cycle() -> None:
    """Two prerequisites sharing a prerequisite are fine."""
    base = flag("base", fallthrough={"variation": "on"})
    left = flag(
        "left", prerequisites=[{"key": "base", "variation": "on"}], fallthrough={"variation": "on"}
    )
    right = flag(
        "right", prerequisites=[{"key": "base", "variation": "on"}], fallthrough={"variation": "on"}
    )
    top = flag(
        "top",
        prerequisites=[{"key": "left", "variation": "on"}, {"key": "right", "variation": "on"}],
        fallthrough={"variation": "on"},
    )
    flags = {m.key: m for m in (base, left, right, top)}
    assert run(top, user("u"), flags=flags) == Decision(True, R.FALLTHROUGH, "on")


def test_overlong_prerequisite_chain_is_an_error() -> None:
    """Chains deeper than the limit give EVALUATION_ERROR instead of deep recursion."""
    models = [flag("p0", fallthrough={"variation": "on"})]
    for i in range(1, MAX_PREREQUISITE_DEPTH + 5):
        models.append(
            flag(
                f"p{i}",
                prerequisites=[{"key": f"p{i - 1}", "variation": "on"}],
                fallthrough={"variation": "on"},
            )
        )
    flags = {m.key: m for m in models}
    assert run(flags["p5"], user("u"), flags=flags).reason is R.FALLTHROUGH
    deep = run(models[-1], user("u"), flags=flags)
    assert deep.reason is R.EVALUATION_ERROR and "deeper than" in (deep.error or "")


def test_malformed_prerequisite_is_an_error() -> None:
    """Depending on a malformed flag is an evaluation error naming it."""
    broken = flag(
        "base",
        rules=[
            {
                "id": "x",
                "clauses": [{"attribute": "a", "op": "nope", "values": [1]}],
                "variation": "on",
            }
        ],
    )
    child = flag(
        "child", prerequisites=[{"key": "base", "variation": "on"}], fallthrough={"variation": "on"}
    )
    decision = run(child, user("u"), flags={"base": broken, "child": child})
    assert decision.reason is R.EVALUATION_ERROR
    assert "prerequisite 'base' is malformed" in (decision.error or "")


def test_simple_prerequisite_is_never_met() -> None:
    """A simple flag has no variations, so a prerequisite on it fails."""
    simple = compile_flag(
        FlagState.from_dict({"key": "k", "value": True, "enabled": True, "version": 1})
    )
    child = flag(
        "child",
        offVariation="off",
        prerequisites=[{"key": "k", "variation": "on"}],
        fallthrough={"variation": "on"},
    )
    assert (
        run(child, user("u"), flags={"k": simple, "child": child}).reason is R.PREREQUISITE_FAILED
    )


# ---------------------------------------------------------------------------------------
# Bad input never raises
# ---------------------------------------------------------------------------------------

GARBAGE: list[dict[str, Any]] = [
    {"rules": "x"},
    {"rules": [1]},
    {"rules": [{"clauses": [{"attribute": "a", "op": "in", "values": ["x"]}]}]},  # no serve
    {
        "rules": [
            {
                "clauses": [{"attribute": "a", "op": "in", "values": ["x"]}],
                "variation": "on",
                "rollout": {},
            }
        ]
    },
    {"rules": [{"variation": "on"}]},
    {"rules": [{"id": "", "clauses": [{"attribute": "a", "op": "exists"}], "variation": "on"}]},
    {
        "rules": [{"id": "r", "clauses": [{"attribute": "a", "op": "exists"}], "variation": "on"}]
        * 2
    },
    {"variations": {"on": True}},
    {"variations": [{"id": "on", "value": True}, {"id": "on", "value": False}]},
    {"variations": [{"id": "x", "value": "not a bool"}]},
    {"variations": [{"id": "x"}]},
    {"offVariation": "missing"},
    {"offVariation": 1},
    {"targets": [{"variation": "on", "values": "u1"}]},
    {"targets": [{"variation": "nope", "values": ["u1"]}]},
    {"fallthrough": []},
    {"fallthrough": {}},
    {"fallthrough": {"rollout": {"variations": [{"variation": "on", "weight": 50000}]}}},
    {
        "fallthrough": {
            "rollout": {
                "variations": [
                    {"variation": "on", "weight": 100001},
                    {"variation": "off", "weight": -1},
                ]
            }
        }
    },
    {
        "fallthrough": {
            "rollout": {
                "variations": [
                    {"variation": "on", "weight": 50000.0},
                    {"variation": "off", "weight": 50000},
                ]
            }
        }
    },
    {
        "fallthrough": {
            "rollout": {
                "variations": [
                    {"variation": "on", "weight": 50000},
                    {"variation": "on", "weight": 50000},
                ]
            }
        }
    },
    {"fallthrough": {"rollout": {"variations": []}}},
    {
        "fallthrough": {
            "rollout": {"variations": [{"variation": "on", "weight": 100000}], "bucketBy": 3}
        }
    },
    {"prerequisites": {"key": "x"}},
    {"prerequisites": [{"key": "", "variation": "on"}]},
    {"prerequisites": [{"key": "x"}]},
    {"salt": 5, "fallthrough": {"variation": "on"}},
]


@pytest.mark.parametrize("fields", GARBAGE, ids=[str(g)[:50] for g in GARBAGE])
def test_malformed_flags_compile_to_an_error_and_serve_their_value(fields: dict[str, Any]) -> None:
    """compile_flag never raises; the flag serves its value with EVALUATION_ERROR."""
    raw = {"key": "g", "value": True, "enabled": True, "version": 1, "flagType": "boolean"}
    raw["variations"] = VARIATIONS
    raw.update(fields)
    model = compile_flag(FlagState.from_dict(raw))
    assert model.error, fields
    decision = run(model, user("u"))
    assert decision.reason is R.EVALUATION_ERROR
    assert decision.value is True and decision.error == model.error


def test_error_text_names_the_field_path() -> None:
    """The model error starts with the path of the offending field."""
    model = flag(
        rules=[
            {"id": "ok", "clauses": [{"attribute": "a", "op": "exists"}], "variation": "on"},
            {
                "id": "bad",
                "clauses": [
                    {"attribute": "a", "op": "exists"},
                    {"attribute": "b", "op": "nearby", "values": [1]},
                ],
                "variation": "on",
            },
        ]
    )
    assert (model.error or "").startswith("rules[1].clauses[1].op: unknown operator 'nearby'")


def test_unknown_fields_inside_targeting_are_ignored_by_the_client() -> None:
    """compile_flag tolerates fields it does not know (newer servers may add some)."""
    model = flag(
        rules=[
            {
                "id": "r",
                "trackEvents": True,
                "clauses": [{"attribute": "a", "op": "exists", "weight": 3}],
                "variation": "on",
            }
        ],
        fallthrough={"variation": "off", "note": "x"},
    )
    assert model.error is None
    assert run(model, user("u", a=1)).reason is R.RULE_MATCH


def test_unusable_contexts_give_an_error_not_an_exception() -> None:
    """A context with a broken ``custom`` or of the wrong type gives EVALUATION_ERROR."""
    model = flag(
        targets=[{"variation": "on", "values": ["u"]}],
        rules=[
            {
                "id": "r",
                "clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
                "variation": "on",
            }
        ],
        fallthrough={"variation": "off"},
    )
    bad_custom = EvaluationContext(user_id="x", custom=["not", "a", "dict"])  # type: ignore[arg-type]
    assert run(model, bad_custom).reason is R.EVALUATION_ERROR
    unhashable_id = EvaluationContext(user_id=["u"])  # type: ignore[arg-type]
    assert run(model, unhashable_id).reason is R.EVALUATION_ERROR
    not_a_context: Any = {"userId": "u"}
    decision = run(model, not_a_context)
    assert decision.reason is R.EVALUATION_ERROR and "AttributeError" in (decision.error or "")
    assert run(model, EvaluationContext(user_id="x", custom=None)).reason is R.FALLTHROUGH  # type: ignore[arg-type]


def test_decisions_are_immutable() -> None:
    """Decisions are frozen (they are shared between calls)."""
    decision = run(flag(fallthrough={"variation": "on"}), user("u"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.value = False  # type: ignore[misc]


def test_concurrent_evaluation_is_consistent() -> None:
    """Compiled flags hold no per-call state: threads evaluating at once agree."""
    model = flag(
        rules=[
            {
                "id": "r",
                "clauses": [{"attribute": "n", "op": "lt", "values": [500]}],
                "variation": "on",
            }
        ],
        fallthrough={
            "rollout": {
                "variations": [
                    {"variation": "on", "weight": 30000},
                    {"variation": "off", "weight": 70000},
                ]
            }
        },
    )
    contexts = [user(f"u{i}", n=i) for i in range(1000)]
    expected = [run(model, c) for c in contexts]
    results: list[list[Decision]] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        results.append([run(model, c) for c in contexts])

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4


def test_model_attributes() -> None:
    """FlagModel exposes its variations, prerequisites and referenced segments."""
    model = flag(
        prerequisites=[{"key": "p", "variation": "on"}],
        rules=[
            {
                "id": "r",
                "segments": ["beta"],
                "clauses": [{"op": "segmentMatch", "values": ["staff"]}],
                "variation": "on",
            }
        ],
    )
    assert model.error is None
    assert dict(model.variations) == {"on": True, "off": False}
    assert model.prerequisites == (("p", "on"),)
    assert model.segment_keys == frozenset({"beta", "staff"})
    assert "targeted" in repr(model)


def test_hostile_strings_are_data_not_code() -> None:
    """Attribute names, values, ids and keys full of quotes and newlines only ever match
    literally: nothing from a flag becomes generated source."""
    evil = "x') or __import__('os').system('exit 1') or ('\n\"\"\"{}"
    raw = {
        "key": evil,
        "value": evil,
        "enabled": True,
        "version": 1,
        "flagType": "string",
        "salt": evil,
        "variations": [{"id": evil, "value": evil}, {"id": "plain", "value": "plain"}],
        "targets": [{"variation": evil, "values": [evil]}],
        "rules": [
            {
                "id": evil,
                "clauses": [
                    {"attribute": evil, "op": "in", "values": [evil]},
                    {"attribute": f"custom.{evil}", "op": "startsWith", "values": [evil[:5]]},
                ],
                "variation": evil,
            }
        ],
        "fallthrough": {"variation": "plain"},
    }
    model = compile_flag(FlagState.from_dict(raw))
    assert model.error is None
    hit = EvaluationContext(user_id="u", custom={evil: evil})
    assert run(model, hit) == Decision(evil, R.RULE_MATCH, evil, evil)
    assert run(model, EvaluationContext(user_id=evil)).reason is R.TARGET_MATCH
    assert run(model, user("u", x="x")) == Decision("plain", R.FALLTHROUGH, "plain")
