"""Flags-document validation, the documented example and the JSON Schema's alignment."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from flagkit.core.targeting import (
    OPERATORS,
    TARGETING_FIELDS,
    Decision,
    TargetingError,
    compile_flag,
    compile_segment,
    evaluate,
    parse_semver,
    validate_flags_document,
)
from flagkit.core.targeting import parse as targeting_parse
from flagkit.types.flag import EvaluationReason, FlagState
from flagkit.utils.timeparse import parse_iso_datetime
from flagkit.utils.validators import FLAG_KEY_PATTERN, MAX_FLAG_KEY_LENGTH
from tests.support.targeting_examples import DOCS, DOCUMENTED, example_document

R = EvaluationReason


def snapshot(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Compile a document's flags and segments as a client would."""
    flags = {}
    for raw in doc["flags"]:
        state = FlagState.from_dict({"enabled": True, "version": 1, **raw})
        flags[state.key] = compile_flag(state)
    segments = {raw["key"]: compile_segment(raw) for raw in doc.get("segments", [])}
    return flags, segments


def test_documented_example_is_a_valid_flags_file() -> None:
    """The example in docs/targeting.md passes the server's load-time validation."""
    validate_flags_document(example_document())


@pytest.mark.parametrize("row", DOCUMENTED, ids=[f"{r[0]}-{i}" for i, r in enumerate(DOCUMENTED)])
def test_documented_outcomes(row: tuple[Any, ...]) -> None:
    """Each row of the documented outcome tables is what the evaluator returns."""
    key, context, value, reason, variation, rule, segment = row
    flags, segments = snapshot(example_document())
    decision = evaluate(flags[key], context, flags=flags, segments=segments)
    assert decision == Decision(value, reason, variation, rule, segment)


# ---------------------------------------------------------------------------------------
# validate_flags_document: paths of offending fields
# ---------------------------------------------------------------------------------------


