"""Fleet mode settings in Django: FLAGKIT['REDIS_*'] map to the redis_* options."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured


def test_redis_settings_map_to_the_fleet_options(settings: Any) -> None:
    settings.FLAGKIT = {
        "API_KEY": "sdk_django_fleet_key",
        "REDIS_URL": "redis://:secret-pass@cache.internal:6379/2",
        "REDIS_PREFIX": "shop-prod",
        "REDIS_ROLE": "reader",
        "REDIS_LEASE_TIME": "6",
        "REDIS_SIGNING_KEY": "a-long-signing-key-0123",
    }
    from flagkit_django import conf

    options = conf.get_options()
    assert options.redis_url == "redis://:secret-pass@cache.internal:6379/2"
    assert options.redis_prefix == "shop-prod"
    assert options.redis_role == "reader"
    assert options.redis_lease_time == 6.0
    assert options.redis_signing_key == "a-long-signing-key-0123"
    shown = repr(options)
    assert "secret-pass" not in shown and "a-long-signing-key" not in shown


def test_a_bad_redis_role_names_the_setting(settings: Any) -> None:
    settings.FLAGKIT = {"API_KEY": "sdk_django_fleet_key", "REDIS_ROLE": "writer"}
    from flagkit_django import conf

    with pytest.raises(ImproperlyConfigured, match=r"FLAGKIT\['REDIS_ROLE'\].*'auto'"):
        conf.get_options()
