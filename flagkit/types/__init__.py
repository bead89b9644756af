"""Public data types: options, context, flag state, evaluation results, event results."""

from flagkit.types.config import (
    DEFAULT_BASE_URL,
    BootstrapConfig,
    BootstrapVerificationOptions,
    CircuitBreakerOptions,
    ErrorSanitizationConfig,
    EvaluationJitterConfig,
    FlagKitOptions,
    FlagKitOptionsKwargs,
    LoggerProtocol,
    RetryOptions,
    StreamingOptions,
)
from flagkit.types.context import EvaluationContext
from flagkit.types.events import EventStats, FlushResult
from flagkit.types.flag import EvaluationReason, EvaluationResult, FlagState, FlagType, FlagValue

__all__ = [
    "DEFAULT_BASE_URL",
    "BootstrapConfig",
    "BootstrapVerificationOptions",
    "CircuitBreakerOptions",
    "ErrorSanitizationConfig",
    "EvaluationContext",
    "EvaluationJitterConfig",
    "EvaluationReason",
    "EvaluationResult",
    "EventStats",
    "FlagKitOptions",
    "FlagKitOptionsKwargs",
    "FlagState",
    "FlagType",
    "FlagValue",
    "FlushResult",
    "LoggerProtocol",
    "RetryOptions",
    "StreamingOptions",
]
