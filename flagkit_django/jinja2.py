"""Jinja2 support: the ``flagkit`` global (and an environment factory for Django's backend).

With Django's Jinja2 backend::

    TEMPLATES = [{
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "OPTIONS": {"environment": "flagkit_django.jinja2.environment"},
    }]

or add the extension to your own environment factory::

    env = Environment(extensions=["flagkit_django.jinja2.FlagKitExtension"], **options)

Templates then use::

    {% if flagkit.flag("new-checkout") %}...{% endif %}
    {% if flagkit.flag("!maintenance") %}...{% endif %}
    {{ flagkit.value("banner-text", "Welcome") }}

The helpers read ``request`` from the template context (Django's Jinja2 backend passes it)
and use its memoised ``request.flags``; without a request they evaluate through the shared
client with whatever context is in scope. Requires Jinja2 (not a dependency of this package).
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from jinja2 import Environment, pass_context
from jinja2.ext import Extension
from jinja2.runtime import Context

from flagkit_django.middleware import flag_is_active, flag_value

__all__ = ["FlagKitExtension", "FlagKitHelpers", "environment"]


class FlagKitHelpers:
    """The ``flagkit`` Jinja2 global: ``flag(key)`` and ``value(key, default)``.

    Stateless; safe to share between threads and environments.
    """

    @pass_context
    def flag(self, context: Context, key: str) -> bool:
        """Whether boolean flag ``key`` is on (``"!key"`` negates)."""
        return flag_is_active(_request(context), key)

    @pass_context
    def value(self, context: Context, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when missing or of another kind."""
        return flag_value(_request(context), key, default)


def _request(context: Context) -> HttpRequest | None:
    request = context.get("request")
    return request if isinstance(request, HttpRequest) else None


class FlagKitExtension(Extension):
    """Adds the ``flagkit`` global to an environment."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals["flagkit"] = FlagKitHelpers()


def environment(**options: Any) -> Environment:
    """An :class:`jinja2.Environment` with :class:`FlagKitExtension` (for Django's backend)."""
    extensions = list(options.pop("extensions", []))
    if FlagKitExtension not in extensions and (
        "flagkit_django.jinja2.FlagKitExtension" not in extensions
    ):
        extensions.append(FlagKitExtension)
    return Environment(extensions=extensions, **options)
