"""The FlagKit exception tree.

::

    FlagKitError                      code, numeric_code, recoverable, to_dict()
    ├── InitializationError           the client cannot start
    │   └── ConfigurationError        a bad option (also a ValueError)
    ├── AuthenticationError           401 / 403 / 429
    ├── NetworkError                  transport failures and 5xx
    │   └── CircuitOpenError          the breaker is open; nothing was sent
    ├── EvaluationError               raised only by explicit APIs, never by flag lookups
    ├── SecurityError                 PII in strict mode, bad bootstrap signature, ...
    ├── EventError                    track() with bad input (also a ValueError)
    └── StorageError                  cache or event storage cannot be read or written

Messages are sanitized when the error is built (:mod:`flagkit.errors.sanitizer`), with the
process-wide default set by :func:`configure_error_sanitization` (enabled unless changed).
A client applies its own ``error_sanitization`` option to the errors it hands to the
application with :func:`apply_error_sanitization`, so two clients with different settings do
not change each other's errors. API keys are redacted in every case.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TypeVar

from flagkit.errors.error_codes import ERROR_CODES, is_retryable_code
from flagkit.errors.sanitizer import (
    ErrorSanitizationConfig,
    redact_api_keys,
    redact_secrets,
    sanitize_error_message,
)

_E = TypeVar("_E", bound=BaseException)

_config_lock = threading.Lock()
_sanitization_config: ErrorSanitizationConfig | None = ErrorSanitizationConfig()


def configure_error_sanitization(config: ErrorSanitizationConfig | None) -> None:
    """Set the process-wide default sanitization (``None`` redacts API keys only).

    It applies to every :class:`FlagKitError` built afterwards in this process; a client's
    ``error_sanitization`` option overrides it for the errors that client reports (see
    :func:`apply_error_sanitization`).
    """
    global _sanitization_config
    with _config_lock:
        _sanitization_config = config


def get_sanitization_config() -> ErrorSanitizationConfig | None:
    """The process-wide default sanitization in force."""
    return _sanitization_config


class FlagKitError(Exception):
    """Root of every error the SDK raises.

    >>> err = FlagKitError("NETWORK_TIMEOUT", "timed out after 5.0s")
    >>> str(err), err.recoverable, err.numeric_code
    ('[NETWORK_TIMEOUT] timed out after 5.0s', True, 1301)

    Raises ``KeyError`` for an unknown ``code`` (a programming mistake).
    """

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
        request_id: str | None = None,
        cause: BaseException | None = None,
        request: str | None = None,
    ) -> None:
        definition = ERROR_CODES[code]
        # The request that failed ("GET http://127.0.0.1:8200/api/v1/sdk/init", never with
        # credentials): it starts the message and is not sanitized, so a warning names the
        # server the SDK was configured to reach.
        self.request = request
        raw = message if message else definition.message
        # The text before sanitization, API keys removed; never shown unless a
        # configuration with preserve_original asks for it (apply_error_sanitization).
        self._unsanitized: str | None = redact_api_keys(raw)
        self.message: str = ""
        self.original_message: str | None = None
        self._sanitize(_sanitization_config)
        self.code: str = code
        self.numeric_code: int = definition.numeric_code
        self.recoverable: bool = is_retryable_code(code)
        self.status_code = status_code
        self.details = details
        self.retry_after = retry_after
        self.request_id = request_id
        self.timestamp: datetime = datetime.now()
        if cause is not None:
            self.__cause__ = cause

    def _sanitize(self, config: ErrorSanitizationConfig | None) -> None:
        raw = self._unsanitized
        if raw is None:
            return
        clean = sanitize_error_message(raw, config)
        if self.request:
            clean = f"{self.request} failed: {clean}"
        self.message = clean
        self.args = (clean,)
        keep = config is not None and config.preserve_original and raw != clean
        self.original_message = raw if keep else None

    def redact(self, secrets: Iterable[str | None]) -> None:
        """Remove each of ``secrets`` (e.g. API keys, known by value) from every text of
        this error: message, ``args``, ``original_message``."""
        hidden = [secret for secret in secrets if isinstance(secret, str) and secret]
        if not hidden:
            return
        self.message = redact_secrets(self.message, hidden)
        self.args = tuple(
            redact_secrets(arg, hidden) if isinstance(arg, str) else arg for arg in self.args
        )
        if self._unsanitized is not None:
            self._unsanitized = redact_secrets(self._unsanitized, hidden)
        if self.original_message is not None:
            self.original_message = redact_secrets(self.original_message, hidden)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, "
            f"status_code={self.status_code!r})"
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict with snake_case keys (``docs/protocol.md`` §13.1)."""
        return {
            "name": type(self).__name__,
            "code": self.code,
            "numeric_code": self.numeric_code,
            "message": self.message,
            "status_code": self.status_code,
            "details": self.details,
            "recoverable": self.recoverable,
            "retry_after": self.retry_after,
            "request_id": self.request_id,
            "timestamp": self.timestamp.isoformat(),
        }


