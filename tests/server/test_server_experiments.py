"""``GET /admin/experiments[/{flag}]`` and ``flagkit experiments``: who counts, how.

Events are posted to a running server's real ``POST /sdk/events/batch`` (both dialects);
the answers are read over HTTP. The statistics themselves are checked against scipy and
statsmodels in ``test_experiment_stats.py``; this module checks the attribution rules
(first exposure, multi-exposed users, user keys), the split the SRM check uses, the
errors, and the CLI's output order.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flagkit.cli import main
from flagkit.server import FlagKitServer

EXPERIMENT = {
    "key": "button",
    "flagType": "string",
    "value": "blue",
    "variations": [{"id": "blue", "value": "blue"}, {"id": "green", "value": "green"}],
    "rules": [
        {
            "id": "staff-split",
            "clauses": [{"attribute": "custom.staff", "op": "equals", "values": [True]}],
            "rollout": {
                "variations": [
                    {"variation": "blue", "weight": 10_000},
                    {"variation": "green", "weight": 90_000},
                ]
            },
        }
    ],
    "fallthrough": {
        "rollout": {
            "variations": [
                {"variation": "blue", "weight": 50_000},
                {"variation": "green", "weight": 50_000},
            ]
        }
    },
    "experiment": {
        "control": "blue",
        "metrics": [
            {"event": "purchase", "kind": "conversion"},
            {"event": "purchase", "kind": "numeric", "valueField": "amount"},
        ],
    },
}
PLAIN = {"key": "dark-mode", "value": False}
NO_METRICS = {**EXPERIMENT, "key": "bare", "experiment": {"control": "blue"}}


def exposure(
    user: str,
    variation: str,
    at: str,
    *,
    flag: str = "button",
    rule: str | None = None,
    anonymous: bool = True,
) -> dict[str, Any]:
    """A ``$exposure`` event as the SDK sends it."""
    context = {"userKey": user, "anonymous": True} if anonymous else {"userId": user}
    return {
        "eventType": "$exposure",
        "eventId": str(uuid.uuid4()),
        "timestamp": at,
        "context": context,
        "eventData": {
            "flagKey": flag,
            "variationId": variation,
            "flagVersion": 1,
            "ruleId": rule,
            "contextKey": user,
        },
    }


def purchase(user: str, at: str, amount: float, *, anonymous: bool = True) -> dict[str, Any]:
    """A ``track("purchase", {"amount": ...})`` event."""
    context = {"userKey": user, "anonymous": True} if anonymous else {"userId": user}
    return {
        "eventType": "purchase",
        "eventId": str(uuid.uuid4()),
        "timestamp": at,
        "context": context,
        "eventData": {"amount": amount, "currency": "EUR"},
    }


T0, T1, T2 = "2026-01-01T10:00:00+00:00", "2026-01-01T10:05:00Z", "2026-01-01T10:10:00.5Z"


@pytest.fixture
def server() -> Iterator[FlagKitServer]:
    """A server with an experiment, a plain flag and an experiment without metrics."""
    with FlagKitServer(flags=[EXPERIMENT, PLAIN, NO_METRICS]) as srv:
        yield srv


def post(server: FlagKitServer, events: list[dict[str, Any]]) -> None:
    """Send events through the SDK endpoint; all must be recorded."""
    answer = httpx.post(
        f"{server.base_url}/sdk/events/batch",
        json={"events": events},
        headers={"X-API-Key": server.api_key},
    )
    assert answer.json()["recorded"] == len(events)


def admin_get(server: FlagKitServer, path: str, **params: str) -> httpx.Response:
    """GET an admin path with the token."""
    return httpx.get(
        f"{server.base_url}/admin{path}",
        params=params,
        headers={"Authorization": f"Bearer {server.admin_token}"},
    )


def test_list_shows_experiment_flags_with_exposed_users(server: FlagKitServer) -> None:
    """Only flags with an experiment are listed, with control, variations, metrics and
    distinct exposed users per variation (repeated exposures count once)."""
    post(
        server,
        [
            exposure("u1", "blue", T0),
            exposure("u1", "blue", T1),
            exposure("u2", "green", T0),
            exposure("u3", "green", T0),
            exposure("u4", "blue", T0),
            exposure("u4", "green", T1),
        ],
    )
    listed = admin_get(server, "/experiments").json()
    assert [e["flag"] for e in listed["experiments"]] == ["button", "bare"]
    button = listed["experiments"][0]
    assert button["control"] == "blue"
    assert button["variations"] == ["blue", "green"]
    assert button["exposedUsers"] == 4
    assert button["exposures"] == {"blue": 1, "green": 2}
    assert button["excludedMultiExposed"] == 1
    assert button["metrics"][1] == {"event": "purchase", "kind": "numeric", "valueField": "amount"}
    assert listed["eventsDropped"] == 0


def test_conversions_count_after_the_first_exposure_only(server: FlagKitServer) -> None:
    """A purchase before the user's first exposure does not convert it; one after a later
    repeated exposure does (it is after the first); a user exposed to both variations is
    excluded and counted; a logged-in user's purchase joins by userId."""
    post(
        server,
        [
            exposure("early", "blue", T1),
            purchase("early", T0, 10.0),  # before the exposure
            exposure("late", "blue", T0),
            exposure("late", "blue", T2),
            purchase("late", T1, 20.0),  # after the first exposure
            exposure("both", "blue", T0),
            exposure("both", "green", T1),
            purchase("both", T2, 99.0),
            exposure("ada", "green", T0, anonymous=False),
            purchase("ada", T1, 30.0, anonymous=False),
            purchase("ada", T2, 12.5, anonymous=False),
            exposure("idle", "green", T0),
        ],
    )
    report = admin_get(server, "/experiments/button", metric="purchase").json()
    assert report["excludedMultiExposed"] == 1
    by_id = {v["id"]: v for v in report["variations"]}
    assert (by_id["blue"]["exposed"], by_id["blue"]["converted"]) == (2, 1)
    assert (by_id["green"]["exposed"], by_id["green"]["converted"]) == (2, 1)
    assert report["variations"][0]["id"] == "blue" and report["variations"][0]["lift"] is None
    numeric = admin_get(server, "/experiments/button", value="amount").json()
    assert numeric["metric"] == {"event": "purchase", "kind": "numeric", "valueField": "amount"}
    means = {v["id"]: v["mean"] for v in numeric["variations"]}
    assert means == {"blue": pytest.approx(10.0), "green": pytest.approx(21.25)}


