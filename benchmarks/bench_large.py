"""Large flag sets: 100,000 flags, as ratios against baselines measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_large.py``. The local server
(``flagkit.testing.FlagKitServer``, loopback HTTP) holds 100,000 flags, a tenth of them
targeted (variations and a fallthrough; every hundredth also a 1-clause rule and a
prerequisite), the rest simple flags of the four types. Prints:

1. **ready time**: a fresh process builds a client (default options, streaming and
   polling off so nothing else runs) and calls ``initialize()``; the time until it
   returns. Target <= 0.45 s. Baseline: the same process fetching ``/sdk/init`` with one
   httpx request and decoding it with ``json.loads`` (the floor: HTTP + JSON), ratio
   ready / floor. The wall time includes the server building its answer (in this
   process, loaded machines vary it a lot), so the CPU time of the measuring process
   alone is printed too, with its ratio to the floor's;
2. **RSS added**: the same process's resident set (``/proc/self/status`` ``VmRSS``) after
   ``initialize()`` minus before it, after a garbage collection. Target <= 35 MB.
   Baseline: the RSS added by holding the decoded ``/sdk/init`` JSON itself (what any
   client must at least read), ratio client / JSON. Peak (``VmHWM``) is reported too;
3. **one change on the client**: ``FlagStore.apply`` of one changed flag (an upsert with a
   newer version) on a store holding the 100,000 flags, against the same change on a store
   holding 1,000 flags. Target <= 2x (the cost follows the changed flags, not the set).

Each process-level figure is the best of a few fresh processes (interleaved with the
baseline's); each in-process figure the best of several repeats. Always exits 0: the
numbers are for reading, not for gating.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import subprocess
import sys
import time
from typing import Any

FLAGS = 100_000
PROCESSES = 3
READY_TARGET = 0.45
RSS_TARGET = 35e6
CHANGE_TARGET = 2.0
ON_OFF = [{"id": "on", "value": True}, {"id": "off", "value": False}]


def flag_list(count: int) -> list[dict[str, Any]]:
    """``count`` flags: every tenth targeted, every hundredth with a rule and a prerequisite."""
    out: list[dict[str, Any]] = []
    for i in range(count):
        kind = i % 4
        value: Any = (i % 2 == 0, f"value-{i % 50}", i, {"limit": i % 7})[kind]
        flag: dict[str, Any] = {"key": f"flag-{i:06d}", "value": value}
        if i % 10 == 0:
            flag = {"key": f"flag-{i:06d}", "value": False, "flagType": "boolean"}
            flag.update(variations=ON_OFF, fallthrough={"variation": "on"})
            if i % 100 == 0 and i:
                flag["rules"] = [
                    {
                        "id": f"rule-{i}",
                        "clauses": [{"attribute": "country", "op": "in", "values": ["NL"]}],
                        "variation": "off",
                    }
                ]
                flag["prerequisites"] = [{"key": f"flag-{i - 10:06d}", "variation": "on"}]
        out.append(flag)
    return out


def rss() -> tuple[int, int]:
    """This process's resident set and its peak, in bytes (Linux ``/proc``)."""
    values: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


# -- the child process ---------------------------------------------------------------------


def child(mode: str, base_url: str, api_key: str) -> None:
    """Measure one ready (``client``) or one bare fetch (``floor``); print JSON."""
    import httpx

    from flagkit import StreamingOptions
    from flagkit.client import FlagKitClient

    logging.disable(logging.WARNING)
    # Warm the import and connection machinery with a tiny request so that the figures
    # measure the flags, not first-use costs.
    with httpx.Client() as warm:
        warm.get(base_url + "/health")
    gc.collect()
    before, _ = rss()
    cpu_started = time.process_time()
    started = time.perf_counter()
    if mode == "floor":
        with httpx.Client(timeout=60.0) as http:
            response = http.get(base_url + "/sdk/init", headers={"X-API-Key": api_key})
            held: Any = json.loads(response.content)
            del response
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        count = len(held["flags"])
    else:
        client = FlagKitClient(
            api_key=api_key,
            base_url=base_url,
            streaming=StreamingOptions(enabled=False),
            enable_polling=False,
            timeout=60.0,
        )
        client.initialize()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        count = len(client.get_all_flag_keys())
        held = client
    gc.collect()
    after, peak = rss()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "added": after - before,
                "peak": peak - before,
                "count": count,
            }
        )
    )
    sys.stdout.flush()
    os._exit(0)  # skip teardown: the figures are taken


