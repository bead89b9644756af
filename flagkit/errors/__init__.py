"""Errors raised by the FlagKit SDK, their codes, and message sanitization."""

from flagkit.errors.error_codes import ERROR_CODES, ErrorCode, ErrorDefinition, is_retryable_code
from flagkit.errors.flagkit_error import (
    AuthenticationError,
    CircuitOpenError,
    ConfigurationError,
    EvaluationError,
    EventError,
    FlagKitError,
    InitializationError,
    NetworkError,
    SecurityError,
    StorageError,
    configure_error_sanitization,
    get_sanitization_config,
    is_flagkit_error,
    is_retryable_error,
)
from flagkit.errors.sanitizer import ErrorSanitizationConfig, sanitize_error_message

__all__ = [
    "ERROR_CODES",
    "AuthenticationError",
    "CircuitOpenError",
    "ConfigurationError",
    "ErrorCode",
    "ErrorDefinition",
    "ErrorSanitizationConfig",
    "EvaluationError",
    "EventError",
    "FlagKitError",
    "InitializationError",
    "NetworkError",
    "SecurityError",
    "StorageError",
    "configure_error_sanitization",
    "get_sanitization_config",
    "is_flagkit_error",
    "is_retryable_code",
    "is_retryable_error",
    "sanitize_error_message",
]
