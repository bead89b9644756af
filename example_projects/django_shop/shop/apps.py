"""App configuration: connects the FlagKit signal receivers (and nothing else)."""

from __future__ import annotations

from django.apps import AppConfig


class ShopConfig(AppConfig):
    """The demo shop. ``ready()`` only connects receivers: no client, no network."""

    name = "shop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Connect ``shop.receivers`` to ``flagkit_django.signals``."""
        from shop import receivers

        receivers.connect()
