"""Event delivery over real HTTP: the queue, the SDK's HttpClient and the local server.

Batching by size and by time, flush/close, ordering, the signed canonical body, and outages
(forced 503s, then connection refused) with every event recorded exactly once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from flagkit.testing import FlagKitServer
from flagkit.types.context import EvaluationContext
from flagkit.types.events import FlushResult
from flagkit.utils.signing import canonical_json, key_id, sign_body
from tests.support import wait_until
from tests.support.events import Delivery, deliveries

LOGGER = logging.getLogger("flagkit.events")


@pytest.fixture
def server() -> Iterator[FlagKitServer]:
    with FlagKitServer(max_events=50_000) as running:
        yield running


@pytest.fixture
def delivery() -> Iterator[Delivery]:
    yield from deliveries()


def numbers(events: list[dict[str, Any]]) -> list[int]:
    return [e["eventData"]["i"] for e in events]


def test_batch_size_triggers_one_post(server: FlagKitServer, delivery: Delivery) -> None:
    """Reaching batch_size sends the batch in one POST without waiting for the interval."""
    queue = delivery.queue(delivery.http(server), batch_size=5)
    queue.start()
    for i in range(5):
        queue.track("clicked", {"i": i})
    events = server.wait_for_events(5, timeout=5)
    assert numbers(events) == [0, 1, 2, 3, 4]
    (request,) = server.requests_to("events")
    assert len(request.json()["events"]) == 5


def test_flush_interval_sends_a_partial_batch(server: FlagKitServer, delivery: Delivery) -> None:
    """Below batch_size, events still arrive once the flush interval elapses."""
    queue = delivery.queue(delivery.http(server), batch_size=100, flush_interval=0.1)
    queue.start()
    queue.track("clicked", {"i": 0})
    queue.track("clicked", {"i": 1})
    assert numbers(server.wait_for_events(2, timeout=5)) == [0, 1]
    assert len(server.requests_to("events")) == 1


def test_order_is_kept_across_many_batches(server: FlagKitServer, delivery: Delivery) -> None:
    """Events reach the server in the order they were tracked, across many POSTs."""
    queue = delivery.queue(delivery.http(server), batch_size=7, max_batch_events=10)
    queue.start()
    for i in range(60):
        queue.track("step", {"i": i})
    assert queue.flush(timeout=10).ok
    assert numbers(server.events()) == list(range(60))
    assert all(len(r.json()["events"]) <= 10 for r in server.requests_to("events"))


def test_flush_and_close_deliver_and_report(server: FlagKitServer, delivery: Delivery) -> None:
    """flush() and close() deliver what is queued and say how much they sent."""
    queue = delivery.queue(delivery.http(server), batch_size=1000)
    for i in range(3):
        queue.track("a", {"i": i})
    assert queue.flush(timeout=5) == FlushResult(sent=3, pending=0, error=None)
    queue.track("a", {"i": 3})
    assert queue.close(timeout=5) == FlushResult(sent=1, pending=0, error=None)
    assert numbers(server.events()) == [0, 1, 2, 3]
    assert queue.stats.sent == 4 and queue.stats.dropped == 0


def test_wire_body_is_the_signed_canonical_json(delivery: Delivery) -> None:
    """The POST body is the exact canonical JSON that was signed; a verifying server takes it."""
    with FlagKitServer(verify_signatures=True) as server:
        queue = delivery.queue(delivery.http(server))
        queue.set_environment_id("env-7")
        context = EvaluationContext(
            user_id="u-1", email="a@example.com", private_attributes=["email"]
        )
        queue.track(
            "purchase", {"amount": 9.99, "currency": "EUR", "note": "caf\u00e9"}, context=context
        )
        assert queue.flush(timeout=5).ok
        (event,) = server.events()
        (request,) = server.requests_to("events")
    assert request.status == 200
    assert request.body == canonical_json(request.json()).encode("ascii")
    signature = sign_body(
        request.body.decode("ascii"), server.api_key, int(request.headers["X-Timestamp"])
    )
    assert request.headers["X-Signature"] == signature
    assert request.headers["X-Key-Id"] == key_id(server.api_key)
    assert event["eventType"] == "purchase" and event["sdkLanguage"] == "python"
    assert event["environmentId"] == "env-7"
    assert event["eventData"] == {"amount": 9.99, "currency": "EUR", "note": "caf\u00e9"}
    assert event["context"] == {"userId": "u-1"}
    assert uuid.UUID(event["eventId"]).version == 4


def test_offline_queue_sends_nothing(server: FlagKitServer, delivery: Delivery) -> None:
    """An offline queue never calls the server, even on flush() and close()."""
    queue = delivery.queue(delivery.http(server), offline=True, batch_size=1, flush_interval=0.02)
    queue.start()
    queue.track("a")
    assert queue.flush(timeout=5).pending == 1
    queue.close(timeout=5)
    assert server.requests_to("events") == []


def test_outage_with_503s_then_refused_connections_loses_nothing(delivery: Delivery) -> None:
    """503s, then a dead server, then a new one on the same port: every event arrives once."""
    first = FlagKitServer().start()
    try:
        port = first.port
        http = delivery.http(first)
        queue = delivery.queue(http, batch_size=5, flush_interval=0.05)
        queue.start()
        first.inject_fault("events", statuses=[503] * 500)
        for i in range(40):
            queue.track("during-outage", {"i": i})
        wait_until(lambda: queue.stats.failed_batches >= 2, timeout=10.0)
        assert all(r.status == 503 for r in first.requests_to("events"))
    finally:
        first.stop()  # from here on connections are refused
    failed = queue.stats.failed_batches
    wait_until(lambda: queue.stats.failed_batches >= failed + 2, timeout=10.0)
    assert first.events() == []
    assert queue.stats.sent == 0
    with FlagKitServer(port=port, max_events=50_000) as second:
        events = second.wait_for_events(40, timeout=15)
        assert queue.flush(timeout=10).ok
        events = second.events()
        stats = second.event_stats
    assert sorted(numbers(events)) == list(range(40))
    assert len({e["eventId"] for e in events}) == 40
    assert stats["total"] == 40
    assert queue.stats.sent == 40 and queue.stats.dropped == 0


def test_a_batch_delivered_twice_is_recorded_once(
    server: FlagKitServer, delivery: Delivery
) -> None:
    """A POST that timed out client-side but landed is resent; the server keeps one copy."""
    http = delivery.http(server, timeout=0.3, retries=3)
    queue = delivery.queue(http, batch_size=1000)
    server.inject_fault("events", latency=0.8, count=1)
    for i in range(5):
        queue.track("once", {"i": i})
    assert queue.flush(timeout=10).sent == 5
    wait_until(
        lambda: server.event_stats["duplicates"] == 5, timeout=10.0
    )  # the slow first copy landed too
    events = server.events()
    assert numbers(events) == [0, 1, 2, 3, 4]
    assert len(server.requests_to("events")) >= 2


def test_a_failed_send_warning_names_the_server_without_a_doubled_prefix(
    delivery: Delivery, caplog: pytest.LogCaptureFixture
) -> None:
    """The send-failure warning names the request and the server's URL, carries no key, and
    does not repeat the logger's name (``flagkit.events: flagkit: ...``)."""
    server = FlagKitServer().start()
    try:
        server.inject_fault("events", statuses=[503] * 100)
        http = delivery.http(server, retries=0)
        queue = delivery.queue(http, batch_size=1, flush_interval=0.05)
        queue.start()
        with caplog.at_level(logging.WARNING, logger="flagkit"):
            queue.track("x", {"i": 1})
            wait_until(lambda: queue.stats.failed_batches >= 1, timeout=10.0)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings
        message = warnings[0].getMessage()
        assert not message.lower().startswith("flagkit"), message
        assert f"POST {server.base_url}/sdk/events/batch" in message, message
        assert server.api_key not in caplog.text
    finally:
        server.stop()
