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


def _syncer(workers: list[Worker]) -> Worker:
    found = [w for w in workers if w.state()["role"] == "syncer"]
    assert len(found) == 1, _roles(workers)
    return found[0]


def test_sigkilled_syncer_is_replaced_within_the_lease_time_and_no_change_is_lost(
    service: FlagKitServer, redis_url: str, prefix: str, workers: list[Worker], tmp_path: Path
) -> None:
    options = _options(service, redis_url, prefix)
    for _ in range(3):
        spawn(workers, tmp_path, **options)
    wait_until(lambda: all(w.of("ready") for w in workers), timeout=30, message="ready")
    wait_until(lambda: _roles(workers).count("syncer") == 1, timeout=10, message="a syncer")
    old = _syncer(workers)
    old.signal(signal.SIGKILL)
    killed_at = time.monotonic()
    service.set_flag("probe", value="during-failover")  # nobody is syncing right now
    survivors = [w for w in workers if w is not old]
    wait_until(lambda: "syncer" in _roles(survivors), timeout=10, message="a new syncer")
    took_over = time.monotonic() - killed_at
    # The lease expires at most LEASE after the last renewal; the next election tick comes
    # within LEASE/3. One more second of slack for a loaded machine.
    assert took_over < LEASE + LEASE / 3 + 1.0, took_over
    wait_until(lambda: _all_have(survivors, "during-failover"), timeout=10, message="no loss")
    wait_until(lambda: service.stream_count == 1, timeout=10, message="one stream again")
    service.set_flag("probe", value="after-failover")
    wait_until(lambda: _all_have(survivors, "after-failover"), timeout=5, message="updates")
    assert all(w.state()["misses"] == 0 for w in survivors)


def _down_service() -> FlagKitServer:
    """A FlagKit service that fails every SDK request (and records them)."""
    down = FlagKitServer(port=0, api_keys=[API_KEY], flags=[])
    down.start()
    for endpoint in ("init", "updates", "stream_token", "stream"):
        down.inject_fault(endpoint, statuses=[503], count=None)
    return down


def test_service_down_new_workers_start_from_redis_without_asking_it(
    service: FlagKitServer, redis_url: str, prefix: str, workers: list[Worker], tmp_path: Path
) -> None:
    syncer = spawn(workers, tmp_path, **_options(service, redis_url, prefix))
    wait_until(lambda: syncer.of("ready"), timeout=30, message="syncer ready")
    service.set_flag("probe", value="from-redis")
    wait_until(lambda: _all_have([syncer], "from-redis"), timeout=5, message="synced")
    down = _down_service()
    try:
        # A new worker whose FlagKit service is down: it reads Redis and never asks.
        fresh = spawn(workers, tmp_path, **_options(down, redis_url, prefix))
        wait_until(lambda: fresh.of("ready"), timeout=30, message="new worker ready")
        ready = fresh.of("ready")[0]
        assert ready["role"] == "reader"
        # 200 ms on an idle machine (benchmarks/bench_fleet.py prints the figure); the
        # bound here allows for a loaded CI machine.
        assert ready["seconds"] < 1.0, ready
        assert fresh.state()["flags"]["probe"] == "from-redis"
        wait_until(lambda: fresh.state()["lookups"] > 20, timeout=5, message="lookups")
        assert down.requests == []  # not one request to the (down) service
        assert fresh.state()["misses"] == 0

        # With the syncer gone too, a new worker takes the lease and still starts from Redis.
        syncer.signal(signal.SIGKILL)
        later = spawn(workers, tmp_path, **_options(down, redis_url, prefix))
        wait_until(lambda: later.of("ready"), timeout=30, message="worker ready")
        assert later.state()["flags"]["probe"] == "from-redis"
    finally:
        down.close()


def test_a_reader_on_an_empty_redis_waits_for_the_first_snapshot(
    service: FlagKitServer, redis_url: str, prefix: str, workers: list[Worker], tmp_path: Path
) -> None:
    down = _down_service()
    try:
        reader = spawn(workers, tmp_path, **_options(down, redis_url, prefix, redis_role="reader"))
        wait_until(lambda: reader.state()["role"] == "reader", timeout=10, message="started")
        assert not reader.state()["ready"]
        spawn(workers, tmp_path, **_options(service, redis_url, prefix))
        wait_until(lambda: reader.of("ready"), timeout=10, message="reader ready")
        assert reader.state()["flags"]["probe"] == "v0"
        service.set_flag("probe", value="v1")
        wait_until(lambda: _all_have([reader], "v1"), timeout=5, message="reader updated")
        assert down.requests == []  # redis_role="reader" never talks to the service
    finally:
        down.close()


def test_redis_outage_clients_fall_back_to_the_service_and_return(
    service: FlagKitServer,
    redis_server: Any,
    redis_url: str,
    prefix: str,
    workers: list[Worker],
    tmp_path: Path,
) -> None:
    options = _options(service, redis_url, prefix)
    for _ in range(3):
        spawn(workers, tmp_path, **options)
    wait_until(lambda: all(w.of("ready") for w in workers), timeout=30, message="ready")
    wait_until(lambda: _roles(workers).count("syncer") == 1, timeout=10, message="a syncer")

    redis_server.stop()
    wait_until(lambda: _roles(workers) == ["direct"] * 3, timeout=15, message="fallback")
    service.set_flag("probe", value="during-outage")
    wait_until(lambda: _all_have(workers, "during-outage"), timeout=10, message="direct updates")

    redis_server.start()
    wait_until(
        lambda: sorted(r or "" for r in _roles(workers)) == ["reader", "reader", "syncer"],
        timeout=15,
        message="back to Redis",
    )
    wait_until(lambda: service.stream_count == 1, timeout=10, message="one stream again")
    service.set_flag("probe", value="after-outage")
    wait_until(lambda: _all_have(workers, "after-outage"), timeout=10, message="fleet updates")
    assert [w.state()["misses"] for w in workers] == [0, 0, 0]


def test_a_paused_syncer_cannot_overwrite_the_new_one(
    service: FlagKitServer, redis_url: str, prefix: str, workers: list[Worker], tmp_path: Path
) -> None:
    from flagkit.fleet.redis_io import RedisFleet
    from flagkit.fleet.snapshot import decode

    fleet = RedisFleet(redis_url, prefix, timeout=2.0, logger=__import__("logging").getLogger("t"))
    options = _options(service, redis_url, prefix)
    first = spawn(workers, tmp_path, **options)
    wait_until(lambda: first.of("ready"), timeout=30, message="first ready")
    wait_until(lambda: first.state()["role"] == "syncer", timeout=10, message="first syncs")
    second = spawn(workers, tmp_path, **options)
    wait_until(lambda: second.of("ready"), timeout=30, message="second ready")

    first.signal(signal.SIGSTOP)  # paused past its lease
    wait_until(lambda: second.state()["role"] == "syncer", timeout=10, message="takeover")
    new_token = int((fleet.lease_holder() or "0:").split(":")[0])
    service.set_flag("probe", value="new-syncer")  # also queued on the paused one's stream
    wait_until(lambda: _all_have([second], "new-syncer"), timeout=5, message="written")

    first.signal(signal.SIGCONT)
    wait_until(lambda: first.state()["role"] == "reader", timeout=10, message="first steps down")
    raw = fleet.read_snapshot()
    assert raw is not None
    assert decode(raw, None).token == new_token  # every write since is the new syncer's
    assert _all_have([first, second], "new-syncer")
    fleet.close()
