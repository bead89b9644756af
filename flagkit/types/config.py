"""Configuration: :class:`FlagKitOptions`, every setting of a client, validated once.

Every option is validated when the dataclass is built (``__post_init__``); a bad value raises
:class:`~flagkit.errors.ConfigurationError` naming the option, the value and what is allowed.
The parts of a client are built from these validated options and do not check them again.
Framework integrations build options from settings with :meth:`FlagKitOptions.from_mapping`
(conversions in :mod:`flagkit.types._settings`), so the rules and messages exist once.

The option groups are re-exported here: :class:`RetryOptions`, :class:`CircuitBreakerOptions`,
:class:`StreamingOptions`, :class:`EvaluationJitterConfig` (:mod:`flagkit.types.option_groups`),
:class:`BootstrapConfig`, :class:`BootstrapVerificationOptions`
(:mod:`flagkit.utils.bootstrap`) and :class:`ErrorSanitizationConfig`
(:mod:`flagkit.errors.sanitizer`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import KW_ONLY, MISSING, dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypedDict
from urllib.parse import urlsplit

from flagkit.errors import ConfigurationError, FlagKitError, SecurityError
from flagkit.errors.sanitizer import ErrorSanitizationConfig, mask_api_key
from flagkit.types._settings import GROUP_TYPES, normalise
from flagkit.types.option_groups import (
    CircuitBreakerOptions,
    EvaluationJitterConfig,
    RetryOptions,
    StreamingOptions,
)
from flagkit.utils.bootstrap import BootstrapConfig, BootstrapVerificationOptions
from flagkit.utils.logger import LoggerProtocol, is_logger_like
from flagkit.utils.platform import is_browser_runtime, production_marker
from flagkit.utils.validators import (
    api_key_problem,
    check_bool,
    check_callable,
    check_int,
    check_number,
    check_optional_str,
    require,
)

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

DEFAULT_BASE_URL: Final = "https://api.flagkit.dev/api/v1"
_BETA_BASE_URL: Final = "https://api.beta.flagkit.dev/api/v1"
# FLAGKIT_MODE=local maps to this HTTPS host, not to localhost (docs/protocol.md §1): kept
# for compatibility with the other FlagKit SDKs. local_port is the way to a local server.
_LOCAL_MODE_BASE_URL: Final = "https://api.flagkit.on/api/v1"
_LOOPBACK_HOSTS: Final = frozenset({"localhost", "127.0.0.1", "::1"})
_KEY_OPTIONS: Final = ("api_key", "secondary_api_key")


@contextmanager
def _keys_redacted(secrets: Iterator[object]) -> Iterator[None]:
    """Remove the given API keys, by value, from any FlagKitError raised in the block.

    The key messages themselves never show a key; this also covers a key that turns up
    elsewhere (pasted into another option, say), whatever characters it holds.
    """
    try:
        yield
    except FlagKitError as exc:
        exc.redact(secret for secret in secrets if isinstance(secret, str))
        raise


def _check_api_key(option: str, value: object, *, required: bool) -> None:
    """The one API-key rule (:func:`~flagkit.utils.validators.api_key_problem`).

    Messages name the option and the problem and show no character of the key: a key whose
    prefix is wrong may be some other secret pasted into the wrong setting.
    """
    allowed = "a str starting with sdk_, srv_ or cli_"
    if value is None or value == "":
        if required:
            raise ConfigurationError(
                f"{option} is required: {allowed}, got {value!r}",
                code="INIT_MISSING_API_KEY",
                option=option,
            )
        raise ConfigurationError(f"{option} must be None or {allowed}, got ''", option=option)
    problem = api_key_problem(value)
    if problem is not None:
        given = (
            f" (got a str of {len(value)} characters, not shown)" if isinstance(value, str) else ""
        )
        raise ConfigurationError(f"{option} {problem}{given}", option=option)


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

    ``api_key`` may be given positionally; everything else is
    keyword-only. Durations are seconds unless the name says otherwise
    (``persistence_flush_interval`` is milliseconds, ``bootstrap_verification.max_age`` too).
    Integer values given for float options are stored as floats. API keys never appear in
    error messages (not a character of them) nor in the repr (which shows the 8-character
    key id of a key of 16 characters or more, else only its prefix).

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
    evaluation_summaries: bool = False
    record_exposures_offline: bool = False
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
        "evaluation_summaries",
        "record_exposures_offline",
        "allow_insecure_http",
    )

    def __post_init__(self) -> None:
        with _keys_redacted(getattr(self, name) for name in _KEY_OPTIONS):
            self._validate()
        for name in (
            "key_rotation_grace_period",
            "polling_interval",
            "cache_ttl",
            "timeout",
            "event_flush_interval",
        ):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "_resolved_base_url", self._resolve_base_url(os.environ))

    def _validate(self) -> None:
        # Order of docs/protocol.md §14.1: keys, local port, base URL, then the numbers.
        _check_api_key("api_key", self.api_key, required=True)
        if self.api_key.startswith("srv_") and is_browser_runtime():
            logging.getLogger("flagkit").warning(
                "a server key (srv_) is used in a browser runtime, where it can be read"
            )
        if self.local_port is not None:
            port = self.local_port
            require(
                isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535,
                "local_port",
                port,
                "None or an int from 1 to 65535",
            )
            marker = production_marker(os.environ)
            if marker is not None:
                raise SecurityError(
                    "SECURITY_LOCAL_PORT_IN_PRODUCTION",
                    f"local_port={port} must not be used in production ({marker}); "
                    "remove local_port or unset the production marker",
                )
        if self.secondary_api_key is not None:
            _check_api_key("secondary_api_key", self.secondary_api_key, required=False)
        for name in self._BOOL_OPTIONS:
            check_bool(name, getattr(self, name))
        _check_base_url(self.base_url, allow_insecure_http=self.allow_insecure_http)

        seconds = " of seconds"
        check_number(
            "key_rotation_grace_period", self.key_rotation_grace_period, minimum=0, unit=seconds
        )
        check_number("polling_interval", self.polling_interval, minimum=0, unit=seconds)
        check_number("cache_ttl", self.cache_ttl, minimum=0, unit=seconds)
        check_number("timeout", self.timeout, minimum=0, strict=True, unit=seconds)
        check_int("retries", self.retries, minimum=0, unit=" (total attempts; 0 means 1)")
        check_number(
            "event_flush_interval", self.event_flush_interval, minimum=0, strict=True, unit=seconds
        )
        check_int("max_persisted_events", self.max_persisted_events, minimum=1)
        check_int(
            "persistence_flush_interval",
            self.persistence_flush_interval,
            minimum=1,
            unit=" of milliseconds",
        )
        check_int("event_batch_size", self.event_batch_size, minimum=1)
        check_int("max_event_queue_size", self.max_event_queue_size, minimum=1)
        require(
            self.event_batch_size <= self.max_event_queue_size,
            "event_batch_size",
            self.event_batch_size,
            f"<= max_event_queue_size ({self.max_event_queue_size})",
        )

        require(
            isinstance(self.cache_storage_key, str) and self.cache_storage_key.strip() != "",
            "cache_storage_key",
            self.cache_storage_key,
            "a non-empty str",
        )
        directory = "None or a non-empty str (a directory path)"
        check_optional_str("cache_storage_path", self.cache_storage_path, directory)
        check_optional_str("event_storage_path", self.event_storage_path, directory)

        for name, group_type in GROUP_TYPES.items():
            value = getattr(self, name)
            require(
                isinstance(value, group_type),
                name,
                value,
                f"a {group_type.__name__} (or, in from_mapping, a dict of its fields)",
            )
        # The one group defined below the validators (in flagkit.errors) is checked here.
        for name in ("enabled", "preserve_original"):
            check_bool(f"error_sanitization.{name}", getattr(self.error_sanitization, name))
        require(
            self.logger is None or is_logger_like(self.logger),
            "logger",
            self.logger,
            "None, a logging.Logger, or an object with debug/info/warn/error methods",
        )
        check_callable("on_ready", self.on_ready, "taking no arguments")
        check_callable("on_error", self.on_error, "taking the exception")
        check_callable("on_update", self.on_update, "taking the list of updated FlagState")
        self._check_bootstrap()

    def _check_bootstrap(self) -> None:
        value = self.bootstrap
        allowed = "a dict of flag key -> value, or a BootstrapConfig"
        if isinstance(value, BootstrapConfig):
            flags: object = value.flags
            require(isinstance(flags, dict), "bootstrap.flags", flags, "a dict")
        elif isinstance(value, dict):
            flags = value
            object.__setattr__(self, "bootstrap", dict(value))  # later edits do not leak in
        else:
            raise ConfigurationError(
                f"bootstrap must be {allowed}, got a {type(value).__name__}", option="bootstrap"
            )
        assert isinstance(flags, dict)
        for key in flags:
            require(
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
        """The base URL requests go to, without a trailing slash (``docs/protocol.md`` §1).

        ``local_port`` wins (``http://localhost:{port}/api/v1``); else a non-empty
        ``FLAGKIT_MODE`` environment variable (``local``, ``beta``, anything else is
        production); else ``base_url``. Decided when the options were built.
        """
        return self._resolved_base_url

    @property
    def api_key_id(self) -> str:
        """The first 8 characters of ``api_key`` (sent as ``X-Key-Id``)."""
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
        keys = (
            value
            for key, value in (mapping.items() if isinstance(mapping, Mapping) else ())
            if isinstance(key, str) and key.strip().lower() in _KEY_OPTIONS
        )
        with _keys_redacted(keys):
            values = normalise(cls, mapping, source=source)
        if "api_key" not in values:
            raise ConfigurationError(
                f"api_key is required: {source} has no API_KEY entry (a str starting with "
                "sdk_, srv_ or cli_)",
                code="INIT_MISSING_API_KEY",
                option="api_key",
            )
        return cls(**values)

    def __repr__(self) -> str:
        shown = [f"api_key={mask_api_key(self.api_key)!r}"]
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
                shown.append(f"secondary_api_key={mask_api_key(value)!r}")
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
    evaluation_summaries: bool
    record_exposures_offline: bool
    evaluation_jitter: EvaluationJitterConfig
    error_sanitization: ErrorSanitizationConfig
    allow_insecure_http: bool
