"""Test support shared by the project's test suites.

- :mod:`tests.support.fault_server` — a scripted loopback HTTP server (faults, SSE, recording).
- :mod:`tests.support.clients` — loopback ``FlagKitClient``/``HttpClient`` factories, closed
  after each test.
- :mod:`tests.support.events` — a recording event sender and an ``EventQueue`` factory.
- :mod:`tests.support.targeting_examples` — the flags file of docs/targeting.md and its tables.
- :func:`wait_until` — poll a condition with a deadline instead of sleeping; fail at the deadline.
- :func:`poll_until` — the same, but return whether the condition came true.
- :func:`run_in_fork` — run a function in a forked child and return the report it made.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any

__all__ = ["poll_until", "run_in_fork", "wait_until"]


def wait_until(
    predicate: Callable[[], object],
    *,
    timeout: float = 5.0,
    interval: float = 0.01,
    message: str = "condition",
) -> None:
    """Return once ``predicate()`` is truthy; raise ``AssertionError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{message} not reached within {timeout}s")
        pause.wait(interval)


def poll_until(
    predicate: Callable[[], object], timeout: float = 10.0, *, interval: float = 0.01
) -> bool:
    """Poll ``predicate()`` until truthy or ``timeout`` s pass; return its final truth value."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while time.monotonic() < deadline:
        if predicate():
            return True
        pause.wait(interval)
    return bool(predicate())


def run_in_fork(child: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Fork; in the child run ``child()`` and send back its JSON report; return that report.

    Fails the test unless the child exited with status 0 (any exception in ``child`` makes it
    exit with 1). POSIX only.
    """
    read_fd, write_fd = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        pid = os.fork()
    if pid == 0:  # pragma: no cover - child process
        status = 1
        try:
            os.write(write_fd, json.dumps(child()).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        report: dict[str, Any] = json.loads(pipe.read() or b"{}")
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return report
