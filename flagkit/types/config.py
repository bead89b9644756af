"""Configuration: :class:`FlagKitOptions` and the small option groups it holds.

Every option is validated when the dataclass is built (``__post_init__``); a bad value raises
:class:`~flagkit.errors.ConfigurationError` naming the option, the value and what is allowed.
Framework integrations build options from settings with :meth:`FlagKitOptions.from_mapping`,
so the rules and messages exist once.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, TypedDict
from urllib.parse import urlsplit

from flagkit.errors import ConfigurationError, SecurityError
from flagkit.errors.sanitizer import ErrorSanitizationConfig
from flagkit.utils.logger import LoggerProtocol, is_logger_like
from flagkit.utils.platform import is_browser_runtime

if TYPE_CHECKING:
    from flagkit.types.flag import FlagState

__all__ = [
    "DEFAULT_BASE_URL",
    "BootstrapConfig",
    "BootstrapVerificationOptions",
    "CircuitBreakerOptions",
    "ErrorSanitizationConfig",
    "EvaluationJitterConfig",
    "FlagKitOptions",
    "FlagKitOptionsKwargs",
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
        _require(
            isinstance(self.enabled, bool), "bootstrap_verification.enabled", self.enabled, "a bool"
        )
        _require(
            _is_number(self.max_age) and self.max_age > 0,
            "bootstrap_verification.max_age",
            self.max_age,
            "a positive number of milliseconds",
        )
        _require(
            self.on_failure in ("warn", "error", "ignore"),
            "bootstrap_verification.on_failure",
            self.on_failure,
            'one of "warn", "error", "ignore"',
        )


@dataclass(frozen=True, kw_only=True)
class EvaluationJitterConfig:
    """Random delay before each evaluation, against cache-timing attacks (milliseconds)."""

    enabled: bool = False
    min_ms: float = 5
    max_ms: float = 15

    def __post_init__(self) -> None:
        _require(
            _is_number(self.min_ms) and self.min_ms >= 0,
            "evaluation_jitter.min_ms",
            self.min_ms,
            "a number >= 0",
        )
        _require(
            _is_number(self.max_ms) and self.max_ms >= self.min_ms,
            "evaluation_jitter.max_ms",
            self.max_ms,
            f"a number >= min_ms ({self.min_ms})",
        )


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
        _require(
            _is_number(self.base_delay) and self.base_delay >= 0,
            "retry.base_delay",
            self.base_delay,
            "a number of seconds >= 0",
        )
        _require(
            _is_number(self.max_delay) and self.max_delay >= self.base_delay,
            "retry.max_delay",
            self.max_delay,
            "a number of seconds >= base_delay",
        )
        _require(
            _is_number(self.multiplier) and self.multiplier >= 1,
            "retry.multiplier",
            self.multiplier,
            "a number >= 1",
        )
        _require(
            _is_number(self.jitter) and self.jitter >= 0,
            "retry.jitter",
            self.jitter,
            "a number of seconds >= 0",
        )


@dataclass(frozen=True, kw_only=True)
class CircuitBreakerOptions:
    """Circuit breaker (PROTOCOL §5.2): opens after ``failure_threshold`` failures, probes
    again ``reset_timeout`` seconds later, closes after ``success_threshold`` successes."""

    failure_threshold: int = 5
    reset_timeout: float = 30.0
    success_threshold: int = 1

    def __post_init__(self) -> None:
        _require(
            isinstance(self.failure_threshold, int) and self.failure_threshold >= 1,
            "circuit_breaker.failure_threshold",
            self.failure_threshold,
            "an int >= 1",
        )
        _require(
            _is_number(self.reset_timeout) and self.reset_timeout > 0,
            "circuit_breaker.reset_timeout",
            self.reset_timeout,
            "a number of seconds > 0",
        )
        _require(
            isinstance(self.success_threshold, int) and self.success_threshold >= 1,
            "circuit_breaker.success_threshold",
            self.success_threshold,
            "an int >= 1",
        )


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
        for name in (
            "reconnect_interval",
            "heartbeat_interval",
            "retry_after_fallback",
            "max_backoff",
        ):
            value = getattr(self, name)
            _require(
                _is_number(value) and value > 0,
                f"streaming.{name}",
                value,
                "a number of seconds > 0",
            )
        _require(
            isinstance(self.max_reconnect_attempts, int) and self.max_reconnect_attempts >= 1,
            "streaming.max_reconnect_attempts",
            self.max_reconnect_attempts,
            "an int >= 1",
        )


DEFAULT_BASE_URL: Final = "https://api.flagkit.dev/api/v1"
_BETA_BASE_URL: Final = "https://api.beta.flagkit.dev/api/v1"
# Sic (PROTOCOL §1): the published SDKs map FLAGKIT_MODE=local to this HTTPS host, not localhost.
_LOCAL_MODE_BASE_URL: Final = "https://api.flagkit.on/api/v1"
_KEY_PREFIXES: Final = ("sdk_", "srv_", "cli_")
_LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})

_GROUP_TYPES: Final[dict[str, type]] = {
    "retry": RetryOptions,
    "circuit_breaker": CircuitBreakerOptions,
    "streaming": StreamingOptions,
    "bootstrap_verification": BootstrapVerificationOptions,
    "evaluation_jitter": EvaluationJitterConfig,
    "error_sanitization": ErrorSanitizationConfig,
}
_IMPORTABLE: Final = frozenset({"logger", "on_ready", "on_error", "on_update"})


def _mask_key(value: str) -> str:
    """An API key as it may appear in a message: its first 8 characters only."""
    return f"{value[:8]}..." if len(value) > 8 else value


def _production_variable(environ: Mapping[str, str]) -> str | None:
    """The ``NAME=value`` that marks this process as production (PROTOCOL §1), or ``None``."""
    # Imported here: flagkit.utils.security imports this module.
    from flagkit.utils.security import PRODUCTION_ENV_VARS, is_production_environment

    if not is_production_environment(environ):
        return None
    for name in PRODUCTION_ENV_VARS:
        value = environ.get(name) or ""
        if value.strip().lower() == "production":
            return f"{name}={value}"
    return "production environment"  # pragma: no cover - the rule and the list agree


def _check_api_key(option: str, value: object, *, required: bool) -> None:
    allowed = "a str starting with sdk_, srv_ or cli_"
    if value is None or value == "":
        if required:
            raise ConfigurationError(
                f"{option} is required: {allowed}, got {value!r}",
                code="INIT_MISSING_API_KEY",
                option=option,
            )
        raise ConfigurationError(f"{option} must be None or {allowed}, got ''", option=option)
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{option} must be {allowed}, got a {type(value).__name__}", option=option
        )
    shown = _mask_key(value)
    if not value.startswith(_KEY_PREFIXES) or len(value) == 4:
        raise ConfigurationError(
            f"{option} must be {allowed} followed by the key, got {shown!r}", option=option
        )
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ConfigurationError(
            f"{option} must not contain whitespace or control characters (check for a "
            f"trailing newline), got {shown!r}",
            option=option,
        )
    if not value.isascii():
        # It travels in the X-API-Key header: httpx would fail on the first request instead.
        raise ConfigurationError(
            f"{option} must contain only ASCII characters, got {shown!r}", option=option
        )


def _check_number(option: str, value: object, *, minimum: float, strict: bool, unit: str) -> None:
    bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
    ok = (
        _is_number(value)
        and math.isfinite(value)  # type: ignore[arg-type]
        and (value > minimum if strict else value >= minimum)  # type: ignore[operator]
    )
    _require(ok, option, value, f"a finite number{unit} {bound}")


def _check_int(option: str, value: object, *, minimum: int, unit: str = "") -> None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    _require(ok, option, value, f"an int{unit} >= {minimum}")


def _check_base_url(value: object, *, allow_insecure_http: bool) -> None:
    allowed = "an absolute http(s) URL such as 'https://api.flagkit.dev/api/v1'"
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"base_url must be {allowed}, got {value!r}",
            code="INIT_INVALID_BASE_URL",
            option="base_url",
        )
    try:
        parts = urlsplit(value)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        raise ConfigurationError(
            f"base_url must be {allowed}, got {value!r} ({exc})",
            code="INIT_INVALID_BASE_URL",
            option="base_url",
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        raise ConfigurationError(
            f"base_url must be {allowed}, got {value!r}",
            code="INIT_INVALID_BASE_URL",
            option="base_url",
        )
    if parts.username is not None or parts.password is not None:
        shown = value.replace(parts.netloc, parts.netloc.rpartition("@")[2])
        raise ConfigurationError(
            f"base_url must not contain credentials (user:password@), got '{shown}' "
            "with credentials removed; the API key goes in api_key",
            code="INIT_INVALID_BASE_URL",
            option="base_url",
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"base_url must have no query string or fragment, got {value!r}",
            code="INIT_INVALID_BASE_URL",
            option="base_url",
        )
    if scheme == "http" and host.lower() not in _LOOPBACK_HOSTS and not allow_insecure_http:
        raise ConfigurationError(
            f"base_url uses plain http to {host!r}, got {value!r}: http is allowed only to "
            "localhost, 127.0.0.1 or ::1; use https, or set allow_insecure_http=True",
            code="INIT_INVALID_BASE_URL",
            option="base_url",
        )


def _check_optional_str(option: str, value: object, what: str) -> None:
    _require(value is None or (isinstance(value, str) and value != ""), option, value, what)


def _check_callable(option: str, value: object, signature: str) -> None:
    _require(value is None or callable(value), option, value, f"None or a callable {signature}")


@dataclass(frozen=True)
class FlagKitOptions:
    """Every setting of a :class:`~flagkit.FlagKitClient`, validated when built.

    >>> opts = FlagKitOptions(api_key="sdk_abcdefgh1234", polling_interval=10)
    >>> opts.resolved_base_url
    'https://api.flagkit.dev/api/v1'
    >>> try:
    ...     FlagKitOptions(api_key="sdk_abcdefgh1234", timeout=0)
    ... except ConfigurationError as exc:
    ...     print(exc)
    [INIT_INVALID_CONFIG] timeout must be a finite number of seconds > 0, got 0

    ``api_key`` may be given positionally (as in the published SDK); everything else is
    keyword-only. Durations are seconds unless the name says otherwise
    (``persistence_flush_interval`` is milliseconds, ``bootstrap_verification.max_age`` too).
    Integer values given for float options are stored as floats. API keys never appear in
    the repr or in error messages (only their first 8 characters).

    Raises :class:`~flagkit.errors.ConfigurationError` (an ``InitializationError`` and a
    ``ValueError``; code ``INIT_MISSING_API_KEY``, ``INIT_INVALID_BASE_URL`` or
    ``INIT_INVALID_CONFIG``) for a bad value, and
    :class:`~flagkit.errors.SecurityError` (``SECURITY_LOCAL_PORT_IN_PRODUCTION``) when
    ``local_port`` is set in a process that looks like production (one of ``PYTHON_ENV``,
    ``NODE_ENV``, ``ENV``, ``ENVIRONMENT`` equals ``production``). The environment
    (including ``FLAGKIT_MODE``) is read once, at construction. Immutable, so safe to share
    between threads; derive variants with :func:`dataclasses.replace`.
    """

    api_key: str
    _: KW_ONLY
    secondary_api_key: str | None = None
    key_rotation_grace_period: float = 300.0
    base_url: str = DEFAULT_BASE_URL
    local_port: int | None = None
    polling_interval: float = 30.0
    enable_polling: bool = True
    cache_enabled: bool = True
    cache_ttl: float = 300.0
    persist_cache: bool = False
    cache_storage_key: str = "flagkit_cache"
    cache_storage_path: str | None = None
    encrypt_cache: bool = False
    offline: bool = False
    timeout: float = 5.0
    retries: int = 3
    retry: RetryOptions = field(default_factory=RetryOptions)
    circuit_breaker: CircuitBreakerOptions = field(default_factory=CircuitBreakerOptions)
    streaming: StreamingOptions = field(default_factory=StreamingOptions)
    logger: LoggerProtocol | logging.Logger | logging.LoggerAdapter[Any] | None = None
    bootstrap: dict[str, Any] | BootstrapConfig = field(default_factory=dict)
    bootstrap_verification: BootstrapVerificationOptions = field(
        default_factory=BootstrapVerificationOptions
    )
    on_ready: Callable[[], None] | None = None
    on_error: Callable[[Exception], None] | None = None
    on_update: Callable[[list[FlagState]], None] | None = None
    debug: bool = False
    enable_request_signing: bool = True
    strict_pii_mode: bool = False
    persist_events: bool = False
    event_storage_path: str | None = None
    max_persisted_events: int = 10000
    persistence_flush_interval: int = 1000
    event_batch_size: int = 10
    event_flush_interval: float = 30.0
    max_event_queue_size: int = 1000
    lenient_tracking: bool = False
    evaluation_jitter: EvaluationJitterConfig = field(default_factory=EvaluationJitterConfig)
    error_sanitization: ErrorSanitizationConfig = field(default_factory=ErrorSanitizationConfig)
    allow_insecure_http: bool = False
    _resolved_base_url: str = field(init=False, repr=False, compare=False, default="")

    _BOOL_OPTIONS: ClassVar[tuple[str, ...]] = (
        "enable_polling",
        "cache_enabled",
        "persist_cache",
        "encrypt_cache",
        "offline",
        "debug",
        "enable_request_signing",
        "strict_pii_mode",
        "persist_events",
        "lenient_tracking",
        "allow_insecure_http",
    )

    def __post_init__(self) -> None:
        # Order of PROTOCOL §14.1: keys, local port, base URL, then the numbers.
        _check_api_key("api_key", self.api_key, required=True)
        if self.api_key.startswith("srv_") and is_browser_runtime():
            logging.getLogger("flagkit").warning(
                "a server key (srv_) is used in a browser runtime, where it can be read"
            )
        environ = os.environ
        if self.local_port is not None:
            port = self.local_port
            _require(
                isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535,
                "local_port",
                port,
                "None or an int from 1 to 65535",
            )
            marker = _production_variable(environ)
            if marker is not None:
                raise SecurityError(
                    "SECURITY_LOCAL_PORT_IN_PRODUCTION",
                    f"local_port={port} must not be used in production ({marker}); "
                    "remove local_port or unset the production marker",
                )
        if self.secondary_api_key is not None:
            _check_api_key("secondary_api_key", self.secondary_api_key, required=False)
        for name in self._BOOL_OPTIONS:
            value = getattr(self, name)
            _require(isinstance(value, bool), name, value, "a bool (True or False)")
        _check_base_url(self.base_url, allow_insecure_http=self.allow_insecure_http)

        _check_number(
            "key_rotation_grace_period",
            self.key_rotation_grace_period,
            minimum=0,
            strict=False,
            unit=" of seconds",
        )
        _check_number(
            "polling_interval", self.polling_interval, minimum=0, strict=False, unit=" of seconds"
        )
        _check_number("cache_ttl", self.cache_ttl, minimum=0, strict=False, unit=" of seconds")
        _check_number("timeout", self.timeout, minimum=0, strict=True, unit=" of seconds")
        _check_int("retries", self.retries, minimum=0, unit=" (total attempts; 0 means 1)")
        _check_number(
            "event_flush_interval",
            self.event_flush_interval,
            minimum=0,
            strict=True,
            unit=" of seconds",
        )
        _check_int("max_persisted_events", self.max_persisted_events, minimum=1)
        _check_int(
            "persistence_flush_interval",
            self.persistence_flush_interval,
            minimum=1,
            unit=" of milliseconds",
        )
        _check_int("event_batch_size", self.event_batch_size, minimum=1)
        _check_int("max_event_queue_size", self.max_event_queue_size, minimum=1)
        _require(
            self.event_batch_size <= self.max_event_queue_size,
            "event_batch_size",
            self.event_batch_size,
            f"<= max_event_queue_size ({self.max_event_queue_size})",
        )

        _require(
            isinstance(self.cache_storage_key, str) and self.cache_storage_key.strip() != "",
            "cache_storage_key",
            self.cache_storage_key,
            "a non-empty str",
        )
        _check_optional_str(
            "cache_storage_path",
            self.cache_storage_path,
            "None or a non-empty str (a directory path)",
        )
        _check_optional_str(
            "event_storage_path",
            self.event_storage_path,
            "None or a non-empty str (a directory path)",
        )

        for name, group_type in _GROUP_TYPES.items():
            value = getattr(self, name)
            _require(
                isinstance(value, group_type),
                name,
                value,
                f"a {group_type.__name__} (or, in from_mapping, a dict of its fields)",
            )
        _require(
            self.logger is None or is_logger_like(self.logger),
            "logger",
            self.logger,
            "None, a logging.Logger, or an object with debug/info/warn/error methods",
        )
        _check_callable("on_ready", self.on_ready, "taking no arguments")
        _check_callable("on_error", self.on_error, "taking the exception")
        _check_callable("on_update", self.on_update, "taking the list of updated FlagState")
        self._check_bootstrap()

        for name in (
            "key_rotation_grace_period",
            "polling_interval",
            "cache_ttl",
            "timeout",
            "event_flush_interval",
        ):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "_resolved_base_url", self._resolve_base_url(environ))

    def _check_bootstrap(self) -> None:
        value = self.bootstrap
        allowed = "a dict of flag key -> value, or a BootstrapConfig"
        if isinstance(value, BootstrapConfig):
            flags: object = value.flags
            _require(isinstance(flags, dict), "bootstrap.flags", flags, "a dict")
        elif isinstance(value, dict):
            flags = value
            object.__setattr__(self, "bootstrap", dict(value))  # later edits do not leak in
        else:
            raise ConfigurationError(
                f"bootstrap must be {allowed}, got a {type(value).__name__}", option="bootstrap"
            )
        assert isinstance(flags, dict)
        for key in flags:
            _require(
                isinstance(key, str) and key != "",
                "bootstrap",
                key,
                "keyed by non-empty str flag keys; found key",
            )

    def _resolve_base_url(self, environ: Mapping[str, str]) -> str:
        if self.local_port is not None:
            return f"http://localhost:{self.local_port}/api/v1"
        mode = environ.get("FLAGKIT_MODE", "")
        if mode:
            return {"local": _LOCAL_MODE_BASE_URL, "beta": _BETA_BASE_URL}.get(
                mode.strip().lower(), DEFAULT_BASE_URL
            )
        return self.base_url.rstrip("/")

    @property
    def resolved_base_url(self) -> str:
        """The base URL requests go to, without a trailing slash (PROTOCOL §1).

        ``local_port`` wins (``http://localhost:{port}/api/v1``); else a non-empty
        ``FLAGKIT_MODE`` environment variable (``local``, ``beta``, anything else is
        production); else ``base_url``. Decided when the options were built.
        """
        return self._resolved_base_url

    @property
    def api_key_id(self) -> str:
        """The first 8 characters of ``api_key``: safe to log."""
        return self.api_key[:8]

    @classmethod
    def option_names(cls) -> frozenset[str]:
        """The names of every option (the constructor's keywords)."""
        return frozenset(f.name for f in fields(cls) if f.init)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], *, source: str = "FLAGKIT") -> FlagKitOptions:
        """Build options from settings: Django's ``FLAGKIT`` dict, Flask's ``FLAGKIT_*`` keys.

        >>> FlagKitOptions.from_mapping(
        ...     {"API_KEY": "sdk_abcdefgh1234", "POLLING_INTERVAL": "15",
        ...      "STREAMING": {"ENABLED": "false"}, "ON_READY": "myapp.flags.ready"}
        ... )  # doctest: +SKIP

        - Keys are option names in any case (``POLLING_INTERVAL`` or ``polling_interval``);
          an unknown key raises ``ConfigurationError`` (code ``CONFIG_INVALID_OPTION``)
          naming it, the closest known name and ``source`` (the settings' name, for the
          message).
        - String values (from environment variables) are converted for bool options
          (``true/false``, ``1/0``, ``yes/no``, ``on/off``, any case), int and float options;
          an empty string (or ``none``/``null``) means ``None`` for options that accept it.
        - Option groups (``RETRY``, ``CIRCUIT_BREAKER``, ``STREAMING``,
          ``BOOTSTRAP_VERIFICATION``, ``EVALUATION_JITTER``, ``ERROR_SANITIZATION``) may be
          dicts of their fields, with the same rules.
        - ``logger``, ``on_ready``, ``on_error`` and ``on_update`` may be dotted import paths
          (``"pkg.module.attr"`` or ``"pkg.module:attr"``).
        - ``bootstrap`` is passed through unchanged (its keys are flag keys).

        Raises ``ConfigurationError`` (or ``SecurityError``) as the constructor does.
        """
        values = _normalise(cls, mapping, source=source)
        if "api_key" not in values:
            raise ConfigurationError(
                f"api_key is required: {source} has no API_KEY entry (a str starting with "
                "sdk_, srv_ or cli_)",
                code="INIT_MISSING_API_KEY",
                option="api_key",
            )
        return cls(**values)

    def __repr__(self) -> str:
        shown = [f"api_key={_mask_key(self.api_key)!r}"]
        for f in fields(self):
            if not f.init or f.name == "api_key":
                continue
            value = getattr(self, f.name)
            if f.default is not MISSING:
                default: object = f.default
            elif f.default_factory is not MISSING:
                default = f.default_factory()
            else:  # pragma: no cover - every option but api_key has a default
                default = None
            if value == default:
                continue
            if f.name == "secondary_api_key" and isinstance(value, str):
                shown.append(f"secondary_api_key={_mask_key(value)!r}")
            elif f.name == "bootstrap" and isinstance(value, dict):
                shown.append(f"bootstrap=<{len(value)} flags>")
            else:
                shown.append(f"{f.name}={value!r}")
        return f"FlagKitOptions({', '.join(shown)})"


