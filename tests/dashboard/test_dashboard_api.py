"""The dashboard's JSON API over real HTTP: changes take the admin API's path, are written
back to the flags file and streamed; the JSON editor validates like the flags file;
history and revert; explain agrees with the SDK; the live event feed; usage."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from flagkit.server import FlagKitServer
from flagkit.server.dashboard.describe import describe_flag
from flagkit.server.dashboard.writeback import splice_flag
from flagkit.types.config import StreamingOptions
from flagkit.types.context import EvaluationContext
from tests.dashboard.conftest import DEMO_FLAGS, TOKEN, Dashboard
from tests.support import wait_until
from tests.support.clients import loopback_client

DEMO_KEY = "sdk_demo_key_123456"


def file_flag(path: Path, key: str) -> dict[str, Any]:
    """The flag ``key`` as written in the flags file."""
    flags = json.loads(path.read_text())["flags"]
    return next(f for f in flags if f["key"] == key)  # type: ignore[no-any-return]


def test_rules_segments_and_prerequisites_read_in_words() -> None:
    """A rule reads "users whose `country` is one of DE, AT → variation `eu`"."""
    lines = describe_flag(
        {
            "key": "region",
            "value": "us",
            "variations": [{"id": "eu", "value": "eu"}, {"id": "us", "value": "us"}],
            "prerequisites": [{"key": "checkout", "variation": "on"}],
            "rules": [
                {
                    "id": "europe",
                    "clauses": [{"attribute": "country", "op": "in", "values": ["DE", "AT"]}],
                    "variation": "eu",
                },
                {"id": "beta", "segments": ["beta-testers"], "variation": "eu"},
            ],
            "fallthrough": {
                "rollout": {
                    "variations": [
                        {"variation": "eu", "weight": 25000},
                        {"variation": "us", "weight": 75000},
                    ]
                }
            },
        }
    )
    assert lines == [
        "Needs flag `checkout` to serve variation `on` (else the off variation).",
        "Rule `europe`: users whose `country` is one of DE, AT → variation `eu`.",
        "Rule `beta`: users whose in segment `beta-testers` → variation `eu`.",
        "Everyone else → a rollout: 25% `eu`, 75% `us`.",
    ]


def test_splicing_a_flag_keeps_every_other_byte_of_the_file() -> None:
    """Rewriting any demo flag unchanged gives the same file; a change touches one line."""
    text = DEMO_FLAGS.read_text()
    flags = json.loads(text)["flags"]
    assert all(splice_flag(text, flag) == text for flag in flags)
    changed = splice_flag(text, {**flags[1], "value": True})
    diff = [(a, b) for a, b in zip(text.splitlines(), changed.splitlines(), strict=True) if a != b]
    assert len(diff) == 1 and diff[0][1].strip() == '"value": true'
    added = splice_flag(text, {"key": "brand-new", "value": 3})
    assert json.loads(added)["flags"][-1] == {"key": "brand-new", "value": 3}
    assert added.startswith(text[: text.rindex("}\n  ]")])


def test_a_toggle_is_stored_written_back_and_streamed(
    server: FlagKitServer, dashboard: Dashboard, flags_file: Path
) -> None:
    """Toggling through the dashboard bumps the version, rewrites only that flag in the
    file (no version field) and reaches a streaming SDK client."""
    client = loopback_client(
        server.base_url,
        api_key=DEMO_KEY,
        streaming=StreamingOptions(reconnect_interval=0.05, max_backoff=0.1),
        polling_interval=60.0,
    )
    assert client.wait_for_ready(5)
    wait_until(lambda: server.stream_count == 1, message="the client's stream")
    assert client.get_boolean_value("maintenance-banner", True) is False
    before = flags_file.read_text()
    response = dashboard.change("PATCH", "flags/maintenance-banner", {"enabled": True})
    assert response.status_code == 200, response.text
    assert response.json()["written"] is True and response.json()["flag"]["version"] == 2
    wait_until(lambda: client.get_boolean_value("maintenance-banner", False) is True)
    assert file_flag(flags_file, "maintenance-banner")["enabled"] is True
    assert "version" not in file_flag(flags_file, "maintenance-banner")
    after = flags_file.read_text().splitlines()
    changed = [(a, b) for a, b in zip(before.splitlines(), after, strict=True) if a != b]
    assert changed == [('      "enabled": false,', '      "enabled": true,')]


def test_changes_survive_a_restart(flags_file: Path) -> None:
    """A change written back is what a new server on the same file serves."""
    with (
        FlagKitServer(flags_file=flags_file, admin_token=TOKEN) as first,
        httpx.Client(base_url=first.url) as http,
    ):
        csrf = http.post("/dashboard/api/session", json={"token": TOKEN}).json()["csrf"]
        response = http.patch(
            "/dashboard/api/flags/welcome-message",
            json={"value": "Hello again"},
            headers={"X-CSRF-Token": csrf},
        )
        assert response.status_code == 200
    with FlagKitServer(flags_file=flags_file) as second:
        assert second.get_flag("welcome-message")["value"] == "Hello again"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"key": "dark-mode", "value": "yes", "flagType": "boolean"}, "value"),
        ({"key": "dark-mode", "value": True, "enabled": "no"}, "enabled"),
        (
            {
                "key": "dark-mode",
                "value": True,
                "variations": [{"id": "on", "value": True}],
                "fallthrough": {"variation": "missing"},
            },
            "fallthrough.variation",
        ),
        (
            {
                "key": "dark-mode",
                "value": True,
                "variations": [{"id": "on", "value": True}],
                "rules": [{"id": "r", "segments": ["no-such-segment"], "variation": "on"}],
            },
            "rules[0].segments[0]",
        ),
    ],
)
def test_invalid_json_names_the_field_and_saves_nothing(
    server: FlagKitServer,
    dashboard: Dashboard,
    flags_file: Path,
    body: dict[str, Any],
    field: str,
) -> None:
    """The editor's JSON is validated like the flags file: the error names the field path
    inside the flag, and neither the served flag nor the file changes."""
    before = flags_file.read_bytes()
    stored = server.get_flag("dark-mode")
    response = dashboard.change("PUT", "flags/dark-mode", body)
    assert response.status_code == 422
    assert response.json()["field"] == field, response.json()
    assert server.get_flag("dark-mode") == stored
    assert flags_file.read_bytes() == before


def test_history_shows_each_version_with_a_diff_and_revert_restores_one(
    server: FlagKitServer, dashboard: Dashboard, flags_file: Path
) -> None:
    """Changes from any source enter the history; reverting stores the old content as a
    new version and writes it back."""
    server.set_flag("welcome-message", "Second")  # the admin API's path: version 2
    dashboard.change("PATCH", "flags/welcome-message", {"value": "Third"})  # version 3
    page = dashboard.http.get("/dashboard/api/flags/welcome-message").json()
    assert [v["version"] for v in page["history"]] == [3, 2, 1]
    assert '-  "value": "Second",' in page["history"][0]["diff"]
    assert '+  "value": "Third",' in page["history"][0]["diff"]
    response = dashboard.change("POST", "flags/welcome-message/revert", {"version": 1})
    assert response.status_code == 200
    assert response.json()["flag"]["version"] == 4
    original = "Welcome to the FlagKit demo shop!"
    assert server.get_flag("welcome-message")["value"] == original  # type: ignore[index]
    assert file_flag(flags_file, "welcome-message") == {
        "key": "welcome-message",
        "flagType": "string",
        "value": original,
    }
    missing = dashboard.change("POST", "flags/welcome-message/revert", {"version": 99})
    assert missing.status_code == 404


def test_explain_gives_the_sdk_answer_and_the_path(
    server: FlagKitServer, dashboard: Dashboard
) -> None:
    """For several contexts, explain's value and reason are the SDK client's, and the path
    names the rule or segment that decided."""
    client = loopback_client(server.base_url, api_key=DEMO_KEY)
    assert client.wait_for_ready(5)
    contexts = [
        {"userId": "alice", "custom": {"isStaff": True, "groups": ["staff"]}},
        {"userId": "bob", "custom": {"groups": ["beta"]}},
        {"userId": "carol"},
        {},
    ]
    for context in contexts:
        sdk_context = EvaluationContext(
            user_id=context.get("userId"), custom=dict(context.get("custom", {}))
        )
        for key in ("staff-tools", "beta-dashboard", "new-checkout", "max-cart-items"):
            answer = dashboard.change("POST", "explain", {"flag": key, "context": context})
            assert answer.status_code == 200, answer.text
            expected = client.evaluate(key, sdk_context)
            got = answer.json()
            assert (got["value"], got["reason"]) == (expected.value, expected.reason.value), (
                key,
                context,
            )
            assert got["path"]
    bob = dashboard.change(
        "POST", "explain", {"flag": "beta-dashboard", "context": contexts[1]}
    ).json()
    assert bob["reason"] == "SEGMENT_MATCH" and bob["segmentId"] == "beta-testers"
    assert any("segment `beta-testers`" in step for step in bob["path"])
    bad = dashboard.change("POST", "explain", {"flag": "dark-mode", "context": {"userId": 5}})
    assert bad.status_code == 422 and bad.json()["field"] == "context.userId"


def test_explain_shares_follow_the_rollout(server: FlagKitServer, dashboard: Dashboard) -> None:
    """Moving the rollout to 80% moves the share of sample users served `on` near 80%."""

    def share_on() -> float:
        answer = dashboard.change("POST", "explain", {"flag": "new-checkout", "context": {}})
        rows = answer.json()["distribution"]
        return sum(r["share"] for r in rows if r["variation"] == "on")  # type: ignore[no-any-return]

    assert 0.25 <= share_on() <= 0.35
    rollout = server.get_flag("new-checkout")["fallthrough"]["rollout"]  # type: ignore[index]
    rollout["variations"] = [
        {"variation": "on", "weight": 80000},
        {"variation": "off", "weight": 20000},
    ]
    response = dashboard.change(
        "PATCH", "flags/new-checkout", {"fallthrough": {"rollout": rollout}}
    )
    assert response.status_code == 200
    assert 0.75 <= share_on() <= 0.85


def test_the_event_feed_streams_tracked_events(server: FlagKitServer, dashboard: Dashboard) -> None:
    """An event tracked by a client arrives on the dashboard's SSE feed; recent users list
    the client's user."""
    frames: list[dict[str, Any]] = []
    connected = threading.Event()
    got = threading.Event()

    def read() -> None:
        with dashboard.http.stream("GET", "/dashboard/api/events/stream") as response:
            assert response.headers["content-type"] == "text/event-stream"
            connected.set()
            for line in response.iter_lines():
                if line.startswith("data: "):
                    frames.append(json.loads(line[6:]))
                    got.set()
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert connected.wait(5)
    client = loopback_client(server.base_url, api_key=DEMO_KEY)
    assert client.wait_for_ready(5)
    client.identify("feed-user")
    client.track("purchase", {"amount": 3})
    client.flush(5)
    assert got.wait(5)
    assert frames[0]["type"] in ("context.identified", "purchase")
    assert frames[0]["user"] == "feed-user"
    users = dashboard.http.get("/dashboard/api/users").json()["users"]
    assert users[0]["userId"] == "feed-user"


