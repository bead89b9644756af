"""The Django app config of ``flagkit_django``."""

from __future__ import annotations

from django.apps import AppConfig
from django.core import checks
from django.core.signals import request_started, setting_changed


class FlagKitConfig(AppConfig):  # type: ignore[misc]
    """Registers the system checks and connects the lifecycle receivers — nothing else.

    ``ready()`` also runs for ``migrate``, ``shell`` and in a pre-fork master, so it creates
    no client, starts no thread, opens no connection and reads no setting.
    """

    name = "flagkit_django"
    verbose_name = "FlagKit"

    def ready(self) -> None:
        """Register checks (tag ``flagkit``) and the ``request_started``/``setting_changed``
        receivers."""
        from flagkit_django import _engine
        from flagkit_django.checks import check_middleware, check_settings

        checks.register(check_settings, "flagkit")
        checks.register(check_middleware, "flagkit")
        request_started.connect(
            _engine.on_request_started, dispatch_uid="flagkit_django.start_client"
        )
        setting_changed.connect(
            _engine.on_setting_changed, dispatch_uid="flagkit_django.setting_changed"
        )