class FlagKitOptionsKwargs(TypedDict, total=False):
    """The keyword arguments ``FlagKit.initialize(api_key, **options)`` accepts.

    One entry per :class:`FlagKitOptions` field except ``api_key`` (a test keeps them equal),
    so ``mypy`` checks every keyword and its type.
    """

    secondary_api_key: str | None
    key_rotation_grace_period: float
    base_url: str
    local_port: int | None
    polling_interval: float
    enable_polling: bool
    cache_enabled: bool
    cache_ttl: float
    persist_cache: bool
    cache_storage_key: str
    cache_storage_path: str | None
    encrypt_cache: bool
    offline: bool
    timeout: float
    retries: int
    retry: RetryOptions
    circuit_breaker: CircuitBreakerOptions
    streaming: StreamingOptions
    logger: LoggerProtocol | logging.Logger | logging.LoggerAdapter[Any] | None
    bootstrap: dict[str, Any] | BootstrapConfig
    bootstrap_verification: BootstrapVerificationOptions
    on_ready: Callable[[], None] | None
    on_error: Callable[[Exception], None] | None
    on_update: Callable[[list[FlagState]], None] | None
    debug: bool
    enable_request_signing: bool
    strict_pii_mode: bool
    persist_events: bool
    event_storage_path: str | None
    max_persisted_events: int
    persistence_flush_interval: int
    event_batch_size: int
    event_flush_interval: float
    max_event_queue_size: int
    lenient_tracking: bool
    evaluation_jitter: EvaluationJitterConfig
    error_sanitization: ErrorSanitizationConfig
    allow_insecure_http: bool


