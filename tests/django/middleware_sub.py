"""Middleware of the tests: a subclass of ``FlagKitMiddleware`` (the middleware-order check
must recognise it) and an async one counting (or failing) ``request.auser()`` calls."""

from __future__ import annotations

from typing import Any

from asgiref.sync import markcoroutinefunction, sync_to_async
from django.http import HttpRequest

from flagkit_django.middleware import FlagKitMiddleware


class SubclassedFlagKitMiddleware(FlagKitMiddleware):
    """Same behaviour, different import path."""


#: How many times a request's ``auser()`` ran (see :class:`CountingAuser`).
auser_calls: list[str] = []


class CountingAuser:
    """Records each ``request.auser()`` call; raises when :attr:`fail` is set (a broken
    auth backend). Async only, so the rest of the chain runs its async path."""

    sync_capable = False
    async_capable = True
    fail = False

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response
        markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> Any:
        original = getattr(request, "auser", None)
        if original is None:  # Django 4.2: no auser(); load the lazy user in a thread

            def load() -> Any:
                user = request.user
                bool(user.is_authenticated)  # evaluates the lazy object here
                return user

            original = sync_to_async(load)

        async def auser() -> Any:
            auser_calls.append(request.path)
            if CountingAuser.fail:
                raise RuntimeError("the user store is down")
            return await original()

        request.auser = auser
        return await self.get_response(request)
