"""Hostile servers and corrupt event logs: one bad answer or record costs only itself.

Every test uses real parts: the SDK's ``HttpClient`` against the local ``FlagKitServer`` (a
wrong key, injected 4xx answers), and real event-log files written with the corruption in
them (a line of 100,000 ``[``, invalid UTF-8, a torn line, ``NaN``).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flagkit.core.events.log import LOG_FILE_NAME
from flagkit.errors import AuthenticationError, FlagKitError, StorageError
from flagkit.testing import FlagKitServer
from tests.support.events import Delivery, deliveries

WRONG_KEY = "sdk_not_a_key_this_server_knows"


@pytest.fixture
def server() -> Iterator[FlagKitServer]:
    with FlagKitServer(max_events=10_000) as running:
        yield running


@pytest.fixture
def delivery() -> Iterator[Delivery]:
    yield from deliveries()


class Errors:
    """An ``on_error`` callback that records what it is given."""

    def __init__(self) -> None:
        self.seen: list[Exception] = []
        self.lock = threading.Lock()

    def __call__(self, error: Exception) -> None:
        with self.lock:
            self.seen.append(error)


def numbers(events: list[dict[str, Any]]) -> list[int]:
    return [e["eventData"]["i"] for e in events]


def wire_record(event_id: str, i: int, data: Any = None) -> dict[str, Any]:
    """A full log record of an unsent event whose owner is gone (``owner: null``)."""
    return {
        "id": event_id,
        "type": "old",
        "timestamp": 1735689600000,
        "status": "pending",
        "owner": None,
        "event": {
            "eventType": "old",
            "timestamp": "2025-01-01T00:00:00+00:00",
            "sdkVersion": "1.0.0",
            "sdkLanguage": "python",
            "sessionId": "dead-session",
            "environmentId": "env-1",
            "eventData": {"i": i} if data is None else data,
            "eventId": event_id,
        },
    }


# --- a rejected key -------------------------------------------------------------------------


def test_rejected_key_stops_sending_and_drops_without_persistence(
    server: FlagKitServer, delivery: Delivery
) -> None:
    """After a 401 no further POST is made (no retry loop, none at close); events are
    dropped and counted as rejected; on_error hears about it once."""
    errors = Errors()
    queue = delivery.queue(
        delivery.http(server, api_key=WRONG_KEY), batch_size=1000, on_error=errors
    )
    for i in range(30):
        queue.track("e", {"i": i})
    first = queue.flush(timeout=5)
    assert isinstance(first.error, AuthenticationError)
    assert first.sent == 0 and first.pending == 0
    for i in range(10):
        queue.track("e", {"i": i})
    second = queue.flush(timeout=5)
    assert isinstance(second.error, AuthenticationError) and second.sent == 0
    closed = queue.close(timeout=5)
    assert closed.sent == 0 and closed.pending == 0
    posts = server.requests_to("events")
    assert len(posts) == 1 and posts[0].status == 401
    assert server.events() == []
    stats = queue.stats
    assert (stats.accepted, stats.sent, stats.dropped, stats.rejected) == (40, 0, 40, 40)
    assert stats.failed_batches == 0
    assert len(errors.seen) == 1 and isinstance(errors.seen[0], AuthenticationError)


def test_rejected_key_keeps_persisted_events_for_a_process_with_a_good_key(
    server: FlagKitServer, delivery: Delivery, tmp_path: Path
) -> None:
    """With persistence, events refused by a rejected key stay in the log, unsent, and a
    later queue with a valid key delivers every one of them."""
    store = str(tmp_path / "events")
    errors = Errors()
    rejected = delivery.queue(
        delivery.http(server, api_key=WRONG_KEY),
        batch_size=1000,
        persist=True,
        storage_path=store,
        on_error=errors,
    )
    for i in range(25):
        rejected.track("e", {"i": i})
    result = rejected.flush(timeout=5)
    assert isinstance(result.error, AuthenticationError) and result.pending == 25
    closed = rejected.close(timeout=5)
    assert closed.pending == 25
    assert len(server.requests_to("events")) == 1
    assert rejected.stats.dropped == 0 and rejected.stats.persisted == 25
    assert len(errors.seen) == 1

    good = delivery.queue(delivery.http(server), persist=True, storage_path=store)
    good.start()
    server.wait_for_events(25, timeout=10)
    assert good.flush(timeout=5).pending == 0
    assert sorted(numbers(server.events())) == list(range(25))
    assert good.stats.recovered == 25


# --- permanent client errors ----------------------------------------------------------------


def test_a_batch_answered_400_is_dropped_counted_reported_and_not_retried(
    server: FlagKitServer, delivery: Delivery
) -> None:
    """A 400 drops that batch only; the next batch goes through."""
    errors = Errors()
    queue = delivery.queue(delivery.http(server), batch_size=1000, on_error=errors)
    server.inject_fault("events", statuses=[400])
    for i in range(5):
        queue.track("e", {"i": i})
    result = queue.flush(timeout=5)
    assert isinstance(result.error, FlagKitError) and result.error.status_code == 400
    assert result.pending == 0
    for i in range(5, 8):
        queue.track("e", {"i": i})
    assert queue.flush(timeout=5).ok
    assert numbers(server.events()) == [5, 6, 7]
    assert [r.status for r in server.requests_to("events")] == [400, 200]
    stats = queue.stats
    assert (stats.sent, stats.dropped, stats.rejected, stats.failed_batches) == (3, 5, 5, 0)
    assert len(errors.seen) == 1 and errors.seen[0] is result.error


def test_a_403_rejects_the_key_nothing_more_is_sent(
    server: FlagKitServer, delivery: Delivery
) -> None:
    """A 403 (not a signature problem) means the key may not send events: the batch is
    dropped and counted, reported once, and no later event is posted, not even at close."""
    errors = Errors()
    queue = delivery.queue(delivery.http(server), batch_size=1000, on_error=errors)
    server.inject_fault("events", statuses=[403])
    for i in range(4):
        queue.track("e", {"i": i})
    result = queue.flush(timeout=5)
    assert isinstance(result.error, AuthenticationError) and result.pending == 0
    queue.track("e", {"i": 4})
    assert queue.close(timeout=5).pending == 0
    assert [r.status for r in server.requests_to("events")] == [403]
    assert queue.stats.rejected == 5 and queue.stats.dropped == 5
    assert len(errors.seen) == 1


def test_a_refused_signature_drops_each_batch_but_keeps_sending() -> None:
    """A verifying server answers 403 SECURITY_SIGNATURE_INVALID to unsigned batches: each
    batch is dropped, counted and reported once; it is not a rejected key."""
    errors = Errors()
    with FlagKitServer(verify_signatures=True) as server:
        made = Delivery()
        try:
            http = made.http(server, enable_request_signing=False)
            queue = made.queue(http, batch_size=1000, on_error=errors)
            for i in range(3):
                queue.track("e", {"i": i})
            assert queue.flush(timeout=5).error is not None
            for i in range(3, 5):
                queue.track("e", {"i": i})
            assert queue.flush(timeout=5).error is not None
            assert [r.status for r in server.requests_to("events")] == [403, 403]
            assert server.events() == []
            assert queue.stats.rejected == 5 and queue.stats.failed_batches == 0
            assert len(errors.seen) == 2
        finally:
            made.close()


def test_server_errors_are_still_retried(server: FlagKitServer, delivery: Delivery) -> None:
    """A 500 and a 429 are transient: the batch is kept and delivered afterwards."""
    queue = delivery.queue(delivery.http(server, retries=1), batch_size=1000)
    server.inject_fault("events", statuses=[500, 429])
    for i in range(3):
        queue.track("e", {"i": i})
    assert queue.flush(timeout=5).error is not None
    queue.start()  # retries on its own (the HTTP client waits out the 429's Retry-After)
    server.wait_for_events(3, timeout=10)
    assert queue.flush(timeout=5).ok
    assert numbers(server.events()) == [0, 1, 2]
    assert [r.status for r in server.requests_to("events")] == [500, 429, 200]
    assert queue.stats.rejected == 0 and queue.stats.failed_batches >= 2


# --- corrupt event logs -----------------------------------------------------------------------


def test_unreadable_log_lines_are_skipped_and_the_thread_survives(
    server: FlagKitServer, delivery: Delivery, tmp_path: Path
) -> None:
    """A line of 100,000 '[' (RecursionError in the reader), invalid UTF-8 and a torn line
    are skipped and counted; the readable orphan and all 50 new events are delivered."""
    store = tmp_path / "events"
    store.mkdir()
    good_id = str(uuid.uuid4())
    with (store / LOG_FILE_NAME).open("wb") as log:
        log.write(b"[" * 100_000 + b"\n")
        log.write(b'{"id": "x", "type": "t", "status": "pending", "\xff\xfe": 1}\n')
        log.write(json.dumps(wire_record(good_id, 1000)).encode() + b"\n")
        log.write(b'{"id": "y", "type": "t", "status": "pen')  # torn by a crash
    errors = Errors()
    queue = delivery.queue(
        delivery.http(server),
        batch_size=10,
        persist=True,
        storage_path=str(store),
        on_error=errors,
    )
    queue.start()
    for i in range(50):
        queue.track("e", {"i": i})
    assert queue.flush(timeout=10).pending == 0
    server.wait_for_events(51, timeout=10)
    assert sorted(numbers(server.events())) == [*range(50), 1000]
    stats = queue.stats
    assert stats.unreadable == 3 and stats.recovered == 1 and stats.sent == 51
    assert any(t.name == "flagkit-events" for t in threading.enumerate())
    assert errors.seen == []


def test_records_with_nan_or_infinity_are_dropped_and_the_rest_delivered(
    server: FlagKitServer, delivery: Delivery, tmp_path: Path
) -> None:
    """NaN and Infinity (read by json.loads, refused by the canonical encoder) cost only
    their own records: they are dropped and counted, never claimed, never sent."""
    store = tmp_path / "events"
    store.mkdir()
    ids = [str(uuid.uuid4()) for _ in range(4)]
    records = [
        wire_record(ids[0], 0),
        wire_record(ids[1], 1, data={"i": 1, "amount": float("nan")}),
        wire_record(ids[2], 2),
        wire_record(ids[3], 3, data={"i": 3, "amount": float("inf")}),
    ]
    (store / LOG_FILE_NAME).write_text("".join(json.dumps(r) + "\n" for r in records))
    assert "NaN" in (store / LOG_FILE_NAME).read_text()
    queue = delivery.queue(
        delivery.http(server), batch_size=10, persist=True, storage_path=str(store)
    )
    queue.start()
    for i in range(10, 15):
        queue.track("e", {"i": i})
    assert queue.flush(timeout=10).pending == 0
    server.wait_for_events(7, timeout=10)
    assert sorted(numbers(server.events())) == [0, 2, 10, 11, 12, 13, 14]
    stats = queue.stats
    assert (stats.recovered, stats.dropped, stats.unreadable) == (2, 2, 2)
    queue.close(timeout=5)
    remaining = (store / LOG_FILE_NAME).read_text()
    assert "NaN" not in remaining and "Infinity" not in remaining


def test_an_unusable_storage_path_falls_back_to_memory(
    server: FlagKitServer, delivery: Delivery, tmp_path: Path
) -> None:
    """A path the OS refuses outright (a NUL byte: ValueError, not OSError) is reported as a
    StorageError and the events are delivered from memory."""
    errors = Errors()
    queue = delivery.queue(
        delivery.http(server),
        batch_size=10,
        persist=True,
        storage_path=str(tmp_path / "bad\0path"),
        on_error=errors,
    )
    queue.start()
    for i in range(12):
        queue.track("e", {"i": i})
    assert queue.flush(timeout=10).ok
    assert numbers(server.events()) == list(range(12))
    assert len(errors.seen) == 1 and isinstance(errors.seen[0], StorageError)
