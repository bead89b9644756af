"""Settings of ``flagkit_django``: the ``FLAGKIT`` dict, read lazily and validated once.

One setting configures everything::

    FLAGKIT = {
        "API_KEY": env("FLAGKIT_API_KEY"),   # any FlagKitOptions field, UPPER_CASE
        "POLLING_INTERVAL": 30,
        "STREAMING": {"ENABLED": True},      # option groups as nested dicts
        "COUNTRY_HEADER": "HTTP_CF_IPCOUNTRY",  # adapter-only keys (ADAPTER_DEFAULTS below)
    }

Keys naming a :class:`~flagkit.FlagKitOptions` field go through
:meth:`FlagKitOptions.from_mapping` (the same builder Flask uses), so validation and its
messages live in the core. Keys in :data:`ADAPTER_DEFAULTS` configure this adapter only and
are consumed here first. Unknown keys are ignored with a logged warning (system check
``flagkit.W001`` reports them too). Nothing is read at import: :func:`get_options` and
:func:`get_adapter_settings` read ``django.conf.settings`` on first call and cache the
result; :func:`clear_cache` (called when Django's ``setting_changed`` signal reports
``FLAGKIT``) forgets it. At request time an invalid ``FLAGKIT`` never fails a request:
:func:`report_configuration_error` logs it once with its hint, and the adapter runs with
:func:`fallback_options` and :func:`request_adapter_settings`. Thread-safe: the caches
are computed at most a few times under a race and always to the same value.
"""

from __future__ import annotations

import difflib
import functools
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from flagkit.errors import FlagKitError
from flagkit.web.options import (
    OFFLINE_PLACEHOLDER_API_KEY,
    WebAdapterSettings,
    build_options,
    is_true,
    option_keys,
    setting_of_error,
    settings_defaults,
    split_options,
    start_wait_seconds,
)

if TYPE_CHECKING:
    from django.http import HttpRequest

    from flagkit.types.config import FlagKitOptions
    from flagkit.types.context import EvaluationContext

__all__ = [
    "ADAPTER_DEFAULTS",
    "OFFLINE_PLACEHOLDER_API_KEY",
    "SETTING_NAME",
    "AdapterSettings",
    "clear_cache",
    "closest_key",
    "configuration_hint",
    "core_option_keys",
    "fallback_options",
    "get_adapter_settings",
    "get_options",
    "is_offline",
    "known_keys",
    "read_setting",
    "report_configuration_error",
    "request_adapter_settings",
    "split_setting",
]

logger = logging.getLogger("flagkit.django")

SETTING_NAME: Final = "FLAGKIT"

ContextBuilder = Callable[["HttpRequest", "EvaluationContext"], "EvaluationContext"]


@dataclass(frozen=True, kw_only=True)
class AdapterSettings(WebAdapterSettings):
    """The validated adapter-only keys of ``FLAGKIT`` (see :data:`ADAPTER_DEFAULTS`).

    The keys both adapters share are :class:`flagkit.web.options.WebAdapterSettings`
    fields; Django spells headers as ``request.META`` keys.
    """

    #: Attribute of ``request.user`` sent as ``user_id`` (e.g. "pk", "uuid", "username").
    user_id_attribute: str = "pk"
    #: ``request.META`` key of a proxy's ISO country code, e.g. "HTTP_CF_IPCOUNTRY"
    #: (Cloudflare) or "HTTP_CLOUDFRONT_VIEWER_COUNTRY"; None: no country.
    country_header: str | None = None
    ip_header: str = "HTTP_X_FORWARDED_FOR"
    #: Dotted path to ``fn(request, context) -> EvaluationContext`` adding/replacing
    #: attributes.
    context_builder: ContextBuilder | None = None
    #: Start the client on the first request (True) or only on the first evaluation (False).
    start_on_request: bool = True


