"""Event benchmarks: CPU per event, ``track()`` at the call site, and delivery, with the
client's own defaults and a real user context, each next to a baseline run in the same
process.

Run: ``.venv/bin/python benchmarks/bench_events.py`` (about a minute).

1. **CPU per tracked event** (caller + events thread, sending excluded): an ``EventQueue``
   configured exactly as ``FlagKitClient`` configures it from default ``FlagKitOptions``
   (PII scan on, the client's PII check), a user context on every event, a sender that does
   nothing. Process CPU time (all threads) divided by events. Target: <= 4 us.
2. **track() at the call site**: ``FlagKitClient.track()`` with default options and a
   user context set, timed while its events thread runs, as in production (it shares the
   GIL with the caller). Per-call time in each of several runs. Target: <= 1.5 us in every
   run.
3. **Delivery** to the local server (its own process) over HTTP: ``FlagKitClient`` with
   default options (and with ``persist_events=True``) and a user context, ``track()`` then
   ``flush()``; events/s of wall time and process CPU per delivered event. Baseline: a
   minimal synchronous pipeline that builds each event (type, data, ISO timestamp, uuid4
   id, context dict), JSON-encodes and POSTs every 100 events with one keep-alive httpx
   client. Targets: >= 100,000 events/s (persistence off), >= 40,000/s (on); CPU per event
   <= 1.3x the pipeline's. The server's counters confirm every event arrived.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import httpx

from flagkit import FlagKitClient
from flagkit.core.events import EventQueue
from flagkit.types.config import FlagKitOptions
from flagkit.types.context import EvaluationContext
from flagkit.types.events import EventQueueConfig
from flagkit.utils.security import find_pii

SERVER = r"""
import json, sys
from flagkit.testing import FlagKitServer
with FlagKitServer(max_events=1000, dedup_window=2_000_000) as server:
    print(json.dumps({"base_url": server.base_url, "api_key": server.api_key}), flush=True)
    for line in sys.stdin:
        if line.strip() == "stats":
            print(json.dumps(server.event_stats), flush=True)
        elif line.strip() == "clear":
            server.clear_events()
            print("{}", flush=True)
"""

USER = EvaluationContext(
    user_id="user-12345",
    email="jane@example.com",
    name="Jane Doe",
    country="NL",
    custom={"plan": "pro", "company": "Acme", "beta": True},
    private_attributes=["email"],
)
DATA = {"amount": 99.99, "currency": "USD", "product_id": "p-1"}


class Server:
    """The local server in its own process."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        info = json.loads(self._process.stdout.readline())
        self.base_url: str = info["base_url"]
        self.api_key: str = info["api_key"]

    def _ask(self, command: str) -> dict[str, int]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        answer: dict[str, int] = json.loads(self._process.stdout.readline())
        return answer

    def total(self) -> int:
        return self._ask("stats")["total"]

    def clear(self) -> None:
        self._ask("clear")

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait(10)


def _client_pii_check(data: Mapping[str, Any], data_type: str) -> list[str]:
    return find_pii(data)


def _default_queue_config(**overrides: Any) -> EventQueueConfig:
    """The EventQueueConfig FlagKitClient builds from default options."""
    options = FlagKitOptions(api_key="sdk_benchmark_key")
    settings: dict[str, Any] = {
        "batch_size": options.event_batch_size,
        "flush_interval": options.event_flush_interval,
        "max_queue_size": options.max_event_queue_size,
        "lenient": options.lenient_tracking,
        "offline": options.offline,
        "strict_pii": options.strict_pii_mode,
        "persist": options.persist_events,
        "storage_path": options.event_storage_path,
        "max_persisted_events": options.max_persisted_events,
        "persistence_flush_interval_ms": options.persistence_flush_interval,
    }
    settings.update(overrides)
    return EventQueueConfig(**settings)


def bench_cpu_per_event(total: int) -> float:
    """Process CPU (us) per tracked event, sending excluded."""
    queue = EventQueue(
        _default_queue_config(max_queue_size=total),
        sender=lambda events: None,
        session_id=str(uuid.uuid4()),
        sdk_version="bench",
        logger=logging.getLogger("flagkit.events"),
        pii_check=_client_pii_check,
    )
    queue.start()
    start = time.process_time()
    for i in range(total):
        queue.track("purchase", {**DATA, "seq": i}, context=USER)
    result = queue.flush(timeout=120)
    cpu = time.process_time() - start
    queue.close(timeout=10)
    if not result.ok:
        raise SystemExit(f"cpu run incomplete: {result}")
    return cpu / total * 1e6


@contextmanager
def _client(server: Server, **options: Any) -> Iterator[FlagKitClient]:
    client = FlagKitClient(api_key=server.api_key, base_url=server.base_url, **options)
    client.initialize()
    client.set_context(USER)
    try:
        yield client
    finally:
        client.close(timeout=10)


