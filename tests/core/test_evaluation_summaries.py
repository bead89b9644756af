"""``$evaluation_summary`` events over real HTTP: every flush carries exact counts per
(flag, variation, reason) of the lookups since the previous one (docs/events.md)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from flagkit import EvaluationContext
from flagkit.core.events.summaries import MAX_COUNTERS, EvaluationCounter
from flagkit.testing import FlagKitServer
from tests.support import wait_until
from tests.support.clients import loopback_client

FLAGS: list[dict[str, Any]] = [
    {"key": "dark-mode", "value": True},
    {"key": "banner", "value": "Spring sale"},
    {
        "key": "tier",
        "value": "basic",
        "variations": [{"id": "basic", "value": "basic"}, {"id": "gold", "value": "gold"}],
        "targets": [{"variation": "gold", "values": ["ann"]}],
        "fallthrough": {"variation": "basic"},
    },
]


@pytest.fixture
def server() -> Iterator[FlagKitServer]:
    with FlagKitServer(flags=FLAGS) as running:
        yield running


def summaries(server: FlagKitServer) -> list[dict[str, Any]]:
    return [e for e in server.events() if e["eventType"] == "$evaluation_summary"]


def counts(event: dict[str, Any]) -> dict[tuple[str, str | None, str], int]:
    return {
        (c["flagKey"], c["variationId"], c["reason"]): c["count"]
        for c in event["eventData"]["counts"]
    }


def test_each_flush_carries_the_exact_counts_since_the_last(server: FlagKitServer) -> None:
    client = loopback_client(server.base_url, api_key=server.api_key, evaluation_summaries=True)
    client.initialize()
    ann, bob = EvaluationContext(user_id="ann"), EvaluationContext(user_id="bob")
    for _ in range(5):
        client.get_boolean_value("dark-mode", False)  # the typed fast path
    client.evaluate("dark-mode")  # the full rules, the same (key, variation, reason)
    client.get_string_value("banner", "")
    for _ in range(3):
        client.get_string_value("tier", "", ann)
    client.get_string_value("tier", "", bob)
    client.get_boolean_value("no-such-flag", False)
    client.get_boolean_value("no-such-flag", False)
    client.get_number_value("banner", 1.0)  # a type mismatch
    with client.override_flags({"dark-mode": False}):
        client.get_boolean_value("dark-mode", True)
    client.get_boolean_value("", False)  # an invalid key is not counted
    assert client.flush(5).ok
    (first,) = summaries(server)
    assert counts(first) == {
        ("dark-mode", None, "CACHED"): 6,
        ("banner", None, "CACHED"): 1,
        ("tier", "gold", "TARGET_MATCH"): 3,
        ("tier", "basic", "FALLTHROUGH"): 1,
        ("no-such-flag", None, "FLAG_NOT_FOUND"): 2,
        ("banner", None, "EVALUATION_ERROR"): 1,
        ("dark-mode", None, "OVERRIDE"): 1,
    }
    data = first["eventData"]
    assert data["startDate"] <= data["endDate"]
    assert "context" not in first

    assert client.flush(5).ok  # nothing looked up since: no summary
    assert len(summaries(server)) == 1
    client.get_boolean_value("dark-mode", False)
    client.close()  # close() flushes: it carries the last counts
    second = summaries(server)[1]
    assert counts(second) == {("dark-mode", None, "CACHED"): 1}
    assert second["eventData"]["startDate"] >= data["endDate"]


def test_the_periodic_flush_carries_a_summary(server: FlagKitServer) -> None:
    client = loopback_client(
        server.base_url, api_key=server.api_key, event_flush_interval=0.1, evaluation_summaries=True
    )
    client.initialize()
    client.get_string_value("banner", "")
    wait_until(lambda: summaries(server), message="a summary from the periodic flush")
    assert counts(summaries(server)[0]) == {("banner", None, "CACHED"): 1}


def test_summaries_are_opt_in_and_never_counted_offline(server: FlagKitServer) -> None:
    off = loopback_client(server.base_url, api_key=server.api_key)
    off.initialize()
    off.get_boolean_value("dark-mode", False)
    off.get_string_value("tier", "", EvaluationContext(user_id="ann"))
    assert off.flush(5).ok
    assert summaries(server) == []
    offline = loopback_client(
        server.base_url,
        api_key=server.api_key,
        offline=True,
        bootstrap={"dark-mode": True},
        evaluation_summaries=True,
    )
    offline.initialize()
    offline.get_boolean_value("dark-mode", False)
    offline.flush(5)
    assert offline.event_stats.accepted == 0


def test_concurrent_lookups_lose_no_count() -> None:
    counter = EvaluationCounter()
    hits = counter.fast

    def work() -> None:
        for _ in range(20_000):
            next(hits.get("k") or counter.fast_counter("k"))
            counter.count("t", "v", "RULE_MATCH")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    data = counter.take()
    assert data is not None
    got = {(c["flagKey"], c["reason"]): c["count"] for c in data["counts"]}
    assert got == {("k", "CACHED"): 80_000, ("t", "RULE_MATCH"): 80_000}
    assert counter.take() is None


def test_distinct_counters_are_bounded() -> None:
    counter = EvaluationCounter()
    for index in range(MAX_COUNTERS + 50):
        counter.count(f"flag-{index}", None, "FLAG_NOT_FOUND")
    data = counter.take()
    assert data is not None and len(data["counts"]) == MAX_COUNTERS
