"""Test support shared by the project's test suites.

- :mod:`tests.support.fault_server` — a scripted loopback HTTP server (faults, SSE, recording).
- :func:`wait_until` — poll a condition with a deadline instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["wait_until"]


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
