"""Flags files: parsing, validation errors with path/line/reason, watching and reloading."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from flagkit.server import FlagKitServer, FlagsFileError, load_flags_file, parse_flags_document
from tests.support import wait_until

GOOD = """{
  "environment": "staging",
  "environmentId": "env_42",
  "projectId": "proj_42",
  "organizationId": "org_42",
  "pollingIntervalSeconds": 60,
  "metadata": {"sdkVersionLatest": "9.9.9"},
  "apiKeys": ["sdk_file_key_000001"],
  "flags": [
    {"key": "on", "value": true},
    {"key": "text", "flagType": "string", "value": "hi", "enabled": false},
    {"key": "n", "value": 2.5, "version": 99, "lastModified": "x"},
    {"key": "j", "flagType": "json", "value": null, "description": "untargeted",
     "variations": [{"id": "none", "value": null}], "fallthrough": {"variation": "none"}}
  ],
  "segments": [{"key": "seg", "included": ["a"]}]
}
"""


def test_parse_valid_document_normalizes_flags() -> None:
    """Types are inferred, enabled defaults to true, server-managed fields are dropped."""
    doc = parse_flags_document(GOOD, "flags.json")
    assert [f["key"] for f in doc.flags] == ["on", "text", "n", "j"]
    assert doc.flags[0] == {"key": "on", "value": True, "enabled": True, "flagType": "boolean"}
    assert doc.flags[2] == {"key": "n", "value": 2.5, "enabled": True, "flagType": "number"}
    assert doc.flags[3]["fallthrough"] == {"variation": "none"}
    assert doc.flags[3]["description"] == "untargeted"
    assert doc.segments == ({"key": "seg", "included": ["a"]},)
    assert doc.api_keys == ("sdk_file_key_000001",)
    env = doc.environment
    assert (env.name, env.id, env.project_id, env.organization_id) == (
        "staging",
        "env_42",
        "proj_42",
        "org_42",
    )
    assert env.polling_interval_seconds == 60
    assert env.metadata == {"sdkVersionLatest": "9.9.9"}


def test_parse_yaml_document() -> None:
    """YAML files (PyYAML installed) give the same document as JSON."""
    text = (
        "apiKeys: [sdk_file_key_000001]\n"
        "flags:\n  - key: dark-mode\n    value: true\n  - key: s\n    value: hi\n"
    )
    doc = parse_flags_document(text, "flags.yaml")
    assert [(f["key"], f["flagType"]) for f in doc.flags] == [
        ("dark-mode", "boolean"),
        ("s", "string"),
    ]


def test_bare_list_is_a_list_of_flags() -> None:
    """A top-level array is accepted as the list of flags."""
    doc = parse_flags_document('[{"key": "a", "value": 1}]', "f.json")
    assert doc.flags[0]["flagType"] == "number"


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        ('{\n  "flags": [\n    {"key": "a", "value": tru}\n  ]\n}', 3, None, "invalid JSON"),
        (
            (
                '{\n  "flags": [\n    {"key": "a", "value": 1},\n'
                '    {"key": "b",\n     "flagType": "boolean",\n     "value": "yes"}\n  ]\n}'
            ),
            6,
            "flags[1].value",
            "must be a boolean",
        ),
        (
            '{"flags": [\n{"key": "a", "value": 1},\n{"key": "a", "value": 2}]}',
            3,
            "flags[1].key",
            "duplicate flag key",
        ),
        (
            '{"flags": [\n{"key": "a", "value": 1, "enabled": "no"}]}',
            2,
            "flags[0].enabled",
            "boolean",
        ),
        (
            '{"flags": [\n{"key": "a", "flagType": "bool", "value": true}]}',
            2,
            "flags[0].flagType",
            "one of",
        ),
        ('{"flags": [\n{"value": 1}]}', 2, "flags[0].key", "non-empty string"),
        ('{"flags": [\n{"key": "a"}]}', 2, "flags[0].value", "required"),
        ('{\n"apiKeys": ["nope_123456789"]}', 2, "apiKeys[0]", "sdk_"),
        ('{\n"pollingIntervalSeconds": "30"}', 2, "pollingIntervalSeconds", "integer"),
        ('{\n"flags": {"a": 1}}', 2, "flags", "array"),
        ('{\n"segments": [{"included": []}]}', 2, "segments[0].key", "non-empty"),
        ("   ", None, None, "empty"),
        ('"just a string"', 1, "(document)", "must be an object"),
    ],
)
def test_invalid_documents_report_path_line_and_reason(
    text: str, line: int | None, field: str | None, reason: str
) -> None:
    """Each problem is reported with the file path, the line, the field and the reason."""
    with pytest.raises(FlagsFileError) as info:
        parse_flags_document(text, "conf/flags.json")
    error = info.value
    assert error.path == "conf/flags.json"
    assert error.line == line
    assert error.field == field
    assert reason in error.reason
    assert str(error).startswith("conf/flags.json" + (f":{line}" if line else ""))


def test_yaml_errors_have_lines() -> None:
    """YAML syntax and validation errors carry the line too."""
    with pytest.raises(FlagsFileError) as syntax:
        parse_flags_document("flags:\n  - key: a\n    value: [1, 2\n", "f.yml")
    assert syntax.value.line is not None and "invalid YAML" in syntax.value.reason
    with pytest.raises(FlagsFileError) as invalid:
        parse_flags_document("flags:\n  - key: a\n    value: 1\n    enabled: maybe\n", "f.yml")
    assert (invalid.value.line, invalid.value.field) == (4, "flags[0].enabled")


def test_non_json_values_from_yaml_are_rejected() -> None:
    """A YAML date is not a JSON value and is rejected with its field."""
    with pytest.raises(FlagsFileError) as info:
        parse_flags_document("flags:\n  - key: a\n    value: 2024-01-01\n", "f.yaml")
    assert info.value.field == "flags[0].value" and "JSON" in info.value.reason


def test_load_flags_file_errors(tmp_path: Path) -> None:
    """Unreadable and non-UTF-8 files raise FlagsFileError naming the file."""
    with pytest.raises(FlagsFileError, match="cannot read"):
        load_flags_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"flags": [\n\xff]}')
    with pytest.raises(FlagsFileError) as info:
        load_flags_file(bad)
    assert info.value.line == 2 and "UTF-8" in info.value.reason


def test_server_serves_file_environment_and_keys(tmp_path: Path) -> None:
    """The file's keys are accepted and its environment fields are served."""
    path = tmp_path / "flags.json"
    path.write_text(GOOD)
    with FlagKitServer(flags_file=path) as srv:
        assert srv.api_keys == ("sdk_file_key_000001",)
        body = httpx.get(
            srv.base_url + "/sdk/init", headers={"X-API-Key": "sdk_file_key_000001"}
        ).json()
    assert body["environmentId"] == "env_42" and body["pollingIntervalSeconds"] == 60
    assert body["metadata"] == {"sdkVersionLatest": "9.9.9"}
    assert {f["key"]: f["version"] for f in body["flags"]} == {"on": 1, "text": 1, "n": 1, "j": 1}


