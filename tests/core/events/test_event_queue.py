"""The event queue's mechanics: validation at the call site, batching, ordering, bounds.

The sender here is a plain function recording batches: it is the queue's own seam (what the
client wires to ``HttpClient.post_json``); delivery over real HTTP is covered in
``test_event_delivery.py``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from flagkit.core.events import EventQueue
from flagkit.errors import EventError, FlagKitError, NetworkError, SecurityError
from flagkit.types.context import EvaluationContext
from flagkit.types.events import EventStats, FlushResult
from flagkit.utils.security import find_pii
from tests.support import run_in_fork, wait_until
from tests.support.events import MakeQueue, Recorder, event_queues

LOGGER = logging.getLogger("flagkit.events")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_queue(recorder: Recorder) -> Iterator[MakeQueue]:
    yield from event_queues(
        recorder,
        session_id="session-1",
        flush_interval=60.0,
        retry_backoff_base=0.01,
        retry_backoff_max=0.05,
    )


# --- the wire event ------------------------------------------------------------------------


def test_wire_event_has_protocol_fields_id_and_stripped_context(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """An event carries the §10.2 fields, a UUID4 eventId, UTC ISO time and a stripped context."""
    queue = make_queue()
    queue.set_environment_id("env-42")
    context = EvaluationContext(
        user_id="u-1",
        email="a@example.com",
        custom={"plan": "pro", "ssn": "x"},
        private_attributes=["email", "custom.ssn"],
    )
    before = datetime.now(timezone.utc)
    queue.track("purchase", {"amount": 9.5}, context=context)
    queue.track("ping")
    assert queue.flush(timeout=5).ok
    first, second = recorder.events
    assert list(first) == [
        "eventType",
        "timestamp",
        "sdkVersion",
        "sdkLanguage",
        "sessionId",
        "environmentId",
        "eventData",
        "eventId",
        "context",
    ]
    assert first["eventType"] == "purchase"
    assert first["sdkVersion"] == "9.9.9"
    assert first["sdkLanguage"] == "python"
    assert first["sessionId"] == "session-1"
    assert first["environmentId"] == "env-42"
    assert first["eventData"] == {"amount": 9.5}
    assert uuid.UUID(first["eventId"]).version == 4
    stamp = datetime.fromisoformat(first["timestamp"])
    assert stamp.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(timezone.utc)
    assert first["context"] == {"userId": "u-1", "custom": {"plan": "pro"}}
    assert "eventData" not in second and "context" not in second
    assert first["eventId"] != second["eventId"]


def test_event_data_is_copied_at_the_call_site(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """Changing the caller's dict after track() does not change the queued event."""
    queue = make_queue()
    flat = {"step": 1}
    nested = {"cart": {"items": [1, 2]}, "tags": ("a", "b")}
    queue.track("checkout", flat)
    queue.track("checkout", nested)
    flat["step"] = 2
    nested["cart"]["items"].append(3)  # type: ignore[index]
    assert queue.flush(timeout=5).ok
    assert recorder.events[0]["eventData"] == {"step": 1}
    assert recorder.events[1]["eventData"] == {"cart": {"items": [1, 2]}, "tags": ["a", "b"]}


