"""A worker process of the fleet tests: one FlagKitClient with ``redis_url``.

Started by :class:`tests.fleet.conftest.Worker` as ``python -m tests.fleet.worker JSON``
(the client's options). It prints one JSON line per event on stdout — ``ready`` (with
the seconds from building the client to ready), ``update`` (flag values, the monotonic
time, system-wide on Linux) — and answers commands read from stdin, one per line:
``state``, ``quit``. A thread looks the flag ``probe`` up continuously and counts every
lookup that did not come from flags (a default): a lookup must never fail.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from flagkit import FlagKitClient

_out = threading.Lock()


def emit(**fields: Any) -> None:
    """Print one JSON line (atomically, from any thread)."""
    with _out:
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()


def main() -> None:
    options = json.loads(sys.argv[1])
    started = time.monotonic()
    client = FlagKitClient(**options)
    misses = [0, 0]  # [lookups that fell back to the default, lookups]
    stop = threading.Event()

    def on_update(flags: list[Any]) -> None:
        emit(event="update", t=time.monotonic(), flags={f.key: f.value for f in flags})

    client.add_update_listener(on_update)
    client.start()

    def announce() -> None:
        while not stop.is_set():
            if client.wait_for_ready(1.0):
                emit(event="ready", seconds=time.monotonic() - started, role=client.fleet_role)
                threading.Thread(target=probe, daemon=True).start()  # lookups from now on
                return

    def probe() -> None:
        while not stop.wait(0.005):
            result = client.evaluate("probe", default="DEFAULT")
            misses[1] += 1
            if result.value == "DEFAULT":
                misses[0] += 1

    threading.Thread(target=announce, daemon=True).start()
    for line in sys.stdin:
        command = line.strip()
        if command == "state":
            snapshot = client.snapshot
            emit(
                event="state",
                role=client.fleet_role,
                ready=client.is_ready(),
                misses=misses[0],
                lookups=misses[1],
                flags={k: e.value for k, e in snapshot.entries.items()},
            )
        elif command == "quit":
            break
    stop.set()
    client.close()


if __name__ == "__main__":
    main()
