"""FlagKit SDK for Python: feature flags with caching, streaming updates and event tracking.

>>> from flagkit import FlagKit
>>> client = FlagKit.initialize(api_key="sdk_...")        # doctest: +SKIP
>>> client.get_boolean_value("dark-mode", default=False)  # doctest: +SKIP

Importing this package starts nothing and reads nothing: no thread, network call, file or
settings access happens until a client is created and started. It never imports Django or
Flask (those integrations are the separate ``flagkit_django`` and ``flagkit_flask``).
"""

from flagkit._version import __version__
from flagkit.client import FlagKitClient
from flagkit.errors import (
    AuthenticationError,
    CircuitOpenError,
    ConfigurationError,
    ErrorCode,
    EvaluationError,
    EventError,
    FlagKitError,
    InitializationError,
    NetworkError,
    SecurityError,
    StorageError,
)
from flagkit.flagkit import FlagKit
from flagkit.types.config import (
    BootstrapConfig,
    BootstrapVerificationOptions,
    CircuitBreakerOptions,
    ErrorSanitizationConfig,
    EvaluationJitterConfig,
    FlagKitOptions,
    LoggerProtocol,
    RetryOptions,
    StreamingOptions,
)
from flagkit.types.context import EvaluationContext
from flagkit.types.events import EventStats, FlushResult
from flagkit.types.flag import EvaluationReason, EvaluationResult, FlagState, FlagType, FlagValue

__all__ = [
    "AuthenticationError",
    "BootstrapConfig",
    "BootstrapVerificationOptions",
    "CircuitBreakerOptions",
    "CircuitOpenError",
    "ConfigurationError",
    "ErrorCode",
    "ErrorSanitizationConfig",
    "EvaluationContext",
    "EvaluationError",
    "EvaluationJitterConfig",
    "EvaluationReason",
    "EvaluationResult",
    "EventError",
    "EventStats",
    "FlagKit",
    "FlagKitClient",
    "FlagKitError",
    "FlagKitOptions",
    "FlagState",
    "FlagType",
    "FlagValue",
    "FlushResult",
    "InitializationError",
    "LoggerProtocol",
    "NetworkError",
    "RetryOptions",
    "SecurityError",
    "StorageError",
    "StreamingOptions",
    "__version__",
]