def doc_with(
    flags: list[dict[str, Any]], segments: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A document around ``flags`` (boolean on/off variations added when missing)."""
    out = []
    for raw in flags:
        full = {"value": False, "flagType": "boolean", **raw}
        if any(
            k in raw for k in ("rules", "targets", "fallthrough", "offVariation", "prerequisites")
        ):
            full.setdefault(
                "variations", [{"id": "on", "value": True}, {"id": "off", "value": False}]
            )
        out.append(full)
    return {"environment": "test", "flags": out, "segments": segments or []}


def error_of(doc: dict[str, Any]) -> TargetingError:
    """The TargetingError raised for ``doc``."""
    with pytest.raises(TargetingError) as info:
        validate_flags_document(doc)
    return info.value


def rule(clause: dict[str, Any]) -> dict[str, Any]:
    """A rule with one clause serving 'on'."""
    return {"id": "r", "clauses": [clause], "variation": "on"}


BAD_DOCUMENTS: list[tuple[dict[str, Any], str, str]] = [
    (
        doc_with(
            [
                {"key": "a"},
                {
                    "key": "b",
                    "rules": [
                        {
                            "id": "r",
                            "clauses": [
                                {"attribute": "x", "op": "in", "values": ["1"]},
                                {"attribute": "y", "op": "near", "values": [1]},
                            ],
                            "variation": "on",
                        }
                    ],
                },
            ]
        ),
        "flags[1].rules[0].clauses[1].op",
        "unknown operator 'near'",
    ),
    (
        doc_with(
            [{"key": "a", "rules": [rule({"attribute": "x", "op": "matches", "values": ["[a-"]})]}]
        ),
        "flags[0].rules[0].clauses[0].values[0]",
        "invalid regular expression",
    ),
    (
        doc_with(
            [
                {
                    "key": "a",
                    "rules": [
                        rule({"attribute": "x", "op": "in", "values": ["1"], "negated": True})
                    ],
                }
            ]
        ),
        "flags[0].rules[0].clauses[0].negated",
        "unknown field",
    ),
    (
        doc_with([{"key": "a", "fallthrough": {"variation": "on", "weight": 1}}]),
        "flags[0].fallthrough.weight",
        "unknown field",
    ),
    (
        doc_with([{"key": "a", "fallthrough": {"variation": "maybe"}}]),
        "flags[0].fallthrough.variation",
        "unknown variation 'maybe'",
    ),
    (
        doc_with(
            [
                {
                    "key": "a",
                    "fallthrough": {
                        "rollout": {
                            "variations": [
                                {"variation": "on", "weight": 30000},
                                {"variation": "off", "weight": 60000},
                            ]
                        }
                    },
                }
            ]
        ),
        "flags[0].fallthrough.rollout.variations",
        "weights must sum to 100000, got 90000",
    ),
    (
        doc_with(
            [
                {
                    "key": "a",
                    "variations": [{"id": "on", "value": "yes"}],
                    "fallthrough": {"variation": "on"},
                }
            ]
        ),
        "flags[0].variations[0].value",
        "must be a boolean value",
    ),
    (
        doc_with([{"key": "a", "rules": [{"id": "r", "segments": ["nope"], "variation": "on"}]}]),
        "flags[0].rules[0].segments[0]",
        "unknown segment 'nope'",
    ),
    (
        doc_with(
            [{"key": "a", "rules": [rule({"op": "segmentMatch", "values": ["s", "nope"]})]}],
            [{"key": "s"}],
        ),
        "flags[0].rules[0].clauses[0].values[1]",
        "unknown segment 'nope'",
    ),
    (
        doc_with([{"key": "a", "prerequisites": [{"key": "ghost", "variation": "on"}]}]),
        "flags[0].prerequisites[0].key",
        "unknown flag 'ghost'",
    ),
    (
        doc_with(
            [
                {"key": "a", "prerequisites": [{"key": "b", "variation": "maybe"}]},
                {"key": "b", "fallthrough": {"variation": "on"}},
            ]
        ),
        "flags[0].prerequisites[0].variation",
        "flag 'b' has no variation 'maybe'",
    ),
    (
        doc_with([{"key": "a", "prerequisites": [{"key": "b", "variation": "on"}]}, {"key": "b"}]),
        "flags[0].prerequisites[0].variation",
        "it has no variations",
    ),
    (
        doc_with(
            [
                {"key": "a", "prerequisites": [{"key": "b", "variation": "on"}]},
                {"key": "b", "prerequisites": [{"key": "c", "variation": "on"}]},
                {
                    "key": "c",
                    "prerequisites": [
                        {"key": "d", "variation": "on"},
                        {"key": "a", "variation": "on"},
                    ],
                },
                {"key": "d", "fallthrough": {"variation": "on"}},
            ]
        ),
        "flags[2].prerequisites[1].key",
        "prerequisite cycle: a -> b -> c -> a",
    ),
    (
        doc_with([{"key": "a", "prerequisites": [{"key": "a", "variation": "on"}]}]),
        "flags[0].prerequisites[0].key",
        "prerequisite cycle: a -> a",
    ),
    (
        doc_with([{"key": "a"}, {"key": "a"}]),
        "flags[1].key",
        "duplicate flag key 'a'",
    ),
    (
        doc_with([], [{"key": "s"}, {"key": "s"}]),
        "segments[1].key",
        "duplicate segment key 's'",
    ),
    (
        doc_with(
            [],
            [
                {
                    "key": "s",
                    "rules": [{"clauses": [{"attribute": "x", "op": "lt", "values": ["ten"]}]}],
                }
            ],
        ),
        "segments[0].rules[0].clauses[0].values[0]",
        "must be a number",
    ),
    (
        doc_with([], [{"key": "s", "members": ["u"]}]),
        "segments[0].members",
        "unknown field",
    ),
    (
        doc_with(
            [
                {
                    "key": "a",
                    "rules": [
                        {
                            "id": "r",
                            "clauses": [{"attribute": "x", "op": "exists"}],
                            "variation": "on",
                        },
                        {
                            "id": "r",
                            "clauses": [{"attribute": "x", "op": "exists"}],
                            "variation": "off",
                        },
                    ],
                }
            ]
        ),
        "flags[0].rules[1].id",
        "duplicate rule id 'r'",
    ),
    ({"flags": {"a": 1}}, "flags", "must be an array"),
    ({"segments": "s"}, "segments", "must be an array"),
    ({"flags": ["x"]}, "flags[0]", "must be an object"),
    ({"flags": [{"value": 1}]}, "flags[0].key", "must be a non-empty string"),
]


@pytest.mark.parametrize(
    ("doc", "path", "reason"), BAD_DOCUMENTS, ids=[p for _, p, _ in BAD_DOCUMENTS]
)
def test_invalid_documents_are_rejected_with_the_field_path(
    doc: dict[str, Any], path: str, reason: str
) -> None:
    """validate_flags_document raises TargetingError whose path names the bad field."""
    error = error_of(doc)
    assert error.path == path
    assert reason in error.reason
    assert str(error).startswith(f"{path}: ")
    assert isinstance(error, ValueError)


def test_strict_document_check_vs_lenient_client() -> None:
    """An unknown field inside a rule fails the file check but not the client's compile."""
    raw = {
        "key": "a",
        "value": False,
        "enabled": True,
        "version": 1,
        "variations": [{"id": "on", "value": True}],
        "rules": [
            {
                "id": "r",
                "clauses": [{"attribute": "x", "op": "exists"}],
                "variation": "on",
                "trackEvents": True,
            }
        ],
    }
    assert error_of({"flags": [raw]}).path == "flags[0].rules[0].trackEvents"
    assert compile_flag(FlagState.from_dict(raw)).error is None


def test_valid_documents_pass() -> None:
    """Documents with only simple flags, or no flags at all, or every feature, pass."""
    validate_flags_document({})
    validate_flags_document({"flags": None, "segments": None, "apiKeys": ["whatever"]})
    validate_flags_document(
        doc_with([{"key": "a", "value": 1, "flagType": "number"}, {"key": "b"}])
    )
    everything = copy.deepcopy(example_document())
    everything["flags"].append(
        {
            "key": "diamond",
            "value": False,
            "variations": [{"id": "on", "value": True}],
            "prerequisites": [
                {"key": "new-checkout", "variation": "on"},
                {"key": "checkout-api", "variation": "v2"},
            ],
            "fallthrough": {"variation": "on"},
        }
    )
    validate_flags_document(everything)


SINGLE_FLAG_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"rules": [rule({"attribute": "x", "op": "near", "values": [1]})]}, "rules[0].clauses[0].op"),
    (
        {"rules": [rule({"attribute": "x", "op": "matches", "values": ["("]})]},
        "rules[0].clauses[0].values[0]",
    ),
    (
        {"rules": [rule({"attribute": "x", "op": "after", "values": ["soon"]})]},
        "rules[0].clauses[0].values[0]",
    ),
    ({"fallthrough": {"variation": "maybe"}}, "fallthrough.variation"),
    ({"targets": [{"variation": "on", "values": [7]}]}, "targets[0].values[0]"),
    ({"offVariation": "gone"}, "offVariation"),
    ({"prerequisites": [{"key": "a", "variation": "on"}]}, "prerequisites[0].key"),
    (
        {"fallthrough": {"rollout": {"variations": [{"variation": "on", "weight": 1}]}}},
        "fallthrough.rollout.variations",
    ),
]


