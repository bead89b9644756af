"""System checks for the ``FLAGKIT`` setting and the middleware order.

Registered by :class:`flagkit_django.apps.FlagKitConfig` (tag ``flagkit``) and run by
``manage.py check``, ``runserver`` and ``migrate``. Ids are stable:

========================  ======================================================
``flagkit.E001``          ``API_KEY`` missing (and ``OFFLINE`` is not true)
``flagkit.E002``          a ``FLAGKIT`` value is invalid (core option or adapter key)
``flagkit.W001``          an unknown ``FLAGKIT`` key (usually a typo); it is ignored
``flagkit.W002``          ``FlagKitMiddleware`` is listed before ``AuthenticationMiddleware``
``flagkit.W003``          ``LOCAL_PORT`` is set while ``DEBUG`` is False
``flagkit.W004``          ``FlagKitMiddleware`` without ``AuthenticationMiddleware``
========================  ======================================================

Checks do not run under a production WSGI/ASGI server (nor with ``runserver
--skip-checks``): there an invalid ``FLAGKIT`` is logged once at ERROR with its hint on the
first request and every flag serves its default (:mod:`flagkit_django._engine`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from flagkit_django import conf

__all__ = ["check_middleware", "check_settings"]

_MIDDLEWARE = "flagkit_django.middleware.FlagKitMiddleware"
_AUTH_MIDDLEWARE = "django.contrib.auth.middleware.AuthenticationMiddleware"


def _missing_api_key(core: dict[str, Any]) -> bool:
    return core.get("API_KEY") in (None, "") and not conf.is_offline(core)


def check_settings(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """Validate ``settings.FLAGKIT``: E001 missing key, E002 invalid value, W001 unknown key,
    W003 ``LOCAL_PORT`` with ``DEBUG=False``."""
    messages: list[CheckMessage] = []
    try:
        raw = conf.read_setting()
    except ImproperlyConfigured as exc:
        return [
            Error(
                str(exc),
                hint="Set FLAGKIT to a dict such as {'API_KEY': '...'} in your settings.",
                id="flagkit.E002",
            )
        ]
    core, _adapter, unknown = conf.split_setting(raw)
    for name in sorted(unknown):
        suggestion = conf.closest_key(name)
        messages.append(
            Warning(
                f"FLAGKIT[{name!r}] is not a FlagKit setting and is ignored.",
                hint=(
                    f"Did you mean {suggestion!r}?"
                    if suggestion
                    else "FLAGKIT keys are the upper-case FlagKitOptions fields (e.g. "
                    "POLLING_INTERVAL, OFFLINE) and the adapter keys "
                    + ", ".join(sorted(conf.ADAPTER_DEFAULTS))
                    + "."
                ),
                id="flagkit.W001",
            )
        )
    if _missing_api_key(core):
        messages.append(
            Error(
                "FLAGKIT['API_KEY'] is not set.",
                hint=(
                    "Set FLAGKIT['API_KEY'] to your FlagKit SDK key (e.g. from an environment "
                    "variable), or set FLAGKIT['OFFLINE'] = True to serve bootstrap values only."
                ),
                id="flagkit.E001",
            )
        )
    else:
        for getter in (conf.get_options, conf.get_adapter_settings):
            try:
                getter()
            except ImproperlyConfigured as exc:
                messages.append(
                    Error(
                        str(exc),
                        hint=_sentence(conf.configuration_hint(exc)),
                        id="flagkit.E002",
                    )
                )
    local_port = core.get("LOCAL_PORT")
    if local_port not in (None, "") and not settings.DEBUG:
        messages.append(
            Warning(
                f"FLAGKIT['LOCAL_PORT'] is {local_port!r} while DEBUG is False: flags come from "
                "a local development server, not from FlagKit.",
                hint="Remove LOCAL_PORT from FLAGKIT in production settings.",
                id="flagkit.W003",
            )
        )
    return messages


def _middleware_class(path: str) -> type | None:
    try:
        found = import_string(path)
    except ImportError:
        return None
    return found if isinstance(found, type) else None


def _index_of(middleware: list[str], dotted: str) -> int | None:
    target = _middleware_class(dotted)
    for index, path in enumerate(middleware):
        if path == dotted:
            return index
        found = _middleware_class(path)
        if found is not None and target is not None and issubclass(found, target):
            return index
    return None


def check_middleware(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """W002 ``FlagKitMiddleware`` before ``AuthenticationMiddleware``; W004 without it."""
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    ours = _index_of(middleware, _MIDDLEWARE)
    if ours is None:
        return []
    auth = _index_of(middleware, _AUTH_MIDDLEWARE)
    if auth is None:
        return [
            Warning(
                "FlagKitMiddleware is installed but AuthenticationMiddleware is not: every "
                "visitor is evaluated as anonymous.",
                hint=f"Add {_AUTH_MIDDLEWARE!r} to MIDDLEWARE before {_MIDDLEWARE!r}.",
                id="flagkit.W004",
            )
        ]
    if ours < auth:
        return [
            Warning(
                "FlagKitMiddleware is listed before AuthenticationMiddleware, so request.user "
                "is not available when it builds the evaluation context.",
                hint=f"Move {_MIDDLEWARE!r} after {_AUTH_MIDDLEWARE!r} in MIDDLEWARE.",
                id="flagkit.W002",
            )
        ]
    return []


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."
