"""Circuit breaker around each HTTP attempt (docs/protocol.md §5.2).

States: ``CLOSED`` (calls pass, failures counted) -> ``OPEN`` after ``failure_threshold``
consecutive failures (calls fail fast with :class:`CircuitOpenError`, nothing is sent) ->
``HALF_OPEN`` once ``reset_timeout`` seconds have passed since it opened (exactly one probe
call at a time is let through; the others fail fast) -> ``CLOSED`` after
``success_threshold`` probe successes, or back to ``OPEN`` on a probe failure.

What counts as a failure is the caller's choice (``is_failure``). The HTTP client counts
transport errors, 5xx, 429 and malformed 2xx bodies; other 4xx answers do **not** count —
a rejected key or an unknown path means the server is up, so they must not open the circuit
and make every other request fail fast.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from flagkit.errors import CircuitOpenError
from flagkit.types.config import CircuitBreakerOptions

__all__ = ["CircuitBreaker", "CircuitBreakerStats", "CircuitState"]

T = TypeVar("T")


class CircuitState(str, enum.Enum):
    """Breaker states; the values are the §5.2 state strings."""

    CLOSED = "CLOSED"
    OPEN = "OPEN"
    HALF_OPEN = "HALF_OPEN"


@dataclass(frozen=True, slots=True)
class CircuitBreakerStats:
    """A consistent snapshot of the breaker's counters."""

    state: str
    failures: int
    successes: int
    probe_in_flight: bool


@dataclass(frozen=True, slots=True)
class _Permit:
    generation: int
    probe: bool


def _always(_: BaseException) -> bool:
    return True


class CircuitBreaker:
    """Fail fast while a server is down; probe it again after ``reset_timeout``.

    >>> breaker = CircuitBreaker(CircuitBreakerOptions(failure_threshold=1))
    >>> breaker.call(lambda: "ok")
    'ok'
    >>> breaker.state
    'CLOSED'

    Thread-safe: state lives under one lock that is held only to read or swap counters; the
    wrapped call and logging run outside it.
    """

    def __init__(
        self,
        options: CircuitBreakerOptions | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        self._options = options or CircuitBreakerOptions()
        self._clock = clock
        self._logger = logger or logging.getLogger("flagkit.http")
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._successes = 0
        self._opened_at = 0.0
        self._probe_in_flight = False
        self._generation = 0  # bumped on every transition; stale permits are ignored

    # -- inspection -----------------------------------------------------------------

    @property
    def state(self) -> str:
        """``"CLOSED"``, ``"OPEN"`` or ``"HALF_OPEN"`` (an open breaker whose reset timeout
        has passed reports ``HALF_OPEN``: the next call will be the probe)."""
        with self._lock:
            self._maybe_half_open()
            return self._state.value

    @property
    def failure_count(self) -> int:
        """Consecutive failures counted in the current state."""
        with self._lock:
            return self._failures

    def stats(self) -> CircuitBreakerStats:
        """A snapshot of state and counters."""
        with self._lock:
            self._maybe_half_open()
            return CircuitBreakerStats(
                state=self._state.value,
                failures=self._failures,
                successes=self._successes,
                probe_in_flight=self._probe_in_flight,
            )

    # -- use -------------------------------------------------------------------------

    def call(
        self,
        fn: Callable[[], T],
        *,
        is_failure: Callable[[BaseException], bool] = _always,
    ) -> T:
        """Run ``fn`` through the breaker.

        Raises :class:`CircuitOpenError` without calling ``fn`` while open (or while another
        half-open probe is in flight); otherwise returns or re-raises ``fn``'s outcome,
        recording an exception as a failure when ``is_failure(exc)`` is true and as a
        success (the server answered) otherwise.
        """
        permit = self._acquire()
        try:
            result = fn()
        except BaseException as exc:
            counts = not isinstance(exc, Exception) or is_failure(exc)
            self._record(permit, success=not counts)
            raise
        self._record(permit, success=True)
        return result

    def reset(self) -> None:
        """Force the breaker back to ``CLOSED`` with zeroed counters."""
        with self._lock:
            self._transition(CircuitState.CLOSED)

    def reset_after_fork(self) -> None:
        """Replace the lock (a parent thread may have held it at ``fork()``); keep state."""
        self._lock = threading.Lock()
        self._probe_in_flight = False

    # -- internals -------------------------------------------------------------------

    def _maybe_half_open(self) -> None:
        # Caller holds the lock.
        if (
            self._state is CircuitState.OPEN
            and self._clock() - self._opened_at >= self._options.reset_timeout
        ):
            self._transition(CircuitState.HALF_OPEN)

    def _transition(self, state: CircuitState) -> None:
        # Caller holds the lock.
        self._state = state
        self._generation += 1
        self._failures = 0
        self._successes = 0
        self._probe_in_flight = False
        if state is CircuitState.OPEN:
            self._opened_at = self._clock()

    def _acquire(self) -> _Permit:
        permit: _Permit | None = None
        entered_half_open = False
        remaining = 0.0
        with self._lock:
            before = self._state
            self._maybe_half_open()
            state = self._state
            entered_half_open = before is CircuitState.OPEN and state is CircuitState.HALF_OPEN
            if state is CircuitState.CLOSED:
                permit = _Permit(self._generation, probe=False)
            elif state is CircuitState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                permit = _Permit(self._generation, probe=True)
            else:
                remaining = self._options.reset_timeout - (self._clock() - self._opened_at)
        if permit is not None:
            if entered_half_open:
                self._logger.info("circuit breaker half-open: sending one probe request")
            return permit
        if state is CircuitState.HALF_OPEN:
            raise CircuitOpenError(
                "circuit breaker is half-open and its probe request is in flight; request not sent"
            )
        raise CircuitOpenError(
            f"circuit breaker is open; request not sent (next probe in {max(remaining, 0):.1f}s)",
            retry_after=max(1, math.ceil(remaining)),
        )

    def _record(self, permit: _Permit, *, success: bool) -> None:
        message: str | None = None
        level = logging.WARNING
        with self._lock:
            if permit.generation != self._generation:
                return  # the state changed while this call ran; its outcome is stale
            if self._state is CircuitState.CLOSED:
                if success:
                    self._failures = 0
                else:
                    self._failures += 1
                    if self._failures >= self._options.failure_threshold:
                        count = self._failures
                        self._transition(CircuitState.OPEN)
                        message = (
                            f"circuit breaker opened after {count} consecutive failures; "
                            f"failing fast for {self._options.reset_timeout}s"
                        )
            elif self._state is CircuitState.HALF_OPEN and permit.probe:
                self._probe_in_flight = False
                if not success:
                    self._transition(CircuitState.OPEN)
                    message = "circuit breaker probe failed; circuit re-opened"
                else:
                    self._successes += 1
                    if self._successes >= self._options.success_threshold:
                        self._transition(CircuitState.CLOSED)
                        message = "circuit breaker closed: the server answers again"
                        level = logging.INFO
        if message is not None:
            self._logger.log(level, message)
