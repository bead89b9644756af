"""Exposure events over real HTTP: one ``$exposure`` per (user, flag, variation) served by
an experiment flag's targeting, and none for off flags, overrides, offline clients, flags
that are not experiments, or contexts without a key (docs/events.md)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flagkit import EvaluationContext
from flagkit.core.events.exposures import EXPOSURE_MEMORY, Exposures
from flagkit.errors import EventError
from flagkit.testing import FlagKitServer
from tests.support.clients import loopback_client

EXPERIMENT = {"control": "blue", "metrics": [{"event": "purchase"}]}


def button(**extra: Any) -> dict[str, Any]:
    """A string flag: users 'ann' and 'bob' targeted, a 'vip' rule, fallthrough green."""
    flag: dict[str, Any] = {
        "key": "checkout-button",
        "value": "blue",
        "variations": [{"id": "blue", "value": "blue"}, {"id": "green", "value": "green"}],
        "targets": [{"variation": "blue", "values": ["ann"]}],
        "rules": [
            {
                "id": "vips",
                "clauses": [{"attribute": "plan", "op": "equals", "values": ["vip"]}],
                "variation": "green",
            }
        ],
        "fallthrough": {"variation": "green"},
        "experiment": EXPERIMENT,
    }
    flag.update(extra)
    return flag


@pytest.fixture
def server() -> Iterator[FlagKitServer]:
    with FlagKitServer(
        flags=[
            button(),
            button(key="plain-button", experiment=None),
            button(key="off-button", enabled=False, offVariation="blue"),
            {"key": "dark-mode", "value": True},
        ]
    ) as running:
        yield running


def exposures(server: FlagKitServer) -> list[dict[str, Any]]:
    return [e for e in server.events() if e["eventType"] == "$exposure"]


def test_one_exposure_per_user_flag_and_variation(server: FlagKitServer) -> None:
    client = loopback_client(server.base_url, api_key=server.api_key)
    client.initialize()
    ann = EvaluationContext(user_id="ann")
    for _ in range(3):
        assert client.get_string_value("checkout-button", "x", ann) == "blue"
    vip = EvaluationContext(
        user_id="cid", custom={"plan": "vip"}, private_attributes=["custom.plan"]
    )
    assert client.evaluate("checkout-button", vip).value == "green"
    assert client.get_string_value("checkout-button", "x", vip) == "green"
    anon = EvaluationContext(user_key="anon-7")
    assert client.get_string_value("checkout-button", "x", anon) == "green"
    assert client.flush(5).ok
    got = exposures(server)
    assert [e["eventData"] for e in got] == [
        {
            "flagKey": "checkout-button",
            "variationId": "blue",
            "flagVersion": 1,
            "ruleId": None,
            "contextKey": "ann",
        },
        {
            "flagKey": "checkout-button",
            "variationId": "green",
            "flagVersion": 1,
            "ruleId": "vips",
            "contextKey": "cid",
        },
        {
            "flagKey": "checkout-button",
            "variationId": "green",
            "flagVersion": 1,
            "ruleId": None,
            "contextKey": "anon-7",
        },
    ]
    # The normal event context, private attributes stripped.
    assert got[1]["context"] == {"userId": "cid"}
    assert got[2]["context"]["userKey"] == "anon-7"


def test_no_exposure_without_targeting_served_variation(server: FlagKitServer) -> None:
    client = loopback_client(server.base_url, api_key=server.api_key)
    client.initialize()
    ann = EvaluationContext(user_id="ann")
    assert client.get_string_value("off-button", "x", ann) == "blue"  # FLAG_DISABLED
    assert client.get_string_value("plain-button", "x", ann) == "blue"  # not an experiment
    assert client.get_boolean_value("dark-mode", False, ann) is True  # no targeting
    nobody = EvaluationContext(country="NL")  # no user id, no user key
    assert client.get_string_value("checkout-button", "x", nobody) == "green"
    with client.override_flags({"checkout-button": "green"}):
        assert client.get_string_value("checkout-button", "x", ann) == "green"
    assert client.get_number_value("checkout-button", 1.0, ann) == 1.0  # type mismatch
    assert client.flush(5).ok
    assert exposures(server) == []
    assert client.get_string_value("checkout-button", "x", ann) == "blue"
    assert client.flush(5).ok
    assert len(exposures(server)) == 1  # the same client does record a real exposure


def test_request_scope_and_track_share_the_user_key(server: FlagKitServer) -> None:
    client = loopback_client(server.base_url, api_key=server.api_key)
    client.initialize()
    with client.context_scope(EvaluationContext(user_id="bob")):
        assert client.get_string_value("checkout-button", "x") == "green"
        client.track("purchase", {"amount": 12.5})
    assert client.flush(5).ok
    (exposure,) = exposures(server)
    (purchase,) = [e for e in server.events() if e["eventType"] == "purchase"]
    assert exposure["eventData"]["contextKey"] == purchase["context"]["userId"] == "bob"


def test_offline_records_exposures_only_when_asked(server: FlagKitServer, tmp_path: Path) -> None:
    # An online client leaves a persisted cache; offline clients evaluate from it.
    online = loopback_client(
        server.base_url,
        api_key=server.api_key,
        persist_cache=True,
        cache_storage_path=str(tmp_path),
    )
    online.initialize()
    online.close()
    ann = EvaluationContext(user_id="ann")
    for asked in (False, True):
        offline = loopback_client(
            server.base_url,
            api_key=server.api_key,
            offline=True,
            persist_cache=True,
            cache_storage_path=str(tmp_path),
            record_exposures_offline=asked,
        )
        offline.initialize()
        assert offline.get_string_value("checkout-button", "x", ann) == "blue"
        assert offline.event_stats.accepted == (1 if asked else 0)


def test_user_track_cannot_send_reserved_types(server: FlagKitServer) -> None:
    client = loopback_client(server.base_url, api_key=server.api_key)
    for reserved in ("$exposure", "$evaluation_summary"):
        with pytest.raises(EventError):
            client.track(reserved, {"flagKey": "checkout-button"})


def test_the_memory_is_a_bounded_lru() -> None:
    emitted: list[tuple[str, str]] = []

    def emit(event_type: str, data: Any, context: Any) -> None:
        emitted.append((data["contextKey"], data["variationId"]))

    memory = Exposures(emit, limit=2)
    ctx = {name: EvaluationContext(user_id=name) for name in ("a", "b", "c")}
    assert memory.record("f", "v", 1, None, ctx["a"])
    assert memory.record("f", "v", 1, None, ctx["b"])
    assert not memory.record("f", "v", 1, None, ctx["a"])  # a is now the most recent
    assert memory.record("f", "w", 1, None, ctx["a"])  # another variation; evicts (b, v)
    assert memory.record("f", "v", 1, None, ctx["c"])  # evicts (a, v)
    assert len(memory) == 2
    assert memory.record("f", "v", 1, None, ctx["b"])  # b was forgotten: recorded again
    assert not memory.record("f", "v", 1, None, EvaluationContext())  # no key
    assert emitted == [("a", "v"), ("b", "v"), ("a", "w"), ("c", "v"), ("b", "v")]
    assert EXPOSURE_MEMORY == 10_000
