"""django-waffle's API answered by FlagKit, for the move from waffle to FlagKit.

>>> from flagkit_django.waffle_compat import flag_is_active    # doctest: +SKIP
>>> flag_is_active(request, "new-checkout")

After ``manage.py flagkit_import_waffle`` wrote waffle's flags, switches and samples as
FlagKit flags, replace ``waffle`` by ``flagkit_django`` in ``INSTALLED_APPS`` and change
``from waffle import ...`` to ``from flagkit_django.waffle_compat import ...``: every call
site keeps working, now evaluated by FlagKit. ``{% load waffle_tags %}`` keeps working
too (this app ships a ``waffle_tags`` library). docs/migrating-from-waffle.md has the
whole move and how to remove this layer afterwards.

What differs from waffle: names are mapped to FlagKit keys by :func:`waffle_key`; a
percentage is a deterministic rollout per user, not a random cookie; a missing flag,
switch or sample is ``WAFFLE_FLAG_DEFAULT``/``WAFFLE_SWITCH_DEFAULT``/
``WAFFLE_SAMPLE_DEFAULT`` (default ``False``), as in waffle. Nothing here imports waffle.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse

from flagkit import EvaluationContext
from flagkit_django._engine import get_client
from flagkit_django.middleware import flag_is_active as _request_flag_is_active

from ._keys import waffle_key

__all__ = [
    "SAMPLE_ATTRIBUTE",
    "WaffleFlagMixin",
    "WaffleSampleMixin",
    "WaffleSwitchMixin",
    "flag_is_active",
    "sample_is_active",
    "switch_is_active",
    "waffle_flag",
    "waffle_key",
    "waffle_switch",
]

SAMPLE_ATTRIBUTE = "waffle_sample"
"""The custom context attribute an imported sample buckets by: random per call here."""

F = TypeVar("F", bound=Callable[..., Any])


def _default(kind: str) -> bool:
    return bool(getattr(settings, f"WAFFLE_{kind}_DEFAULT", False))


def _known(key: str) -> bool:
    try:
        return get_client().has_flag(key)
    except Exception:  # a misconfigured client must not take the page down
        return False


def flag_is_active(request: HttpRequest | None, flag_name: str) -> bool:
    """Whether waffle flag ``flag_name`` is on for ``request``'s user (as
    ``waffle.flag_is_active``); with ``request=None``, for the context in scope. Never
    raises for lookups."""
    key = waffle_key(flag_name)
    if not _known(key):
        return _default("FLAG")
    return _request_flag_is_active(request, key)


def switch_is_active(switch_name: str) -> bool:
    """Whether waffle switch ``switch_name`` is on (as ``waffle.switch_is_active``)."""
    key = waffle_key(switch_name)
    if not _known(key):
        return _default("SWITCH")
    return get_client().get_boolean_value(key, False)


def sample_is_active(sample_name: str) -> bool:
    """Whether waffle sample ``sample_name`` is on for this call: true for its percentage
    of calls, at random (as ``waffle.sample_is_active``)."""
    key = waffle_key(sample_name)
    if not _known(key):
        return _default("SAMPLE")
    context = EvaluationContext(custom={SAMPLE_ATTRIBUTE: secrets.token_hex(8)})
    return get_client().get_boolean_value(key, False, context)


def _negated(name: str, check: Callable[[str], bool]) -> bool:
    return not check(name[1:]) if name.startswith("!") else check(name)


def _redirect(redirect_to: Callable[..., Any] | str | None, *args: Any, **kwargs: Any) -> Any:
    if redirect_to is None:
        raise Http404("Inactive waffle")
    try:
        url = reverse(redirect_to, args=args, kwargs=kwargs)
    except NoReverseMatch:
        url = str(redirect_to)
    return HttpResponseRedirect(url)


def _guard(
    check: Callable[[HttpRequest, str], bool], name: str, redirect_to: Any
) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                from asgiref.sync import sync_to_async

                active = await sync_to_async(check)(request, name)
                if not active:
                    return _redirect(redirect_to, *args, **kwargs)
                return await view(request, *args, **kwargs)

            return cast(F, async_view)

        @functools.wraps(view)
        def sync_view(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if not check(request, name):
                return _redirect(redirect_to, *args, **kwargs)
            return view(request, *args, **kwargs)

        return cast(F, sync_view)

    return decorator


def waffle_flag(
    flag_name: str, redirect_to: Callable[..., Any] | str | None = None
) -> Callable[[F], F]:
    """View decorator: 404 (or a redirect to ``redirect_to``, a URL name or path) unless
    the flag is on; ``"!name"`` requires it off. Sync and async views."""
    return _guard(
        lambda request, name: _negated(name, functools.partial(flag_is_active, request)),
        flag_name,
        redirect_to,
    )


def waffle_switch(
    switch_name: str, redirect_to: Callable[..., Any] | str | None = None
) -> Callable[[F], F]:
    """View decorator: 404 (or a redirect) unless the switch is on; ``"!name"`` negates."""
    return _guard(lambda _request, name: _negated(name, switch_is_active), switch_name, redirect_to)


class _WaffleMixin:
    def invalid_waffle(self) -> Any:
        raise Http404("Inactive waffle")


class WaffleFlagMixin(_WaffleMixin):
    """Class-based views: 404 unless ``waffle_flag`` (``"!name"`` negates) is on."""

    waffle_flag: str | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        name = self.waffle_flag or ""
        if not _negated(name, functools.partial(flag_is_active, request)):
            return self.invalid_waffle()
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class WaffleSwitchMixin(_WaffleMixin):
    """Class-based views: 404 unless ``waffle_switch`` is on."""

    waffle_switch: str | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not _negated(self.waffle_switch or "", switch_is_active):
            return self.invalid_waffle()
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class WaffleSampleMixin(_WaffleMixin):
    """Class-based views: 404 unless ``waffle_sample`` is on for this request."""

    waffle_sample: str | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not _negated(self.waffle_sample or "", sample_is_active):
            return self.invalid_waffle()
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