@pytest.mark.parametrize(
    ("fields", "path"), SINGLE_FLAG_ERRORS, ids=[p for _, p in SINGLE_FLAG_ERRORS]
)
def test_the_client_refuses_what_the_server_refuses(fields: dict[str, Any], path: str) -> None:
    """A flag the file check rejects at ``flags[0].<path>`` gets ``error`` starting with
    ``<path>`` from compile_flag, so a client never evaluates it."""
    doc = doc_with([{"key": "a", **fields}])
    assert error_of(doc).path == f"flags[0].{path}"
    raw = {"enabled": True, "version": 1, **doc["flags"][0]}
    model = compile_flag(FlagState.from_dict(raw))
    assert (model.error or "").startswith(f"{path}: ")


# ---------------------------------------------------------------------------------------
# The JSON Schema stays aligned with the parser
# ---------------------------------------------------------------------------------------


def schema() -> dict[str, Any]:
    """docs/flags.schema.json."""
    loaded: dict[str, Any] = json.loads((DOCS / "flags.schema.json").read_text("utf-8"))
    return loaded


def test_schema_lists_exactly_the_operators() -> None:
    """The schema's clause ``op`` enum is the implementation's operator list."""
    assert schema()["$defs"]["clause"]["properties"]["op"]["enum"] == list(OPERATORS)


