"""Clause operators: every operator, negation, missing attributes and awkward values."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from flagkit.core.targeting import MAX_MATCH_INPUT_LENGTH, compile_flag, evaluate, parse_semver
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import EvaluationReason, FlagState
from flagkit.utils.timeparse import parse_iso_datetime


def one_clause_flag(clause: dict[str, Any]) -> Any:
    """A boolean flag serving 'on' when ``clause`` matches, else 'off' (fallthrough)."""
    state = FlagState.from_dict(
        {
            "key": "f",
            "value": False,
            "enabled": True,
            "version": 1,
            "flagType": "boolean",
            "variations": [{"id": "on", "value": True}, {"id": "off", "value": False}],
            "rules": [{"id": "r", "clauses": [clause], "variation": "on"}],
            "fallthrough": {"variation": "off"},
        }
    )
    return compile_flag(state)


def matches(
    op: str,
    values: list[Any],
    attr_value: Any,
    *,
    negate: bool = False,
    attribute: str = "attr",
) -> bool:
    """Whether a context with ``custom[attribute] = attr_value`` matches the clause."""
    model = one_clause_flag({"attribute": attribute, "op": op, "values": values, "negate": negate})
    assert model.error is None, model.error
    ctx = EvaluationContext(user_id="u", custom={} if attr_value is None else {"attr": attr_value})
    decision = evaluate(model, ctx, flags={}, segments={})
    assert decision.reason in (EvaluationReason.RULE_MATCH, EvaluationReason.FALLTHROUGH), decision
    return decision.reason is EvaluationReason.RULE_MATCH


def compile_error(clause: dict[str, Any]) -> str:
    """The model error of a one-clause flag (asserting there is one)."""
    model = one_clause_flag(clause)
    assert model.error is not None
    return str(model.error)


class StrSub(str):
    """A str subclass (like Django's SafeString)."""


class IntSub(int):
    """An int subclass (like an IntEnum member)."""


class FloatSub(float):
    """A float subclass."""


BIG = 10**30
HUGE = 10**400  # beyond float range

# (op, clause values, attribute value, expected match)
CASES: list[tuple[str, list[Any], Any, bool]] = [
    # equality
    ("in", ["NL", "BE"], "NL", True),
    ("in", ["NL", "BE"], "nl", False),
    ("equals", ["NL"], "NL", True),
    ("in", ["1"], 1, False),
    ("in", [1], "1", False),
    ("in", [1], 1.0, True),
    ("in", [1.5], 1.5, True),
    ("in", [1], True, False),
    ("in", [True], 1, False),
    ("in", [True], True, True),
    ("in", [False], False, True),
    ("in", [False], 0, False),
    ("in", ["x", 2, True], 2, True),
    ("in", [BIG], BIG, True),
    ("in", [BIG + 1], float(BIG), False),
    ("in", [HUGE], HUGE, True),
    ("in", [1], math.nan, False),
    ("in", ["café"], "café", True),
    ("in", ["café"], "cafe\u0301", False),  # no Unicode normalization
    ("in", ["用户"], "用户", True),
    ("in", ["a"], {"a": 1}, False),
    ("in", ["a"], {"a"}, False),
    # strings
    ("contains", ["@corp"], "a@corp.io", True),
    ("contains", ["@CORP"], "a@corp.io", False),
    ("contains", ["x", "corp"], "a@corp.io", True),
    ("contains", ["1"], 123, False),
    ("contains", ["ü"], "Müller", True),
    ("startsWith", ["Mozilla/", "curl/"], "curl/8.0", True),
    ("startsWith", ["Mozilla/"], "Opera", False),
    ("startsWith", ["1"], 123, False),
    ("endsWith", ["@example.com"], "a@example.com", True),
    ("endsWith", ["@example.com"], "a@example.com.evil", False),
    ("endsWith", ["🚀"], "go🚀", True),
    ("matches", [r"^\d{3}-\d{4}$"], "555-1234", True),
    ("matches", [r"^\d{3}-\d{4}$"], "555-12345", False),
    ("matches", [r"corp\.io"], "a@corp.io", True),  # search, not fullmatch
    ("matches", [r"(?i)^ADMIN"], "admin-1", True),
    ("matches", [r"^x$", r"^y$"], "y", True),
    ("matches", [r"\d+"], 123, False),
    ("matches", [r"^\w+$"], "naïve", True),
    # numbers
    ("lt", [10], 9, True),
    ("lt", [10], 10, False),
    ("lte", [10], 10, True),
    ("lte", [10], 10.000001, False),
    ("gt", [10], 10.5, True),
    ("gt", [10], 10, False),
    ("gte", [10], 10, True),
    ("gte", [10], -1, False),
    ("gt", [1, 100], 50, True),  # any value: > 1
    ("lt", [1, 100], 50, True),  # any value: < 100
    ("gte", [0], True, False),  # booleans are not numbers
    ("lt", [10], "5", False),  # no coercion from strings
    ("gt", [1e308], HUGE, True),
    ("lt", [1e308], HUGE, False),
    ("gte", [BIG], BIG, True),
    ("gt", [BIG], float(BIG), True),  # exact: float(10**30) is 10**30 + 19884624838656
    ("gt", [0], math.inf, True),
    ("lt", [0], -math.inf, True),
    ("gt", [0], math.nan, False),
    ("lt", [0], math.nan, False),
    ("gt", [0], {"n": 1}, False),
    ("lt", [0], [], False),
    # dates
    ("before", ["2025-01-01T00:00:00Z"], "2024-12-31T23:59:59Z", True),
    ("before", ["2025-01-01T00:00:00Z"], "2025-01-01T00:00:00Z", False),
    ("before", ["2025-01-01"], "2024-12-31T23:59:59.999999Z", True),
    ("after", ["2025-01-01T00:00:00Z"], "2025-01-01T00:00:00.000001Z", True),
    ("after", ["2025-01-01T00:00:00Z"], "2025-01-01T01:00:00+01:00", False),  # same instant
    ("after", ["2025-01-01T00:00:00Z"], "2025-01-01T01:00:01+01:00", True),
    ("before", ["2025-01-01T00:00:00+00:00"], "2024-12-31T20:00:00-05:00", False),
    ("after", ["2025-01-01T00:00:00Z"], 1735689600001, True),  # epoch milliseconds
    ("after", [1735689600000], "2025-01-01T00:00:00.001Z", True),
    ("before", [1735689600000], 1735689599999.5, True),
    ("before", ["2025-01-01T00:00:00Z"], "not a date", False),
    ("before", ["2025-01-01T00:00:00Z"], "2024-02-30", False),  # invalid day
    ("before", ["2025-01-01T00:00:00Z"], "2024-12-31T24:00:00Z", False),
    ("before", ["2025-01-01T00:00:00Z"], True, False),
    ("before", ["2025-01-01T00:00:00Z"], math.nan, False),
    ("after", ["1970-01-01T00:00:00Z"], "2024-06-01T12:00:00.123456789Z", True),
    ("before", ["2025-01-01T00:00:00Z"], datetime(2024, 12, 31, 23, 59), True),
    ("before", ["2025-01-01T00:00:00Z"], date(2025, 1, 1), False),
    (
        "after",
        ["2025-01-01T00:00:00Z"],
        datetime(2025, 1, 1, 1, 0, 1, tzinfo=timezone(timedelta(hours=1))),
        True,
    ),
    ("before", ["2025-01-01T00:00:00Z"], "\uff12\uff10\uff12\uff14-01-01", False),  # fullwidth
    # semantic versions
    ("semverEq", ["2.0.0"], "2.0.0", True),
    ("semverEq", ["2.0.0"], "2.0.0+build.7", True),
    ("semverEq", ["2.0.0"], "v2", True),
    ("semverEq", ["2.0.0"], "2.0.0-rc.1", False),
    ("semverLt", ["2.0.0"], "1.99.99", True),
    ("semverLt", ["2.0.0"], "2.0.0-rc.1", True),
    ("semverLt", ["1.0.0-alpha.1"], "1.0.0-alpha", True),
    ("semverLt", ["1.0.0-alpha.beta"], "1.0.0-alpha.1", True),
    ("semverLt", ["1.0.0-beta.11"], "1.0.0-beta.2", True),
    ("semverLt", ["1.0.0-beta.2"], "1.0.0-beta.11", False),
    ("semverLte", ["2.0.0"], "2.0.0", True),
    ("semverGt", ["2.0.0"], "10.0.0", True),  # numeric, not lexicographic
    ("semverGt", ["2.0.0"], "2.0.0", False),
    ("semverGte", ["2.0.0"], "2.0.0", True),
    ("semverGte", ["2.0.0"], "1.9.9", False),
    ("semverGt", ["1.0.0"], "99999999999999999999.0.0", True),
    ("semverGt", ["1.0.0"], "1.0", False),
    ("semverGt", ["1.0.0"], "not.a.version", False),
    ("semverGt", ["1.0.0"], "01.2.3", False),  # leading zero: invalid
    ("semverGt", ["1.0.0"], 2, False),
    ("semverGt", ["1.0.0"], "2.0.0." + "9" * 300, False),  # over-long input
]


def _case_id(case: tuple[str, list[Any], Any, bool]) -> str:
    return f"{case[0]}-{case[1]!r}-{case[2]!r}"[:60]


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_operator(case: tuple[str, list[Any], Any, bool]) -> None:
    """Each operator matches exactly the documented values (no coercion, no raising)."""
    op, values, attr_value, expected = case
    assert matches(op, values, attr_value) is expected


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_negated_operator_inverts_a_present_attribute(
    case: tuple[str, list[Any], Any, bool],
) -> None:
    """``negate`` inverts the result whenever the attribute is present."""
    op, values, attr_value, expected = case
    assert matches(op, values, attr_value, negate=True) is (not expected)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_list_attribute_matches_if_any_element_matches(
    case: tuple[str, list[Any], Any, bool],
) -> None:
    """A list attribute matches when any element matches (the slow path agrees with the
    fast path for every case)."""
    op, values, attr_value, expected = case
    assert matches(op, values, [attr_value]) is expected
    assert matches(op, values, ["zz-no-match", attr_value, None]) is expected
    assert matches(op, values, (attr_value,)) is expected


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_subclass_values_behave_like_their_base_type(
    case: tuple[str, list[Any], Any, bool],
) -> None:
    """``str``/``int``/``float`` subclasses (SafeString, IntEnum, ...) match like their base."""
    op, values, attr_value, expected = case
    if type(attr_value) is str:
        wrapped: Any = StrSub(attr_value)
    elif type(attr_value) is int:
        wrapped = IntSub(attr_value)
    elif type(attr_value) is float:
        wrapped = FloatSub(attr_value)
    else:
        return
    assert matches(op, values, wrapped) is expected


@pytest.mark.parametrize(
    "op", ["in", "contains", "startsWith", "matches", "lt", "before", "semverEq"]
)
def test_missing_attribute_never_matches_even_negated(op: str) -> None:
    """An absent (or null) attribute fails the clause, negated or not."""
    value: Any = {
        "in": "x",
        "contains": "x",
        "startsWith": "x",
        "matches": "x",
        "lt": 1,
        "before": "2025-01-01",
        "semverEq": "1.0.0",
    }[op]
    assert matches(op, [value], None) is False
    assert matches(op, [value], None, negate=True) is False


def test_empty_list_attribute_matches_nothing_and_negation_matches() -> None:
    """An empty list is present but has no matching element."""
    assert matches("in", ["a"], []) is False
    assert matches("in", ["a"], [], negate=True) is True


def test_exists_operator() -> None:
    """``exists`` is true for any non-null value (even "" or false); negated, for absence."""
    assert matches("exists", [], "x") is True
    assert matches("exists", [], "") is True
    assert matches("exists", [], False) is True
    assert matches("exists", [], 0) is True
    assert matches("exists", [], None) is False
    assert matches("exists", [], None, negate=True) is True
    assert matches("exists", [], "x", negate=True) is False
    model = one_clause_flag({"attribute": "email", "op": "exists"})  # values optional
    assert (
        evaluate(model, EvaluationContext(email="a@b.c"), flags={}, segments={}).reason
        is EvaluationReason.RULE_MATCH
    )
    assert (
        evaluate(model, EvaluationContext(), flags={}, segments={}).reason
        is EvaluationReason.FALLTHROUGH
    )


BUILTIN_CONTEXTS = [
    ("userId", EvaluationContext(user_id="v")),
    ("userKey", EvaluationContext(user_key="v")),
    ("key", EvaluationContext(user_key="v")),
    ("email", EvaluationContext(email="v")),
    ("name", EvaluationContext(name="v")),
    ("country", EvaluationContext(country="v")),
    ("ip", EvaluationContext(ip="v")),
    ("userAgent", EvaluationContext(user_agent="v")),
    ("custom.plan", EvaluationContext(custom={"plan": "v"})),
    ("plan", EvaluationContext(custom={"plan": "v"})),
    ("custom.email", EvaluationContext(custom={"email": "v"})),
    ("custom.a.b", EvaluationContext(custom={"a.b": "v"})),
]


@pytest.mark.parametrize(
    ("attribute", "ctx"), BUILTIN_CONTEXTS, ids=[a for a, _ in BUILTIN_CONTEXTS]
)
def test_attribute_names_read_the_documented_field(attribute: str, ctx: EvaluationContext) -> None:
    """Each attribute name reads its context field; bare unknown names are custom keys."""
    model = one_clause_flag({"attribute": attribute, "op": "in", "values": ["v"]})
    assert evaluate(model, ctx, flags={}, segments={}).reason is EvaluationReason.RULE_MATCH
    other = EvaluationContext(
        user_id="w",
        user_key="w",
        email="w",
        name="w",
        country="w",
        ip="w",
        user_agent="w",
        custom={"plan": "w", "email": "w", "a.b": "w"},
    )
    assert evaluate(model, other, flags={}, segments={}).reason is EvaluationReason.FALLTHROUGH


def test_builtin_email_is_not_the_custom_email() -> None:
    """``email`` is the context field; a custom ``email`` key needs ``custom.email``."""
    model = one_clause_flag({"attribute": "email", "op": "in", "values": ["v"]})
    ctx = EvaluationContext(custom={"email": "v"})
    assert evaluate(model, ctx, flags={}, segments={}).reason is EvaluationReason.FALLTHROUGH


def test_private_attributes_are_still_used_for_evaluation() -> None:
    """Private attributes never leave the process but do take part in local evaluation."""
    model = one_clause_flag({"attribute": "email", "op": "endsWith", "values": ["@corp.io"]})
    ctx = EvaluationContext(email="a@corp.io", private_attributes=["email"])
    assert evaluate(model, ctx, flags={}, segments={}).reason is EvaluationReason.RULE_MATCH


def test_anonymous_attribute_defaults_to_having_no_user_id() -> None:
    """``anonymous`` is the context's flag when set, else true exactly when there is no
    user id (so a missing context counts as anonymous)."""
    model = one_clause_flag({"attribute": "anonymous", "op": "equals", "values": [True]})

    def reason(ctx: EvaluationContext | None) -> EvaluationReason:
        return evaluate(model, ctx, flags={}, segments={}).reason

    assert reason(EvaluationContext(user_key="k")) is EvaluationReason.RULE_MATCH
    assert reason(None) is EvaluationReason.RULE_MATCH
    assert reason(EvaluationContext(user_id="u")) is EvaluationReason.FALLTHROUGH
    assert reason(EvaluationContext(user_id="u", anonymous=True)) is EvaluationReason.RULE_MATCH
    assert reason(EvaluationContext(anonymous=False)) is EvaluationReason.FALLTHROUGH


def test_matches_bounds_the_input_length() -> None:
    """``matches`` never matches strings longer than the documented bound."""
    assert matches("matches", ["a"], "a" * MAX_MATCH_INPUT_LENGTH) is True
    assert matches("matches", ["a"], "a" * (MAX_MATCH_INPUT_LENGTH + 1)) is False


def test_clause_with_several_conditions_needs_all() -> None:
    """Clauses of one rule are ANDed; values within a clause are ORed."""
    state = FlagState.from_dict(
        {
            "key": "f",
            "value": False,
            "enabled": True,
            "version": 1,
            "variations": [{"id": "on", "value": True}],
            "rules": [
                {
                    "id": "r",
                    "clauses": [
                        {"attribute": "country", "op": "in", "values": ["NL", "BE"]},
                        {"attribute": "plan", "op": "in", "values": ["pro"]},
                        {"attribute": "seats", "op": "gte", "values": [10]},
                    ],
                    "variation": "on",
                }
            ],
        }
    )
    model = compile_flag(state)

    def reason(**custom: Any) -> EvaluationReason:
        ctx = EvaluationContext(country=custom.pop("country", None), custom=custom)
        return evaluate(model, ctx, flags={}, segments={}).reason

    assert reason(country="BE", plan="pro", seats=10) is EvaluationReason.RULE_MATCH
    assert reason(country="DE", plan="pro", seats=10) is EvaluationReason.FALLTHROUGH
    assert reason(country="NL", plan="free", seats=10) is EvaluationReason.FALLTHROUGH
    assert reason(country="NL", plan="pro", seats=9) is EvaluationReason.FALLTHROUGH


# ---------------------------------------------------------------------------------------
# Bad clause values are rejected when compiling
# ---------------------------------------------------------------------------------------

BAD_CLAUSES: list[tuple[dict[str, Any], str]] = [
    ({"attribute": "a", "op": "near", "values": [1]}, "rules[0].clauses[0].op: unknown operator"),
    ({"attribute": "a", "op": 5, "values": [1]}, "rules[0].clauses[0].op: unknown operator"),
    ({"attribute": "a", "op": "matches", "values": ["("]}, "values[0]: invalid regular expression"),
    ({"attribute": "a", "op": "matches", "values": ["a" * 501]}, "longer than 500"),
    ({"attribute": "a", "op": "matches", "values": [5]}, "values[0]: must be a string"),
    ({"attribute": "a", "op": "lt", "values": ["5"]}, "values[0]: must be a number"),
    ({"attribute": "a", "op": "lt", "values": [True]}, "values[0]: must be a number"),
    ({"attribute": "a", "op": "lt", "values": [math.inf]}, "must be finite"),
    ({"attribute": "a", "op": "before", "values": ["yesterday"]}, "invalid date"),
    ({"attribute": "a", "op": "before", "values": ["2024-13-01"]}, "invalid date"),
    ({"attribute": "a", "op": "after", "values": [None]}, "ISO-8601"),
    ({"attribute": "a", "op": "semverLt", "values": ["1.x"]}, "invalid semantic version"),
    ({"attribute": "a", "op": "semverLt", "values": [1]}, "must be a version string"),
    ({"attribute": "a", "op": "in", "values": [None]}, "exists"),
    ({"attribute": "a", "op": "in", "values": [[1]]}, "must be a string, number or boolean"),
    ({"attribute": "a", "op": "in", "values": [math.nan]}, "must be finite"),
    ({"attribute": "a", "op": "in", "values": []}, "values: must not be empty"),
    ({"attribute": "a", "op": "in", "values": "NL"}, "values: must be an array"),
    ({"attribute": "a", "op": "in"}, "values: must be an array"),
    ({"attribute": "", "op": "in", "values": ["x"]}, "attribute: must be a non-empty string"),
    ({"attribute": "custom.", "op": "in", "values": ["x"]}, "custom attribute name is empty"),
    ({"op": "in", "values": ["x"]}, "attribute: must be a non-empty string"),
    ({"attribute": "a", "op": "in", "values": ["x"], "negate": "yes"}, "negate: must be a boolean"),
    ({"attribute": "a", "op": "contains", "values": [1]}, "values[0]: must be a string"),
    ({"attribute": "a", "op": "segmentMatch", "values": [""]}, "non-empty segment key"),
    ("not an object", "rules[0].clauses[0]: must be an object"),  # type: ignore[list-item]
]


@pytest.mark.parametrize(("clause", "message"), BAD_CLAUSES, ids=[m for _, m in BAD_CLAUSES])
def test_bad_clause_is_a_compile_error_with_its_path(clause: dict[str, Any], message: str) -> None:
    """A malformed clause gives a model error naming the field; nothing raises."""
    assert message in compile_error(clause)


def test_date_and_semver_parsers_are_exact() -> None:
    """The hand-written parsers give the documented instants and orderings."""
    assert parse_iso_datetime("1970-01-01T00:00:00Z") == 0
    assert parse_iso_datetime("1970-01-01") == 0
    assert parse_iso_datetime("1970-01-01T01:00:00+01:00") == 0
    assert parse_iso_datetime("1970-01-01T00:00:00.0000019Z") == 1
    assert parse_iso_datetime("1970-01-01t00:00:01") == 1_000_000
    assert parse_iso_datetime("1970-01-01T00:00:00+2400") is None
    assert parse_iso_datetime("x" * 100) is None
    ordered = [
        "1.0.0-alpha",
        "1.0.0-alpha.1",
        "1.0.0-alpha.beta",
        "1.0.0-beta",
        "1.0.0-beta.2",
        "1.0.0-beta.11",
        "1.0.0-rc.1",
        "1.0.0",
        "1.0.1",
        "1.1.0",
        "2.0.0",
    ]
    keys = [parse_semver(v) for v in ordered]
    assert all(k is not None for k in keys)
    assert keys == sorted(keys)  # type: ignore[type-var]
    assert parse_semver("1.0.0+a") == parse_semver("1.0.0+b") == parse_semver("v1")
