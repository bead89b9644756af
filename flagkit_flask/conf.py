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

import dataclasses
import difflib
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Final

from flagkit.errors import ConfigurationError
from flagkit.types.config import FlagKitOptions

__all__ = [
    "ADAPTER_DEFAULTS",
    "OFFLINE_PLACEHOLDER_API_KEY",
    "PREFIX",
    "AdapterSettings",
    "core_defaults",
    "read_config",
]

PREFIX: Final = "FLAGKIT_"

#: Used as ``api_key`` when ``FLAGKIT_OFFLINE`` is true and no ``FLAGKIT_API_KEY`` is set:
#: offline mode never talks to a server (same placeholder as the Django adapter).
OFFLINE_PLACEHOLDER_API_KEY: Final = "sdk_offline_placeholder"

#: Adapter-only keys (without the ``FLAGKIT_`` prefix) and their defaults.
ADAPTER_DEFAULTS: Final[Mapping[str, Any]] = {
    # Attribute (or mapping key) of the user object sent as ``user_id``; a user without it
    # but with a Flask-Login style ``get_id()`` uses that.
    "USER_ID_ATTRIBUTE": "id",
    # Request header holding an ISO country code set by a proxy/CDN, e.g. "CF-IPCountry".
    # Django-style names ("HTTP_CF_IPCOUNTRY") are accepted too.
    "COUNTRY_HEADER": None,
    # Read the client IP from IP_HEADER (first address) instead of REMOTE_ADDR. Only turn on
    # behind a proxy that sets the header: otherwise visitors can choose their own IP.
    "TRUST_PROXY_HEADERS": False,
    "IP_HEADER": "X-Forwarded-For",
    # Signed cookie holding an anonymous visitor's stable key (sticky percentage rollouts).
    "ANONYMOUS_COOKIE_NAME": "flagkit_anon",
    "ANONYMOUS_COOKIE_MAX_AGE": 365 * 24 * 60 * 60,
}


@dataclass(frozen=True, kw_only=True)
class AdapterSettings:
    """The validated adapter-only keys (see :data:`ADAPTER_DEFAULTS`). Immutable."""

    user_id_attribute: str = "id"
    country_header: str | None = None
    trust_proxy_headers: bool = False
    ip_header: str = "X-Forwarded-For"
    anonymous_cookie_name: str = "flagkit_anon"
    anonymous_cookie_max_age: int = 365 * 24 * 60 * 60


def core_defaults() -> dict[str, Any]:
    """``{"POLLING_INTERVAL": 30.0, ...}``: every core option but ``API_KEY`` with its default.

    Mutable defaults (``BOOTSTRAP``) are fresh objects on each call.
    """
    out: dict[str, Any] = {}
    for f in dataclasses.fields(FlagKitOptions):
        if not f.init or f.name == "api_key":
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name.upper()] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name.upper()] = f.default_factory()
    return out


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
    country = text("COUNTRY_HEADER", optional=True)
    return AdapterSettings(
        user_id_attribute=text("USER_ID_ATTRIBUTE") or "id",
        country_header=_header_name(country) if country else None,
        trust_proxy_headers=trust,
        ip_header=_header_name(text("IP_HEADER") or "X-Forwarded-For"),
        anonymous_cookie_name=text("ANONYMOUS_COOKIE_NAME") or "flagkit_anon",
        anonymous_cookie_max_age=max_age,
    )


def _is_true(value: object) -> bool:
    return value is True or str(value).strip().lower() in ("true", "1", "yes", "on")


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
    core_names = {name.upper() for name in FlagKitOptions.option_names()}
    known = core_names | set(ADAPTER_DEFAULTS)
    for key in list(config):
        if isinstance(key, str) and key.startswith(PREFIX) and key[len(PREFIX) :] not in known:
            close = difflib.get_close_matches(
                key, sorted(PREFIX + name for name in known), n=1, cutoff=0.6
            )
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"unknown setting app.config[{key!r}]{hint} (FLAGKIT_ keys are the "
                "upper-case FlagKitOptions fields and the adapter keys in docs/flask.md)",
                code="CONFIG_INVALID_OPTION",
                option=key,
            )
    for name, value in {**core_defaults(), **ADAPTER_DEFAULTS}.items():
        config.setdefault(PREFIX + name, value)

    adapter = _adapter_settings({name: config[PREFIX + name] for name in ADAPTER_DEFAULTS})
    core = {name: config[PREFIX + name] for name in core_names if PREFIX + name in config}
    if core.get("API_KEY") in (None, "") and _is_true(core.get("OFFLINE", False)):
        core["API_KEY"] = OFFLINE_PLACEHOLDER_API_KEY
    if core.get("API_KEY") is None:
        core.pop("API_KEY", None)
    try:
        options = FlagKitOptions.from_mapping(core, source="app.config (FLAGKIT_* keys)")
    except ConfigurationError as exc:
        option = str(exc.option or "")
        where = _where(option.split(".", 1)[0].upper()) if option else "app.config"
        raise ConfigurationError(f"{where}: {exc.message}", code=exc.code, option=option) from exc
    return options, adapter
