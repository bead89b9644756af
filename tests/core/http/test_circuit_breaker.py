"""Circuit breaker state machine (docs/protocol.md §5.2) with a controllable clock."""

from __future__ import annotations

import threading

import pytest

from flagkit.errors import CircuitOpenError, NetworkError
from flagkit.http.circuit_breaker import CircuitBreaker
from flagkit.types.config import CircuitBreakerOptions


class Clock:
    """A manual monotonic clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def boom() -> None:
    raise NetworkError("NETWORK_SERVER_ERROR")


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(NetworkError):
            breaker.call(boom)


def make(clock: Clock, **kwargs: float) -> CircuitBreaker:
    options = CircuitBreakerOptions(
        failure_threshold=int(kwargs.get("failure_threshold", 3)),
        reset_timeout=kwargs.get("reset_timeout", 10.0),
        success_threshold=int(kwargs.get("success_threshold", 1)),
    )
    return CircuitBreaker(options, clock=clock)


def test_opens_after_threshold_and_fails_fast_without_calling() -> None:
    """After N failures the breaker is OPEN and the wrapped function is no longer called."""
    clock = Clock()
    breaker = make(clock)
    fail(breaker, 3)
    assert breaker.state == "OPEN"
    called: list[int] = []
    with pytest.raises(CircuitOpenError) as info:
        breaker.call(lambda: called.append(1))
    assert called == []
    assert info.value.code == "NETWORK_CIRCUIT_OPEN"
    assert info.value.retry_after == 10


def test_success_resets_the_failure_count_when_closed() -> None:
    """Failures must be consecutive: a success in between resets the count."""
    clock = Clock()
    breaker = make(clock)
    fail(breaker, 2)
    breaker.call(lambda: None)
    fail(breaker, 2)
    assert breaker.state == "CLOSED"
    assert breaker.failure_count == 2


def test_errors_not_counted_as_failures_do_not_open() -> None:
    """Exceptions the caller classifies as "server answered" leave the breaker closed."""
    clock = Clock()
    breaker = make(clock, failure_threshold=1)
    for _ in range(3):
        with pytest.raises(NetworkError):
            breaker.call(boom, is_failure=lambda exc: False)
    assert breaker.state == "CLOSED"


def test_half_open_after_reset_timeout_and_closes_on_success() -> None:
    """After reset_timeout one probe goes through; its success closes the breaker."""
    clock = Clock()
    breaker = make(clock, reset_timeout=5.0)
    fail(breaker, 3)
    clock.now = 4.9
    assert breaker.state == "OPEN"
    clock.now = 5.0
    assert breaker.state == "HALF_OPEN"
    assert breaker.call(lambda: "probe") == "probe"
    assert breaker.state == "CLOSED"
    assert breaker.failure_count == 0


def test_probe_failure_reopens_for_another_reset_timeout() -> None:
    """A failed probe re-opens the breaker and restarts the reset timer."""
    clock = Clock()
    breaker = make(clock, reset_timeout=5.0)
    fail(breaker, 3)
    clock.now = 6.0
    fail(breaker)
    assert breaker.state == "OPEN"
    clock.now = 10.0
    assert breaker.state == "OPEN"
    clock.now = 11.0
    assert breaker.state == "HALF_OPEN"


def test_half_open_admits_exactly_one_probe_at_a_time() -> None:
    """While the probe is in flight, other calls fail fast and are not executed."""
    clock = Clock()
    breaker = make(clock, reset_timeout=1.0)
    fail(breaker, 3)
    clock.now = 2.0
    entered = threading.Event()
    release = threading.Event()
    outcome: list[object] = []

    def probe() -> str:
        entered.set()
        release.wait(5)
        return "done"

    thread = threading.Thread(target=lambda: outcome.append(breaker.call(probe)))
    thread.start()
    assert entered.wait(5)
    second: list[int] = []
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: second.append(1))
    assert second == []
    assert breaker.stats().probe_in_flight
    release.set()
    thread.join(5)
    assert outcome == ["done"]
    assert breaker.state == "CLOSED"


def test_success_threshold_needs_that_many_probe_successes() -> None:
    """With success_threshold=2 the breaker stays HALF_OPEN after one good probe."""
    clock = Clock()
    breaker = make(clock, reset_timeout=1.0, success_threshold=2)
    fail(breaker, 3)
    clock.now = 1.0
    breaker.call(lambda: None)
    assert breaker.state == "HALF_OPEN"
    breaker.call(lambda: None)
    assert breaker.state == "CLOSED"


def test_stale_outcome_from_before_opening_is_ignored() -> None:
    """A call admitted while CLOSED that finishes after the breaker opened changes nothing."""
    clock = Clock()
    breaker = make(clock, failure_threshold=1, reset_timeout=1.0)
    entered = threading.Event()
    release = threading.Event()

    def slow() -> None:
        entered.set()
        release.wait(5)

    thread = threading.Thread(target=lambda: breaker.call(slow))
    thread.start()
    assert entered.wait(5)
    fail(breaker)  # opens
    clock.now = 2.0
    assert breaker.state == "HALF_OPEN"
    release.set()
    thread.join(5)
    # The slow call's success must not count as the half-open probe's success.
    assert breaker.state == "HALF_OPEN"


def test_base_exceptions_count_as_failures_and_release_the_probe() -> None:
    """An interrupt during a probe re-opens the breaker instead of wedging it half-open."""
    clock = Clock()
    breaker = make(clock, failure_threshold=1, reset_timeout=1.0)
    fail(breaker)
    clock.now = 1.0

    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        breaker.call(interrupted)
    assert breaker.state == "OPEN"


def test_reset_closes_the_breaker() -> None:
    """``reset()`` returns an open breaker to CLOSED."""
    clock = Clock()
    breaker = make(clock, failure_threshold=1)
    fail(breaker)
    breaker.reset()
    assert breaker.state == "CLOSED"
    assert breaker.call(lambda: 1) == 1