# --- from_mapping helpers ----------------------------------------------------------------

_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
_NONE: Final = frozenset({"", "none", "null"})


def _display(key: str, name: str) -> str:
    """``name`` spelt the way the user spells keys (upper case if ``key`` is)."""
    return name.upper() if key.isupper() else name


def _normalise(
    cls: type, mapping: Mapping[str, Any], *, source: str, path: str = "", shown: str = ""
) -> dict[str, Any]:
    """Lower-case the keys of ``mapping``, reject unknown ones, convert strings and groups.

    ``path`` is the canonical prefix of nested option names (``"streaming."``), ``shown``
    the same prefix as the user spelt it (``"STREAMING."``), for messages.
    """
    if not isinstance(mapping, Mapping):
        where = shown.rstrip(".") or source
        raise ConfigurationError(
            f"{where} must be a mapping of option names to values, got a {type(mapping).__name__}",
            option=path.rstrip("."),
        )
    known = {f.name: f for f in fields(cls) if f.init}
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ConfigurationError(
                f"{source} keys must be option names (str), got {key!r}",
                code="CONFIG_INVALID_OPTION",
                option=repr(key),
            )
        name = key.strip().lower()
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
            hint = f"; did you mean {shown}{_display(key, close[0])}?" if close else ""
            raise ConfigurationError(
                f"unknown option {shown}{key} in {source}{hint} (known: "
                f"{', '.join(sorted(_display(key, n) for n in known))})",
                code="CONFIG_INVALID_OPTION",
                option=f"{path}{key}",
            )
        if name in given:
            raise ConfigurationError(
                f"option {path}{name} is given twice in {source} (as {given[name]!r} and {key!r})",
                option=f"{path}{name}",
            )
        given[name] = key
        if not path and name in _GROUP_TYPES and isinstance(value, Mapping):
            group = _GROUP_TYPES[name]
            nested = _normalise(group, value, source=source, path=f"{name}.", shown=f"{key}.")
            out[name] = group(**nested)
        else:
            out[name] = _convert(known[name].type, f"{path}{name}", name, value, top=not path)
    return out