def test_bad_file_at_construction_raises(tmp_path: Path) -> None:
    """A broken file given at construction raises at once."""
    path = tmp_path / "flags.json"
    path.write_text('{"flags": [{"key": "a", "value": 1, "flagType": "string"}]}')
    with pytest.raises(FlagsFileError, match=r"flags\[0\]\.value"):
        FlagKitServer(flags_file=path)


def write_flags(path: Path, **values: object) -> None:
    """Write a flags file with one flag per keyword argument."""
    path.write_text(json.dumps({"flags": [{"key": k, "value": v} for k, v in values.items()]}))


def test_file_edit_bumps_version_and_shows_in_updates(tmp_path: Path) -> None:
    """An edit bumps only the changed flag's version and lastModified, visible via updates."""
    path = tmp_path / "flags.json"
    write_flags(path, a=1, b=2)
    with FlagKitServer(flags_file=path, watch_interval=0.05) as srv:
        headers = {"X-API-Key": srv.api_key}
        init = httpx.get(srv.base_url + "/sdk/init", headers=headers).json()
        write_flags(path, a=1, b=5)
        wait_until(lambda: srv.get_flag("b")["value"] == 5)  # type: ignore[index]
        updates = httpx.get(
            srv.base_url + "/sdk/updates", params={"since": init["serverTime"]}, headers=headers
        ).json()
        assert [(f["key"], f["value"], f["version"]) for f in updates["flags"]] == [("b", 5, 2)]
        assert updates["flags"][0]["lastModified"] > init["serverTime"]
        assert srv.get_flag("a")["version"] == 1  # type: ignore[index]


