"""Fleet-mode fixtures: a real redis-server for the session, a local FlagKit server per
test, a fresh key prefix per test, and worker processes (``tests/fleet/worker.py``)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flagkit.testing import FlagKitServer
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sdk_fleet_test_key_123"
LEASE = 1.0  # seconds: short, so failover tests stay quick


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One redis-server for the session (restarted by the tests that stop it)."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The running server's URL; restarts it after a test that stopped it."""
    if not redis_server.running:
        redis_server.start()
    yield redis_server.url
    if not redis_server.running:
        redis_server.start()


@pytest.fixture
def prefix() -> str:
    """A key prefix of its own for each test (tests share the Redis server)."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def service() -> Iterator[FlagKitServer]:
    """The local FlagKit service with a ``probe`` flag."""
    server = FlagKitServer(
        port=0,
        api_keys=[API_KEY],
        flags=[{"key": "probe", "value": "v0", "type": "string"}],
        heartbeat_interval=1.0,
    )
    server.start()
    yield server
    server.close()


class Worker:
    """A worker process; ``events`` collects what it prints, :meth:`state` asks it."""

    def __init__(self, options: dict[str, Any], log: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.log = log
        self._stderr = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fleet.worker", json.dumps(options)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self.events: list[dict[str, Any]] = []
        self._answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            message = json.loads(raw)
            if message["event"] == "state":
                self._answers.put(message)
            else:
                with self._lock:
                    self.events.append(message)

    def of(self, kind: str) -> list[dict[str, Any]]:
        """The events of one kind so far."""
        with self._lock:
            return [e for e in self.events if e["event"] == kind]

    def state(self, timeout: float = 10.0) -> dict[str, Any]:
        """Ask the worker for its role, readiness, failed lookups and flag values."""
        assert self.process.stdin is not None
        self.process.stdin.write(b"state\n")
        self.process.stdin.flush()
        return self._answers.get(timeout=timeout)

    def signal(self, sig: int) -> None:
        """Send ``sig`` (SIGKILL, SIGSTOP, SIGCONT) to the worker."""
        os.kill(self.process.pid, sig)

    def stop(self) -> None:
        """End the worker (politely, then by force)."""
        if self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGCONT)
                assert self.process.stdin is not None
                self.process.stdin.write(b"quit\n")
                self.process.stdin.flush()
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.process.kill()
                self.process.wait(10)
        self._reader.join(5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self._stderr.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[Worker]]:
    """A list to add workers to; every one is stopped at the end of the test."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def spawn(started: list[Worker], tmp_path: Path, **options: Any) -> Worker:
    """Start one worker with these client options."""
    worker = Worker(options, tmp_path / f"worker-{len(started)}.log")
    started.append(worker)
    return worker
