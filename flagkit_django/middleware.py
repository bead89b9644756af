"""``FlagKitMiddleware``: a lazily built evaluation context and ``request.flags`` per request.

::

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "flagkit_django.middleware.FlagKitMiddleware",
        ...,
    ]

For each request the middleware

- sets ``request.flags``, a :class:`RequestFlags` (``is_enabled``, ``value``, ``evaluate``,
  ``track``), memoised so one flag has one value for the whole request;
- runs the rest of the chain inside ``client.context_scope(...)``, so a plain
  ``get_client().get_boolean_value("x", False)`` in a view evaluates for the current user
  while the client's process-wide global context is never written — concurrent requests
  (threads or asyncio tasks) never see each other's users;
- sets the signed anonymous-key cookie when a flag was evaluated with the context of an
  anonymous visitor who had none (so percentage rollouts stay sticky per browser).

Sync and async capable. Under WSGI the context is built on first use (no query unless a
targeted flag is evaluated, ``track()`` is called or ``request.flags.context`` is read).
Under ASGI a view's synchronous flag lookups cannot query the database from the event
loop, so the context is built before the view runs — with ``request.auser()`` and an
async group query — but only when the client holds a flag with targeting rules (a
project whose flags need no user never loads it).

When building the context fails (``CONTEXT_BUILDER`` or ``request.auser()`` raising),
both paths degrade the same way: the error is logged once per process and the request is
evaluated with an anonymous context — a flag library never fails a request.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async

from flagkit.types.context import EvaluationContext
from flagkit.web.request_flags import RequestFlags as BaseRequestFlags
from flagkit.web.request_flags import client_is_enabled, client_value, needs_context
from flagkit_django import conf
from flagkit_django._engine import get_client
from flagkit_django.context import (
    AnonymousKey,
    agroup_names,
    apply_context_builder,
    request_context,
    user_context,
)

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase

    from flagkit.client import FlagKitClient

__all__ = ["FlagKitMiddleware", "RequestFlags", "flag_is_active", "flag_value", "get_request_flags"]

logger = logging.getLogger("flagkit.django")

# The RequestFlags whose middleware scope is active in this thread/task.
_active: contextvars.ContextVar[RequestFlags | None] = contextvars.ContextVar(
    "flagkit_django_request_flags", default=None
)


class RequestFlags(BaseRequestFlags):
    """Flag lookups for one request and its user, memoised per request.

    >>> request.flags.is_enabled("new-checkout")
    True
    >>> request.flags.value("banner-text", "Welcome")
    'Spring sale'

    The :class:`~flagkit.EvaluationContext` is built from ``request.user`` and the request
    (see :mod:`flagkit_django.context`) only when an evaluation needs it — a flag with
    targeting rules, ``track()``, or reading :attr:`context`; flags without targeting are
    served without building it. Each flag is evaluated at most once per request: later
    lookups of the same key return the same value even if an update arrives meanwhile.
    A ``"!key"`` passed to :meth:`is_enabled` is negated. Lookups never raise (a missing
    flag is off / the default). The lookups are the core's
    :class:`flagkit.web.request_flags.RequestFlags`; this class adds the Django request,
    its user and the anonymous-key cookie. Not thread-safe: one instance belongs to one
    request.
    """

    __slots__ = ("_anonymous_key", "_request", "_used")

    def __init__(self, request: HttpRequest, *, client: FlagKitClient | None = None) -> None:
        BaseRequestFlags.__init__(self, client)
        self._request = request
        self._anonymous_key: AnonymousKey | None = None
        self._used = False

    # -- the context ----------------------------------------------------------------------

    @property
    def client(self) -> FlagKitClient:
        """The shared client (created and started on first use)."""
        client = self._client
        if client is None:
            client = self._client = get_client()
        return client

    @property
    def context(self) -> EvaluationContext:
        """This request's evaluation context (built on first access)."""
        return self.scope_context()

    def scope_context(self) -> EvaluationContext:
        """The context, built on first call; the factory given to ``client.context_scope``.

        Marks the request as evaluated for its user (an anonymous visitor then gets the
        anonymous-key cookie). A failure (``CONTEXT_BUILDER`` raising, the user lookup
        failing) is logged once and gives an anonymous context.
        """
        self._used = True
        context = self._context
        if context is None:
            adapter = conf.request_adapter_settings()
            try:
                user_part = user_context(getattr(self._request, "user", None), settings=adapter)
                context = self._finish_context(user_part, adapter, apply_builder=True)
            except Exception as exc:
                context = _degraded(exc)
            self._context = context
        return context

    def _finish_context(
        self, user_part: EvaluationContext, adapter: conf.AdapterSettings, *, apply_builder: bool
    ) -> EvaluationContext:
        key = None
        if user_part.user_id is None:
            key = self._anonymous_key = AnonymousKey(self._request, adapter)
        return request_context(
            self._request,
            user_part,
            anonymous_key=key,
            settings=adapter,
            apply_builder=apply_builder,
        )

    async def aprepare(self) -> None:
        """Build the context from an event loop (``request.auser()``, async group query).

        After this the synchronous lookups need no database access. Idempotent. A failure
        is logged once and gives an anonymous context, as on the synchronous path.
        """
        if self._context is not None:
            return
        try:
            context = await self._abuild()
        except Exception as exc:
            context = _degraded(exc)
        self._context = context

    async def _abuild(self) -> EvaluationContext:
        adapter = conf.request_adapter_settings()
        request = self._request
        auser = getattr(request, "auser", None)  # Django >= 5.0
        if auser is not None:
            user = await auser()
        else:
            user = await sync_to_async(_resolved_user)(request)
        groups = None
        if user is not None and getattr(user, "is_authenticated", False):
            groups = await agroup_names(user)
        user_part = user_context(user, groups=groups, fetch_groups=False, settings=adapter)
        context = self._finish_context(user_part, adapter, apply_builder=False)
        if adapter.context_builder is not None:
            context = await sync_to_async(apply_context_builder)(request, context, adapter)
        return context

    # -- response -------------------------------------------------------------------------

    def finish(self, response: HttpResponseBase) -> None:
        """Set the anonymous-key cookie on ``response`` if one was generated and used."""
        key = self._anonymous_key
        if key is not None and key.is_new and self._used:
            key.apply(self._request, response, conf.request_adapter_settings())


