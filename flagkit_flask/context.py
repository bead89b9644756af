"""Turning a Flask request and its user into an :class:`~flagkit.EvaluationContext`.

The default loader looks for the user in this order:

1. Flask-Login's ``current_user``, when Flask-Login is installed, the app has a
   ``LoginManager`` and the user is authenticated;
2. ``g.user``, when set (the Flask tutorial's convention; an object or a mapping such as a
   ``sqlite3.Row``; one with ``is_authenticated`` false counts as anonymous);
3. otherwise an anonymous visitor with a stable key from a signed cookie.

What a request's context holds (attribute names as targeting rules see them):

=====================  ================================================================
``user_id``            ``str(user.<USER_ID_ATTRIBUTE>)`` (default ``id``; or ``get_id()``)
``email``, ``name``    the user's ``email`` and ``name`` (or ``username``) — listed in
                       ``private_attributes`` (used for local evaluation, never sent)
``anonymous``          True for anonymous visitors, False for users
``user_key``           anonymous visitors only: the stable key from the signed cookie
``country``            the ``COUNTRY_HEADER`` request header upper-cased, when configured
``ip``                 ``request.remote_addr``, or the first address of ``IP_HEADER`` when
                       ``TRUST_PROXY_HEADERS`` is true — private
``user_agent``         the ``User-Agent`` header
``custom.language``    the first ``Accept-Language`` tag
=====================  ================================================================

**Anonymous key cookie.** The key (32 hex characters) is signed with ``itsdangerous``
using the app's ``SECRET_KEY`` (and ``SECRET_KEY_FALLBACKS`` for reading), salt
``flagkit-anonymous`` — the library Flask's own session uses — in its own cookie
(``ANONYMOUS_COOKIE_NAME``), not in the session: a session cookie would be rewritten on
every request and would vary caches. The cookie is set only when a flag was evaluated for
a visitor who had no valid one. Without a ``SECRET_KEY`` anonymous visitors get a fresh
key per request (a warning is logged once per app).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from flask import g, request
from itsdangerous import BadSignature, Signer

from flagkit.types.context import EvaluationContext
from flagkit.web import context as web_context
from flagkit.web.context import PRIVATE_ATTRIBUTES

if TYPE_CHECKING:
    from flask import Flask
    from werkzeug.wrappers import Response

    from flagkit_flask.conf import AdapterSettings

__all__ = [
    "ANONYMOUS_COOKIE_SALT",
    "PRIVATE_ATTRIBUTES",
    "AnonymousKey",
    "ContextLoader",
    "current_user_object",
    "request_context",
    "user_context",
]

logger = logging.getLogger("flagkit.flask")

#: Salt of the signed anonymous-key cookie.
ANONYMOUS_COOKIE_SALT: Final = "flagkit-anonymous"

ContextLoader = Callable[[EvaluationContext], "EvaluationContext | None"]
"""``fn(default_context) -> EvaluationContext | None`` registered with
``@flagkit.context_loader``; called in the request context."""

_MISSING: Final = object()


def _login_manager_user(app: Flask) -> Any:
    """Flask-Login's current user, or None (not installed, not set up, not logged in)."""
    if getattr(app, "login_manager", None) is None:
        return None
    try:
        from flask_login import current_user
    except ImportError:  # Flask-Login not installed
        return None
    user = current_user._get_current_object()
    return user if getattr(user, "is_authenticated", False) else None


def current_user_object(app: Flask) -> Any:
    """The request's user: Flask-Login's authenticated ``current_user``, else ``g.user``
    (unless it says ``is_authenticated`` is false), else None. Needs a request context."""
    user = _login_manager_user(app)
    if user is not None:
        return user
    user = g.get("user")
    if user is None or getattr(user, "is_authenticated", True) is False:
        return None
    return user


