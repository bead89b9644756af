"""flagkit.web.options: the settings rules shared by the web adapters."""

from __future__ import annotations

import dataclasses

import pytest

from flagkit.errors import ConfigurationError, SecurityError
from flagkit.web import options as adapter_options
from flagkit.web.options import WebAdapterSettings, build_options, settings_defaults


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Settings(WebAdapterSettings):
    user_id_attribute: str = "pk"
    start_on_request: bool = True


def test_settings_defaults_follow_the_settings_class() -> None:
    """An adapter's defaults table is its settings fields upper-cased, own defaults
    included, in field order."""
    assert settings_defaults(_Settings) == {
        "USER_ID_ATTRIBUTE": "pk",
        "COUNTRY_HEADER": None,
        "TRUST_PROXY_HEADERS": False,
        "IP_HEADER": "X-Forwarded-For",
        "ANONYMOUS_COOKIE_NAME": "flagkit_anon",
        "ANONYMOUS_COOKIE_MAX_AGE": 365 * 24 * 60 * 60,
        "START_WAIT": 2.0,
        "START_ON_REQUEST": True,
    }


def test_split_options_sorts_keys_into_core_adapter_and_unknown() -> None:
    """Core option names, adapter keys and the rest are told apart, in input order."""
    core, adapter, unknown = adapter_options.split_options(
        {"POLING": 1, "API_KEY": "sdk_x", "IP_HEADER": "X", "OFFLINE": True, "NOPE": 2},
        settings_defaults(_Settings),
    )
    assert core == {"API_KEY": "sdk_x", "OFFLINE": True}
    assert adapter == {"IP_HEADER": "X"}
    assert unknown == ["POLING", "NOPE"]
    assert {"API_KEY", "POLLING_INTERVAL", "STREAMING"} <= adapter_options.option_keys()


def test_core_defaults_cover_every_option_but_the_api_key() -> None:
    """Every core option but API_KEY has a default; mutable ones are fresh each call."""
    defaults = adapter_options.core_defaults()
    assert set(defaults) == adapter_options.option_keys() - {"API_KEY"}
    assert defaults["POLLING_INTERVAL"] == 30.0
    defaults["BOOTSTRAP"]["x"] = 1
    assert adapter_options.core_defaults()["BOOTSTRAP"] == {}


def test_is_true_accepts_env_style_text() -> None:
    """True and true-ish text are true; anything else is false."""
    assert all(adapter_options.is_true(v) for v in (True, "true", " YES ", "1", "on"))
    assert not any(adapter_options.is_true(v) for v in (False, 0, "false", "", None, "off"))


def test_build_options_uses_the_placeholder_key_offline_only() -> None:
    """Offline without an API key gets the placeholder; online a missing key raises."""
    options = build_options({"OFFLINE": "true", "API_KEY": ""}, source="FLAGKIT")
    assert (
        options.api_key == adapter_options.OFFLINE_PLACEHOLDER_API_KEY and options.offline is True
    )
    assert build_options({"API_KEY": "sdk_abcdefgh"}, source="FLAGKIT").api_key == "sdk_abcdefgh"
    with pytest.raises(ConfigurationError, match="FLAGKIT has no API_KEY"):
        build_options({"POLLING_INTERVAL": 30}, source="FLAGKIT")


def test_setting_of_error_names_the_top_level_key() -> None:
    """An error about a nested option names its group; one about nothing names none."""
    with pytest.raises(ConfigurationError) as nested:
        build_options(
            {"API_KEY": "sdk_abcdefgh", "STREAMING": {"RECONNECT_INTERVAL": -1}}, source="X"
        )
    assert adapter_options.setting_of_error(nested.value) == "STREAMING"
    assert adapter_options.setting_of_error(ConfigurationError("no option here")) is None
    local_port = SecurityError("SECURITY_LOCAL_PORT_IN_PRODUCTION", "local_port in production")
    assert adapter_options.setting_of_error(local_port) == "LOCAL_PORT"
