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


def test_without_the_redis_package_redis_url_is_a_configuration_error() -> None:
    """In a fresh interpreter where ``import redis`` fails, the client names the extra; and
    importing flagkit never imports redis or flagkit.fleet."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import flagkit\n"
        "from flagkit import FlagKitClient, ConfigurationError\n"
        "assert 'flagkit.fleet' not in sys.modules\n"
        "try:\n"
        f"    FlagKitClient(api_key={KEY!r}, redis_url='redis://127.0.0.1:1/0')\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "flagkit[redis]" in out.stdout and "redis_url" in out.stdout
