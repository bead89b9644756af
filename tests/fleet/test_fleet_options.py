"""The fleet options are validated at construction, naming the option, value and rule."""

from __future__ import annotations

from typing import Any

import pytest

from flagkit import ConfigurationError
from flagkit.types.config import FlagKitOptions

KEY = "sdk_fleet_options_key"


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("redis_url", "http://cache:6379", r"redis_url must be None or a Redis URL"),
        ("redis_url", "redis://:hunter2@cache:6379", None),
        ("redis_prefix", "", r"redis_prefix must be a non-empty str"),
        ("redis_prefix", "a{b}", r"without spaces or braces"),
        ("redis_role", "syncer", r"redis_role must be 'auto'.*got 'syncer'"),
        ("redis_lease_time", 0, r"redis_lease_time must be"),
        ("redis_signing_key", "short", r"redis_signing_key must be .*16 characters"),
    ],
)
def test_fleet_options(option: str, value: Any, message: str | None) -> None:
    if message is None:
        FlagKitOptions(api_key=KEY, **{option: value})
        return
    with pytest.raises(ConfigurationError, match=message) as caught:
        FlagKitOptions(api_key=KEY, **{option: value})
    assert "short" not in str(caught.value) or option != "redis_signing_key"


def test_secrets_stay_out_of_the_repr_and_errors() -> None:
    options = FlagKitOptions(
        api_key=KEY,
        redis_url="redis://:hunter2@cache:6379/0",
        redis_signing_key="signing-key-0123456789",
    )
    assert "hunter2" not in repr(options) and "signing-key-0123" not in repr(options)
    with pytest.raises(ConfigurationError) as caught:
        FlagKitOptions(api_key=KEY, redis_url="http://:hunter2@cache:6379")
    assert "hunter2" not in str(caught.value)
