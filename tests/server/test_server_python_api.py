"""The Python API of ``FlagKitServer`` (``flagkit.testing``) and the pytest plugin."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

import flagkit.testing
from flagkit.server import FlagKitServer, InvalidFieldError
from flagkit.server._time import format_micros, parse_timestamp


def test_testing_module_exposes_the_server() -> None:
    """``flagkit.testing.FlagKitServer`` is the server class."""
    assert flagkit.testing.FlagKitServer is FlagKitServer


def test_importing_flagkit_testing_is_cheap() -> None:
    """Importing ``flagkit.testing`` loads neither the server, httpx, Django nor Flask."""
    code = (
        "import sys, flagkit.testing, flagkit.testing.pytest_plugin; "
        "names = ('flagkit.server', 'httpx', 'django', 'flask'); "
        "print(sorted(m for m in names if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_flags_mapping_infers_types() -> None:
    """A ``{key: value}`` mapping becomes full flags with inferred types."""
    with FlagKitServer(
        flags={"b": True, "s": "x", "i": 3, "f": 0.5, "j": {"a": 1}, "l": [1], "n": None}
    ) as srv:
        types = {f["key"]: f["flagType"] for f in srv.flags()}
    assert types == {
        "b": "boolean",
        "s": "string",
        "i": "number",
        "f": "number",
        "j": "json",
        "l": "json",
        "n": "json",
    }


def test_addresses_and_defaults() -> None:
    """base_url/url/port reflect the bound port; the default key is the §18 test key."""
    srv = FlagKitServer()
    assert srv.port == 0 and not srv.running
    with srv:
        assert srv.running and srv.port > 0
        assert srv.url == f"http://127.0.0.1:{srv.port}"
        assert srv.base_url == srv.url + "/api/v1"
        assert srv.api_key == "sdk_test_key_123456"
        assert len(srv.admin_token) >= 16
        assert "sdk_test_key_123456" not in repr(srv)
    assert not srv.running
    with pytest.raises(RuntimeError, match="restarted"):
        srv.start()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 70000}, "port"),
        ({"api_keys": ["bad_key_123456"]}, "sdk_"),
        ({"heartbeat_interval": 0}, "heartbeat_interval"),
        ({"token_ttl": -1}, "token_ttl"),
        ({"admin_token": "has space"}, "admin_token"),
        ({"flags": [{"key": "a"}]}, r"flags\[0\]\.value"),
        ({"flags": [{"key": "a", "value": 1}, {"key": "a", "value": 2}]}, "duplicate"),
        ({"flags": "nope"}, "list of flags"),
        ({"segments": [{"no": "key"}]}, "segments"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"polling_interval_seconds": -1}, "polling_interval_seconds"),
    ],
)
def test_bad_arguments_raise_at_construction(kwargs: dict[str, object], message: str) -> None:
    """Configuration mistakes raise ValueError naming the argument."""
    with pytest.raises(ValueError, match=message):
        FlagKitServer(**kwargs)  # type: ignore[arg-type]


def test_api_key_is_not_in_error_messages() -> None:
    """A rejected key is not echoed in full."""
    with pytest.raises(ValueError) as info:
        FlagKitServer(api_keys=["xyz_secret_value_1234"])
    assert "secret_value" not in str(info.value)


def test_port_in_use_raises_oserror() -> None:
    """Binding a port that is taken raises OSError from ``start``."""
    with FlagKitServer() as first:
        second = FlagKitServer(port=first.port)
        with pytest.raises(OSError):
            second.start()


def test_set_flag_merges_replaces_and_versions(server: FlagKitServer) -> None:
    """set_flag merges fields, re-infers a type that no longer fits, and bumps versions."""
    merged = server.set_flag("config", enabled=False)
    assert merged["value"] == {"theme": "blue", "sizes": [1, 2]}
    assert merged["fallthrough"] == {"variation": "blue"}
    assert merged["version"] == 2 and merged["enabled"] is False
    retyped = server.set_flag("limit", "ten")
    assert retyped["flagType"] == "string"
    explicit = server.set_flag("banner", "x", flag_type="string", version=10)
    assert explicit["version"] == 10
    assert server.set_flag("banner", "y")["version"] == 11
    replaced = server.set_flag("config", {"a": 1}, replace=True)
    assert "fallthrough" not in replaced and replaced["enabled"] is True
    with pytest.raises(InvalidFieldError, match="value"):
        server.set_flag("brand-new")
    with pytest.raises(InvalidFieldError, match="flagType"):
        server.set_flag("dark-mode", flagType="boolean", value="x")


def test_versions_never_go_back(server: FlagKitServer) -> None:
    """Deleting and re-creating a flag continues its version sequence."""
    server.set_flag("limit", 11)
    assert server.delete_flag("limit") is True
    assert server.delete_flag("limit") is False
    assert server.set_flag("limit", 12)["version"] == 3


def test_returned_flags_are_copies(server: FlagKitServer) -> None:
    """Mutating what the API returns does not change the served flags."""
    flag = server.get_flag("config")
    assert flag is not None
    flag["value"]["theme"] = "red"
    server.flags()[0]["value"] = "changed"
    assert server.get_flag("config")["value"]["theme"] == "blue"  # type: ignore[index]
    assert server.get_flag("dark-mode")["value"] is True  # type: ignore[index]


def test_wait_for_events_returns_or_times_out(server: FlagKitServer, http: httpx.Client) -> None:
    """wait_for_events waits for n events (optionally of a type) and raises TimeoutError."""

    def send() -> None:
        http.post("/sdk/events/batch", json={"events": [{"eventType": "a"}, {"eventType": "b"}]})

    thread = threading.Thread(target=send)
    thread.start()
    events = server.wait_for_events(1, timeout=5, event_type="b")
    thread.join()
    assert [e["eventType"] for e in events] == ["b"]
    assert len(server.wait_for_events(2, timeout=1)) == 2
    with pytest.raises(TimeoutError, match=r"expected 3 events.*types received: \['a', 'b'\]"):
        server.wait_for_events(3, timeout=0.05)
    server.clear_events()
    assert server.events() == [] and server.event_stats["total"] == 0


def test_event_memory_is_bounded_but_totals_are_kept() -> None:
    """Only ``max_events`` are kept; the counters still count every event."""
    with FlagKitServer(max_events=3) as srv:
        httpx.post(
            srv.base_url + "/sdk/events/batch",
            json={"events": [{"eventType": "e", "eventId": str(i)} for i in range(5)]},
            headers={"X-API-Key": srv.api_key},
        )
        assert [e["eventId"] for e in srv.events()] == ["2", "3", "4"]
        assert srv.event_stats["total"] == 5


def test_events_log_appends_jsonl(tmp_path: Path) -> None:
    """With ``events_log`` every recorded event is appended as one JSON line (not duplicates)."""
    log = tmp_path / "events.jsonl"
    with FlagKitServer(events_log=log) as srv:
        for _ in range(2):
            httpx.post(
                srv.base_url + "/sdk/events/batch",
                json={"events": [{"eventType": "café", "eventId": "1"}]},
                headers={"X-API-Key": srv.api_key},
            )
    lines = log.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [{"eventType": "café", "eventId": "1"}]


def test_wait_for_requests(server: FlagKitServer, http: httpx.Client) -> None:
    """wait_for_requests returns matching requests or raises TimeoutError."""
    http.get("/sdk/init")
    assert len(server.wait_for_requests("init", 1, timeout=1)) == 1
    with pytest.raises(TimeoutError, match="updates"):
        server.wait_for_requests("updates", 1, timeout=0.05)
    server.clear_requests()
    assert server.requests == []


def test_request_log_is_bounded() -> None:
    """The request log keeps at most ``max_requests`` entries."""
    with FlagKitServer(max_requests=2) as srv:
        with httpx.Client(headers={"X-API-Key": srv.api_key}) as client:
            for _ in range(4):
                client.get(srv.base_url + "/sdk/init")
        assert len(srv.requests) == 2


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1970-01-01T00:00:01Z", 1_000_000),
        ("1970-01-01T00:00:01.5Z", 1_500_000),
        ("1970-01-01T00:00:01.123456789Z", 1_123_456),
        ("1970-01-01T00:00:01+00:00", 1_000_000),
        ("1970-01-01T00:00:01 00:00", 1_000_000),
        ("1970-01-01T02:00:01+02:00", 1_000_000),
        ("1970-01-01T02:00:01 0200", 1_000_000),
        ("1969-12-31T23:00:01-01:00", 1_000_000),
        ("1970-01-01 00:00:01", 1_000_000),
        ("1970-01-02", 86_400_000_000),
        ("1000", 1_000_000_000),
        ("1700000000000", 1_700_000_000_000_000),
        ("", None),
        ("yesterday", None),
        ("2025-02-30T00:00:00Z", None),
        ("2025-01-01T00:00:00+25:00", None),
    ],
)
def test_parse_timestamp_is_lenient(raw: str, expected: int | None) -> None:
    """Cursor parsing accepts the forms of §17.4/§20.2 and rejects nonsense."""
    assert parse_timestamp(raw) == expected


def test_format_micros_round_trips() -> None:
    """Formatted times end in Z with six fraction digits and parse back exactly."""
    text = format_micros(1_700_000_000_123_456)
    assert text == "2023-11-14T22:13:20.123456Z"
    assert parse_timestamp(text) == 1_700_000_000_123_456


def test_plugin_fixture_gives_a_running_server(flagkit_server: FlagKitServer) -> None:
    """The ``flagkit_server`` fixture (pytest11 plugin) yields a started server."""
    response = httpx.get(
        flagkit_server.base_url + "/sdk/init", headers={"X-API-Key": flagkit_server.api_key}
    )
    assert response.status_code == 200 and response.json()["flags"] == []


@pytest.mark.flagkit_server(flags={"from-marker": True}, environment_id="env-marker")
def test_plugin_marker_configures_the_server(flagkit_server: FlagKitServer) -> None:
    """``@pytest.mark.flagkit_server(...)`` passes arguments to the fixture's server."""
    assert flagkit_server.get_flag("from-marker") is not None
    assert flagkit_server.environment.id == "env-marker"


def test_a_generated_admin_token_never_starts_with_a_dash() -> None:
    """``--admin-token -x...`` would be read as an option: generated tokens avoid it (one
    in 64 random tokens would start with ``-``)."""
    from flagkit.server.app import _new_admin_token

    tokens = [_new_admin_token() for _ in range(5000)]
    assert not [t for t in tokens if t.startswith("-")]
    assert len(set(tokens)) == 5000