def test_the_other_dialect_is_read_too(server: FlagKitServer) -> None:
    """Events in the ``{"id", "type", "data"}`` dialect (docs/protocol.md §10.2) count."""
    event = exposure("go-user", "green", T0)
    go = {
        "id": event["eventId"],
        "type": "$exposure",
        "timestamp": T0,
        "context": event["context"],
        "data": event["eventData"],
    }
    buy = {"id": "b1", "type": "purchase", "timestamp": T1, "context": event["context"]}
    post(server, [go, buy])
    report = admin_get(server, "/experiments/button", metric="purchase").json()
    green = next(v for v in report["variations"] if v["id"] == "green")
    assert (green["exposed"], green["converted"]) == (1, 1)


def test_srm_uses_the_split_that_exposed_each_user(server: FlagKitServer) -> None:
    """Users exposed by the rule's 10/90 rollout are expected 10/90, the others 50/50."""
    events = [
        exposure(f"s{i}", "blue" if i < 10 else "green", T0, rule="staff-split") for i in range(100)
    ]
    events += [exposure(f"f{i}", "blue" if i % 2 else "green", T0) for i in range(200)]
    post(server, events)
    srm = admin_get(server, "/experiments/button", metric="purchase").json()["srm"]
    assert srm["expected"] == {"blue": pytest.approx(110.0), "green": pytest.approx(190.0)}
    assert srm["observed"] == {"blue": 110, "green": 190}
    assert srm["chi2"] == pytest.approx(0.0) and srm["p"] == pytest.approx(1.0)
    assert srm["flagged"] is False


def test_errors_name_the_problem(server: FlagKitServer) -> None:
    """Unknown flag and plain flag: 404 with distinct codes; an experiment without
    metrics and no ?metric: 400 naming the parameter; other methods: 405; no token: 401."""
    unknown = admin_get(server, "/experiments/nope")
    assert unknown.status_code == 404 and unknown.json()["error"] == "FLAG_NOT_FOUND"
    plain = admin_get(server, "/experiments/dark-mode")
    assert plain.status_code == 404
    assert plain.json()["error"] == "EXPERIMENT_NOT_FOUND"
    bare = admin_get(server, "/experiments/bare")
    assert bare.status_code == 400 and "metric" in bare.json()["message"]
    assert admin_get(server, "/experiments/bare", metric="signup").status_code == 200
    posted = httpx.post(
        f"{server.base_url}/admin/experiments",
        headers={"Authorization": f"Bearer {server.admin_token}"},
    )
    assert posted.status_code == 405
    assert httpx.get(f"{server.base_url}/admin/experiments").status_code == 401


