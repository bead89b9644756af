"""The option groups of :class:`~flagkit.FlagKitOptions` that tune one part each.

:class:`RetryOptions` (backoff between attempts), :class:`CircuitBreakerOptions`,
:class:`StreamingOptions` and :class:`EvaluationJitterConfig`. Each validates its fields in
``__post_init__`` with the checks of :mod:`flagkit.utils.validators`, so a bad value raises
:class:`~flagkit.errors.ConfigurationError` naming ``group.field``, the value and what is
allowed. The parts that use them (HTTP client, streaming) take them as validated.

The two remaining groups live where their helpers are: ``BootstrapVerificationOptions`` in
:mod:`flagkit.utils.bootstrap` and ``ErrorSanitizationConfig`` in
:mod:`flagkit.errors.sanitizer`; :mod:`flagkit.types.config` re-exports all six.
"""

from __future__ import annotations

from dataclasses import dataclass

from flagkit.utils.validators import check_int, check_number

__all__ = [
    "CircuitBreakerOptions",
    "EvaluationJitterConfig",
    "RetryOptions",
    "StreamingOptions",
]


@dataclass(frozen=True, kw_only=True)
class EvaluationJitterConfig:
    """Random delay before each evaluation, against cache-timing attacks (milliseconds)."""

    enabled: bool = False
    min_ms: float = 5
    max_ms: float = 15

    def __post_init__(self) -> None:
        check_number("evaluation_jitter.min_ms", self.min_ms, minimum=0)
        check_number("evaluation_jitter.max_ms", self.max_ms, minimum=self.min_ms)


@dataclass(frozen=True, kw_only=True)
class RetryOptions:
    """Backoff between attempts of one request: ``min(base * multiplier**(n-1), max) + jitter``.

    Seconds. The number of attempts is the top-level ``retries`` option.
    """

    base_delay: float = 1.0
    max_delay: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        seconds = " of seconds"
        check_number("retry.base_delay", self.base_delay, minimum=0, unit=seconds)
        check_number("retry.max_delay", self.max_delay, minimum=self.base_delay, unit=seconds)
        check_number("retry.multiplier", self.multiplier, minimum=1)
        check_number("retry.jitter", self.jitter, minimum=0, unit=seconds)


@dataclass(frozen=True, kw_only=True)
class CircuitBreakerOptions:
    """Circuit breaker (``docs/protocol.md`` §5.2): opens after ``failure_threshold``
    failures, probes again ``reset_timeout`` seconds later, closes after
    ``success_threshold`` successes."""

    failure_threshold: int = 5
    reset_timeout: float = 30.0
    success_threshold: int = 1

    def __post_init__(self) -> None:
        check_int("circuit_breaker.failure_threshold", self.failure_threshold, minimum=1)
        check_number(
            "circuit_breaker.reset_timeout",
            self.reset_timeout,
            minimum=0,
            strict=True,
            unit=" of seconds",
        )
        check_int("circuit_breaker.success_threshold", self.success_threshold, minimum=1)


@dataclass(frozen=True, kw_only=True)
class StreamingOptions:
    """Server-sent-events updates (``docs/protocol.md`` §6). Seconds throughout."""

    enabled: bool = True
    reconnect_interval: float = 3.0
    max_reconnect_attempts: int = 3
    heartbeat_interval: float = 30.0
    retry_after_fallback: float = 300.0
    max_backoff: float = 30.0

    def __post_init__(self) -> None:
        for name in (
            "reconnect_interval",
            "heartbeat_interval",
            "retry_after_fallback",
            "max_backoff",
        ):
            check_number(
                f"streaming.{name}", getattr(self, name), minimum=0, strict=True, unit=" of seconds"
            )
        check_int("streaming.max_reconnect_attempts", self.max_reconnect_attempts, minimum=1)