def _convert(annotation: object, option: str, name: str, value: object, *, top: bool) -> object:
    """Convert one string from settings to the option's type; other values pass unchanged."""
    if top and name in _IMPORTABLE and isinstance(value, str):
        return _import_object(option, value)
    if not isinstance(value, str) or not isinstance(annotation, str):
        return value
    kind = annotation.replace(" ", "")
    optional = kind.endswith("|None")
    base = kind.removesuffix("|None")
    text = value.strip()
    if optional and text.lower() in _NONE:
        return None
    if base == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigurationError(
            f"{option} must be a bool (true/false, 1/0, yes/no, on/off), got {value!r}",
            option=option,
        )
    if base == "int":
        try:
            return int(text)
        except ValueError:
            raise ConfigurationError(
                f"{option} must be an int, got {value!r}", option=option
            ) from None
    if base == "float":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ConfigurationError(
                f"{option} must be a finite number, got {value!r}", option=option
            )
        return number
    return value


def _import_object(option: str, path: str) -> object:
    """Import ``"pkg.module.attr"`` or ``"pkg.module:attr"``; errors name the option."""
    text = path.strip()
    if ":" in text:
        module_name, _, attr_path = text.partition(":")
        candidates = [(module_name, attr_path.split("."))]
    else:
        parts = text.split(".")
        candidates = [(".".join(parts[:i]), parts[i:]) for i in range(len(parts) - 1, 0, -1)]
    if not text or not candidates or not all(candidates[0]):
        raise ConfigurationError(
            f"{option} must be an object or a dotted import path like 'pkg.module.attr', "
            f"got {path!r}",
            option=option,
        )
    problem = "nothing importable"
    for module_name, attrs in candidates:
        try:
            obj: object = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                problem = f"no module named {exc.name!r}"
                continue  # a shorter prefix may be the module
            raise ConfigurationError(
                f"{option}: importing {path!r} failed: {exc}", option=option
            ) from exc
        except ImportError as exc:  # the module exists but is broken
            raise ConfigurationError(
                f"{option}: importing {path!r} failed: {exc}", option=option
            ) from exc
        try:
            for attr in attrs:
                obj = getattr(obj, attr)
        except AttributeError:
            problem = f"module {module_name!r} has no attribute {'.'.join(attrs)!r}"
            continue
        return obj
    raise ConfigurationError(
        f"{option} must be an object or a dotted import path like 'pkg.module.attr', "
        f"got {path!r} ({problem})",
        option=option,
    )
