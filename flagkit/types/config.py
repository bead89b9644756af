"""Configuration: :class:`FlagKitOptions` and the small option groups it holds.

Every option is validated when the dataclass is built (``__post_init__``); a bad value raises
:class:`~flagkit.errors.ConfigurationError` naming the option, the value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from flagkit.errors import ConfigurationError
from flagkit.errors.sanitizer import ErrorSanitizationConfig

if TYPE_CHECKING:
    from flagkit.types.flag import FlagState

__all__ = [
    "BootstrapConfig",
    "BootstrapVerificationOptions",
    "CircuitBreakerOptions",
    "ErrorSanitizationConfig",
    "EvaluationJitterConfig",
    "LoggerProtocol",
    "RetryOptions",
    "StreamingOptions",
]


def _require(condition: bool, option: str, value: object, allowed: str) -> None:
    """Raise ``ConfigurationError`` unless ``condition``; the message names all three."""
    if not condition:
        raise ConfigurationError(f"{option} must be {allowed}, got {value!r}", option=option)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class LoggerProtocol(Protocol):
    """What a custom ``logger=`` must offer (the published SDK's interface).

    A ``logging.Logger`` works too: the client adapts either.
    """

    def debug(self, message: str, **kwargs: Any) -> None: ...
    def info(self, message: str, **kwargs: Any) -> None: ...
    def warn(self, message: str, **kwargs: Any) -> None: ...
    def error(self, message: str, **kwargs: Any) -> None: ...


@dataclass
class BootstrapConfig:
    """Bootstrap flag values with an optional HMAC signature (PROTOCOL §7.1).

    ``timestamp`` is epoch milliseconds; build a signed one with
    :func:`flagkit.utils.security.create_bootstrap_signature`.
    """

    flags: dict[str, Any]
    signature: str | None = None
    timestamp: int | None = None

    def __repr__(self) -> str:
        return (
            f"BootstrapConfig(flags=<{len(self.flags)} flags>, "
            f"signed={self.signature is not None}, timestamp={self.timestamp!r})"
        )


@dataclass(frozen=True, kw_only=True)
class BootstrapVerificationOptions:
    """How a signed bootstrap is checked (PROTOCOL §7.2).

    ``max_age`` is in milliseconds; ``on_failure`` is ``"warn"`` (use the flags, log),
    ``"error"`` (raise ``SecurityError``) or ``"ignore"`` (discard the flags quietly).
    """

    enabled: bool = True
    max_age: int = 86_400_000
    on_failure: Literal["warn", "error", "ignore"] = "warn"

    def __post_init__(self) -> None:
        _require(isinstance(self.enabled, bool), "bootstrap_verification.enabled",
                 self.enabled, "a bool")
        _require(_is_number(self.max_age) and self.max_age > 0,
                 "bootstrap_verification.max_age", self.max_age,
                 "a positive number of milliseconds")
        _require(self.on_failure in ("warn", "error", "ignore"),
                 "bootstrap_verification.on_failure", self.on_failure,
                 'one of "warn", "error", "ignore"')


@dataclass(frozen=True, kw_only=True)
class EvaluationJitterConfig:
    """Random delay before each evaluation, against cache-timing attacks (milliseconds)."""

    enabled: bool = False
    min_ms: float = 5
    max_ms: float = 15

    def __post_init__(self) -> None:
        _require(_is_number(self.min_ms) and self.min_ms >= 0, "evaluation_jitter.min_ms",
                 self.min_ms, "a number >= 0")
        _require(_is_number(self.max_ms) and self.max_ms >= self.min_ms,
                 "evaluation_jitter.max_ms", self.max_ms, f"a number >= min_ms ({self.min_ms})")


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
        _require(_is_number(self.base_delay) and self.base_delay >= 0, "retry.base_delay",
                 self.base_delay, "a number of seconds >= 0")
        _require(_is_number(self.max_delay) and self.max_delay >= self.base_delay,
                 "retry.max_delay", self.max_delay, "a number of seconds >= base_delay")
        _require(_is_number(self.multiplier) and self.multiplier >= 1, "retry.multiplier",
                 self.multiplier, "a number >= 1")
        _require(_is_number(self.jitter) and self.jitter >= 0, "retry.jitter", self.jitter,
                 "a number of seconds >= 0")


@dataclass(frozen=True, kw_only=True)
class CircuitBreakerOptions:
    """Circuit breaker (PROTOCOL §5.2): opens after ``failure_threshold`` failures, probes
    again ``reset_timeout`` seconds later, closes after ``success_threshold`` successes."""

    failure_threshold: int = 5
    reset_timeout: float = 30.0
    success_threshold: int = 1

    def __post_init__(self) -> None:
        _require(isinstance(self.failure_threshold, int) and self.failure_threshold >= 1,
                 "circuit_breaker.failure_threshold", self.failure_threshold, "an int >= 1")
        _require(_is_number(self.reset_timeout) and self.reset_timeout > 0,
                 "circuit_breaker.reset_timeout", self.reset_timeout, "a number of seconds > 0")
        _require(isinstance(self.success_threshold, int) and self.success_threshold >= 1,
                 "circuit_breaker.success_threshold", self.success_threshold, "an int >= 1")


@dataclass(frozen=True, kw_only=True)
class StreamingOptions:
    """Server-sent-events updates (PROTOCOL §6). Seconds throughout."""

    enabled: bool = True
    reconnect_interval: float = 3.0
    max_reconnect_attempts: int = 3
    heartbeat_interval: float = 30.0
    retry_after_fallback: float = 300.0
    max_backoff: float = 30.0

    def __post_init__(self) -> None:
        for name in ("reconnect_interval", "heartbeat_interval", "retry_after_fallback",
                     "max_backoff"):
            value = getattr(self, name)
            _require(_is_number(value) and value > 0, f"streaming.{name}", value,
                     "a number of seconds > 0")
        _require(isinstance(self.max_reconnect_attempts, int) and self.max_reconnect_attempts >= 1,
                 "streaming.max_reconnect_attempts", self.max_reconnect_attempts, "an int >= 1")


# Callback types, for FlagKitOptions.
ReadyCallback = Callable[[], None]
ErrorCallback = Callable[[Exception], None]
UpdateCallback = Callable[["list[FlagState]"], None]
_ = field  # FlagKitOptions (below, added by the client work) uses dataclasses.field
