"""Fleet mode config in Flask: FLAGKIT_REDIS_* map to the redis_* options."""

from __future__ import annotations

import pytest

from flagkit import ConfigurationError
from tests.flask.conftest import AppFactory


def test_redis_config_maps_to_the_fleet_options(make_app: AppFactory) -> None:
    app = make_app(
        {
            "FLAGKIT_REDIS_URL": "redis://cache.internal:6379/0",
            "FLAGKIT_REDIS_PREFIX": "shop-prod",
            "FLAGKIT_REDIS_LEASE_TIME": "4.5",
        }
    )
    options = app.extensions["flagkit"].options
    assert options.redis_url == "redis://cache.internal:6379/0"
    assert options.redis_prefix == "shop-prod"
    assert options.redis_role == "auto"
    assert options.redis_lease_time == 4.5


def test_a_bad_redis_url_names_the_config_key(make_app: AppFactory) -> None:
    with pytest.raises(ConfigurationError, match=r"FLAGKIT_REDIS_URL.*redis://"):
        make_app({"FLAGKIT_REDIS_URL": "http://cache.internal"})