def test_context_that_cannot_be_serialised_is_left_out_not_the_event(
    make_queue: Callable[..., EventQueue], recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """A context whose custom values are not JSON is dropped from the event, with a warning."""
    queue = make_queue()
    queue.track("a", context=EvaluationContext(user_id="u", custom={"when": object()}))
    with caplog.at_level(logging.WARNING, logger="flagkit.events"):
        assert queue.flush(timeout=5).ok
    assert "context" not in recorder.events[0]
    assert "context cannot be sent" in caplog.text


# --- batching, flushing, ordering ------------------------------------------------------------


def test_reaching_batch_size_sends_on_the_events_thread(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """The batch_size-th event wakes the events thread, which sends; track() never sends."""
    queue = make_queue(batch_size=5)
    queue.start()
    for i in range(4):
        queue.track("e", {"i": i})
    assert recorder.events == []
    queue.track("e", {"i": 4})
    wait_until(lambda: len(recorder.events) == 5)
    assert recorder.numbers() == [0, 1, 2, 3, 4]
    assert set(recorder.threads) == {"flagkit-events-send"}


def test_flush_interval_sends_a_partial_batch(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """Fewer events than batch_size still go out when the flush interval elapses."""
    queue = make_queue(batch_size=100, flush_interval=0.05)
    queue.start()
    queue.track("e", {"i": 0})
    queue.track("e", {"i": 1})
    wait_until(lambda: len(recorder.events) == 2)
    assert recorder.numbers() == [0, 1]


def test_flush_reports_what_it_sent(make_queue: Callable[..., EventQueue]) -> None:
    """flush() waits for delivery and says how many events it sent and that none are left."""
    queue = make_queue(batch_size=1000)
    for i in range(7):
        queue.track("e", {"i": i})
    assert queue.flush(timeout=5) == FlushResult(sent=7, pending=0, error=None)
    assert queue.flush(timeout=5) == FlushResult(sent=0, pending=0, error=None)


def test_large_backlog_goes_in_bounded_batches_in_order(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """A backlog bigger than max_batch_events is sent in several POSTs, order preserved."""
    queue = make_queue(batch_size=10_000, max_queue_size=10_000, max_batch_events=100)
    for i in range(350):
        queue.track("e", {"i": i})
    assert queue.flush(timeout=5).sent == 350
    assert [len(b) for b in recorder.batches] == [100, 100, 100, 50]
    assert recorder.numbers() == list(range(350))


def test_events_from_many_threads_are_all_delivered_once(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """Concurrent track() calls lose nothing and duplicate nothing."""
    queue = make_queue(batch_size=25, max_queue_size=10_000)
    queue.start()

    def worker(offset: int) -> None:
        for i in range(500):
            queue.track("e", {"i": offset + i})

    threads = [threading.Thread(target=worker, args=(k * 1000,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert queue.flush(timeout=10).ok
    numbers = recorder.numbers()
    assert sorted(numbers) == sorted(k * 1000 + i for k in range(4) for i in range(500))
    assert len({e["eventId"] for e in recorder.events}) == 2000
    for k in range(4):  # each thread's own events keep their order
        mine = [n for n in numbers if k * 1000 <= n < (k + 1) * 1000]
        assert mine == sorted(mine)
    assert queue.stats.accepted == 2000 and queue.stats.sent == 2000


def test_track_does_not_wait_for_a_stuck_sender(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """While a POST hangs, track() keeps returning at once (it never touches the network)."""
    recorder.gate.clear()
    queue = make_queue(batch_size=1, max_queue_size=10_000)
    queue.start()
    queue.track("e", {"i": 0})
    assert recorder.entered.wait(5)
    for i in range(1, 2001):
        queue.track("e", {"i": i})
    assert not recorder.gate.is_set()  # the sender is still stuck: track() did not wait
    recorder.gate.set()
    assert queue.flush(timeout=10).ok
    assert recorder.numbers() == list(range(2001))


# --- failures and retries ------------------------------------------------------------------


def test_failed_batch_is_retried_in_front_in_order(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """After a failed POST the batch goes back to the front: order is kept, nothing repeats."""
    recorder.fail_next = 2
    queue = make_queue(batch_size=3)
    queue.start()
    for i in range(10):
        queue.track("e", {"i": i})
    wait_until(lambda: queue.stats.sent == 10)
    assert recorder.numbers() == list(range(10))
    assert queue.stats.failed_batches == 2


def test_flush_reports_a_failure_and_keeps_the_events(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """flush() returns the send error and the pending count; a later flush sends them at once."""
    recorder.fail_always = True
    queue = make_queue(batch_size=100, retry_backoff_base=30.0, retry_backoff_max=60.0)
    for i in range(4):
        queue.track("e", {"i": i})
    result = queue.flush(timeout=5)
    assert result.sent == 0 and result.pending == 4
    assert isinstance(result.error, NetworkError)
    assert result.error.code == "NETWORK_SERVICE_UNAVAILABLE"
    recorder.fail_always = False
    assert queue.flush(timeout=5) == FlushResult(sent=4, pending=0, error=None)
    assert recorder.numbers() == [0, 1, 2, 3]


def test_a_sender_bug_counts_as_a_failed_batch(
    make_queue: Callable[..., EventQueue], caplog: pytest.LogCaptureFixture
) -> None:
    """A sender raising a non-FlagKit error is logged with its traceback and retried."""
    calls: list[int] = []

    def buggy(events: list[dict[str, Any]]) -> None:
        calls.append(len(events))
        if len(calls) == 1:
            raise KeyError("oops")

    queue = make_queue(
        sender=buggy, batch_size=100, retry_backoff_base=30.0, retry_backoff_max=60.0
    )
    queue.track("e")
    with caplog.at_level(logging.ERROR, logger="flagkit.events"):
        result = queue.flush(timeout=5)
    assert isinstance(result.error, KeyError)
    assert "non-FlagKit error" in caplog.text
    assert queue.flush(timeout=5).sent == 1
    assert queue.stats.failed_batches == 1


def test_flush_times_out_with_a_clear_error(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """A flush that misses its deadline returns EVENT_SEND_FAILED and the pending count."""
    recorder.gate.clear()
    queue = make_queue(batch_size=100)
    queue.track("e")
    result = queue.flush(timeout=0.1)
    assert isinstance(result.error, FlagKitError)
    assert result.error.code == "EVENT_SEND_FAILED"
    assert "timed out" in str(result.error)
    assert result.pending == 1 and result.sent == 0
    recorder.gate.set()
    wait_until(lambda: queue.stats.sent == 1)


# --- bounds ----------------------------------------------------------------------------------


def test_full_queue_drops_the_oldest_and_counts_it(
    make_queue: Callable[..., EventQueue], recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """Past max_queue_size the oldest events are dropped, counted and logged."""
    queue = make_queue(batch_size=100, max_queue_size=5)
    with caplog.at_level(logging.WARNING, logger="flagkit.events"):
        for i in range(8):
            queue.track("e", {"i": i})
    assert queue.stats.accepted == 8
    assert queue.stats.dropped == 3
    assert "event queue full" in caplog.text
    result = queue.flush(timeout=5)
    assert recorder.numbers() == [3, 4, 5, 6, 7]
    assert result.sent == 5


def test_queue_bound_holds_while_a_batch_is_in_flight(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """Events piling up behind a stuck POST are bounded: the oldest queued ones are dropped."""
    recorder.gate.clear()
    queue = make_queue(batch_size=1, max_queue_size=10)
    queue.start()
    queue.track("e", {"i": 0})
    assert recorder.entered.wait(5)
    for i in range(1, 21):
        queue.track("e", {"i": i})
    wait_until(lambda: queue.stats.dropped == 11)
    recorder.gate.set()
    assert queue.flush(timeout=5).pending == 0
    assert recorder.numbers() == [0, *range(12, 21)]
    assert queue.stats == EventStats(
        accepted=21, sent=10, dropped=11, persisted=0, recovered=0, failed_batches=0
    )


# --- lifecycle --------------------------------------------------------------------------------


def test_close_delivers_is_idempotent_and_later_tracks_are_dropped(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """close() sends what is queued, returns the same result twice, then drops new events."""
    queue = make_queue(batch_size=100)
    queue.start()
    for i in range(3):
        queue.track("e", {"i": i})
    first = queue.close(timeout=5)
    assert first == FlushResult(sent=3, pending=0, error=None)
    assert queue.close(timeout=5) == first
    queue.track("e", {"i": 99})  # no error: just dropped and counted
    assert queue.stats.dropped == 1
    assert recorder.numbers() == [0, 1, 2]
    with pytest.raises(RuntimeError, match="closed"):
        queue.start()
    assert not any(t.name.startswith("flagkit-events") for t in threading.enumerate())


def test_close_without_start_still_delivers(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """Events tracked on a never-started queue are sent by close()."""
    queue = make_queue()
    queue.track("e", {"i": 1})
    assert queue.close(timeout=5).sent == 1
    assert recorder.numbers() == [1]


def test_close_drops_undeliverable_events_without_persistence(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """Without persistence, close() gives up on events it cannot send and counts them."""
    recorder.fail_always = True
    queue = make_queue()
    queue.track("e")
    queue.track("e")
    result = queue.close(timeout=5)
    assert result.pending == 2 and isinstance(result.error, NetworkError)
    assert queue.stats.dropped == 2 and queue.stats.sent == 0


def test_offline_queue_never_sends_and_drops_on_close(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """Offline without persistence: nothing is sent; close() drops the events and counts them."""
    queue = make_queue(offline=True, batch_size=1, flush_interval=0.01)
    queue.start()
    queue.track("e")
    queue.track("e")
    assert queue.flush(timeout=5) == FlushResult(sent=0, pending=2, error=None)
    assert queue.close(timeout=5).pending == 2
    assert recorder.batches == [] and recorder.threads == []
    assert queue.stats.dropped == 2


def test_after_fork_the_child_does_not_resend_the_parents_events(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """A forked child starts empty with working threads; the parent keeps its own events."""
    queue = make_queue(batch_size=100)
    queue.start()
    queue.track("e", {"i": 1})
    queue.track("e", {"i": 2})

    def child() -> dict[str, Any]:
        queue.after_fork()
        recorder.batches.clear()
        queue.track("e", {"i": 3})
        result = queue.flush(timeout=5)
        return {
            "sent": result.sent,
            "numbers": recorder.numbers(),
            "accepted": queue.stats.accepted,
            "threads": sorted(t.name for t in threading.enumerate() if t.name != "MainThread"),
        }

    report = run_in_fork(child)
    assert report["numbers"] == [3] and report["sent"] == 1 and report["accepted"] == 1
    assert "flagkit-events" in report["threads"]
    assert queue.flush(timeout=5).sent == 2
    assert recorder.numbers() == [1, 2]


def test_stats_are_a_frozen_snapshot(make_queue: Callable[..., EventQueue]) -> None:
    """stats returns an immutable snapshot that later activity does not change."""
    queue = make_queue()
    queue.track("e")
    snapshot = queue.stats
    queue.track("e")
    assert snapshot.accepted == 1 and queue.stats.accepted == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.accepted = 5  # type: ignore[misc]


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event_type",
    ["", "x" * 129, "has space", "emoji-\u2603", "new\nline", "slash/type", None, 42, ["a"]],
)
def test_invalid_event_type_raises_at_the_call_site(
    make_queue: Callable[..., EventQueue], event_type: Any
) -> None:
    """An event type outside 1..128 of [a-zA-Z0-9._-] raises EVENT_INVALID_TYPE (a ValueError)."""
    queue = make_queue()
    with pytest.raises(EventError) as caught:
        queue.track(event_type)
    assert caught.value.code == "EVENT_INVALID_TYPE"
    assert isinstance(caught.value, ValueError)
    assert queue.stats.accepted == 0


class Opaque:
    pass


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (["not", "a", "dict"], "must be a dict"),
        ("text", "must be a dict"),
        ({1: "int key"}, "keys must be strings"),
        ({"when": Opaque()}, "Opaque is not JSON-serialisable"),
        ({"tags": {"a", "b"}}, "set is not JSON-serialisable"),
        ({"raw": b"bytes"}, "bytes is not JSON-serialisable"),
        ({"score": math.nan}, "not a finite number"),
        ({"deep": {"list": [1, math.inf]}}, "event data['deep']['list'][1]: inf is not a finite"),
        ({"big": 2**5000}, "too large"),
        ({"blob": "x" * 40_000}, "larger than the limit of 32768"),
        ({"many": [None] * 1_000_000}, "larger than the limit"),
        ({"k" * 40_000: 1}, "larger than the limit"),
    ],
)
def test_invalid_event_data_raises_at_the_call_site(
    make_queue: Callable[..., EventQueue], data: Any, fragment: str
) -> None:
    """Non-JSON or oversized data raises EVENT_INVALID_DATA with a message saying why."""
    queue = make_queue()
    with pytest.raises(EventError) as caught:
        queue.track("e", data)
    assert caught.value.code == "EVENT_INVALID_DATA"
    assert fragment in str(caught.value)
    assert queue.stats.accepted == 0


def test_deep_nesting_is_refused(make_queue: Callable[..., EventQueue]) -> None:
    """Data nested deeper than 32 levels is refused with a clear message."""
    data: dict[str, Any] = {}
    node = data
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(EventError, match="nested deeper than 32"):
        make_queue().track("e", data)


def test_context_of_the_wrong_type_is_refused(make_queue: Callable[..., EventQueue]) -> None:
    """Passing something other than an EvaluationContext as context raises EVENT_INVALID_DATA."""
    with pytest.raises(EventError, match="EvaluationContext"):
        make_queue().track("e", context={"userId": "u"})  # type: ignore[arg-type]


def test_valid_edge_cases_are_accepted(
    make_queue: Callable[..., EventQueue], recorder: Recorder
) -> None:
    """Boundary-valid input is accepted: 128-char type, nesting, big ints, data near the limit."""
    queue = make_queue()
    queue.track("a" * 128)
    queue.track("A.b_c-9", {"nested": {"list": [1, 2.5, None, True, "s"]}, "n": 10**30})
    queue.track("e", {"blob": "x" * 30_000})
    queue.track("e", {})
    assert queue.flush(timeout=5).sent == 4
    assert recorder.events[1]["eventData"]["n"] == 10**30
    assert "eventData" not in recorder.events[3]


def test_lenient_mode_logs_and_drops_bad_input(
    make_queue: Callable[..., EventQueue], recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """With lenient=True bad input is logged and counted as dropped instead of raising."""
    queue = make_queue(lenient=True)
    with caplog.at_level(logging.WARNING, logger="flagkit.events"):
        queue.track("bad type")
        queue.track("e", {"x": math.nan})
        queue.track("good", {"x": 1})
    assert "EVENT_INVALID_TYPE" in caplog.text
    assert queue.stats.dropped == 2 and queue.stats.accepted == 1
    assert queue.flush(timeout=5).sent == 1
    assert [e["eventType"] for e in recorder.events] == ["good"]


def _pii(data: Any, data_type: str) -> list[str]:
    return find_pii(data)


def test_strict_pii_refuses_the_event_at_the_call_site(
    make_queue: Callable[..., EventQueue],
) -> None:
    """In strict PII mode, data with PII raises SECURITY_PII_DETECTED naming the field."""
    queue = make_queue(strict_pii=True, pii_check=_pii)
    with pytest.raises(SecurityError) as caught:
        queue.track("signup", {"plan": "pro", "user": {"email": "a@example.com"}})
    assert caught.value.code == "SECURITY_PII_DETECTED"
    assert "user.email" in str(caught.value)
    assert "a@example.com" not in str(caught.value)
    assert queue.stats.accepted == 0
    queue.track("signup", {"plan": "pro"})
    assert queue.stats.accepted == 1


def test_non_strict_pii_warns_once_per_set_of_fields(
    make_queue: Callable[..., EventQueue], recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    """Without strict mode PII is reported from the events thread, once per distinct field set."""
    queue = make_queue(pii_check=_pii)
    with caplog.at_level(logging.WARNING, logger="flagkit.events"):
        queue.track("e", {"email": "a@example.com"})
        queue.track("e", {"email": "b@example.com"})
        queue.track("e", {"phone_number": "1"})
        assert queue.flush(timeout=5).sent == 3
    warnings_logged = [r.getMessage() for r in caplog.records if "potential PII" in r.getMessage()]
    assert len(warnings_logged) == 2
    assert "email" in warnings_logged[0] and "phone_number" in warnings_logged[1]
    assert "a@example.com" not in caplog.text