class InitializationError(FlagKitError):
    """The client could not start (bad configuration, failed first load, ...)."""


class ConfigurationError(InitializationError, ValueError):
    """An option has a bad value; the message names the option, the value and what is allowed.

    Code ``INIT_INVALID_CONFIG`` unless given (``INIT_MISSING_API_KEY``, ``INIT_INVALID_BASE_URL``).
    """

    def __init__(
        self, message: str, *, code: str = "INIT_INVALID_CONFIG", option: str = ""
    ) -> None:
        super().__init__(code, message)
        # The message describes the caller's own setting (URLs, paths, hosts): general
        # sanitization would hide the very mistake it reports. API keys stay redacted; the
        # options also remove their own keys by value (FlagKitError.redact).
        self.message = redact_api_keys(message)
        self.args = (self.message,)
        self.original_message = None
        self._unsanitized = None  # no other sanitization applies, now or later
        self.option = option


class AuthenticationError(FlagKitError):
    """The server rejected the API key (401), its permissions (403) or its rate (429)."""


class NetworkError(FlagKitError):
    """The server could not be reached, timed out, or answered 5xx or garbage."""


class CircuitOpenError(NetworkError):
    """The circuit breaker is open: the request was not sent (code ``NETWORK_CIRCUIT_OPEN``)."""

    def __init__(self, message: str | None = None, *, retry_after: int | None = None) -> None:
        super().__init__("NETWORK_CIRCUIT_OPEN", message, retry_after=retry_after)


class EvaluationError(FlagKitError):
    """An evaluation problem; flag lookups report it as a reason and never raise it."""


class SecurityError(FlagKitError):
    """A security check failed (PII in strict mode, bootstrap signature, local port, ...)."""


class EventError(FlagKitError, ValueError):
    """``track()`` was given an invalid event type or data."""


class StorageError(FlagKitError):
    """Cache or event storage could not be read or written."""


def apply_error_sanitization(error: _E, config: ErrorSanitizationConfig | None) -> _E:
    """Sanitize ``error`` under ``config`` (a client's ``error_sanitization`` option).

    Re-does the sanitization of a :class:`FlagKitError` from its text before sanitization
    (API keys always removed): ``enabled=False`` leaves paths, hosts and e-mail addresses
    in the message, ``preserve_original=True`` sets ``original_message``. A
    :class:`ConfigurationError` keeps its message (it describes the caller's own setting)
    and any other exception is left alone. Returns ``error`` for ``raise`` chaining.
    Calling it again with another config re-sanitizes from the same original text.
    """
    if isinstance(error, FlagKitError):
        error._sanitize(config)
    return error


def is_flagkit_error(error: object) -> bool:
    """Whether ``error`` is a :class:`FlagKitError`."""
    return isinstance(error, FlagKitError)


def is_retryable_error(error: object) -> bool:
    """Whether ``error`` is a recoverable :class:`FlagKitError`."""
    return isinstance(error, FlagKitError) and error.recoverable
