"""Configuration of ``flagkit_flask``: ``FLAGKIT_*`` keys of ``app.config``, validated once.

Two kinds of keys, both prefixed ``FLAGKIT_``:

- **core options** — the upper-case name of every :class:`~flagkit.FlagKitOptions` field
  (``FLAGKIT_API_KEY``, ``FLAGKIT_POLLING_INTERVAL``, ``FLAGKIT_STREAMING`` as a dict, ...),
  the same names as Django's ``FLAGKIT`` dict. The prefix is stripped and the rest goes
  through :meth:`FlagKitOptions.from_mapping`, so validation lives in the core;
- **adapter keys** (:data:`ADAPTER_DEFAULTS`) — how a request becomes an evaluation
  context. Their names match the Django adapter's keys.

:func:`read_config` calls ``app.config.setdefault`` for every key but ``FLAGKIT_API_KEY``,
so the effective defaults are visible in ``app.config``. Nothing here runs at import.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from flagkit.errors import ConfigurationError
from flagkit.types.config import FlagKitOptions
from flagkit.web.options import (
    OFFLINE_PLACEHOLDER_API_KEY,
    WebAdapterSettings,
    build_options,
    core_defaults,
    is_true,
    option_keys,
    setting_of_error,
    settings_defaults,
    split_options,
    start_wait_seconds,
)

__all__ = [
    "ADAPTER_DEFAULTS",
    "OFFLINE_PLACEHOLDER_API_KEY",
    "PREFIX",
    "AdapterSettings",
    "core_defaults",
    "read_config",
]

PREFIX: Final = "FLAGKIT_"


@dataclass(frozen=True, kw_only=True)
class AdapterSettings(WebAdapterSettings):
    """The validated adapter-only keys (see :data:`ADAPTER_DEFAULTS`). Immutable.

    The fields are :class:`flagkit.web.options.WebAdapterSettings`: a user
    without ``USER_ID_ATTRIBUTE`` but with a Flask-Login style ``get_id()`` uses that;
    ``COUNTRY_HEADER`` and ``IP_HEADER`` are request header names ("CF-IPCountry"), and
    Django-style names ("HTTP_CF_IPCOUNTRY") are accepted too.
    """


#: Adapter-only keys (without the ``FLAGKIT_`` prefix) and their defaults: the
#: :class:`AdapterSettings` fields, upper-cased.
ADAPTER_DEFAULTS: Final[Mapping[str, Any]] = settings_defaults(AdapterSettings)


def _header_name(value: str) -> str:
    """``"HTTP_CF_IPCOUNTRY"`` (Django's spelling) -> ``"CF-IPCOUNTRY"``; others unchanged."""
    if value.startswith("HTTP_"):
        return value[5:].replace("_", "-")
    return value


def _where(name: str) -> str:
    return f"app.config[{PREFIX + name!r}]"


def _require(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise ConfigurationError(
            f"{_where(name)} must be {allowed}, got {value!r}", option=name.lower()
        )


def _adapter_settings(values: Mapping[str, Any]) -> AdapterSettings:
    def text(name: str, *, optional: bool = False) -> str | None:
        value = values[name]
        if optional and value in (None, ""):
            return None
        _require(isinstance(value, str) and value.strip() != "", name, value, "a non-empty str")
        return str(value).strip()

    trust = values["TRUST_PROXY_HEADERS"]
    _require(isinstance(trust, bool), "TRUST_PROXY_HEADERS", trust, "True or False")
    max_age = values["ANONYMOUS_COOKIE_MAX_AGE"]
    _require(
        isinstance(max_age, int) and not isinstance(max_age, bool) and max_age > 0,
        "ANONYMOUS_COOKIE_MAX_AGE",
        max_age,
        "an int number of seconds > 0",
    )
    start_wait = start_wait_seconds(values["START_WAIT"])
    _require(
        start_wait is not None,
        "START_WAIT",
        values["START_WAIT"],
        "a number of seconds from 0 to 60 (0: the first request does not wait for the flags)",
    )
    country = text("COUNTRY_HEADER", optional=True)
    return AdapterSettings(
        user_id_attribute=text("USER_ID_ATTRIBUTE") or "id",
        country_header=_header_name(country) if country else None,
        trust_proxy_headers=trust,
        ip_header=_header_name(text("IP_HEADER") or "X-Forwarded-For"),
        anonymous_cookie_name=text("ANONYMOUS_COOKIE_NAME") or "flagkit_anon",
        anonymous_cookie_max_age=max_age,
        start_wait=start_wait or 0.0,
    )


def read_config(config: MutableMapping[str, Any]) -> tuple[FlagKitOptions, AdapterSettings]:
    """Validate the ``FLAGKIT_*`` keys of ``config`` (an ``app.config``).

    >>> options, adapter = read_config({"FLAGKIT_API_KEY": "sdk_abcdefgh", "FLAGKIT_OFFLINE": True})
    >>> options.offline, adapter.anonymous_cookie_name
    (True, 'flagkit_anon')

    Sets every missing key but ``FLAGKIT_API_KEY`` to its default (``setdefault``).
    ``FLAGKIT_API_KEY`` may be left out when ``FLAGKIT_OFFLINE`` is true.

    Raises ``ConfigurationError`` naming the ``app.config`` key for an unknown
    ``FLAGKIT_*`` key (with the closest known one), a missing API key or a bad value;
    ``SecurityError`` for ``FLAGKIT_LOCAL_PORT`` in a production environment.
    """
    _core, _adapter, unknown = split_options(_stripped(config), ADAPTER_DEFAULTS)
    if unknown:
        key = PREFIX + unknown[0]
        known = sorted(PREFIX + name for name in (*option_keys(), *ADAPTER_DEFAULTS))
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigurationError(
            f"unknown setting app.config[{key!r}]{hint} (FLAGKIT_ keys are the "
            "upper-case FlagKitOptions fields, e.g. FLAGKIT_POLLING_INTERVAL, and the adapter "
            f"keys {', '.join(PREFIX + name for name in ADAPTER_DEFAULTS)})",
            code="CONFIG_INVALID_OPTION",
            option=key,
        )
    for name, value in {**core_defaults(), **ADAPTER_DEFAULTS}.items():
        config.setdefault(PREFIX + name, value)

    core, given, _unknown = split_options(_stripped(config), ADAPTER_DEFAULTS)
    adapter = _adapter_settings(given)
    if core.get("API_KEY") is None and not is_true(core.get("OFFLINE", False)):
        core.pop("API_KEY", None)
    try:
        options = build_options(core, source="app.config (FLAGKIT_* keys)")
    except ConfigurationError as exc:
        setting = setting_of_error(exc)
        where = _where(setting) if setting else "app.config"
        raise ConfigurationError(
            f"{where}: {exc.message}", code=exc.code, option=str(exc.option or "")
        ) from exc
    return options, adapter


def _stripped(config: Mapping[str, Any]) -> dict[str, Any]:
    """The ``FLAGKIT_*`` keys of ``config`` without the prefix, in ``config``'s order."""
    return {
        key[len(PREFIX) :]: value
        for key, value in config.items()
        if isinstance(key, str) and key.startswith(PREFIX)
    }
