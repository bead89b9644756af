"""Crash resilience across processes, over real HTTP to the local server.

- A child process tracks events with persistence on and is killed with SIGKILL while a POST
  is in flight; a new queue on the same path delivers every event, none twice at the server.
- Two processes share one storage path at the same time: the log stays intact, nothing is lost.
- A process whose disk fills up (RLIMIT_FSIZE) reports StorageError and still delivers.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import selectors
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flagkit.core.events import EventQueue
from flagkit.core.events.log import LOG_FILE_NAME
from flagkit.http.http_client import HttpClient, HttpConfig
from flagkit.testing import FlagKitServer
from flagkit.types.events import EventQueueConfig

CHILD = r"""
import dataclasses, json, logging, os, resource, signal, sys, threading, time, uuid

from flagkit.core.events import EventQueue
from flagkit.http.http_client import HttpClient, HttpConfig
from flagkit.types.events import EventQueueConfig
from tests.support import wait_until

base_url, api_key, store, count, mode, tag = sys.argv[1:7]
count = int(count)
http = HttpClient(HttpConfig(base_url=base_url, api_key=api_key, timeout=30.0, retries=1))
errors = []
first_post = []


def send(events):
    http.post_json("/sdk/events/batch", {"events": events})
    if mode == "crash" and not first_post:
        # The server has recorded this batch; the process dies before marking it "sent".
        first_post.append(len(events))
        time.sleep(120)


queue = EventQueue(
    EventQueueConfig(
        batch_size=20,
        max_batch_events=50,
        flush_interval=0.05,
        persist=True,
        storage_path=store,
        persistence_flush_interval_ms=10,
        retry_backoff_base=0.05,
        retry_backoff_max=0.2,
    ),
    sender=send,
    session_id=str(uuid.uuid4()),
    sdk_version="1.1.0",
    logger=logging.getLogger("flagkit.events"),
    on_error=errors.append,
)
if mode == "fsize":
    # A tiny file-size limit: the log's first big append fails like a full disk would.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
queue.start()
if mode == "share":
    print("STARTED", "{}", flush=True)
    go = os.path.join(os.path.dirname(store), "go")
    while not os.path.exists(go):  # both processes start tracking together
        time.sleep(0.002)
for i in range(count):
    queue.track("crash-test", {"i": i, "tag": tag, "pad": "x" * 100})
    if mode == "share" and i % 10 == 0:
        time.sleep(0.005)  # pace the writes over ~150 ms so the two processes interleave
if mode == "crash":
    deadline = time.monotonic() + 20
    while (queue.stats.persisted < count or not first_post) and time.monotonic() < deadline:
        time.sleep(0.005)
    report = dataclasses.asdict(queue.stats)
    report["first_post"] = first_post[0] if first_post else 0
    print("READY", json.dumps(report), flush=True)
    time.sleep(120)  # the parent kills us here
