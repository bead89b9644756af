"""Logging an ``AsyncClient`` in on every supported Django (``aforce_login`` is 5.0+)."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.test import AsyncClient


async def alogin(client: AsyncClient, user: Any) -> None:
    """``await client.aforce_login(user)`` where it exists, else the sync ``force_login``
    in a worker thread (Django 4.2)."""
    login = getattr(client, "aforce_login", None)
    if login is not None:
        await login(user)
    else:
        await sync_to_async(client.force_login)(user)