#: Adapter-only keys of the ``FLAGKIT`` dict and their defaults (documented in
#: ``docs/django.md``): the :class:`AdapterSettings` fields, upper-cased.
ADAPTER_DEFAULTS: Final[Mapping[str, Any]] = settings_defaults(AdapterSettings)


def _key(name: str) -> str:
    return f"{SETTING_NAME}[{name!r}]"


def read_setting() -> dict[str, Any]:
    """The raw ``FLAGKIT`` dict with upper-cased keys (``{}`` when the setting is absent).

    Raises ``ImproperlyConfigured`` when ``FLAGKIT`` is not a mapping of string keys.
    """
    raw = getattr(settings, SETTING_NAME, None)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ImproperlyConfigured(
            f"{SETTING_NAME} must be a dict of options, got {type(raw).__name__}"
        )
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if not isinstance(name, str):
            raise ImproperlyConfigured(f"{SETTING_NAME} keys must be strings, got {name!r}")
        out[name.upper()] = value
    return out


#: Upper-case names of every :class:`~flagkit.FlagKitOptions` field.
core_option_keys = option_keys


def known_keys() -> frozenset[str]:
    """Every key the ``FLAGKIT`` dict understands: core options plus adapter keys."""
    return core_option_keys() | frozenset(ADAPTER_DEFAULTS)


def closest_key(name: str) -> str | None:
    """The known key closest to ``name`` (for "did you mean" hints), or None."""
    matches = difflib.get_close_matches(name.upper(), sorted(known_keys()), n=1, cutoff=0.6)
    return matches[0] if matches else None