def run_child(mode: str, base_url: str, api_key: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, base_url, api_key],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- the in-process change cost ------------------------------------------------------------


def change_cost(count: int) -> float:
    """Seconds for ``FlagStore.apply`` of one changed flag on a store of ``count`` flags."""
    from flagkit.core.store import FlagStore
    from flagkit.types.flag import FlagState

    store = FlagStore(ttl=300.0, logger=logging.getLogger("bench"))
    store.apply(full=[FlagState.from_dict(raw, stream=True) for raw in flag_list(count)])
    changed = [
        FlagState.from_dict({**raw, "version": 2 + n}, stream=True)
        for n, raw in enumerate([flag_list(11)[5]] * 40)
    ]
    targeted = [
        FlagState.from_dict({**raw, "version": 2 + n}, stream=True)
        for n, raw in enumerate([flag_list(11)[10]] * 40)
    ]
    best = float("inf")
    for _ in range(7):
        gc.collect()
        started = time.perf_counter()
        for simple_state, targeted_state in zip(changed, targeted, strict=True):
            store.apply(upserts=[simple_state])
            store.apply(upserts=[targeted_state])
        best = min(best, (time.perf_counter() - started) / (2 * len(changed)))
        # Back to version 1 for the next repeat (a full replacement, not timed).
        store.apply(full=[FlagState.from_dict(raw, stream=True) for raw in flag_list(count)])
    return best


def main() -> int:
    """Run the three measurements and print them."""
    from flagkit.testing import FlagKitServer

    logging.disable(logging.WARNING)
    print(f"bench_large: Python {sys.version.split()[0]}, {FLAGS:,} flags\n")
    with FlagKitServer(flags=flag_list(FLAGS)) as server:
        floors: list[dict[str, Any]] = []
        clients: list[dict[str, Any]] = []
        for _ in range(PROCESSES):
            floors.append(run_child("floor", server.base_url, server.api_key))
            clients.append(run_child("client", server.base_url, server.api_key))
    assert all(c["count"] == FLAGS for c in clients), clients
    floor_s = min(f["seconds"] for f in floors)
    ready_s = min(c["seconds"] for c in clients)
    floor_cpu = min(f["cpu"] for f in floors)
    ready_cpu = min(c["cpu"] for c in clients)
    floor_rss = min(f["added"] for f in floors)
    client_rss = min(c["added"] for c in clients)
    client_peak = min(c["peak"] for c in clients)

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    print("1. ready time, 100,000 flags (fresh process, initialize())")
    print(f"   floor: one GET /sdk/init + json.loads   {floor_s:7.3f} s")
    print(
        f"   client ready                            {ready_s:7.3f} s   "
        f"ratio {ready_s / floor_s:5.2f}x   target <= {READY_TARGET} s: "
        f"{verdict(ready_s <= READY_TARGET)}"
    )
    print(
        f"   CPU of the measuring process (the server's excluded): floor {floor_cpu:6.3f} s, "
        f"client {ready_cpu:6.3f} s, ratio {ready_cpu / floor_cpu:5.2f}x"
    )
    print("2. RSS added by 100,000 flags (after gc)")
    print(f"   baseline: the decoded JSON held         {floor_rss / 1e6:7.1f} MB")
    print(
        f"   client                                  {client_rss / 1e6:7.1f} MB   "
        f"ratio {client_rss / floor_rss:5.2f}x   target <= {RSS_TARGET / 1e6:.0f} MB: "
        f"{verdict(client_rss <= RSS_TARGET)}"
    )
    print(f"   client peak during load                 {client_peak / 1e6:7.1f} MB")
    small = change_cost(1_000)
    large = change_cost(FLAGS)
    print("3. one changed flag applied on the client (FlagStore.apply)")
    print(f"   baseline: store of 1,000 flags          {small * 1e6:7.1f} us")
    print(
        f"   store of 100,000 flags                  {large * 1e6:7.1f} us   "
        f"ratio {large / small:5.2f}x   target <= {CHANGE_TARGET:.0f}x: "
        f"{verdict(large / small <= CHANGE_TARGET)}"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4])
    raise SystemExit(main())
