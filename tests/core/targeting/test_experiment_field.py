"""The ``experiment`` and ``metadata`` flag fields: validated at load with the field's path
(the local server refuses a bad flags file), lenient in the client (docs/targeting.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flagkit.core.targeting import TargetingError, compile_flag, validate_flags_document
from flagkit.server.flags_file import FlagsFileError, load_flags_file
from flagkit.types.flag import FlagState

ROLLOUT = {
    "rollout": {
        "variations": [
            {"variation": "blue", "weight": 50000},
            {"variation": "green", "weight": 50000},
        ]
    }
}


def button(**extra: Any) -> dict[str, Any]:
    return {
        "key": "checkout-button",
        "value": "blue",
        "variations": [{"id": "blue", "value": "blue"}, {"id": "green", "value": "green"}],
        "fallthrough": ROLLOUT,
        **extra,
    }


def problem(flag: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(TargetingError) as info:
        validate_flags_document({"flags": [{"key": "first", "value": True}, flag]})
    return info.value.path, info.value.reason


def test_a_valid_experiment_and_metadata_load() -> None:
    experiment = {
        "control": "blue",
        "metrics": [
            {"event": "purchase"},
            {"event": "purchase", "kind": "numeric", "valueField": "amount"},
            {"event": "signup", "kind": "conversion"},
        ],
    }
    metadata = {"owner": "growth", "ticket": 42, "ratio": 0.5, "temporary": True}
    validate_flags_document({"flags": [button(experiment=experiment, metadata=metadata)]})
    model = compile_flag(
        FlagState.from_dict(button(experiment=experiment, enabled=True, version=1))
    )
    assert model.spec is not None and model.spec.experiment is not None
    assert model.spec.experiment.control == "blue"
    assert [(m.event, m.kind, m.value_field) for m in model.spec.experiment.metrics] == [
        ("purchase", "conversion", None),
        ("purchase", "numeric", "amount"),
        ("signup", "conversion", None),
    ]


@pytest.mark.parametrize(
    ("experiment", "path", "reason"),
    [
        ({}, "flags[1].experiment.control", "must be a non-empty string"),
        ({"control": "red"}, "flags[1].experiment.control", "unknown variation 'red'"),
        ("blue", "flags[1].experiment", "must be an object"),
        ({"control": "blue", "size": 1}, "flags[1].experiment.size", "unknown field"),
        ({"control": "blue", "metrics": {}}, "flags[1].experiment.metrics", "must be an array"),
        (
            {"control": "blue", "metrics": [{"kind": "numeric"}]},
            "flags[1].experiment.metrics[0].event",
            "must be a non-empty string",
        ),
        (
            {"control": "blue", "metrics": [{"event": "buy", "kind": "ratio"}]},
            "flags[1].experiment.metrics[0].kind",
            "must be 'conversion' or 'numeric'",
        ),
        (
            {"control": "blue", "metrics": [{"event": "ok"}, {"event": "buy", "kind": "numeric"}]},
            "flags[1].experiment.metrics[1].valueField",
            "is required for a numeric metric",
        ),
        (
            {"control": "blue", "metrics": [{"event": "$exposure"}]},
            "flags[1].experiment.metrics[0].event",
            "not an event type track() accepts",
        ),
    ],
)
def test_experiment_errors_name_the_field(experiment: Any, path: str, reason: str) -> None:
    got_path, got_reason = problem(button(experiment=experiment))
    assert got_path == path
    assert reason in got_reason


def test_only_flags_with_variations_are_experiments() -> None:
    path, reason = problem({"key": "plain", "value": True, "experiment": {"control": "on"}})
    assert path == "flags[1].experiment"
    assert "only a flag with variations" in reason


@pytest.mark.parametrize(
    ("metadata", "path", "reason"),
    [
        ([1], "flags[1].metadata", "must be an object"),
        ({"tags": ["a"]}, "flags[1].metadata.tags", "a string, a number or a boolean"),
        ({"owner": None}, "flags[1].metadata.owner", "a string, a number or a boolean"),
        ({"x": {"y": 1}}, "flags[1].metadata.x", "a string, a number or a boolean"),
        ({"ratio": float("inf")}, "flags[1].metadata.ratio", "must be a finite number"),
    ],
)
def test_metadata_errors_name_the_field(metadata: Any, path: str, reason: str) -> None:
    for flag in ({"key": "plain", "value": 1, "metadata": metadata}, button(metadata=metadata)):
        got_path, got_reason = problem(flag)
        assert got_path == path
        assert reason in got_reason


def test_the_local_server_refuses_a_bad_experiment(tmp_path: Path) -> None:
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": [button(experiment={"control": "red"})]}))
    with pytest.raises(FlagsFileError) as info:
        load_flags_file(path)
    assert info.value.field == "flags[0].experiment.control"


def test_the_client_ignores_a_bad_experiment_but_keeps_the_targeting() -> None:
    state = FlagState.from_dict(button(experiment={"control": "red"}, enabled=True, version=1))
    model = compile_flag(state)
    assert model.error is None
    assert model.spec is not None and model.spec.experiment is None