def test_cli_report_puts_the_sample_ratio_check_first(
    server: FlagKitServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """``flagkit experiments report`` prints the SRM verdict before the results table; a
    planted mismatch is announced as such; ``--json`` prints the API's answer."""
    post(server, [exposure(f"b{i}", "blue", T0) for i in range(300)])
    post(server, [exposure(f"g{i}", "green", T0) for i in range(200)])
    post(server, [purchase(f"g{i}", T1, 5.0) for i in range(40)])
    args = ["--url", server.url, f"--admin-token={server.admin_token}"]
    assert main(["experiments", "report", "button", "--metric", "purchase", *args]) == 0
    out = capsys.readouterr().out
    assert out.index("SAMPLE RATIO MISMATCH") < out.index("VARIATION  EXPOSED")
    assert "(control)" in out and "two-proportion z-test" in out
    assert main(["experiments", "report", "button", "--json", *args]) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert as_json["metric"]["kind"] == "conversion" and as_json["srm"]["flagged"] is True
    assert main(["experiments", "list", *args]) == 0
    listing = capsys.readouterr().out
    assert "button" in listing and "blue 300, green 200" in listing
    assert main(["experiments", "report", "nope", *args]) == 1
    assert "no flag 'nope'" in capsys.readouterr().err


def test_cli_report_says_ok_when_the_split_holds(
    server: FlagKitServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A balanced split reads "Sample ratio check: OK" before the table, and a numeric
    report shows means and Welch's test."""
    post(server, [exposure(f"u{i}", "blue" if i % 2 else "green", T0) for i in range(400)])
    post(server, [purchase(f"u{i}", T1, float(i % 7)) for i in range(0, 400, 3)])
    args = ["--url", server.url, f"--admin-token={server.admin_token}"]
    assert main(["experiments", "report", "button", "--value", "amount", *args]) == 0
    out = capsys.readouterr().out
    assert out.index("Sample ratio check: OK") < out.index("VARIATION  EXPOSED")
    assert "MEAN" in out and "Welch's t-test" in out


def test_malformed_exposures_are_skipped_and_counted(server: FlagKitServer) -> None:
    """Exposures without a usable time, user or variation (and odd field types) neither
    break the list nor the report; the report counts them in ``skippedEvents``."""
    good = exposure("ok", "blue", T0)
    no_time = {**exposure("t", "blue", T0), "timestamp": "yesterday"}
    no_user = exposure("u", "blue", T0)
    no_user["eventData"] = {**no_user["eventData"], "contextKey": None}
    del no_user["context"]
    odd = exposure("o", "blue", T0)
    odd["eventData"] = {**odd["eventData"], "flagKey": ["button"], "variationId": 7}
    bad_variation = exposure("v", "blue", T0)
    bad_variation["eventData"] = {**bad_variation["eventData"], "variationId": 7}
    post(server, [good, no_time, no_user, odd, bad_variation])
    listed = admin_get(server, "/experiments")
    assert listed.status_code == 200
    assert listed.json()["experiments"][0]["exposedUsers"] == 1
    report = admin_get(server, "/experiments/button", metric="purchase").json()
    assert report["skippedEvents"] == 4
    assert [v["exposed"] for v in report["variations"]] == [1, 0]


def test_a_rule_serving_one_variation_expects_only_that_variation() -> None:
    """Users exposed by a rule with a fixed variation are expected all in it; one of
    them seen in a variation nothing was expected in is a certain mismatch (chi2 null,
    p 0)."""
    flag = {
        **EXPERIMENT,
        "rules": [
            {
                "id": "vip",
                "clauses": [{"attribute": "custom.vip", "op": "equals", "values": [True]}],
                "variation": "green",
            }
        ],
    }
    with FlagKitServer(flags=[flag]) as srv:
        post(srv, [exposure(f"v{i}", "green", T0, rule="vip") for i in range(30)])
        post(srv, [exposure(f"f{i}", "blue" if i % 2 else "green", T0) for i in range(40)])
        srm = admin_get(srv, "/experiments/button", metric="purchase").json()["srm"]
        assert srm["expected"] == {"blue": pytest.approx(20.0), "green": pytest.approx(50.0)}
        assert srm["flagged"] is False
        httpx.delete(
            f"{srv.base_url}/admin/events",
            headers={"Authorization": f"Bearer {srv.admin_token}"},
        ).raise_for_status()
        post(srv, [exposure(f"v{i}", "green", T0, rule="vip") for i in range(30)])
        post(srv, [exposure("odd", "blue", T0, rule="vip")])
        srm = admin_get(srv, "/experiments/button", metric="purchase").json()["srm"]
        assert srm["chi2"] is None and srm["p"] == 0.0 and srm["flagged"] is True
