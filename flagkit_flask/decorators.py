"""View guards: ``@flag_required`` and a blueprint-wide guard.

::

    from flagkit_flask import flag_required, guard_blueprint

    @app.get("/checkout")
    @flag_required("new-checkout")                        # 404 when off
    def checkout(): ...

    @app.get("/checkout-async")
    @flag_required("new-checkout", redirect_to="cart")    # redirect (endpoint or URL)
    async def checkout_async(): ...

    @app.get("/shop")
    @flag_required("!maintenance-mode", status=503)       # negation: only when off
    def shop(): ...

    guard_blueprint(beta_bp, "beta-area")                 # every view of the blueprint

The flag is evaluated for the current request's user (memoised with the other lookups of
the request). Put ``@flag_required`` below the route decorator, as with any view decorator.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flask import abort, redirect, url_for

from flagkit.web.request_flags import check_flag_key
from flagkit_flask.state import get_state

if TYPE_CHECKING:
    from flask import Blueprint
    from werkzeug.wrappers import Response

__all__ = ["flag_denied_response", "flag_guard", "flag_required", "guard_blueprint"]

V = TypeVar("V", bound=Callable[..., Any])


def _check_status(status: object) -> int:
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"status must be an HTTP error status (400-599), got {status!r}")
    return status


def is_flag_active(key: str) -> bool:
    """Whether ``key`` (``"!key"`` negates) is on for the current request's user."""
    flags = get_state().request_flags()
    if flags is None:
        raise RuntimeError("flag_required and guard_blueprint work inside a request only")
    return flags.is_enabled(key)


def flag_denied_response(redirect_to: str | None, status: int) -> Response:
    """The response when the flag is off: a redirect to ``redirect_to`` when given (a URL
    when it starts with ``/`` or contains ``://``, else an endpoint for ``url_for``);
    otherwise aborts with ``status``."""
    if redirect_to is not None:
        if redirect_to.startswith("/") or "://" in redirect_to:
            return redirect(redirect_to)
        return redirect(url_for(redirect_to))
    abort(status)


def flag_required(key: str, redirect_to: str | None = None, status: int = 404) -> Callable[[V], V]:
    """Run the view only when flag ``key`` is on for the current user.

    When off: a redirect to ``redirect_to`` (an endpoint name such as ``"shop.cart"`` or a
    URL), else ``abort(status)`` (404 by default). ``"!key"`` inverts the condition. Works
    on sync and ``async def`` views and on ``View`` classes' ``decorators``; keeps the
    view's name and docstring (``functools.wraps``).

    Raises ``ValueError`` at decoration time for an invalid key (empty, ``"!"``,
    ``"!!key"``) or a non-error status.
    """
    check_flag_key(key, "flag_required")
    _check_status(status)

    def decorator(view: V) -> V:
        if inspect.iscoroutinefunction(view):

            @functools.wraps(view)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                if not is_flag_active(key):
                    return flag_denied_response(redirect_to, status)
                return await view(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not is_flag_active(key):
                return flag_denied_response(redirect_to, status)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def flag_guard(
    key: str, *, redirect_to: str | None = None, status: int = 404
) -> Callable[[], Response | None]:
    """A ``before_request`` function letting requests through only when ``key`` is on.

    >>> beta_bp.before_request(flag_guard("beta-area"))

    Raises ``ValueError`` for an empty key or a non-error status.
    """
    check_flag_key(key, "flag_guard")
    _check_status(status)

    def guard() -> Response | None:
        if is_flag_active(key):
            return None
        return flag_denied_response(redirect_to, status)

    guard.__name__ = guard.__qualname__ = f"flagkit_guard[{key}]"
    return guard


def guard_blueprint(
    blueprint: Blueprint, key: str, *, redirect_to: str | None = None, status: int = 404
) -> None:
    """Require flag ``key`` for every request routed to ``blueprint``'s views.

    >>> guard_blueprint(beta_bp, "beta-area")            # before app.register_blueprint

    Registers :func:`flag_guard` with ``blueprint.before_request`` (it runs after the
    app's own ``before_request`` functions, so the request's FlagKit scope exists).
    Raises ``ValueError`` for an empty key or a non-error status.
    """
    blueprint.before_request(flag_guard(key, redirect_to=redirect_to, status=status))
