"""Experiment reports of the local server, against a baseline measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_experiments.py [--strict]``

A report (``flagkit.server.experiments.report``, what ``GET /admin/experiments/{flag}``
runs) over the events the server keeps by default (10,000) and over 100,000: a three-way
experiment, one exposure per user, a fifth of the users buying twice. The baseline is
the least any report must do: one pass reading every event's type and parsing its
timestamp (``datetime.fromisoformat``); the ratio shows what joining users, exposures
and purchases costs on top. Targets: a report of 10,000 events in under 100 ms (an
interactive answer), and linear growth (100,000 events at most 20x the time of 10,000;
linear is 10x, cache misses of the larger working set add some, a quadratic join is 100x).
Timings are the best of several repeats; with ``--strict`` a missed target exits 1.
"""

from __future__ import annotations

import random
import sys
import timeit
from datetime import datetime
from typing import Any

from flagkit.server.events import event_type_of
from flagkit.server.experiments import Metric, report

REPEAT = 5
FLAG: dict[str, Any] = {
    "key": "button",
    "flagType": "string",
    "value": "blue",
    "variations": [{"id": v, "value": v} for v in ("blue", "green", "orange")],
    "fallthrough": {
        "rollout": {
            "variations": [
                {"variation": "blue", "weight": 33_334},
                {"variation": "green", "weight": 33_333},
                {"variation": "orange", "weight": 33_333},
            ]
        }
    },
    "experiment": {"control": "blue", "metrics": [{"event": "purchase"}]},
}


def events(total: int) -> list[dict[str, Any]]:
    """About ``total`` events: exposures, and two purchases for every fifth user."""
    rnd = random.Random(1)
    out: list[dict[str, Any]] = []
    user = 0
    while len(out) < total:
        key = f"user-{user}"
        context = {"userKey": key, "anonymous": True}
        out.append(
            {
                "eventType": "$exposure",
                "timestamp": "2026-01-01T10:00:00.000000+00:00",
                "context": context,
                "eventData": {
                    "flagKey": "button",
                    "variationId": rnd.choice(("blue", "green", "orange")),
                    "flagVersion": 1,
                    "ruleId": None,
                    "contextKey": key,
                },
            }
        )
        if user % 5 == 0:
            for minute in (1, 2):
                out.append(
                    {
                        "eventType": "purchase",
                        "timestamp": f"2026-01-01T10:0{minute}:00.000000+00:00",
                        "context": context,
                        "eventData": {"amount": rnd.uniform(5, 80)},
                    }
                )
        user += 1
    return out


def baseline(items: list[dict[str, Any]]) -> int:
    """One pass: every event's type and its timestamp parsed by ``fromisoformat``."""
    count = 0
    for event in items:
        if event_type_of(event) and datetime.fromisoformat(event["timestamp"]):
            count += 1
    return count


def best(func: Any, *args: Any) -> float:
    """Best time of ``REPEAT`` runs, in seconds."""
    return min(timeit.repeat(lambda: func(*args), number=1, repeat=REPEAT))


def main() -> int:
    """Print the figures; 1 with ``--strict`` when a target is missed."""
    print("experiment report (conversion, three variations)")
    took: dict[int, float] = {}
    for total in (10_000, 100_000):
        items = events(total)
        took[total] = best(report, FLAG, items, Metric("purchase"))
        base = best(baseline, items)
        print(
            f"  {total:>7,} events  {took[total] * 1e3:8.1f} ms  (baseline {base * 1e3:6.1f} ms, "
            f"ratio {took[total] / base:5.1f}x)"
        )
    growth = took[100_000] / took[10_000]
    print(f"  10,000 events: {took[10_000] * 1e3:.1f} ms (target < 100 ms)")
    print(
        f"  growth 10k -> 100k: {growth:.1f}x (target <= 20x: linear is 10x, a quadratic join 100x)"
    )
    missed = took[10_000] > 0.1 or growth > 20
    return 1 if missed and "--strict" in sys.argv else 0


if __name__ == "__main__":
    sys.exit(main())
