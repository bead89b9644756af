"""The loop that keeps flags current when streaming is off or down (docs/protocol.md §5.3).

:class:`PollingManager` runs one function repeatedly on the named daemon thread
``flagkit-poller``:

- each wait is the current interval plus a random jitter of up to ``jitter`` seconds
  (1 s by default, as in §5.3; never more than a tenth of the interval, so tiny intervals
  in tests stay tiny);
- a call that raises counts as a failure: the interval doubles, up to ``max_interval``
  (300 s, or the base interval if that is larger);
- a call that returns resets the interval to the base;
- ``wake()`` runs the function at once (``refresh``, streaming fallback), ``stop()`` ends the
  loop immediately: the thread sleeps with ``Event.wait``.

The function decides what a tick does (first load, ``/sdk/updates``, or just renewing
freshness while the stream is healthy); the manager only schedules and backs off.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

__all__ = ["PollingManager"]

DEFAULT_MAX_INTERVAL = 300.0
DEFAULT_JITTER = 1.0


class PollingManager:
    """Calls ``poll()`` every ``interval`` seconds (plus jitter), backing off on failure.

    >>> pm = PollingManager(lambda: None, interval=30.0, logger=logging.getLogger("flagkit"))
    >>> pm.start(); pm.stop()

    ``initial_delay`` is the wait before the first call (default: one interval, §5.3;
    ``0`` runs it at once). Errors raised by ``poll`` are logged (a warning per failure,
    with the next delay) and never end the loop. Thread-safe.
    """

    def __init__(
        self,
        poll: Callable[[], object],
        *,
        interval: float,
        logger: logging.Logger,
        max_interval: float = DEFAULT_MAX_INTERVAL,
        jitter: float = DEFAULT_JITTER,
        initial_delay: float | None = None,
        name: str = "flagkit-poller",
    ) -> None:
        if interval < 0:
            raise ValueError(f"interval must be >= 0 seconds, got {interval!r}")
        self._poll = poll
        self._logger = logger
        self._base = float(interval)
        self._max = float(max_interval)
        self._jitter = float(jitter)
        self._initial_delay = initial_delay
        self._name = name
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._current = self._base
        self._failures = 0
        self._polls = 0

    # -- state ----------------------------------------------------------------------------

    @property
    def interval(self) -> float:
        """The base interval (seconds) used after a success."""
        return self._base

    @property
    def current_interval(self) -> float:
        """The interval the next wait uses (grows while polls fail)."""
        return self._current

    @property
    def consecutive_failures(self) -> int:
        """Failed polls since the last success."""
        return self._failures

    @property
    def poll_count(self) -> int:
        """How many times ``poll`` has been called."""
        return self._polls

    @property
    def is_running(self) -> bool:
        """Whether the loop thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stopped

    def set_interval(self, interval: float) -> None:
        """Change the base interval; takes effect from the next wait (a failing streak keeps
        its backoff)."""
        if interval < 0:
            raise ValueError(f"interval must be >= 0 seconds, got {interval!r}")
        with self._lock:
            self._base = float(interval)
            if self._failures == 0:
                self._current = self._base

    def next_delay(self) -> float:
        """The wait before the next poll: current interval plus jitter (§5.3)."""
        current = self._current
        jitter = min(self._jitter, current / 10.0)
        return current + (random.uniform(0.0, jitter) if jitter > 0 else 0.0)

    # -- control --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread (idempotent; a stopped manager stays stopped)."""
        with self._lock:
            if self._stopped or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Poll now instead of at the end of the current wait."""
        self._wake.set()

    def stop(self, timeout: float | None = 2.0) -> None:
        """End the loop; waits up to ``timeout`` for a poll in progress (not when called
        from the loop itself). Idempotent."""
        with self._lock:
            self._stopped = True
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self._initial_delay if self._initial_delay is not None else self.next_delay()
        while True:
            if delay > 0:
                self._wake.wait(delay)
            self._wake.clear()
            if self._stopped:
                return
            self._polls += 1
            try:
                self._poll()
            except Exception as exc:
                with self._lock:
                    self._failures += 1
                    cap = max(self._max, self._base)
                    self._current = min(max(self._current, self._base) * 2.0, cap)
                    if self._current == 0.0:
                        self._current = min(1.0, cap)
                delay = self.next_delay()
                self._logger.warning(
                    "poll failed (%d in a row): %s; next attempt in %.3fs",
                    self._failures,
                    exc,
                    delay,
                    exc_info=self._logger.isEnabledFor(logging.DEBUG),
                )
                continue
            with self._lock:
                self._failures = 0
                self._current = self._base
            delay = self.next_delay()
