"""A subclass of ``FlagKitMiddleware`` (the middleware-order check must recognise it)."""

from __future__ import annotations

from flagkit_django.middleware import FlagKitMiddleware


class SubclassedFlagKitMiddleware(FlagKitMiddleware):
    """Same behaviour, different import path."""
