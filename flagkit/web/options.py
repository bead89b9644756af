"""Settings of the web adapters: the keys they share and how they split from core options.

Both adapters take one flat set of UPPER_CASE keys — Django's ``FLAGKIT`` dict, Flask's
``FLAGKIT_*`` config keys without the prefix — holding two kinds of keys:

- **core options**: the upper-case name of every :class:`~flagkit.FlagKitOptions` field
  (:func:`option_keys`), built with :meth:`FlagKitOptions.from_mapping` so validation
  lives in the core;
- **adapter keys**: how a request becomes an evaluation context. The keys both adapters
  have are the fields of :class:`WebAdapterSettings`; each adapter subclasses it (its
  own defaults, its own extra keys) and derives its defaults table with
  :func:`settings_defaults`.

>>> core, adapter, unknown = split_options(
...     {"API_KEY": "sdk_abcdefgh", "COUNTRY_HEADER": "CF-IPCountry", "POLING_INTERVAL": 5},
...     settings_defaults(WebAdapterSettings),
... )
>>> core, adapter, unknown
({'API_KEY': 'sdk_abcdefgh'}, {'COUNTRY_HEADER': 'CF-IPCountry'}, ['POLING_INTERVAL'])

Framework-neutral: imports neither Django nor Flask; nothing runs at import.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from flagkit.errors import FlagKitError
    from flagkit.types.config import FlagKitOptions

__all__ = [
    "OFFLINE_PLACEHOLDER_API_KEY",
    "WebAdapterSettings",
    "build_options",
    "core_defaults",
    "is_true",
    "option_keys",
    "setting_of_error",
    "settings_defaults",
    "split_options",
    "start_wait_seconds",
]

#: Used as ``api_key`` when ``OFFLINE`` is true and no ``API_KEY`` is given: offline mode
#: never talks to a server, so a development project need not invent a key.
OFFLINE_PLACEHOLDER_API_KEY: Final = "sdk_offline_placeholder"

_TRUE: Final = frozenset({"true", "1", "yes", "on"})


@dataclass(frozen=True, kw_only=True)
class WebAdapterSettings:
    """The adapter-only settings both web adapters have (validated by the adapter).

    Field names upper-cased are the setting keys (``COUNTRY_HEADER``); an adapter
    subclasses this to change defaults (header spelling, the user's id attribute) and add
    its own keys. Immutable.
    """

    #: Attribute of the user object sent as ``user_id``.
    user_id_attribute: str = "id"
    #: Request header holding an ISO country code set by a proxy/CDN (e.g. Cloudflare's).
    country_header: str | None = None
    #: Read the client IP from ``ip_header`` (first address) instead of the socket's peer.
    #: Only turn on behind a proxy that sets the header: otherwise visitors choose their IP.
    trust_proxy_headers: bool = False
    ip_header: str = "X-Forwarded-For"
    #: Signed cookie holding an anonymous visitor's stable key (sticky percentage rollouts).
    anonymous_cookie_name: str = "flagkit_anon"
    anonymous_cookie_max_age: int = 365 * 24 * 60 * 60
    #: Seconds a worker's first request waits for the first flags (0: no wait); see
    #: :mod:`flagkit.web.startup`.
    start_wait: float = 2.0


#: The largest ``START_WAIT`` accepted: a first request must not hang for minutes.
MAX_START_WAIT: Final = 60.0


def _field_defaults(cls: type, *, skip: Collection[str] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init or f.name in skip:
            continue
        if f.default is not dataclasses.MISSING:
            out[f.name.upper()] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name.upper()] = f.default_factory()
    return out


def settings_defaults(cls: type[WebAdapterSettings]) -> dict[str, Any]:
    """``{"USER_ID_ATTRIBUTE": "id", ...}``: every field of an adapter's settings class,
    upper-cased, with its default (the adapter's table of adapter-only keys)."""
    return _field_defaults(cls)


def core_defaults() -> dict[str, Any]:
    """``{"POLLING_INTERVAL": 30.0, ...}``: every core option but ``API_KEY`` with its default.

    Mutable defaults (``BOOTSTRAP``) are fresh objects on each call.
    """
    from flagkit.types.config import FlagKitOptions

    return _field_defaults(FlagKitOptions, skip=("api_key",))


@functools.cache
def option_keys() -> frozenset[str]:
    """Upper-case names of every :class:`~flagkit.FlagKitOptions` field."""
    from flagkit.types.config import FlagKitOptions

    return frozenset(name.upper() for name in FlagKitOptions.option_names())


def split_options(
    raw: Mapping[str, Any], adapter_keys: Collection[str]
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Split upper-cased settings into (core options, adapter keys, unknown keys), each in
    the order of ``raw``. An adapter key wins over a core option of the same name."""
    core_keys = option_keys()
    core: dict[str, Any] = {}
    adapter: dict[str, Any] = {}
    unknown: list[str] = []
    for name, value in raw.items():
        if name in adapter_keys:
            adapter[name] = value
        elif name in core_keys:
            core[name] = value
        else:
            unknown.append(name)
    return core, adapter, unknown


def is_true(value: object) -> bool:
    """Whether a setting's value means true: ``True`` or env-style text (``"true"``,
    ``"1"``, ``"yes"``, ``"on"``, any case)."""
    return value is True or str(value).strip().lower() in _TRUE


def start_wait_seconds(value: object) -> float | None:
    """``START_WAIT`` as seconds, or None when it is not a number from 0 to
    :data:`MAX_START_WAIT` (the adapter then raises naming its setting)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_START_WAIT:
        return None
    return seconds


def build_options(core: Mapping[str, Any], *, source: str) -> FlagKitOptions:
    """:meth:`FlagKitOptions.from_mapping` of the core part of an adapter's settings.

    When ``OFFLINE`` is true and ``API_KEY`` is missing or empty, the
    :data:`OFFLINE_PLACEHOLDER_API_KEY` is used. Raises what ``from_mapping`` raises
    (``ConfigurationError``, ``SecurityError``); :func:`setting_of_error` names the key.
    """
    from flagkit.types.config import FlagKitOptions

    if core.get("API_KEY") in (None, "") and is_true(core.get("OFFLINE", False)):
        core = {**core, "API_KEY": OFFLINE_PLACEHOLDER_API_KEY}
    return FlagKitOptions.from_mapping(core, source=source)


def setting_of_error(exc: FlagKitError) -> str | None:
    """The top-level setting key (``"STREAMING"`` for option ``streaming.enabled``) an
    error from :func:`build_options` is about, or None when it names none."""
    option = str(getattr(exc, "option", "") or "")
    if not option and exc.code == "SECURITY_LOCAL_PORT_IN_PRODUCTION":
        option = "local_port"
    return option.split(".", 1)[0].upper() if option else None
