"""Event persistence: the JSONL log, its status marks, recovery, claims, compaction, failures.

The queue's sender here is a plain recording function (the queue's own seam); the crash and
multi-process tests over real HTTP are in ``test_event_crash.py``.
"""

from __future__ import annotations

import json
import logging
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flagkit.core.events import EventQueue
from flagkit.core.events.log import (
    LOCK_FILE_NAME,
    LOG_FILE_NAME,
    OWNER_FILE_PREFIX,
    EventLog,
)
from flagkit.core.events.records import dumps, read_entries, status_line
from flagkit.errors import StorageError
from flagkit.types.events import FlushResult
from tests.support import run_in_fork, wait_until
from tests.support.events import MakeQueue, Recorder, event_queues

LOGGER = logging.getLogger("flagkit.events")


def read_lines(directory: Path) -> list[dict[str, Any]]:
    path = directory / LOG_FILE_NAME
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def final_status(directory: Path) -> dict[str, str]:
    """Status per id after replaying the log (full records first seen, then status lines)."""
    status: dict[str, str] = {}
    for line in read_lines(directory):
        if "type" in line or line["id"] in status:
            status[line["id"]] = line["status"]
    return status


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "events"


@pytest.fixture
def make_queue(recorder: Recorder, store_dir: Path) -> Iterator[MakeQueue]:
    yield from event_queues(
        recorder,
        persist=True,
        storage_path=str(store_dir),
        flush_interval=60.0,
        batch_size=1000,
        retry_backoff_base=0.01,
        retry_backoff_max=0.05,
        persistence_flush_interval_ms=20,
    )


def assert_delivered_all(result: FlushResult) -> None:
    """``flush()`` ended with nothing pending and no error.

    Events recovered at start are sent by the events thread at once, possibly before
    ``flush()`` is called, so ``result.sent`` may not count them; the callers check what
    the sender received instead.
    """
    assert result.error is None and result.pending == 0, result


def orphan_records(
    directory: Path, count: int, *, owner: str | None = "4242-deadbeef0001"
) -> list[str]:
    """Write ``count`` unsent records of an owner that no longer runs; return their ids."""
    directory.mkdir(parents=True, exist_ok=True)
    ids = []
    with (directory / LOG_FILE_NAME).open("a") as log:
        for i in range(count):
            event_id = str(uuid.uuid4())
            ids.append(event_id)
            wire = {
                "eventType": "old",
                "timestamp": "2025-01-01T00:00:00+00:00",
                "sdkVersion": "1.0.0",
                "sdkLanguage": "python",
                "sessionId": "dead-session",
                "environmentId": "env-1",
                "eventData": {"i": i},
                "eventId": event_id,
            }
            record = {
                "id": event_id,
                "type": "old",
                "timestamp": 1735689600000,
                "status": "pending",
                "owner": owner,
                "event": wire,
            }
            log.write(json.dumps(record) + "\n")
    return ids


# --- the log format ------------------------------------------------------------------------


