"""Django integration for FlagKit: one shared client per process, per-request contexts,
template tags, view decorators, signals, system checks and test helpers.

>>> from flagkit_django import get_client
>>> get_client().get_boolean_value("new-checkout", False)

Set-up (``docs/django.md`` has the whole story)::

    INSTALLED_APPS = [..., "flagkit_django"]
    MIDDLEWARE = [..., "django.contrib.auth.middleware.AuthenticationMiddleware",
                  "flagkit_django.middleware.FlagKitMiddleware", ...]
    FLAGKIT = {"API_KEY": env("FLAGKIT_API_KEY"), "POLLING_INTERVAL": 30}

Importing this package has no side effects (no settings read, no client, no thread).
"""

from __future__ import annotations

from flagkit_django._engine import get_client

__all__ = ["get_client"]