def test_usage_counts_evaluation_summaries_and_lists_cleanup_candidates(
    server: FlagKitServer, dashboard: Dashboard
) -> None:
    """``$evaluation_summary`` events are summed per flag; a flag serving one variation to
    everyone and flags never evaluated are cleanup candidates."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    summary = {
        "eventType": "$evaluation_summary",
        "timestamp": now,
        "sessionId": "s-1",
        "eventId": "e-1",
        "eventData": {
            "startDate": now,
            "endDate": now,
            "counts": [
                {"flagKey": "dark-mode", "variationId": None, "reason": "CACHED", "count": 40},
                {
                    "flagKey": "new-checkout",
                    "variationId": "on",
                    "reason": "FALLTHROUGH",
                    "count": 3,
                },
                {
                    "flagKey": "new-checkout",
                    "variationId": "off",
                    "reason": "FALLTHROUGH",
                    "count": 7,
                },
            ],
        },
    }
    posted = httpx.post(
        server.base_url + "/sdk/events/batch",
        json={"events": [summary]},
        headers={"X-API-Key": DEMO_KEY},
    )
    assert posted.status_code < 300
    usage = dashboard.http.get("/dashboard/api/usage").json()
    rows = {r["flag"]: r for r in usage["flags"]}
    assert usage["summaries"] == 1
    assert rows["new-checkout"]["evaluations"] == 10
    assert rows["new-checkout"]["variations"] == {"on": 3, "off": 7}
    why = {c["flag"]: c["why"] for c in usage["candidates"]}
    assert "dark-mode" in why and "everyone" in why["dark-mode"]
    assert "new-checkout" not in why
    assert "never" in why["welcome-message"] or "not evaluated" in why["welcome-message"]


def test_yaml_flags_files_are_not_rewritten(tmp_path: Path) -> None:
    """With a YAML file the change is served but the file (and its comments) stay."""
    path = tmp_path / "flags.yaml"
    path.write_text("# keep me\nflags:\n  - key: dark-mode\n    value: false\n")
    with (
        FlagKitServer(flags_file=path, admin_token=TOKEN) as srv,
        httpx.Client(base_url=srv.url) as http,
    ):
        session = http.post("/dashboard/api/session", json={"token": TOKEN}).json()
        assert "YAML" in session["notWritten"]
        response = http.patch(
            "/dashboard/api/flags/dark-mode",
            json={"value": True},
            headers={"X-CSRF-Token": session["csrf"]},
        )
        assert response.status_code == 200
        assert response.json()["written"] is False
        assert srv.get_flag("dark-mode")["value"] is True  # type: ignore[index]
    assert path.read_text().startswith("# keep me")


def test_experiments_are_read_through_the_session(
    server: FlagKitServer, dashboard: Dashboard, anonymous: httpx.Client
) -> None:
    """The dashboard serves the admin API's experiment list and reports to a signed-in
    browser (no bearer token in the page), and to nobody else."""
    listed = dashboard.http.get("/dashboard/api/experiments")
    assert listed.status_code == 200
    assert "checkout-button-color" in [e["flag"] for e in listed.json()["experiments"]]
    report = dashboard.http.get("/dashboard/api/experiments/checkout-button-color").json()
    assert report["control"] == "blue" and "srm" in report
    assert anonymous.get("/dashboard/api/experiments").status_code == 401


def test_usage_reads_the_summaries_a_real_sdk_sends(
    server: FlagKitServer, dashboard: Dashboard
) -> None:
    """A client's own ``$evaluation_summary`` (sent on flush; summaries are opt-in) is
    counted per variation."""
    client = loopback_client(server.base_url, api_key=DEMO_KEY, evaluation_summaries=True)
    assert client.wait_for_ready(5)
    for i in range(30):
        client.identify(f"u-{i}")
        client.get_boolean_value("dark-mode", False)
        client.get_boolean_value("new-checkout", False)
    assert client.flush(5).error is None
    usage = dashboard.http.get("/dashboard/api/usage").json()
    rows = {r["flag"]: r for r in usage["flags"]}
    assert usage["summaries"] >= 1
    assert rows["dark-mode"]["evaluations"] == 30
    assert sum(rows["new-checkout"]["variations"].values()) == 30
    assert set(rows["new-checkout"]["variations"]) == {"on", "off"}
