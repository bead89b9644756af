"""Retry with exponential backoff and jitter (docs/protocol.md §5.1).

One logical request makes up to ``attempts`` attempts (the ``retries`` option is the total
number of attempts, with a floor of 1). After failed attempt ``n`` it waits
``min(base_delay * multiplier**(n-1), max_delay) + uniform[0, jitter)`` seconds, or longer if
the error carries a ``Retry-After`` value, and never past the caller's deadline.

Only recoverable transport/server failures are retried: an :class:`AuthenticationError`
(401/403/429), a definite 3xx/4xx answer (except 408 and 425, see
:mod:`flagkit.http.responses`), a circuit-open error or any non-FlagKit exception is raised
at once.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from flagkit.errors import AuthenticationError, CircuitOpenError, FlagKitError
from flagkit.http.responses import retried_within_call
from flagkit.types.config import RetryOptions

__all__ = ["backoff_delay", "call_with_retry", "is_retryable", "normalize_attempts"]

T = TypeVar("T")

_MAX_EXPONENT = 60  # 2**60 * any sane base is far above max_delay; avoids float overflow
_logger = logging.getLogger("flagkit.http")


def normalize_attempts(retries: int) -> int:
    """Total attempts for a ``retries`` option value: at least 1 (``0`` means one attempt).

    >>> normalize_attempts(0), normalize_attempts(3)
    (1, 3)
    """
    return max(1, int(retries))


def backoff_delay(
    attempt: int,
    options: RetryOptions,
    *,
    random_fn: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based).

    >>> backoff_delay(2, RetryOptions(jitter=0.0))
    2.0
    """
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    base = min(options.base_delay * options.multiplier**exponent, options.max_delay)
    return float(base + options.jitter * random_fn())


def is_retryable(error: BaseException) -> bool:
    """Whether another attempt may help now: a recoverable ``FlagKitError`` that is neither
    an authentication error (incl. 429) nor a circuit-open error, and not a definite answer
    of the server that retrying at once would only repeat (e.g. a 404)."""
    return (
        isinstance(error, FlagKitError)
        and error.recoverable
        and not isinstance(error, (AuthenticationError, CircuitOpenError))
        and retried_within_call(error)
    )


def _never_interrupted_wait(delay: float) -> bool:
    threading.Event().wait(delay)
    return False


def call_with_retry(
    operation: Callable[[], T],
    *,
    attempts: int,
    options: RetryOptions,
    deadline: float | None = None,
    wait: Callable[[float], bool] | None = None,
    clock: Callable[[], float] = time.monotonic,
    random_fn: Callable[[], float] = random.random,
    description: str = "request",
    logger: logging.Logger | None = None,
) -> T:
    """Run ``operation`` until it succeeds, fails for good, or attempts/deadline run out.

    ``deadline`` is a ``clock()`` value bounding the whole call: a backoff that would end at
    or after it is not slept; the last error is raised instead. ``wait(delay)`` sleeps and
    returns ``True`` if it was interrupted (e.g. ``closed_event.wait``), which also ends the
    retries. A retryable error with ``retry_after`` waits ``max(backoff, retry_after)``.

    >>> call_with_retry(lambda: 42, attempts=3, options=RetryOptions())
    42

    Raises the last error of ``operation``. Thread-safe (no shared state).
    """
    log = logger or _logger
    sleep = wait or _never_interrupted_wait
    total = normalize_attempts(attempts)
    attempt = 1
    while True:
        try:
            return operation()
        except FlagKitError as error:
            if attempt >= total or not is_retryable(error):
                raise
            delay = backoff_delay(attempt, options, random_fn=random_fn)
            if error.retry_after is not None and error.retry_after > delay:
                delay = float(error.retry_after)
            if deadline is not None and clock() + delay >= deadline:
                log.debug(
                    "%s failed (attempt %d/%d); no retry: backoff %.2fs would pass the deadline",
                    description,
                    attempt,
                    total,
                    delay,
                )
                raise
            log.warning(
                "%s failed (attempt %d/%d): %s; retrying in %.2fs",
                description,
                attempt,
                total,
                error,
                delay,
            )
            if sleep(delay):
                raise
            attempt += 1