result = queue.close(timeout=30)
report = dataclasses.asdict(queue.stats)
report["pending"] = result.pending
report["errors"] = [getattr(e, "code", repr(e)) for e in errors]
print("DONE", json.dumps(report), flush=True)
http.close()
"""

LOGGER = logging.getLogger("flagkit.events")


def read_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The child's next stdout line, or an assertion error with its stderr at the deadline."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            proc.kill()
            _, err = proc.communicate()
            raise AssertionError(f"child printed nothing within {timeout}s; stderr:\n{err}")
    line = proc.stdout.readline()
    if not line:
        _, err = proc.communicate()
        raise AssertionError(f"child exited early ({proc.returncode}); stderr:\n{err}")
    return line


def report_of(line: str, word: str) -> dict[str, Any]:
    head, _, payload = line.partition(" ")
    assert head == word, line
    result: dict[str, Any] = json.loads(payload)
    return result


@pytest.fixture
def server() -> Iterator[FlagKitServer]:
    with FlagKitServer(max_events=50_000) as running:
        yield running


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    procs: list[subprocess.Popen[str]] = []

    def start(
        server: FlagKitServer, store: Path, count: int, mode: str, tag: str
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(script),
                server.base_url,
                server.api_key,
                str(store),
                str(count),
                mode,
                tag,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def replay(store: Path) -> dict[str, str]:
    """Final status per event id, replaying the log (every line must parse)."""
    status: dict[str, str] = {}
    for line in (store / LOG_FILE_NAME).read_text().splitlines():
        if not line.strip():
            continue
        record = json.loads(line)  # a corrupt line fails the test here
        if "type" in record or record["id"] in status:
            status[record["id"]] = record["status"]
    return status


def recovering_queue(server: FlagKitServer, store: Path) -> tuple[EventQueue, HttpClient]:
    http = HttpClient(HttpConfig(base_url=server.base_url, api_key=server.api_key))
    queue = EventQueue(
        EventQueueConfig(persist=True, storage_path=str(store), batch_size=50, flush_interval=0.05),
        sender=lambda events: http.post_json("/sdk/events/batch", {"events": events}),
        session_id=str(uuid.uuid4()),
        sdk_version="1.1.0",
        logger=LOGGER,
    )
    return queue, http


def test_sigkill_mid_flight_loses_nothing_and_duplicates_nothing(
    server: FlagKitServer, spawn: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    """Killed with SIGKILL mid-POST, a process's events are all delivered by the next one, once."""
    store = tmp_path / "events"
    count = 200
    child = spawn(server, store, count, "crash", "killed")
    ready = report_of(read_line(child), "READY")
    assert ready["persisted"] == count
    delivered_before_crash = ready["first_post"]
    assert 0 < delivered_before_crash < count
    child.send_signal(signal.SIGKILL)  # mid-flight: the POST succeeded, "sent" is not written
    child.wait(10)
    assert server.event_stats["total"] == delivered_before_crash
    assert child.returncode == -signal.SIGKILL
    statuses = replay(store)
    assert len(statuses) == count
    assert "sending" in statuses.values()  # a batch was mid-flight at the kill
    assert "sent" not in statuses.values()

    queue, http = recovering_queue(server, store)
    try:
        queue.start()
        server.wait_for_events(count, timeout=20)
        assert queue.flush(timeout=10).ok
        assert queue.stats.recovered == count
    finally:
        queue.close(timeout=5)
        http.close()
    events = server.events("crash-test")
    assert sorted(e["eventData"]["i"] for e in events) == list(range(count))
    assert len({e["eventId"] for e in events}) == count
    stats = server.event_stats
    assert stats["total"] == count  # the re-sent copies of the first batch were not kept
    assert stats["duplicates"] == delivered_before_crash
    assert set(replay(store).values()) <= {"sent"}


def test_two_processes_sharing_a_path_lose_and_corrupt_nothing(
    server: FlagKitServer, spawn: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    """Two processes appending to one event log at once: every line parses, every event arrives."""
    store = tmp_path / "events"
    count = 300
    children = [spawn(server, store, count, "share", tag) for tag in ("left", "right")]
    for child in children:
        report_of(read_line(child, 60), "STARTED")
    (tmp_path / "go").touch()
    reports = [report_of(read_line(child, 60), "DONE") for child in children]
    for child in children:
        assert child.wait(10) == 0
    for report in reports:
        assert report["persisted"] == count and report["sent"] == count
        assert report["dropped"] == 0 and report["pending"] == 0 and report["errors"] == []
    events = server.wait_for_events(2 * count, timeout=20)
    for tag in ("left", "right"):
        mine = [e["eventData"]["i"] for e in events if e["eventData"]["tag"] == tag]
        assert mine == list(range(count))
    assert len({e["eventId"] for e in events}) == 2 * count
    statuses = replay(store)  # every line parses
    assert len(statuses) == 2 * count and set(statuses.values()) == {"sent"}
    owners = [
        json.loads(line)["owner"]
        for line in (store / LOG_FILE_NAME).read_text().splitlines()
        if '"type"' in line
    ]
    switches = sum(1 for a, b in itertools.pairwise(owners) if a != b)
    assert switches >= 2  # the two processes' writes really interleaved


def test_full_disk_reports_storage_error_and_still_delivers(
    server: FlagKitServer, spawn: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    """When the event log cannot grow (EFBIG, like ENOSPC), on_error gets CACHE_STORAGE_FULL."""
    store = tmp_path / "events"
    count = 60
    child = spawn(server, store, count, "fsize", "full")
    report = report_of(read_line(child), "DONE")
    assert child.wait(10) == 0
    assert report["errors"] == ["CACHE_STORAGE_FULL"]
    assert report["sent"] == count and report["dropped"] == 0
    events = server.wait_for_events(count, timeout=10)
    assert sorted(e["eventData"]["i"] for e in events) == list(range(count))
    assert os.path.getsize(store / LOG_FILE_NAME) <= 4096
    for line in (store / LOG_FILE_NAME).read_text().splitlines():
        json.loads(line)  # the failed append left no torn line behind
