"""View decorators: ``@flag_required``.

::

    from flagkit_django.decorators import flag_required

    @flag_required("new-checkout")                         # 404 when off
    def checkout(request): ...

    @flag_required("new-checkout", redirect_to="cart")     # redirect (URL name or URL)
    async def checkout_async(request): ...

    @flag_required("!maintenance-mode")                    # negation: only when off
    def shop(request): ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from asgiref.sync import iscoroutinefunction
from django.http import Http404, HttpRequest, HttpResponseBase
from django.shortcuts import redirect

from flagkit.web.request_flags import check_flag_key
from flagkit_django.middleware import get_request_flags

__all__ = ["flag_denied_response", "flag_required", "is_flag_active"]

V = TypeVar("V", bound=Callable[..., Any])


def is_flag_active(request: HttpRequest, flag_key: str) -> bool:
    """Whether ``flag_key`` (``"!key"`` negates) is on for ``request``'s user. Never raises
    for a missing flag (off)."""
    return get_request_flags(request).is_enabled(flag_key)


def flag_denied_response(flag_key: str, redirect_to: str | None) -> HttpResponseBase:
    """The response when a flag is off: a redirect to ``redirect_to`` (URL name, URL or
    path) if given; otherwise raises ``Http404``."""
    if redirect_to is not None:
        return redirect(redirect_to)
    raise Http404(f"flag {flag_key!r} is not active")


def flag_required(flag_key: str, redirect_to: str | None = None) -> Callable[[V], V]:
    """Only run the view when ``flag_key`` is on for the request's user.

    When off: ``Http404``, or a redirect to ``redirect_to`` (a URL name resolved with
    :func:`django.shortcuts.redirect`, or a URL). ``"!key"`` inverts the condition. Works on
    sync and ``async def`` views (an async view's context is built with async queries) and
    keeps the view's name and docstring (``functools.wraps``).

    Raises ``ValueError`` at decoration time for an invalid key (empty, ``"!"``,
    ``"!!key"``).
    """
    check_flag_key(flag_key, "flag_required")

    def decorator(view: V) -> V:
        if iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                flags = get_request_flags(request)
                await flags.aprepare()
                if flags.is_enabled(flag_key):
                    return await view(request, *args, **kwargs)
                return flag_denied_response(flag_key, redirect_to)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            if is_flag_active(request, flag_key):
                return view(request, *args, **kwargs)
            return flag_denied_response(flag_key, redirect_to)

        return wrapper  # type: ignore[return-value]

    return decorator