def _read(user: Any, name: str) -> Any:
    """``user.name``, or ``user[name]`` for mappings and row objects; None when absent."""
    value = getattr(user, name, _MISSING)
    if value is not _MISSING:
        return value
    if isinstance(user, Mapping) or hasattr(user, "keys"):
        try:
            return user[name] if name in user.keys() else None  # noqa: SIM118 - sqlite3.Row
        except (TypeError, KeyError, IndexError):
            return None
    return None


def user_context(user: Any, settings: AdapterSettings) -> EvaluationContext:
    """The user part of a context (no request attributes); None gives an anonymous one.

    >>> from flagkit_flask.conf import AdapterSettings
    >>> user_context(None, AdapterSettings()).anonymous
    True

    Never raises for odd user objects (missing attributes are left out).
    """
    if user is None:
        return EvaluationContext(anonymous=True)
    raw_id = _read(user, settings.user_id_attribute)
    if raw_id is None:
        get_id = getattr(user, "get_id", None)
        if callable(get_id):
            raw_id = get_id()
    email = _read(user, "email")
    name = _read(user, "name") or _read(user, "username")
    return web_context.user_part(
        raw_id,
        email=email if isinstance(email, str) and email else None,
        name=name if isinstance(name, str) and name else None,
        anonymous=raw_id is None,
    )


class AnonymousKey(web_context.AnonymousKey):
    """The stable key of an anonymous visitor, read from (or destined for) a signed cookie.

    Created per request; :meth:`apply` sets the cookie on the response only when a new key
    was generated. Not shared between threads.
    """

    __slots__ = ("signer",)

    def __init__(self, app: Flask, settings: AdapterSettings) -> None:
        self.signer = _signer(app)
        existing = request.cookies.get(settings.anonymous_cookie_name)
        value: str | None = None
        if existing and self.signer is not None:
            try:
                value = self.signer.unsign(existing).decode("ascii")
            except (BadSignature, UnicodeDecodeError):
                value = None
        super().__init__(value)

    def apply(self, response: Response, settings: AdapterSettings) -> None:
        """Set the cookie on ``response`` if this key is new (HttpOnly, SameSite=Lax)."""
        if not self.is_new or self.signer is None:
            return
        response.set_cookie(
            settings.anonymous_cookie_name,
            self.signer.sign(self.value).decode("ascii"),
            max_age=settings.anonymous_cookie_max_age,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure,
        )


def _signer(app: Flask) -> Signer | None:
    secret = app.secret_key
    if not secret:
        state = app.extensions.get("flagkit")
        if state is not None and not getattr(state, "warned_no_secret", False):
            state.warned_no_secret = True
            logger.warning(
                "app %r has no SECRET_KEY: anonymous visitors get a new flag key on every "
                "request (percentage rollouts are not sticky); set SECRET_KEY",
                app.name,
            )
        return None
    fallbacks = app.config.get("SECRET_KEY_FALLBACKS") or []
    # itsdangerous signs with the last key and accepts any of them when reading.
    keys = [k.encode("utf-8") if isinstance(k, str) else bytes(k) for k in [*fallbacks, secret]]
    return Signer(keys, salt=ANONYMOUS_COOKIE_SALT)


def _client_ip(settings: AdapterSettings) -> str | None:
    forwarded = request.headers.get(settings.ip_header) if settings.trust_proxy_headers else None
    return web_context.client_ip(request.remote_addr, forwarded)


def request_context(
    user_part: EvaluationContext,
    settings: AdapterSettings,
    anonymous_key: AnonymousKey | None = None,
) -> EvaluationContext:
    """Add the current request's attributes (language, country, IP, user agent, anonymous
    key) to ``user_part``. Needs a request context."""
    headers = request.headers
    country_header = settings.country_header
    return web_context.with_request_attributes(
        user_part,
        anonymous_key=anonymous_key.value if anonymous_key is not None else None,
        language=web_context.first_language_tag(headers.get("Accept-Language", "")),
        country=web_context.country_code(headers.get(country_header)) if country_header else None,
        ip=_client_ip(settings),
        user_agent=headers.get("User-Agent"),
    )