def split_setting(
    raw: Mapping[str, Any],
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Split an upper-cased ``FLAGKIT`` dict into (core options, adapter keys, unknown keys)."""
    return split_options(raw, ADAPTER_DEFAULTS)


def is_offline(core: Mapping[str, Any]) -> bool:
    """Whether the core part of ``FLAGKIT`` asks for offline mode (bool or env-style text)."""
    return is_true(core.get("OFFLINE", False))


def _build_options(core: dict[str, Any]) -> FlagKitOptions:
    try:
        return build_options(core, source=SETTING_NAME)
    except FlagKitError as exc:  # ConfigurationError, or SecurityError for LOCAL_PORT in prod
        name = setting_of_error(exc)
        where = _key(name) if name else SETTING_NAME
        raise ImproperlyConfigured(f"{where}: {exc.message} ({exc.code})") from exc


@functools.cache
def get_options() -> FlagKitOptions:
    """The :class:`~flagkit.FlagKitOptions` built from ``settings.FLAGKIT`` (cached).

    >>> get_options().polling_interval
    30.0

    Raises ``ImproperlyConfigured`` naming the key when a value is invalid or ``API_KEY`` is
    missing (unless ``OFFLINE`` is true). Unknown keys are logged and ignored.
    """
    core, _adapter, unknown = split_setting(read_setting())
    for name in unknown:
        hint = closest_key(name)
        logger.warning(
            "%s is not a FlagKit setting and is ignored%s",
            _key(name),
            f" (did you mean {hint!r}?)" if hint else "",
        )
    return _build_options(core)


def _require(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise ImproperlyConfigured(f"{_key(name)} must be {allowed}, got {value!r}")


def _resolve_builder(name: str, value: object) -> ContextBuilder | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = import_string(value)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"{_key(name)} must be a dotted path to a callable, could not import "
                f"{value!r}: {exc}"
            ) from exc
    _require(callable(value), name, value, "a callable or a dotted path to one")
    return value  # type: ignore[return-value]


@functools.cache
def get_adapter_settings() -> AdapterSettings:
    """The validated adapter-only keys of ``FLAGKIT`` (cached).

    Raises ``ImproperlyConfigured`` naming the key when a value has the wrong type.
    """
    _core, given, _unknown = split_setting(read_setting())
    merged = {**ADAPTER_DEFAULTS, **given}

    def text(name: str, *, optional: bool = False) -> str | None:
        value = merged[name]
        if optional and value is None:
            return None
        _require(isinstance(value, str) and value != "", name, value, "a non-empty string")
        return str(value)

    def flag(name: str) -> bool:
        value = merged[name]
        _require(isinstance(value, bool), name, value, "True or False")
        return bool(value)

    max_age = merged["ANONYMOUS_COOKIE_MAX_AGE"]
    _require(
        isinstance(max_age, int) and not isinstance(max_age, bool) and max_age > 0,
        "ANONYMOUS_COOKIE_MAX_AGE",
        max_age,
        "a number of seconds > 0",
    )
    start_wait = start_wait_seconds(merged["START_WAIT"])
    _require(
        start_wait is not None,
        "START_WAIT",
        merged["START_WAIT"],
        "a number of seconds from 0 to 60 (0: the first request does not wait for the flags)",
    )
    return AdapterSettings(
        user_id_attribute=text("USER_ID_ATTRIBUTE") or "pk",
        country_header=text("COUNTRY_HEADER", optional=True),
        trust_proxy_headers=flag("TRUST_PROXY_HEADERS"),
        ip_header=text("IP_HEADER") or "HTTP_X_FORWARDED_FOR",
        anonymous_cookie_name=text("ANONYMOUS_COOKIE_NAME") or "flagkit_anon",
        anonymous_cookie_max_age=max_age,
        context_builder=_resolve_builder("CONTEXT_BUILDER", merged["CONTEXT_BUILDER"]),
        start_on_request=flag("START_ON_REQUEST"),
        start_wait=start_wait or 0.0,
    )


_reported: set[str] = set()
_reported_lock = threading.Lock()


def configuration_hint(exc: Exception) -> str:
    """What to do about a ``FLAGKIT`` error, said inline (the reader may have only the
    installed package): the setting to add or the values allowed."""
    text = str(exc)
    if "API_KEY" in text and ("required" in text or "missing" in text or "not set" in text):
        return (
            "set FLAGKIT['API_KEY'] to your FlagKit SDK key (e.g. from an environment "
            "variable), or FLAGKIT['OFFLINE'] = True to serve bootstrap values and defaults only"
        )
    if text.startswith(f"{SETTING_NAME} must be") or text.startswith(f"{SETTING_NAME} keys"):
        return "set FLAGKIT to a dict of options such as {'API_KEY': '...'}"
    return (
        "fix that value in settings.FLAGKIT; the message above says what it allows "
        "(run `manage.py check` to list every FLAGKIT problem)"
    )


def report_configuration_error(exc: Exception) -> None:
    """Log an invalid ``FLAGKIT`` found at request time once per process and message, at
    ERROR with its hint; the adapter then serves defaults instead of failing requests."""
    message = str(exc)
    with _reported_lock:
        if message in _reported:
            return
        _reported.add(message)
    logger.error(
        "FlagKit is not configured: %s. Hint: %s. Until this is fixed every flag serves "
        "its default.",
        message,
        configuration_hint(exc),
    )


def fallback_options() -> FlagKitOptions:
    """Options of the client used while ``FLAGKIT`` is invalid: offline, no flags, so every
    lookup serves its default."""
    return build_options({"OFFLINE": True}, source="FlagKit fallback (invalid FLAGKIT)")


def request_adapter_settings() -> AdapterSettings:
    """:func:`get_adapter_settings` for request-time code: when ``FLAGKIT`` is invalid the
    error is reported (:func:`report_configuration_error`) and the defaults are used."""
    try:
        return get_adapter_settings()
    except ImproperlyConfigured as exc:
        report_configuration_error(exc)
        return AdapterSettings()


def clear_cache() -> None:
    """Forget the cached options and adapter settings (next call re-reads ``FLAGKIT``)."""
    get_options.cache_clear()
    get_adapter_settings.cache_clear()
    with _reported_lock:
        _reported.clear()
