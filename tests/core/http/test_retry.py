"""Retry policy (docs/protocol.md §5.1): attempts, backoff, what is retried, Retry-After."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flagkit.errors import (
    AuthenticationError,
    CircuitOpenError,
    EvaluationError,
    FlagKitError,
    NetworkError,
)
from flagkit.http.retry import backoff_delay, call_with_retry, is_retryable, normalize_attempts
from flagkit.types.config import RetryOptions


class FakeClock:
    """A clock that only moves when the fake wait sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, delay: float) -> bool:
        self.sleeps.append(delay)
        self.now += delay
        return False


def failing(errors: list[Exception], result: str = "ok") -> tuple[list[int], Callable[[], str]]:
    """An operation raising ``errors`` in turn, then returning ``result``."""
    calls: list[int] = []

    def operation() -> str:
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return calls, operation


NO_JITTER = RetryOptions(base_delay=1.0, max_delay=30.0, multiplier=2.0, jitter=0.0)


def test_normalize_attempts_has_floor_of_one() -> None:
    """``retries`` is the total number of attempts and 0 still means one attempt."""
    assert [normalize_attempts(n) for n in (0, 1, 3)] == [1, 1, 3]


def test_backoff_grows_exponentially_and_is_capped() -> None:
    """Delays are base * multiplier**(n-1), capped at max_delay."""
    options = RetryOptions(base_delay=1.0, max_delay=5.0, multiplier=2.0, jitter=0.0)
    assert [backoff_delay(n, options) for n in (1, 2, 3, 4, 100_000)] == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_adds_jitter_below_the_configured_bound() -> None:
    """Jitter adds uniform[0, jitter) seconds on top of the exponential delay."""
    options = RetryOptions(base_delay=1.0, jitter=0.5)
    assert backoff_delay(1, options, random_fn=lambda: 0.0) == 1.0
    assert backoff_delay(1, options, random_fn=lambda: 0.999) == pytest.approx(1.4995)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (NetworkError("NETWORK_SERVER_ERROR"), True),
        (NetworkError("NETWORK_TIMEOUT"), True),
        (NetworkError("NETWORK_CONNECTION_REFUSED"), True),
        (NetworkError("NETWORK_SSL_ERROR"), False),
        (AuthenticationError("AUTH_RATE_LIMITED"), False),
        (AuthenticationError("AUTH_INVALID_KEY"), False),
        (EvaluationError("EVAL_FLAG_NOT_FOUND"), False),
        (CircuitOpenError(), False),
        (FlagKitError("UNKNOWN_ERROR"), False),
        (ValueError("bug"), False),
    ],
)
def test_is_retryable_only_for_recoverable_transport_and_server_errors(
    error: Exception, expected: bool
) -> None:
    """Transport/5xx errors are retried; auth (incl. 429), 4xx, circuit-open and bugs are not."""
    assert is_retryable(error) is expected


def test_retries_until_success_with_growing_backoff() -> None:
    """Two 5xx failures then success: three calls, sleeping 1 s then 2 s."""
    clock = FakeClock()
    calls, operation = failing([NetworkError("NETWORK_SERVER_ERROR")] * 2)
    result = call_with_retry(operation, attempts=3, options=NO_JITTER, wait=clock.wait, clock=clock)
    assert result == "ok"
    assert len(calls) == 3
    assert clock.sleeps == [1.0, 2.0]


def test_gives_up_after_the_last_attempt() -> None:
    """With every attempt failing, the last error is raised after ``attempts`` calls."""
    clock = FakeClock()
    calls, operation = failing([NetworkError("NETWORK_TIMEOUT")] * 5)
    with pytest.raises(NetworkError) as info:
        call_with_retry(operation, attempts=3, options=NO_JITTER, wait=clock.wait, clock=clock)
    assert info.value.code == "NETWORK_TIMEOUT"
    assert len(calls) == 3
    assert len(clock.sleeps) == 2


def test_non_retryable_error_is_raised_after_one_call() -> None:
    """An authentication error is raised at once, without sleeping."""
    clock = FakeClock()
    calls, operation = failing([AuthenticationError("AUTH_INVALID_KEY")])
    with pytest.raises(AuthenticationError):
        call_with_retry(operation, attempts=5, options=NO_JITTER, wait=clock.wait, clock=clock)
    assert len(calls) == 1
    assert clock.sleeps == []


def test_retry_after_longer_than_backoff_is_honoured() -> None:
    """A retryable error with Retry-After waits max(backoff, retry_after)."""
    clock = FakeClock()
    error = NetworkError("NETWORK_SERVER_ERROR", retry_after=7)
    calls, operation = failing([error])
    call_with_retry(operation, attempts=2, options=NO_JITTER, wait=clock.wait, clock=clock)
    assert clock.sleeps == [7.0]
    assert len(calls) == 2


def test_backoff_past_the_deadline_is_not_slept() -> None:
    """When the next backoff would end after the deadline, the error is raised instead."""
    clock = FakeClock()
    calls, operation = failing([NetworkError("NETWORK_SERVER_ERROR")] * 3)
    with pytest.raises(NetworkError):
        call_with_retry(
            operation,
            attempts=3,
            options=NO_JITTER,
            deadline=clock.now + 2.5,
            wait=clock.wait,
            clock=clock,
        )
    # Slept 1 s (ends at +1 < +2.5); the 2 s backoff would end at +3 >= +2.5.
    assert clock.sleeps == [1.0]
    assert len(calls) == 2


def test_interrupted_wait_stops_retrying() -> None:
    """A wait that reports an interruption (client closed) ends the retries."""
    calls, operation = failing([NetworkError("NETWORK_SERVER_ERROR")] * 3)
    with pytest.raises(NetworkError):
        call_with_retry(operation, attempts=3, options=NO_JITTER, wait=lambda _: True)
    assert len(calls) == 1


def test_zero_attempts_still_calls_once() -> None:
    """``attempts=0`` performs one attempt (a floor of one)."""
    calls, operation = failing([])
    assert call_with_retry(operation, attempts=0, options=NO_JITTER) == "ok"
    assert len(calls) == 1