def bench_call_site(server: Server, total: int, runs: int) -> list[float]:
    """ns per ``client.track()`` call in each run, with the events thread running."""
    figures = []
    with _client(server) as client:
        for _ in range(runs):
            server.clear()
            track = client.track
            start = time.perf_counter_ns()
            for _ in range(total):
                track("purchase", DATA)
            figures.append((time.perf_counter_ns() - start) / total)
            client.flush(timeout=60)
    return figures


def bench_client_delivery(server: Server, total: int, *, persist: bool) -> tuple[float, float]:
    """(events/s, CPU us per event) for FlagKitClient with default options."""
    with (
        tempfile.TemporaryDirectory() as store,
        _client(
            server,
            persist_events=persist,
            event_storage_path=store,
            max_event_queue_size=max(total, 1000),
        ) as client,
    ):
        server.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        for i in range(total):
            client.track("purchase", {**DATA, "seq": i})
        result = client.flush(timeout=300)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        delivered = server.total()
    if not result.ok or delivered != total:
        raise SystemExit(f"delivery incomplete: {result}, server recorded {delivered}/{total}")
    return total / wall, cpu / total * 1e6


def bench_pipeline(server: Server, total: int, batch: int = 100) -> tuple[float, float]:
    """(events/s, CPU us per event) for the minimal synchronous pipeline."""
    url = f"{server.base_url}/sdk/events/batch"
    headers = {"X-API-Key": server.api_key, "Content-Type": "application/json"}
    server.clear()
    with httpx.Client(headers=headers) as http:
        wall, cpu = time.perf_counter(), time.process_time()
        pending: list[dict[str, Any]] = []
        for i in range(total):
            pending.append(
                {
                    "eventType": "purchase",
                    "eventData": {**DATA, "seq": i},
                    "timestamp": datetime.now(timezone.utc).isoformat(),
                    "eventId": str(uuid.uuid4()),
                    "context": USER.to_dict(),
                }
            )
            if len(pending) == batch:
                http.post(url, content=json.dumps({"events": pending})).raise_for_status()
                pending = []
        if pending:
            http.post(url, content=json.dumps({"events": pending})).raise_for_status()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if server.total() != total:
        raise SystemExit("pipeline delivery incomplete")
    return total / wall, cpu / total * 1e6


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISSES TARGET"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per run")
    parser.add_argument("--runs", type=int, default=5, help="runs per figure")
    args = parser.parse_args()
    logging.getLogger("flagkit").setLevel(logging.ERROR)  # PII warnings on the sample data

    cpu = [bench_cpu_per_event(args.events) for _ in range(args.runs)]
    best = min(cpu)
    print("1. CPU per tracked event (caller + events thread, sending excluded)")
    print(
        f"   {best:.2f} us (median {statistics.median(cpu):.2f}, worst {max(cpu):.2f})"
        f"   target <= 4 us   ratio {best / 4:.2f}x of target -> {_verdict(best <= 4)}"
    )

    server = Server()
    try:
        calls = bench_call_site(server, args.events, args.runs)
        worst = max(calls) / 1000
        print("2. client.track() at the call site, events thread running (every run)")
        print(
            "   " + ", ".join(f"{c / 1000:.2f}" for c in calls) + " us"
            f"   target <= 1.5 us in every run -> {_verdict(worst <= 1.5)}"
        )

        print(f"3. delivery to the local server ({args.events:,} events, user context)")
        for label, persist, target in (
            ("client, default options", False, 100_000),
            ("client, persist_events=True", True, 40_000),
        ):
            base: list[tuple[float, float]] = []
            mine: list[tuple[float, float]] = []
            for _ in range(args.runs):  # interleaved, so both see the same machine load
                base.append(bench_pipeline(server, args.events))
                mine.append(bench_client_delivery(server, args.events, persist=persist))
            base_rate = statistics.median(b[0] for b in base)
            base_cpu = statistics.median(b[1] for b in base)
            rate = statistics.median(m[0] for m in mine)
            cpu_each = statistics.median(m[1] for m in mine)
            ratio = statistics.median(m[1] / b[1] for m, b in zip(mine, base, strict=True))
            print(
                f"   {label:30s} {rate:9,.0f} events/s (target >= {target:,}) -> "
                f"{_verdict(rate >= target)}; CPU {cpu_each:.1f} us/event = {ratio:.2f}x "
                f"the pipeline's {base_cpu:.1f} us ({base_rate:,.0f}/s) (target <= 1.3x) -> "
                f"{_verdict(ratio <= 1.3)}"
            )
    finally:
        server.close()


if __name__ == "__main__":
    main()
