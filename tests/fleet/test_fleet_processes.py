"""Fleet mode with real processes, a real redis-server and the local FlagKit service."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

from flagkit.testing import FlagKitServer
from tests.fleet.conftest import API_KEY, LEASE, Worker, spawn
from tests.support import wait_until


def _options(service: FlagKitServer, redis_url: str, prefix: str, **extra: Any) -> dict[str, Any]:
    return {
        "api_key": API_KEY,
        "local_port": service.port,
        "redis_url": redis_url,
        "redis_prefix": prefix,
        "redis_lease_time": LEASE,
        "timeout": 5.0,
        **extra,
    }


def _roles(workers: list[Worker]) -> list[str | None]:
    return [w.state()["role"] for w in workers]


def _all_have(workers: list[Worker], value: str) -> bool:
    return all(w.state()["flags"].get("probe") == value for w in workers)


def test_eight_workers_share_one_stream_and_a_change_reaches_all_within_a_second(
    service: FlagKitServer, redis_url: str, prefix: str, workers: list[Worker], tmp_path: Path
) -> None:
    options = _options(service, redis_url, prefix)
    for _ in range(8):
        spawn(workers, tmp_path, **options)
    wait_until(lambda: all(w.of("ready") for w in workers), timeout=30, message="8 ready")
    wait_until(lambda: _roles(workers).count("syncer") == 1, timeout=10, message="one syncer")
    service.wait_for_streams(1)
    # Several lease renewals later, still one stream and one first load at the service.
    roles_before = _roles(workers)
    wait_until(
        lambda: all(w.state()["lookups"] > 50 for w in workers), timeout=10, message="lookups"
    )
    assert service.stream_count == 1
    assert len(service.requests_to("stream")) == 1
    assert len(service.requests_to("init")) == 1
    assert sorted(r or "" for r in roles_before) == ["reader"] * 7 + ["syncer"]

    changed_at = time.monotonic()
    service.set_flag("probe", value="v1")
    wait_until(
        lambda: all(any(u["flags"].get("probe") == "v1" for u in w.of("update")) for w in workers),
        timeout=10,
        message="the change at every worker",
    )
    arrivals = [
        min(u["t"] for u in w.of("update") if u["flags"].get("probe") == "v1") for w in workers
    ]
    assert max(arrivals) - changed_at < 1.0, [round(a - changed_at, 3) for a in arrivals]
    assert all(w.state()["misses"] == 0 for w in workers)
