"""Fleet mode (Redis) against direct connections, measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_fleet.py [--strict]`` (needs ``redis-server``:
``make redis``; it is started on a free port in a temp dir and stopped at the end).

1. Upstream connections and first loads at the FlagKit service for N = 1, 8, 32 worker
   processes, with and without ``redis_url``. Target with Redis: 1 stream and 1 first
   load whatever N.
2. Time for a change to reach every worker of 8, p50/p95 over 50 changes, with and
   without Redis (baseline: direct streaming). Target with Redis: p95 under 1 s.
3. Cold start of a new worker from Redis (client built -> ready), the service down.
   Target: under 200 ms.
4. Lookup cost: ``get_string_value`` of a fleet reader against a direct client (the hot
   path reads the in-process snapshot either way). Target: ratio at most 1.3.

Workers are forked processes, each with its own client, reporting over a pipe.
With ``--strict`` the exit status is 1 when a target is missed.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import sys
import time
import timeit
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flagkit.client import FlagKitClient
from flagkit.testing import FlagKitServer
from tests.support.redis_server import RedisServer

API_KEY = "sdk_bench_fleet_key_1"
CHANGES = 50


def _worker(options: dict[str, Any], pipe: Connection) -> None:
    client = FlagKitClient(**options)
    client.add_update_listener(
        lambda flags: [pipe.send(("update", f.value, time.monotonic())) for f in flags]
    )
    client.start()
    pipe.send(("ready", client.wait_for_ready(30.0), client.fleet_role))
    pipe.recv()  # any message: stop
    client.close(timeout=1.0)


class Fleet:
    """N forked workers with the same options."""

    def __init__(self, n: int, options: dict[str, Any]) -> None:
        ctx = mp.get_context("fork")
        self.pipes: list[Connection] = []
        self.procs = []
        for _ in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=_worker, args=(options, child), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        for pipe in self.pipes:
            message = pipe.recv()
            assert message[0] == "ready" and message[1], message

    def wait_value(self, value: str, timeout: float = 10.0) -> list[float]:
        """Arrival times (monotonic) of ``value`` at every worker."""
        times = []
        deadline = time.monotonic() + timeout
        for pipe in self.pipes:
            while True:
                if not pipe.poll(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"{value} did not reach every worker")
                kind, got, at = pipe.recv()
                if kind == "update" and got == value:
                    times.append(at)
                    break
        return times

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send("stop")
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()


def _settle(service: FlagKitServer, expected_streams: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(service.requests_to("stream")) < expected_streams and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # a benchmark, not a test: let stray connections show up


def main() -> int:
    strict = "--strict" in sys.argv
    missed: list[str] = []
    redis = RedisServer()
    redis.start()
    service = FlagKitServer(
        port=0, api_keys=[API_KEY], flags=[{"key": "probe", "value": "v0", "type": "string"}]
    )
    service.start()
    base = {"api_key": API_KEY, "local_port": service.port, "timeout": 10.0}
    try:
        print("1. upstream connections / first loads at the service")
        for n in (1, 8, 32):
            for fleet_mode in (False, True):
                service.clear_requests()
                opts = dict(base)
                if fleet_mode:
                    opts.update(redis_url=redis.url, redis_prefix=f"b{uuid.uuid4().hex[:8]}")
                fleet = Fleet(n, opts)
                _settle(service, 1 if fleet_mode else n)
                # Stream connections opened in this round (closed ones of earlier rounds may
                # still count as open at the server until its next heartbeat).
                streams = len(service.requests_to("stream"))
                inits = len(service.requests_to("init"))
                fleet.close()
                label = "redis " if fleet_mode else "direct"
                print(f"   N={n:<3} {label}: streams {streams:>3}, first loads {inits:>3}")
                if fleet_mode and (streams != 1 or inits != 1):
                    missed.append(f"N={n} with Redis: {streams} streams, {inits} first loads")

        print(f"2. a change reaching all of 8 workers ({CHANGES} changes)")
        results: dict[str, list[float]] = {}
        for fleet_mode in (False, True):
            opts = dict(base)
            if fleet_mode:
                opts.update(redis_url=redis.url, redis_prefix=f"b{uuid.uuid4().hex[:8]}")
            service.clear_requests()
            fleet = Fleet(8, opts)
            _settle(service, 1 if fleet_mode else 8)
            latencies = []
            for i in range(CHANGES):
                value = f"c{i}-{fleet_mode}"
                start = time.monotonic()
                service.set_flag("probe", value=value)
                latencies.append(max(fleet.wait_value(value)) - start)
            fleet.close()
            results["redis" if fleet_mode else "direct"] = latencies
        for label, values in results.items():
            q = statistics.quantiles(values, n=20)
            print(f"   {label:<6}: p50 {statistics.median(values) * 1000:7.1f} ms, "
                  f"p95 {q[18] * 1000:7.1f} ms")  # fmt: skip
        p95 = statistics.quantiles(results["redis"], n=20)[18]
        ratio = statistics.median(results["redis"]) / statistics.median(results["direct"])
        print(f"   redis/direct p50 ratio {ratio:.2f}; target p95 < 1000 ms")
        if p95 >= 1.0:
            missed.append(f"p95 propagation {p95:.3f}s")

        print("3. cold start of a new worker from Redis, service down")
        prefix = f"b{uuid.uuid4().hex[:8]}"
        syncer = FlagKitClient(**base, redis_url=redis.url, redis_prefix=prefix)
        syncer.initialize()
        down = FlagKitServer(port=0, api_keys=[API_KEY], flags=[])
        down.start()
        for endpoint in ("init", "updates", "stream_token", "stream"):
            down.inject_fault(endpoint, statuses=[503], count=None)
        starts = []
        for _ in range(10):
            t0 = time.monotonic()
            fresh = FlagKitClient(
                api_key=API_KEY, local_port=down.port, redis_url=redis.url, redis_prefix=prefix
            )
            fresh.initialize()
            starts.append(time.monotonic() - t0)
            fresh.close(timeout=0.5)
        print(f"   median {statistics.median(starts) * 1000:.1f} ms, max "
              f"{max(starts) * 1000:.1f} ms, requests to the service {len(down.requests)}; "
              "target < 200 ms, 0 requests")  # fmt: skip
        if statistics.median(starts) >= 0.2 or down.requests:
            missed.append("cold start from Redis")

        print("4. lookup cost (get_string_value), fleet reader vs direct client")
        reader = FlagKitClient(**base, redis_url=redis.url, redis_prefix=prefix)
        reader.initialize()
        direct = FlagKitClient(**base)
        direct.initialize()
        env = {"reader": reader, "direct": direct}
        best = {
            name: min(timeit.repeat(f"{name}.get_string_value('probe', '')", globals=env,
                                    number=100_000, repeat=7)) / 100_000
            for name in ("direct", "reader")
        }  # fmt: skip
        ratio = best["reader"] / best["direct"]
        print(f"   direct {best['direct'] * 1e9:.0f} ns, reader {best['reader'] * 1e9:.0f} ns, "
              f"ratio {ratio:.2f}; target <= 1.3")  # fmt: skip
        if ratio > 1.3:
            missed.append(f"lookup ratio {ratio:.2f}")
        for client in (reader, direct, syncer):
            client.close(timeout=0.5)
        down.close()
    finally:
        service.close()
        redis.close()
    if missed:
        print("missed: " + "; ".join(missed))
    return 1 if strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