@pytest.mark.parametrize(
    ("definition", "fields"),
    [
        ("variation", targeting_parse.VARIATION_FIELDS),
        ("target", targeting_parse.TARGET_FIELDS),
        ("rule", targeting_parse.RULE_FIELDS),
        ("segmentRule", targeting_parse.SEGMENT_RULE_FIELDS),
        ("clause", targeting_parse.CLAUSE_FIELDS),
        ("serve", targeting_parse.SERVE_FIELDS),
        ("rollout", targeting_parse.ROLLOUT_FIELDS),
        ("prerequisite", targeting_parse.PREREQUISITE_FIELDS),
        ("segment", targeting_parse.SEGMENT_FIELDS),
    ],
)
def test_schema_objects_allow_the_fields_the_strict_parser_allows(
    definition: str, fields: frozenset[str]
) -> None:
    """Each strict targeting object in the schema has exactly the parser's fields and
    forbids others, like validate_flags_document."""
    node = schema()["$defs"][definition]
    assert set(node["properties"]) == set(fields)
    assert node["additionalProperties"] is False


def test_schema_flag_lists_every_targeting_field_and_stays_open() -> None:
    """The flag definition documents every targeting field and keeps other fields."""
    flag = schema()["$defs"]["flag"]
    assert set(TARGETING_FIELDS) | {"salt"} <= set(flag["properties"])
    assert flag["additionalProperties"] is True
    assert schema()["$defs"]["document"]["additionalProperties"] is True


def test_schema_flag_keys_follow_the_validators_rule() -> None:
    """Flags and prerequisites use the ``flagKey`` definition, which is
    FLAG_KEY_PATTERN with MAX_FLAG_KEY_LENGTH."""
    defs = schema()["$defs"]
    assert defs["flagKey"]["pattern"] == FLAG_KEY_PATTERN.pattern
    assert defs["flagKey"]["maxLength"] == MAX_FLAG_KEY_LENGTH
    assert defs["flag"]["properties"]["key"] == {"$ref": "#/$defs/flagKey"}
    assert defs["prerequisite"]["properties"]["key"] == {"$ref": "#/$defs/flagKey"}
    pattern = re.compile(defs["flagKey"]["pattern"])
    for key in ["new-checkout", "A_b-9", "x", "a b", "a/b", "é", ""]:
        assert bool(pattern.search(key)) == bool(FLAG_KEY_PATTERN.match(key)), key


def test_schema_patterns_agree_with_the_parsers() -> None:
    """The schema's date and semver patterns accept what the parsers accept."""
    clause_rules = schema()["$defs"]["clause"]["allOf"]
    patterns = [json.dumps(r) for r in clause_rules]
    date_rule = next(json.loads(p) for p in patterns if "before" in p)
    semver_rule = next(json.loads(p) for p in patterns if "semverEq" in p)
    date_re = re.compile(date_rule["then"]["properties"]["values"]["items"]["oneOf"][0]["pattern"])
    semver_re = re.compile(semver_rule["then"]["properties"]["values"]["items"]["pattern"])
    for text in [
        "2025-01-01",
        "2025-01-01T10:00Z",
        "2025-01-01 10:00:00.123+0100",
        "2025-1-1",
        "x",
    ]:
        assert bool(date_re.search(text)) == (parse_iso_datetime(text) is not None), text
    for text in ["1.2.3", "v2", "1.0.0-rc.1+b", "01.2.3", "1.2.3.4", "x"]:
        assert bool(semver_re.search(text)) == (parse_semver(text) is not None), text
