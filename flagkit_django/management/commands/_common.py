"""Helpers shared by the ``flagkit_*`` management commands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.management.base import CommandError

from flagkit.web.explain import to_json
from flagkit_django import conf
from flagkit_django._engine import get_client

if TYPE_CHECKING:
    from flagkit.client import FlagKitClient


def ready_client(timeout: float | None) -> FlagKitClient:
    """The shared client, started and loaded; ``CommandError`` if it is not ready in time."""
    options = conf.get_options()
    wait = options.timeout * 2 if timeout is None else timeout
    client = get_client()
    if not client.wait_for_ready(wait):
        raise CommandError(
            f"FlagKit did not load flags from {options.resolved_base_url} within {wait:g}s "
            "(check FLAGKIT['API_KEY'] / BASE_URL / LOCAL_PORT, or use --timeout)"
        )
    return client


__all__ = ["ready_client", "to_json"]