RequestFlags._active = _active

_degraded_logged = threading.Event()


def _degraded(exc: Exception) -> EvaluationContext:
    """The context of a request whose context could not be built: anonymous. The first
    failure of the process is logged at ERROR with its traceback, later ones at DEBUG."""
    if not _degraded_logged.is_set():
        _degraded_logged.set()
        logger.error(
            "building the FlagKit evaluation context failed (%s: %s); this request and any "
            "later one that fails the same way are evaluated as an anonymous visitor",
            type(exc).__name__,
            exc,
            exc_info=exc,
        )
    else:
        logger.debug("building the FlagKit evaluation context failed", exc_info=exc)
    return EvaluationContext(anonymous=True)


def get_request_flags(request: HttpRequest) -> RequestFlags:
    """``request.flags``, created (without cookie handling) when the middleware is absent."""
    flags = getattr(request, "flags", None)
    if isinstance(flags, RequestFlags):
        return flags
    flags = RequestFlags(request)
    request.flags = flags
    return flags


def _resolved_user(request: HttpRequest) -> Any:
    """``request.user`` with its lazy object evaluated (run in a worker thread)."""
    user = getattr(request, "user", None)
    if user is not None:
        bool(getattr(user, "is_authenticated", False))  # forces the lazy lookup here
    return user


def flag_is_active(request: HttpRequest | None, key: object) -> bool:
    """Whether flag ``key`` (``"!key"`` negates) is on for ``request``'s user.

    Without a request, evaluates through the shared client with whatever context is in
    scope. A missing flag, a non-string key or a fault is off. Never raises for lookups.
    """
    if request is not None:
        return get_request_flags(request).is_enabled(key)  # type: ignore[arg-type]
    return client_is_enabled(get_client, key)


def flag_value(request: HttpRequest | None, key: object, default: Any = None) -> Any:
    """The value of ``key`` for ``request``'s user, or ``default`` (see
    :meth:`RequestFlags.value`); without a request, as :func:`flag_is_active`."""
    if not isinstance(key, str) or not key:
        return default
    if request is not None:
        return get_request_flags(request).value(key, default)
    return client_value(get_client, key, default)


class FlagKitMiddleware:
    """Per-request evaluation context, ``request.flags`` and the anonymous-key cookie.

    Place it after ``AuthenticationMiddleware`` (system check ``flagkit.W002``). Sync and
    async capable. Thread-safe: all per-request state lives on the request.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase]
        | Callable[[HttpRequest], Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._is_async:
            return self.__acall__(request)
        flags = RequestFlags(request)
        request.flags = flags
        client = get_client(start=conf.request_adapter_settings().start_on_request)
        token = _active.set(flags)
        try:
            with client.context_scope(flags.scope_context):
                response = self.get_response(request)
        finally:
            _active.reset(token)
        flags.finish(response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        flags = RequestFlags(request)
        request.flags = flags
        client = get_client(start=conf.request_adapter_settings().start_on_request)
        if needs_context(client):
            await flags.aprepare()
        # The scope is entered in this task; the view (awaited here, or run by
        # sync_to_async, which copies the contextvars) sees it.
        token = _active.set(flags)
        try:
            with client.context_scope(flags.scope_context):
                response: HttpResponseBase = await self.get_response(request)
        finally:
            _active.reset(token)
        flags.finish(response)
        return response
