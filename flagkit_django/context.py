"""Turning a Django request and user into an :class:`~flagkit.EvaluationContext`.

What a request's context holds (attribute names as targeting rules see them):

=====================  ================================================================
``user_id``            ``str(getattr(user, USER_ID_ATTRIBUTE))`` (default ``pk``)
``email``, ``name``    the user's e-mail and full name — listed in ``private_attributes``
                       (used for local evaluation, never sent to FlagKit)
``anonymous``          True for anonymous visitors, False for authenticated users
``user_key``           anonymous visitors only: the stable key from the signed cookie
``country``            ``request.META[COUNTRY_HEADER]`` upper-cased, when configured
``ip``                 ``REMOTE_ADDR``, or the first address of ``IP_HEADER`` when
                       ``TRUST_PROXY_HEADERS`` is true — private
``user_agent``         ``HTTP_USER_AGENT``
``custom.is_staff``    ``user.is_staff`` (authenticated users)
``custom.is_superuser`` ``user.is_superuser``
``custom.groups``      sorted list of the user's group names (one query)
``custom.date_joined`` ``user.date_joined`` in ISO 8601
``custom.language``    ``request.LANGUAGE_CODE`` (``LocaleMiddleware``) or the first
                       ``Accept-Language`` tag
=====================  ================================================================

``CONTEXT_BUILDER`` (a dotted path to ``fn(request, context) -> EvaluationContext``) runs
last and may return a new context adding or replacing anything.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Final

from flagkit.types.context import EvaluationContext
from flagkit.web import context as web_context
from flagkit.web.context import PRIVATE_ATTRIBUTES
from flagkit_django import conf

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase

__all__ = [
    "ANONYMOUS_COOKIE_SALT",
    "PRIVATE_ATTRIBUTES",
    "AnonymousKey",
    "agroup_names",
    "apply_context_builder",
    "group_names",
    "request_context",
    "user_context",
]

#: Salt of the signed anonymous-key cookie.
ANONYMOUS_COOKIE_SALT: Final = "flagkit"


def group_names(user: Any) -> list[str] | None:
    """Sorted group names of ``user`` (one query), or None for a model without groups."""
    groups = getattr(user, "groups", None)
    if groups is None or not hasattr(groups, "values_list"):
        return None
    return sorted(str(name) for name in groups.values_list("name", flat=True))


async def agroup_names(user: Any) -> list[str] | None:
    """Async twin of :func:`group_names` (safe to call from an event loop)."""
    groups = getattr(user, "groups", None)
    if groups is None or not hasattr(groups, "values_list"):
        return None
    return sorted([str(name) async for name in groups.values_list("name", flat=True)])


def _iso(value: object) -> str | None:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return None


def user_context(
    user: Any,
    *,
    groups: Iterable[str] | None = None,
    fetch_groups: bool = True,
    settings: conf.AdapterSettings | None = None,
) -> EvaluationContext:
    """The user part of a context (no request attributes).

    >>> user_context(AnonymousUser())
    EvaluationContext({'anonymous': True}, private=[])

    ``groups`` may be given (e.g. fetched asynchronously); otherwise they are queried when
    ``fetch_groups`` is true. ``None`` or an anonymous user gives an anonymous context.
    Thread-safe (reads only).
    """
    adapter = settings or conf.get_adapter_settings()
    if user is None or not getattr(user, "is_authenticated", False):
        return EvaluationContext(anonymous=True)
    raw_id = getattr(user, adapter.user_id_attribute, None)
    custom: dict[str, Any] = {
        "is_staff": bool(getattr(user, "is_staff", False)),
        "is_superuser": bool(getattr(user, "is_superuser", False)),
    }
    if groups is not None:
        custom["groups"] = sorted(str(name) for name in groups)
    elif fetch_groups:
        names = group_names(user)
        if names is not None:
            custom["groups"] = names
    joined = _iso(getattr(user, "date_joined", None))
    if joined is not None:
        custom["date_joined"] = joined
    email = getattr(user, "email", None) or None
    full_name = user.get_full_name() if callable(getattr(user, "get_full_name", None)) else None
    return web_context.user_part(
        raw_id,
        email=str(email) if email else None,
        name=str(full_name) if full_name else None,
        anonymous=False,
        custom=custom,
    )


def _language(request: HttpRequest) -> str | None:
    code = getattr(request, "LANGUAGE_CODE", None)
    if isinstance(code, str) and code:
        return code
    return web_context.first_language_tag(request.META.get("HTTP_ACCEPT_LANGUAGE", ""))


class AnonymousKey(web_context.AnonymousKey):
    """The stable key of an anonymous visitor, read from (or destined for) a signed cookie.

    Created per request; :meth:`apply` sets the cookie on the response only when a new key
    was generated, i.e. the visitor had no valid cookie and a flag was evaluated for them.
    Not shared between threads.
    """

    __slots__ = ()

    def __init__(self, request: HttpRequest, adapter: conf.AdapterSettings) -> None:
        super().__init__(
            request.get_signed_cookie(
                adapter.anonymous_cookie_name, default=None, salt=ANONYMOUS_COOKIE_SALT
            )
        )

    def apply(
        self, request: HttpRequest, response: HttpResponseBase, adapter: conf.AdapterSettings
    ) -> None:
        """Set the cookie on ``response`` if this key is new (HttpOnly, SameSite=Lax)."""
        if not self.is_new:
            return
        response.set_signed_cookie(
            adapter.anonymous_cookie_name,
            self.value,
            salt=ANONYMOUS_COOKIE_SALT,
            max_age=adapter.anonymous_cookie_max_age,
            httponly=True,
            samesite="Lax",
            secure=request.is_secure(),
        )


def request_context(
    request: HttpRequest,
    user_part: EvaluationContext,
    *,
    anonymous_key: AnonymousKey | None = None,
    settings: conf.AdapterSettings | None = None,
    apply_builder: bool = True,
) -> EvaluationContext:
    """Add the request's attributes (language, country, IP, user agent, anonymous key) to
    ``user_part``; then apply ``CONTEXT_BUILDER`` if configured and ``apply_builder``.

    ``CONTEXT_BUILDER`` errors propagate: a broken builder is a programming error.
    """
    adapter = settings or conf.get_adapter_settings()
    meta = request.META
    context = web_context.with_request_attributes(
        user_part,
        anonymous_key=anonymous_key.value if anonymous_key is not None else None,
        language=_language(request),
        country=web_context.country_code(meta.get(adapter.country_header))
        if adapter.country_header
        else None,
        ip=web_context.client_ip(
            meta.get("REMOTE_ADDR"),
            meta.get(adapter.ip_header) if adapter.trust_proxy_headers else None,
        ),
        user_agent=meta.get("HTTP_USER_AGENT"),
    )
    if apply_builder:
        context = apply_context_builder(request, context, adapter)
    return context


def apply_context_builder(
    request: HttpRequest, context: EvaluationContext, settings: conf.AdapterSettings
) -> EvaluationContext:
    """Run ``CONTEXT_BUILDER`` (if configured) on ``context``; check it returns a context."""
    if settings.context_builder is None:
        return context
    built = settings.context_builder(request, context)
    if not isinstance(built, EvaluationContext):
        raise TypeError(
            "FLAGKIT['CONTEXT_BUILDER'] must return an EvaluationContext, "
            f"got {type(built).__name__}"
        )
    return built