def test_broken_file_keeps_last_good_flags(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A reload that fails is logged with path, line and reason; the old flags stay served."""
    path = tmp_path / "flags.json"
    write_flags(path, a=1)
    with FlagKitServer(flags_file=path, watch_interval=0.05) as srv:
        with caplog.at_level(logging.ERROR, logger="flagkit.server"):
            path.write_text('{"flags": [\n  {"key": "a", "value": 2,}\n]}')
            wait_until(lambda: srv.last_reload_error is not None)
        error = srv.last_reload_error
        assert error is not None and error.path == str(path) and error.line == 2
        assert any(str(path) + ":2" in r.getMessage() for r in caplog.records)
        body = httpx.get(srv.base_url + "/sdk/init", headers={"X-API-Key": srv.api_key}).json()
        assert [(f["key"], f["value"]) for f in body["flags"]] == [("a", 1)]
        write_flags(path, a=3)
        wait_until(lambda: srv.get_flag("a")["value"] == 3)  # type: ignore[index]
        assert srv.last_reload_error is None


def test_invalid_content_on_reload_keeps_last_good_flags(tmp_path: Path) -> None:
    """Valid JSON with an invalid flag is rejected the same way, naming the field."""
    path = tmp_path / "flags.json"
    write_flags(path, a=1)
    with FlagKitServer(flags_file=path, watch_interval=0.05) as srv:
        path.write_text('{"flags": [{"key": "a", "value": 1, "enabled": "yes"}]}')
        wait_until(lambda: srv.last_reload_error is not None)
        assert srv.last_reload_error is not None
        assert srv.last_reload_error.field == "flags[0].enabled"
        assert srv.get_flag("a")["enabled"] is True  # type: ignore[index]


def test_admin_values_survive_unrelated_file_edits(tmp_path: Path) -> None:
    """A file edit only applies what changed in the file; admin changes elsewhere stay."""
    path = tmp_path / "flags.json"
    write_flags(path, a=1, b=2)
    with FlagKitServer(flags_file=path, watch_interval=0.05) as srv:
        srv.set_flag("a", 100)
        srv.set_flag("extra", "x")
        write_flags(path, a=1, b=3)
        wait_until(lambda: srv.get_flag("b")["value"] == 3)  # type: ignore[index]
        assert srv.get_flag("a")["value"] == 100  # type: ignore[index]
        assert srv.get_flag("extra") is not None


def test_reload_flags_file_applies_now_and_raises_on_errors(tmp_path: Path) -> None:
    """``reload_flags_file`` reloads synchronously and returns the changed keys."""
    path = tmp_path / "flags.json"
    write_flags(path, a=1)
    with FlagKitServer(flags_file=path, watch_interval=60) as srv:
        write_flags(path, a=2, b=True)
        assert sorted(srv.reload_flags_file()) == ["a", "b"]
        assert srv.reload_flags_file() == []
        path.write_text("{")
        with pytest.raises(FlagsFileError):
            srv.reload_flags_file()
        assert srv.get_flag("a")["value"] == 2  # type: ignore[index]


def test_file_api_keys_are_reloaded(tmp_path: Path) -> None:
    """Changing ``apiKeys`` in the file changes which keys are accepted."""
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"apiKeys": ["sdk_old_key_000001"]}))
    with FlagKitServer(flags_file=path, watch_interval=60) as srv:
        path.write_text(json.dumps({"apiKeys": ["sdk_new_key_000001"]}))
        srv.reload_flags_file()
        old = httpx.get(srv.base_url + "/sdk/init", headers={"X-API-Key": "sdk_old_key_000001"})
        new = httpx.get(srv.base_url + "/sdk/init", headers={"X-API-Key": "sdk_new_key_000001"})
    assert (old.status_code, new.status_code) == (401, 200)


def test_yaml_flags_file_is_watched(tmp_path: Path) -> None:
    """A YAML flags file is served and reloaded like a JSON one."""
    path = tmp_path / "flags.yaml"
    path.write_text("flags:\n  - key: a\n    value: 1\n")
    with FlagKitServer(flags_file=path, watch_interval=0.05) as srv:
        path.write_text("flags:\n  - key: a\n    value: 2\n")
        wait_until(lambda: srv.get_flag("a")["value"] == 2)  # type: ignore[index]


def test_example_flags_file_is_valid() -> None:
    """The example project's flags file parses and uses the documented demo key."""
    root = Path(__file__).resolve().parents[2]
    doc = load_flags_file(root / "example_projects" / "flags.json")
    assert "sdk_demo_key_123456" in doc.api_keys
    assert {f["flagType"] for f in doc.flags} == {"boolean", "string", "number", "json"}