def test_log_holds_full_records_and_status_marks_with_private_modes(
    make_queue: Callable[..., EventQueue], recorder: Recorder, store_dir: Path
) -> None:
    """Each event is written as a full record, then marked sending and sent; files are private."""
    queue = make_queue()
    queue.track("purchase", {"amount": 5})
    assert queue.flush(timeout=5).ok
    lines = read_lines(store_dir)
    (sent,) = recorder.events
    full, sending, done = lines
    assert full["id"] == sent["eventId"] and full["type"] == "purchase"
    assert full["status"] == "pending" and full["event"] == sent
    assert isinstance(full["timestamp"], int) and isinstance(full["owner"], str)
    assert sending == {"id": sent["eventId"], "status": "sending"}
    assert done["status"] == "sent" and isinstance(done["sentAt"], int)
    assert stat.S_IMODE(store_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((store_dir / LOG_FILE_NAME).stat().st_mode) == 0o600
    assert (store_dir / LOCK_FILE_NAME).exists()
    assert queue.stats.persisted == 1


def test_events_reach_disk_within_the_persistence_interval(
    make_queue: Callable[..., EventQueue], store_dir: Path
) -> None:
    """Without any flush, accepted events are on disk within persistence_flush_interval_ms."""
    queue = make_queue(offline=True, persistence_flush_interval_ms=20)
    queue.start()
    for i in range(3):
        queue.track("e", {"i": i})
    wait_until(lambda: len(read_lines(store_dir)) == 3)
    assert [line["event"]["eventData"]["i"] for line in read_lines(store_dir)] == [0, 1, 2]
    wait_until(lambda: queue.stats.persisted == 3)  # counted just after the write returns


def test_failed_send_is_marked_pending_again(
    make_queue: Callable[..., EventQueue], recorder: Recorder, store_dir: Path
) -> None:
    """A failed POST writes the events back to pending; the later success marks them sent."""
    recorder.fail_always = True
    queue = make_queue(retry_backoff_base=30.0, retry_backoff_max=60.0)  # no automatic retry
    queue.track("e")
    assert queue.flush(timeout=5).error is not None
    statuses = [line["status"] for line in read_lines(store_dir)]
    assert statuses == ["pending", "sending", "pending"]
    recorder.fail_always = False
    assert queue.flush(timeout=5).ok
    assert list(final_status(store_dir).values()) == ["sent"]


# --- recovery and claims ---------------------------------------------------------------------


def test_start_recovers_events_of_a_dead_owner_and_sends_them_unchanged(
    make_queue: Callable[..., EventQueue], recorder: Recorder, store_dir: Path
) -> None:
    """Records left pending by a process that died are claimed, counted and re-sent as they were."""
    ids = orphan_records(store_dir, 3)
    queue = make_queue()
    queue.start()
    assert_delivered_all(queue.flush(timeout=5))  # recovered events may go before flush()
    assert [e["eventId"] for e in recorder.events] == ids
    assert recorder.events[0]["sessionId"] == "dead-session"
    assert recorder.events[2]["eventData"] == {"i": 2}
    assert queue.stats.recovered == 3
    assert set(final_status(store_dir).values()) == {"sent"}


def test_records_of_a_live_owner_are_left_alone_until_it_stops(
    make_queue: Callable[..., EventQueue], recorder: Recorder, store_dir: Path
) -> None:
    """A live process's unsent records are not claimed; once it closes they are."""
    other = EventLog(store_dir)
    other.open()
    event_id = str(uuid.uuid4())
    other.append([(event_id, "live", 1, {"eventType": "live", "eventId": event_id})])
    queue = make_queue(recovery_interval=0.05)
    queue.start()
    assert queue.flush(timeout=5).ok
    assert queue.stats.recovered == 0 and recorder.events == []
    other.close()  # its owner lock is released: the record is now an orphan
    wait_until(lambda: queue.stats.recovered == 1)
    assert queue.flush(timeout=5).ok
    assert [e["eventId"] for e in recorder.events] == [event_id]
    assert not any(p.name.startswith(OWNER_FILE_PREFIX + other.owner) for p in store_dir.iterdir())


def test_sent_records_are_not_recovered_and_start_compacts(
    make_queue: Callable[..., EventQueue], recorder: Recorder, store_dir: Path
) -> None:
    """At start the log is compacted: sent records disappear, unsent ones stay (claimed)."""
    first = make_queue()
    first.track("done")
    assert first.close(timeout=5).ok
    ids = orphan_records(store_dir, 2)
    assert len(read_lines(store_dir)) == 5
    recorder.gate.clear()  # keep the recovered ones unsent while we look at the file
    second = make_queue()
    second.start()
    wait_until(lambda: second.stats.recovered == 2)
    lines = read_lines(store_dir)
    assert [line["id"] for line in lines[:2]] == ids
    assert all(line["owner"] not in (None, "4242-deadbeef0001") for line in lines[:2])
    recorder.gate.set()
    assert second.flush(timeout=5).sent == 2
    assert [e["eventType"] for e in recorder.events] == ["done", "old", "old"]


def test_torn_last_line_is_skipped_and_appends_start_on_a_new_line(
    make_queue: Callable[..., EventQueue], recorder: Recorder, store_dir: Path
) -> None:
    """A line cut short by a crash is skipped at recovery and does not swallow the next write."""
    ids = orphan_records(store_dir, 2)
    with (store_dir / LOG_FILE_NAME).open("a") as log:
        log.write('{"id": "torn", "type": "x", "sta')
    queue = make_queue(offline=True)
    queue.start()
    queue.track("new")
    assert queue.flush(timeout=5).pending >= 1
    lines = read_lines(store_dir)  # every line parses: the torn one was dropped by compaction
    assert [line["id"] for line in lines[:2]] == ids
    assert lines[-1]["type"] == "new"


def test_records_from_the_published_sdk_are_rebuilt_and_sent(
    make_queue: Callable[..., EventQueue], recorder: Recorder, store_dir: Path
) -> None:
    """A record in the older §11 format (id/type/data/timestamp only) is recovered with its
    id as eventId."""
    store_dir.mkdir(parents=True)
    legacy = {
        "id": "evt_0123456789abcdef01234567",
        "type": "legacy",
        "data": {"k": "v"},
        "timestamp": 1735689600000,
        "status": "pending",
    }
    (store_dir / LOG_FILE_NAME).write_text(json.dumps(legacy, separators=(", ", ": ")) + "\n")
    queue = make_queue()
    queue.set_environment_id("env-9")
    queue.start()
    assert_delivered_all(queue.flush(timeout=5))  # recovered events may go before flush()
    (event,) = recorder.events
    assert event["eventId"] == legacy["id"] and event["eventType"] == "legacy"
    assert event["eventData"] == {"k": "v"}
    assert event["timestamp"] == "2025-01-01T00:00:00+00:00"
    assert event["sdkLanguage"] == "python"


def test_disk_cap_drops_the_oldest_orphans_and_counts_them(
    make_queue: Callable[..., EventQueue], recorder: Recorder, store_dir: Path
) -> None:
    """More unsent records than max_persisted_events: the oldest orphans are dropped and counted."""
    ids = orphan_records(store_dir, 8)
    queue = make_queue(max_persisted_events=5)
    queue.start()
    # The drops may be reported by this flush (EVENT_QUEUE_FULL) or happen before it.
    assert queue.flush(timeout=5).pending == 0
    assert [e["eventId"] for e in recorder.events] == ids[3:]
    assert queue.stats.dropped == 3 and queue.stats.recovered == 5


def test_overflow_with_persistence_is_left_on_disk_and_sent_later(
    make_queue: Callable[..., EventQueue], recorder: Recorder, store_dir: Path
) -> None:
    """When the memory queue is full, persisted events are handed to the log, not dropped."""
    recorder.gate.clear()
    queue = make_queue(batch_size=1, max_queue_size=5, recovery_interval=0.05)
    queue.start()
    queue.track("e", {"i": 0})
    assert recorder.entered.wait(5)
    for i in range(1, 16):
        queue.track("e", {"i": i})
        wait_until(lambda i=i: queue.stats.persisted == i + 1)  # taken in, on disk
    recorder.gate.set()
    wait_until(lambda: len(recorder.events) == 16)
    assert sorted(e["eventData"]["i"] for e in recorder.events) == list(range(16))
    assert queue.stats.dropped == 0
    assert len({e["eventId"] for e in recorder.events}) == 16


def test_offline_events_stay_on_disk_for_an_online_process(
    make_queue: Callable[..., EventQueue], recorder: Recorder, store_dir: Path
) -> None:
    """Offline with persistence nothing is sent; a later online queue on the path sends it all."""
    offline = make_queue(offline=True)
    for i in range(3):
        offline.track("e", {"i": i})
    result = offline.close(timeout=5)
    assert result.sent == 0 and result.pending == 3
    assert offline.stats.dropped == 0 and recorder.events == []
    online = make_queue()
    online.start()
    assert_delivered_all(online.flush(timeout=5))  # recovered events may go before flush()
    assert [e["eventData"]["i"] for e in recorder.events] == [0, 1, 2]
    assert online.stats.recovered == 3


def test_close_keeps_unsendable_events_on_disk(
    make_queue: Callable[..., EventQueue], recorder: Recorder, store_dir: Path
) -> None:
    """With persistence, close() with the server unreachable drops nothing: it stays on disk."""
    recorder.fail_always = True
    queue = make_queue()
    queue.track("e")
    result = queue.close(timeout=5)
    assert result.pending == 1 and result.error is not None
    assert queue.stats.dropped == 0
    assert list(final_status(store_dir).values()) == ["pending"]


def test_forked_child_does_not_claim_the_parents_records(
    make_queue: Callable[..., EventQueue], recorder: Recorder, store_dir: Path
) -> None:
    """After a fork the child gets its own owner id and leaves the parent's records alone."""
    recorder.gate.clear()  # the parent's POST hangs: its event stays unsent, on disk
    parent = make_queue(batch_size=1)
    parent.start()
    parent.track("e", {"i": 1})
    assert recorder.entered.wait(5)

    def child() -> dict[str, Any]:
        recorder.gate.set()  # the child's copy; the parent's POST stays stuck
        parent.after_fork()
        parent.track("e", {"i": 2})
        result = parent.flush(timeout=5)  # after the child's start-up recovery pass
        report = {
            "sent": result.sent,
            "recovered": parent.stats.recovered,
            "numbers": [e["eventData"]["i"] for e in recorder.events],
        }
        parent.close(timeout=5)
        return report

    report = run_in_fork(child)
    assert report == {"sent": 1, "recovered": 0, "numbers": [2]}
    owners = {line.get("owner") for line in read_lines(store_dir) if "type" in line}
    assert len(owners) == 2  # the parent's record and the child's, under different owners
    recorder.gate.set()
    assert parent.flush(timeout=5).pending == 0
    assert [e["eventData"]["i"] for e in recorder.events] == [1]
    assert parent.stats.recovered == 0 and parent.stats.sent == 1


# --- storage failures ----------------------------------------------------------------------


def test_unwritable_path_reports_storage_error_and_keeps_events_in_memory(
    make_queue: Callable[..., EventQueue], recorder: Recorder, tmp_path: Path
) -> None:
    """A storage path that cannot be created goes to on_error; events are still delivered."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    errors: list[Exception] = []
    queue = make_queue(storage_path=str(blocker / "events"), on_error=errors.append)
    queue.start()
    queue.track("e", {"i": 1})
    assert queue.flush(timeout=5).sent == 1
    (error,) = errors
    assert isinstance(error, StorageError) and error.code == "CACHE_WRITE_ERROR"
    assert "cannot create the directory" in str(error) and "Not a directory" in str(error)
    assert error.details == {"path": str(blocker / "events"), "errno": 20}
    assert queue.stats.persisted == 0
    assert [e["eventData"] for e in recorder.events] == [{"i": 1}]


def test_storage_failing_later_falls_back_to_memory_without_loss(
    make_queue: Callable[..., EventQueue], recorder: Recorder, store_dir: Path
) -> None:
    """If the log becomes unwritable mid-run, queued events survive in memory and are sent."""
    errors: list[Exception] = []
    queue = make_queue(on_error=errors.append)
    queue.start()
    queue.track("e", {"i": 0})
    assert queue.flush(timeout=5).ok
    for child in store_dir.iterdir():
        child.unlink()
    store_dir.rmdir()
    store_dir.write_text("the directory is gone")  # every later open fails (ENOTDIR)
    queue.track("e", {"i": 1})
    queue.track("e", {"i": 2})
    assert queue.flush(timeout=5).sent == 2
    assert [e["eventData"]["i"] for e in recorder.events] == [0, 1, 2]
    assert len(errors) == 1 and isinstance(errors[0], StorageError)
    assert "event persistence cannot" in str(errors[0])


def test_persistence_object_validates_statuses_and_claims_once(store_dir: Path) -> None:
    """Two live instances on one directory never both claim the same orphaned record."""
    ids = orphan_records(store_dir, 4)
    first = EventLog(store_dir)
    second = EventLog(store_dir)
    first.open()
    second.open()
    try:
        got_first = first.scan(claim_limit=3, compact=False)
        got_second = second.scan(claim_limit=10, compact=True)
        assert [r.event_id for r in got_first.claimed] == ids[:3]
        assert [r.event_id for r in got_second.claimed] == ids[3:]
        assert got_second.unclaimed == 0
        with pytest.raises(ValueError):
            first.mark(ids[:1], "bogus")
    finally:
        first.close()
        second.close()


def test_reading_our_own_lines_by_shape_agrees_with_a_plain_json_replay() -> None:
    """The reader's shortcuts for the lines this SDK writes give the same statuses and
    owners as parsing every line, and never parse a record a status line settled."""
    ids = [str(uuid.uuid4()) for _ in range(5)]
    record = {"type": "t", "timestamp": 1, "status": "pending", "owner": "1-aaaaaaaaaaaa"}
    lines = [
        dumps({"id": ids[0], **record, "event": {"eventType": "t"}}),
        status_line(ids[0], "sending"),
        status_line(ids[0], "sent", 1700000000000),
        json.dumps({"id": ids[1], **record}),  # another writer's spacing: the general path
        dumps({"id": ids[1], "status": "pending", "owner": "2-bbbbbbbbbbbb"}),  # a claim
        dumps({"id": ids[2], **record, "event": {}})[:-5],  # torn, then settled
        status_line(ids[2], "sent", 1),
        dumps({"id": ids[3], **record, "owner": None, "releasedBy": "3-cccccccccccc"}),
        status_line(ids[4], "sending"),  # for an id never seen
        dumps({"id": "evt_0123", "type": "t", "data": None, "timestamp": 5, "status": "pending"}),
        status_line("evt_0123", "dropped"),
    ]
    entries, skipped = read_entries(line.encode() + b"\n" for line in lines)
    assert skipped == 0
    assert sorted(entries) == sorted([*ids[:4], "evt_0123"])
    expected: dict[str, dict[str, Any]] = {}
    for line in lines:
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if "type" in parsed:
            expected[parsed["id"]] = dict(parsed)
        elif parsed["id"] in expected:
            expected[parsed["id"]].update(parsed)
    for event_id, entry in entries.items():
        if not entry.settled:
            assert entry.load()
        want = expected.get(event_id, {"status": "sent"})  # ids[2]: its record was torn
        assert entry.status == want["status"], event_id
        if entry.status in ("pending", "sending"):
            assert entry.owner == want.get("owner"), event_id
            assert entry.released_by == want.get("releasedBy"), event_id
    assert entries[ids[0]].settled and entries[ids[2]].settled
    assert not entries[ids[2]].load()  # the torn record is found unreadable only if needed
