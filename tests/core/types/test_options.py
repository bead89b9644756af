"""FlagKitOptions: defaults, validation messages, base URL rules and ``from_mapping``."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import pytest

from flagkit.errors import ConfigurationError, InitializationError, SecurityError
from flagkit.types.config import (
    BootstrapConfig,
    BootstrapVerificationOptions,
    CircuitBreakerOptions,
    ErrorSanitizationConfig,
    EvaluationJitterConfig,
    FlagKitOptions,
    FlagKitOptionsKwargs,
    RetryOptions,
    StreamingOptions,
)

KEY = "sdk_abcdefgh12345678"
SECONDARY = "srv_zyxwvuts87654321"
ENV_VARS = ("FLAGKIT_MODE", "PYTHON_ENV", "NODE_ENV", "ENV", "ENVIRONMENT")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here sees the developer's FLAGKIT_MODE or production markers."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def build(**kwargs: Any) -> FlagKitOptions:
    return FlagKitOptions(api_key=KEY, **kwargs)


def config_error(code: str = "INIT_INVALID_CONFIG", /, **kwargs: Any) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as info:
        build(**kwargs)
    assert info.value.code == code
    return info.value


# --- defaults and shape ---------------------------------------------------------------------

EXPECTED_DEFAULTS: dict[str, Any] = {
    "secondary_api_key": None,
    "key_rotation_grace_period": 300.0,
    "base_url": "https://api.flagkit.dev/api/v1",
    "local_port": None,
    "polling_interval": 30.0,
    "enable_polling": True,
    "cache_enabled": True,
    "cache_ttl": 300.0,
    "persist_cache": False,
    "cache_storage_key": "flagkit_cache",
    "cache_storage_path": None,
    "encrypt_cache": False,
    "offline": False,
    "timeout": 5.0,
    "retries": 3,
    "retry": RetryOptions(),
    "circuit_breaker": CircuitBreakerOptions(),
    "streaming": StreamingOptions(),
    "logger": None,
    "bootstrap": {},
    "bootstrap_verification": BootstrapVerificationOptions(),
    "on_ready": None,
    "on_error": None,
    "on_update": None,
    "debug": False,
    "enable_request_signing": True,
    "strict_pii_mode": False,
    "persist_events": False,
    "event_storage_path": None,
    "max_persisted_events": 10000,
    "persistence_flush_interval": 1000,
    "event_batch_size": 10,
    "event_flush_interval": 30.0,
    "max_event_queue_size": 1000,
    "lenient_tracking": False,
    "evaluation_summaries": False,
    "record_exposures_offline": False,
    "evaluation_jitter": EvaluationJitterConfig(),
    "error_sanitization": ErrorSanitizationConfig(),
    "allow_insecure_http": False,
}


def test_defaults_match_the_contract() -> None:
    """Every option but api_key has the documented default."""
    options = build()
    assert {name: getattr(options, name) for name in EXPECTED_DEFAULTS} == EXPECTED_DEFAULTS
    assert options.resolved_base_url == "https://api.flagkit.dev/api/v1"


def test_option_names_are_the_fields() -> None:
    """option_names() lists exactly api_key plus every defaulted option."""
    assert FlagKitOptions.option_names() == frozenset(EXPECTED_DEFAULTS) | {"api_key"}


def test_kwargs_typed_dict_lists_every_option_but_api_key() -> None:
    """FlagKitOptionsKwargs (FlagKit.initialize's **options) stays in step with the fields."""
    assert set(FlagKitOptionsKwargs.__annotations__) == FlagKitOptions.option_names() - {"api_key"}


def test_api_key_may_be_positional_the_rest_keyword_only() -> None:
    """The published positional api_key works; other options must be keywords."""
    assert FlagKitOptions(KEY).api_key == KEY
    with pytest.raises(TypeError):
        FlagKitOptions(KEY, None)  # type: ignore[call-arg]


def test_options_are_frozen_and_replace_revalidates() -> None:
    """Options cannot be mutated; dataclasses.replace builds a validated copy."""
    options = build()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.timeout = 1.0  # type: ignore[misc]
    assert dataclasses.replace(options, timeout=2).timeout == 2.0
    with pytest.raises(ConfigurationError, match="timeout"):
        dataclasses.replace(options, timeout=-1)


def test_integer_durations_are_stored_as_floats_without_clamping() -> None:
    """30 becomes 30.0 and tiny or zero values are kept exactly as given."""
    options = build(polling_interval=30, cache_ttl=0, timeout=0.001, retries=0)
    assert (options.polling_interval, options.cache_ttl, options.timeout) == (30.0, 0.0, 0.001)
    assert isinstance(options.polling_interval, float)
    assert options.retries == 0


def test_repr_masks_both_keys_and_shows_changed_options() -> None:
    """The repr shows only the first 8 characters of each key, and non-default options."""
    options = build(secondary_api_key=SECONDARY, polling_interval=5, bootstrap={"a": 1, "b": 2})
    text = repr(options)
    assert KEY not in text and SECONDARY not in text
    assert "api_key='sdk_abcd...'" in text
    assert "secondary_api_key='srv_zyxw...'" in text
    assert "polling_interval=5.0" in text
    assert "bootstrap=<2 flags>" in text
    assert "timeout" not in text
    assert options.api_key_id == "sdk_abcd"


def test_configuration_error_is_an_initialization_and_value_error() -> None:
    """Callers can catch a bad option as InitializationError or ValueError."""
    error = config_error(timeout=0)
    assert isinstance(error, InitializationError)
    assert isinstance(error, ValueError)
    assert error.option == "timeout"


# --- API keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, ""])
def test_missing_api_key(value: object) -> None:
    """A None or empty api_key is INIT_MISSING_API_KEY and says what is expected."""
    with pytest.raises(ConfigurationError) as info:
        FlagKitOptions(api_key=value)  # type: ignore[arg-type]
    assert info.value.code == "INIT_MISSING_API_KEY"
    assert "api_key is required: a str starting with sdk_, srv_ or cli_" in str(info.value)


def test_api_key_of_the_wrong_type() -> None:
    """A non-str api_key names its type, not its value."""
    with pytest.raises(ConfigurationError) as info:
        FlagKitOptions(api_key=12345)  # type: ignore[arg-type]
    assert info.value.code == "INIT_INVALID_CONFIG"
    assert "api_key must be a str starting with sdk_, srv_ or cli_, got a int" in str(info.value)


def test_api_key_with_an_unknown_prefix_is_not_shown_in_the_message() -> None:
    """A bad prefix is reported with the key's length only: it may be another secret."""
    secret = "pk_live_0123456789abcdef"
    with pytest.raises(ConfigurationError) as info:
        FlagKitOptions(api_key=secret)
    message = str(info.value)
    assert "api_key must start with sdk_, srv_ or cli_ followed by the key" in message
    assert "got a str of 24 characters, not shown" in message
    for text in (message, repr(info.value), str(info.value.to_dict())):
        assert "pk_live" not in text and "0123" not in text


@pytest.mark.parametrize("prefix", ["sdk_", "srv_", "cli_"])
def test_every_documented_prefix_is_accepted(prefix: str) -> None:
    """sdk_, srv_ and cli_ keys are all valid."""
    assert FlagKitOptions(api_key=f"{prefix}key12345").api_key == f"{prefix}key12345"


def test_prefix_alone_is_not_a_key() -> None:
    """'sdk_' with nothing after it is rejected."""
    with pytest.raises(ConfigurationError, match="followed by the key"):
        FlagKitOptions(api_key="sdk_")


def test_api_key_with_a_trailing_newline_is_rejected() -> None:
    """Whitespace (a pasted newline from an env file) is caught at construction."""
    with pytest.raises(ConfigurationError, match="whitespace or control characters"):
        FlagKitOptions(api_key=KEY + "\n")


def test_secondary_key_follows_the_same_rules() -> None:
    """secondary_api_key: None is fine, '' and bad prefixes are not, and it is masked."""
    assert build(secondary_api_key=None).secondary_api_key is None
    assert build(secondary_api_key=SECONDARY).secondary_api_key == SECONDARY
    error = config_error(secondary_api_key="")
    assert "secondary_api_key must be None or a str starting with sdk_" in str(error)
    error = config_error(secondary_api_key="bad_0123456789")
    assert "secondary_api_key must start with sdk_, srv_ or cli_" in str(error)
    assert "bad_" not in str(error) and error.option == "secondary_api_key"


# --- base URL (docs/protocol.md §1) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("api.flagkit.dev/api/v1", "base_url must be an absolute http(s) URL"),
        ("ftp://example.com/api/v1", "got 'ftp://example.com/api/v1'"),
        ("", "base_url must be an absolute http(s) URL"),
        ("https://", "got 'https://'"),
        ("https://example.com:99999/api", "base_url must be an absolute http(s) URL"),
        ("https://example.com/api?x=1", "base_url must have no query string or fragment"),
        ("http://example.com/api/v1", "base_url uses plain http to 'example.com'"),
        ("http://10.0.0.5:8200/api/v1", "http is allowed only to localhost, 127.0.0.1 or ::1"),
    ],
)
def test_bad_base_urls(url: str, fragment: str) -> None:
    """Each bad base URL raises INIT_INVALID_BASE_URL with the URL in the message."""
    error = config_error("INIT_INVALID_BASE_URL", base_url=url)
    assert fragment in str(error)
    assert error.option == "base_url"


def test_base_url_of_the_wrong_type() -> None:
    """A non-str base_url is INIT_INVALID_BASE_URL."""
    config_error("INIT_INVALID_BASE_URL", base_url=None)


def test_credentials_in_the_base_url_are_not_echoed() -> None:
    """user:password@ in base_url is rejected without repeating the password."""
    error = config_error("INIT_INVALID_BASE_URL", base_url="https://bob:hunter2@example.com/api")
    assert "must not contain credentials" in str(error)
    assert "hunter2" not in str(error)
    assert "https://example.com/api" in str(error)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8200/api/v1",
        "http://127.0.0.1:8200/api/v1",
        "http://[::1]:8200/api/v1",
        "HTTP://LOCALHOST/api/v1",
        "https://flags.example.com/api/v1",
    ],
)
def test_good_base_urls(url: str) -> None:
    """https anywhere and plain http to loopback are accepted."""
    assert build(base_url=url).resolved_base_url == url


def test_allow_insecure_http_permits_plain_http_elsewhere() -> None:
    """allow_insecure_http=True lets a plain-http non-loopback base URL through."""
    options = build(base_url="http://flagkit:8200/api/v1", allow_insecure_http=True)
    assert options.resolved_base_url == "http://flagkit:8200/api/v1"


def test_trailing_slash_is_dropped() -> None:
    """A base URL ending in '/' resolves without it, so paths never get '//'."""
    assert build(base_url="https://x.example/api/v1/").resolved_base_url == (
        "https://x.example/api/v1"
    )


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("local", "https://api.flagkit.on/api/v1"),
        ("LOCAL", "https://api.flagkit.on/api/v1"),
        ("beta", "https://api.beta.flagkit.dev/api/v1"),
        ("  Beta  ", "https://api.beta.flagkit.dev/api/v1"),
        ("production", "https://api.flagkit.dev/api/v1"),
        ("carbon", "https://api.flagkit.dev/api/v1"),
        ("   ", "https://api.flagkit.dev/api/v1"),
    ],
)
def test_flagkit_mode_table_overrides_base_url(
    monkeypatch: pytest.MonkeyPatch, mode: str, expected: str
) -> None:
    """A non-empty FLAGKIT_MODE picks from the mode table and ignores base_url."""
    monkeypatch.setenv("FLAGKIT_MODE", mode)
    options = build(base_url="https://custom.example/api/v1")
    assert options.resolved_base_url == expected
    assert options.base_url == "https://custom.example/api/v1"


def test_empty_flagkit_mode_uses_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """FLAGKIT_MODE set to '' is the same as unset."""
    monkeypatch.setenv("FLAGKIT_MODE", "")
    assert build(base_url="https://custom.example/api/v1").resolved_base_url == (
        "https://custom.example/api/v1"
    )


def test_local_port_wins_over_flagkit_mode_and_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """local_port gives http://localhost:{port}/api/v1 whatever else is set."""
    monkeypatch.setenv("FLAGKIT_MODE", "beta")
    options = build(local_port=8200, base_url="https://custom.example/api/v1")
    assert options.resolved_base_url == "http://localhost:8200/api/v1"


def test_environment_is_read_at_construction_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Changing FLAGKIT_MODE after the options exist does not move them."""
    monkeypatch.setenv("FLAGKIT_MODE", "beta")
    options = build()
    monkeypatch.setenv("FLAGKIT_MODE", "local")
    assert options.resolved_base_url == "https://api.beta.flagkit.dev/api/v1"


@pytest.mark.parametrize("port", [0, 65536, -1, True, "8200", 8200.0])
def test_bad_local_port(port: object) -> None:
    """local_port must be an int from 1 to 65535 (bools, strings and floats rejected)."""
    error = config_error(local_port=port)
    assert f"local_port must be None or an int from 1 to 65535, got {port!r}" in str(error)


@pytest.mark.parametrize("port", [1, 65535])
def test_local_port_bounds_are_inclusive(port: int) -> None:
    """1 and 65535 are valid ports."""
    assert build(local_port=port).resolved_base_url == f"http://localhost:{port}/api/v1"


@pytest.mark.parametrize("variable", ["PYTHON_ENV", "NODE_ENV", "ENV", "ENVIRONMENT"])
@pytest.mark.parametrize("value", ["production", "Production", " PRODUCTION "])
def test_local_port_in_production_is_a_security_error(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    """Any production marker with local_port raises SECURITY_LOCAL_PORT_IN_PRODUCTION (1700)."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(SecurityError) as info:
        build(local_port=8200)
    assert info.value.code == "SECURITY_LOCAL_PORT_IN_PRODUCTION"
    assert info.value.numeric_code == 1700
    assert not info.value.recoverable
    assert not isinstance(info.value, ConfigurationError)
    assert f"local_port=8200 must not be used in production ({variable}=" in str(info.value)


def test_production_without_local_port_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The production marker only matters together with local_port."""
    monkeypatch.setenv("ENV", "production")
    monkeypatch.setenv("NODE_ENV", "staging")
    assert build().local_port is None


def test_staging_with_local_port_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the value 'production' marks production."""
    monkeypatch.setenv("ENV", "production-like")
    assert build(local_port=8200).local_port == 8200


# --- numbers, bools, strings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "fragment"),
    [
        ("key_rotation_grace_period", -1, "a finite number of seconds >= 0, got -1"),
        ("polling_interval", -0.5, "a finite number of seconds >= 0, got -0.5"),
        ("polling_interval", math.inf, "a finite number of seconds >= 0, got inf"),
        ("polling_interval", math.nan, "a finite number of seconds >= 0, got nan"),
        ("polling_interval", "30", "a finite number of seconds >= 0, got '30'"),
        ("cache_ttl", -1, "a finite number of seconds >= 0, got -1"),
        ("timeout", 0, "a finite number of seconds > 0, got 0"),
        ("timeout", True, "a finite number of seconds > 0, got True"),
        ("retries", -1, "an int (total attempts; 0 means 1) >= 0, got -1"),
        ("retries", 2.0, "an int (total attempts; 0 means 1) >= 0, got 2.0"),
        ("retries", False, "got False"),
        ("event_flush_interval", 0, "a finite number of seconds > 0, got 0"),
        ("max_persisted_events", 0, "an int >= 1, got 0"),
        ("persistence_flush_interval", 0, "an int of milliseconds >= 1, got 0"),
        ("persistence_flush_interval", 1.5, "got 1.5"),
        ("event_batch_size", 0, "an int >= 1, got 0"),
        ("max_event_queue_size", -5, "an int >= 1, got -5"),
        ("cache_storage_key", "", "a non-empty str, got ''"),
        ("cache_storage_path", "", "None or a non-empty str (a directory path), got ''"),
        ("event_storage_path", 3, "None or a non-empty str (a directory path), got 3"),
    ],
)
def test_bad_values_name_option_value_and_rule(option: str, value: object, fragment: str) -> None:
    """Each bad value raises INIT_INVALID_CONFIG: '<option> must be <rule>, got <value>'."""
    error = config_error(**{option: value})
    assert f"{option} must be " in str(error)
    assert fragment in str(error)
    assert error.option == option


@pytest.mark.parametrize(
    "option",
    [
        "enable_polling",
        "cache_enabled",
        "persist_cache",
        "encrypt_cache",
        "offline",
        "debug",
        "enable_request_signing",
        "strict_pii_mode",
        "persist_events",
        "lenient_tracking",
        "evaluation_summaries",
        "record_exposures_offline",
        "allow_insecure_http",
    ],
)
@pytest.mark.parametrize("value", [1, "true", None])
def test_bool_options_take_only_bools(option: str, value: object) -> None:
    """A truthy non-bool is rejected instead of being guessed at."""
    error = config_error(**{option: value})
    assert f"{option} must be a bool (True or False), got {value!r}" in str(error)


def test_batch_size_may_not_exceed_queue_size() -> None:
    """A batch larger than the queue could never fill, so it is rejected."""
    error = config_error(event_batch_size=50, max_event_queue_size=20)
    assert "event_batch_size must be <= max_event_queue_size (20), got 50" in str(error)


# --- groups, callables, logger, bootstrap ---------------------------------------------------


@pytest.mark.parametrize(
    ("option", "type_name"),
    [
        ("retry", "RetryOptions"),
        ("circuit_breaker", "CircuitBreakerOptions"),
        ("streaming", "StreamingOptions"),
        ("bootstrap_verification", "BootstrapVerificationOptions"),
        ("evaluation_jitter", "EvaluationJitterConfig"),
        ("error_sanitization", "ErrorSanitizationConfig"),
    ],
)
def test_groups_must_be_their_dataclass(option: str, type_name: str) -> None:
    """A dict where a group belongs is rejected at construction (from_mapping converts)."""
    error = config_error(**{option: {"enabled": True}})
    assert f"{option} must be a {type_name}" in str(error)


def test_group_instances_are_kept() -> None:
    """Group objects given by the caller are used as they are."""
    streaming = StreamingOptions(enabled=False)
    assert build(streaming=streaming).streaming is streaming


@pytest.mark.parametrize("option", ["on_ready", "on_error", "on_update"])
def test_callbacks_must_be_callable(option: str) -> None:
    """A non-callable callback is rejected; a callable is kept."""
    error = config_error(**{option: "not callable"})
    assert f"{option} must be None or a callable" in str(error)

    def callback(*args: object) -> None:
        return None

    assert getattr(build(**{option: callback}), option) is callback


def test_logger_accepts_stdlib_and_protocol_objects() -> None:
    """A logging.Logger, a LoggerAdapter and a debug/info/warn/error object are accepted."""

    class Custom:
        def debug(self, message: str, **kwargs: object) -> None: ...
        def info(self, message: str, **kwargs: object) -> None: ...
        def warn(self, message: str, **kwargs: object) -> None: ...
        def error(self, message: str, **kwargs: object) -> None: ...

    stdlib = logging.getLogger("tests.options")
    assert build(logger=stdlib).logger is stdlib
    adapter = logging.LoggerAdapter(stdlib, {})
    assert build(logger=adapter).logger is adapter
    custom = Custom()
    assert build(logger=custom).logger is custom


def test_logger_rejects_other_objects() -> None:
    """An object without the logging methods is rejected."""
    error = config_error(logger=object())
    assert "logger must be None, a logging.Logger, or an object with" in str(error)


def test_bootstrap_dict_is_copied() -> None:
    """The options keep their own copy of a bootstrap dict."""
    flags: dict[str, Any] = {"dark-mode": True}
    options = build(bootstrap=flags)
    flags["dark-mode"] = False
    assert options.bootstrap == {"dark-mode": True}


def test_bootstrap_config_is_accepted() -> None:
    """A (signed) BootstrapConfig is kept as given."""
    config = BootstrapConfig(flags={"a": 1}, signature="ab" * 32, timestamp=1)
    assert build(bootstrap=config).bootstrap is config


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ([("a", 1)], "bootstrap must be a dict of flag key -> value, or a BootstrapConfig"),
        ({1: True}, "bootstrap must be keyed by non-empty str flag keys"),
        (BootstrapConfig(flags=[1]), "bootstrap.flags must be a dict, got [1]"),  # type: ignore[arg-type]
    ],
)
def test_bad_bootstrap(value: object, fragment: str) -> None:
    """A bootstrap that is not a str-keyed dict (or BootstrapConfig) is rejected."""
    assert fragment in str(config_error(bootstrap=value))


# --- from_mapping ---------------------------------------------------------------------------


def ready_marker() -> None:
    """A module-level callable for the dotted-path tests."""


def test_from_mapping_accepts_upper_and_lower_case_keys() -> None:
    """Django-style UPPER keys and field-name keys give the same options."""
    upper = FlagKitOptions.from_mapping({"API_KEY": KEY, "POLLING_INTERVAL": 12, "OFFLINE": True})
    lower = FlagKitOptions.from_mapping({"api_key": KEY, "polling_interval": 12, "offline": True})
    assert upper == lower
    assert upper.polling_interval == 12.0 and upper.offline is True


def test_from_mapping_unknown_key_suggests_the_closest_name() -> None:
    """A typo raises CONFIG_INVALID_OPTION naming the key, the source and the likely option."""
    with pytest.raises(ConfigurationError) as info:
        FlagKitOptions.from_mapping({"API_KEY": KEY, "POLING_INTERVAL": 5})
    error = info.value
    assert error.code == "CONFIG_INVALID_OPTION"
    assert error.option == "POLING_INTERVAL"
    assert "unknown option POLING_INTERVAL in FLAGKIT; did you mean POLLING_INTERVAL?" in str(error)


def test_from_mapping_unknown_lower_case_key_and_custom_source() -> None:
    """The suggestion follows the key's case and the message names the given source."""
    with pytest.raises(ConfigurationError, match=r"in app\.config; did you mean cache_ttl"):
        FlagKitOptions.from_mapping({"api_key": KEY, "cache_tll": 5}, source="app.config")


def test_from_mapping_unknown_key_without_a_close_match_lists_known_options() -> None:
    """When nothing is close, the message lists the known names instead."""
    with pytest.raises(ConfigurationError) as info:
        FlagKitOptions.from_mapping({"API_KEY": KEY, "ZZZ": 1})
    assert "did you mean" not in str(info.value)
    assert "known: ALLOW_INSECURE_HTTP, API_KEY," in str(info.value)


def test_from_mapping_same_option_twice() -> None:
    """'debug' and 'DEBUG' in one mapping is an error, not a silent pick."""
    with pytest.raises(ConfigurationError, match="option debug is given twice in FLAGKIT"):
        FlagKitOptions.from_mapping({"API_KEY": KEY, "debug": True, "DEBUG": False})


def test_from_mapping_missing_api_key() -> None:
    """A mapping without API_KEY raises INIT_MISSING_API_KEY naming the source."""
    with pytest.raises(ConfigurationError) as info:
        FlagKitOptions.from_mapping({"POLLING_INTERVAL": 5}, source="FLAGKIT")
    assert info.value.code == "INIT_MISSING_API_KEY"
    assert "FLAGKIT has no API_KEY entry" in str(info.value)


def test_from_mapping_rejects_non_mappings_and_non_str_keys() -> None:
    """Only a mapping with str keys can be settings."""
    with pytest.raises(ConfigurationError, match="FLAGKIT must be a mapping"):
        FlagKitOptions.from_mapping(["API_KEY"])  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="keys must be option names"):
        FlagKitOptions.from_mapping({"API_KEY": KEY, 3: 1})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("ON", True),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("no", False),
        (" off ", False),
    ],
)
def test_from_mapping_converts_bool_strings(text: str, expected: bool) -> None:
    """Env-var strings for bool options become bools."""
    options = FlagKitOptions.from_mapping({"API_KEY": KEY, "OFFLINE": text, "DEBUG": text})
    assert options.offline is expected and options.debug is expected


def test_from_mapping_converts_numbers_and_optionals() -> None:
    """Strings become ints and floats; '' or 'none' means None where None is allowed."""
    options = FlagKitOptions.from_mapping(
        {
            "API_KEY": KEY,
            "RETRIES": "5",
            "POLLING_INTERVAL": "2.5",
            "TIMEOUT": "3",
            "LOCAL_PORT": "8200",
            "SECONDARY_API_KEY": "",
            "EVENT_STORAGE_PATH": "None",
            "CACHE_STORAGE_PATH": "/var/cache/flagkit",
        }
    )
    assert (options.retries, options.polling_interval, options.timeout) == (5, 2.5, 3.0)
    assert options.local_port == 8200
    assert options.secondary_api_key is None and options.event_storage_path is None
    assert options.cache_storage_path == "/var/cache/flagkit"


def test_from_mapping_local_port_can_be_cleared_by_an_empty_string() -> None:
    """LOCAL_PORT='' (an unset env var) means no local port."""
    options = FlagKitOptions.from_mapping({"API_KEY": KEY, "LOCAL_PORT": ""})
    assert options.local_port is None


@pytest.mark.parametrize(
    ("key", "text", "fragment"),
    [
        (
            "OFFLINE",
            "maybe",
            "offline must be a bool (true/false, 1/0, yes/no, on/off), got 'maybe'",
        ),
        ("RETRIES", "3.5", "retries must be an int, got '3.5'"),
        ("RETRIES", "", "retries must be an int, got ''"),
        ("TIMEOUT", "fast", "timeout must be a finite number, got 'fast'"),
        ("TIMEOUT", "inf", "timeout must be a finite number, got 'inf'"),
        ("LOCAL_PORT", "http", "local_port must be an int, got 'http'"),
    ],
)
def test_from_mapping_bad_strings(key: str, text: str, fragment: str) -> None:
    """An unconvertible string names the option, the text and the accepted forms."""
    with pytest.raises(ConfigurationError) as info:
        FlagKitOptions.from_mapping({"API_KEY": KEY, key: text})
    assert fragment in str(info.value)


def test_from_mapping_converted_values_are_still_validated() -> None:
    """A converted number outside its range fails the constructor's rule."""
    with pytest.raises(ConfigurationError, match="polling_interval must be a finite number"):
        FlagKitOptions.from_mapping({"API_KEY": KEY, "POLLING_INTERVAL": "-1"})


def test_from_mapping_nested_group_dicts() -> None:
    """Group dicts in any case, with env strings, become the group dataclasses."""
    options = FlagKitOptions.from_mapping(
        {
            "API_KEY": KEY,
            "STREAMING": {"ENABLED": "false", "MAX_RECONNECT_ATTEMPTS": "5"},
            "retry": {"base_delay": "0.5", "MAX_DELAY": 4},
            "CIRCUIT_BREAKER": {"FAILURE_THRESHOLD": 2},
            "BOOTSTRAP_VERIFICATION": {"ON_FAILURE": "error", "MAX_AGE": "1000"},
            "EVALUATION_JITTER": {"ENABLED": "1"},
            "ERROR_SANITIZATION": {"PRESERVE_ORIGINAL": "yes"},
        }
    )
    assert options.streaming == StreamingOptions(enabled=False, max_reconnect_attempts=5)
    assert options.retry == RetryOptions(base_delay=0.5, max_delay=4)
    assert options.circuit_breaker == CircuitBreakerOptions(failure_threshold=2)
    assert options.bootstrap_verification == BootstrapVerificationOptions(
        on_failure="error", max_age=1000
    )
    assert options.evaluation_jitter.enabled is True
    assert options.error_sanitization.preserve_original is True


def test_from_mapping_unknown_nested_key_suggests_the_field() -> None:
    """A typo inside a group names the dotted path and the closest field."""
    with pytest.raises(ConfigurationError) as info:
        FlagKitOptions.from_mapping({"API_KEY": KEY, "STREAMING": {"ENABLD": False}})
    assert info.value.code == "CONFIG_INVALID_OPTION"
    assert "unknown option STREAMING.ENABLD in FLAGKIT; did you mean STREAMING.ENABLED?" in str(
        info.value
    )


def test_from_mapping_nested_group_values_are_validated() -> None:
    """A group's own rule reports the dotted option name."""
    with pytest.raises(ConfigurationError, match=r"streaming\.reconnect_interval must be"):
        FlagKitOptions.from_mapping({"API_KEY": KEY, "STREAMING": {"RECONNECT_INTERVAL": "0"}})


def test_from_mapping_group_instances_pass_through() -> None:
    """A group object in settings is used unchanged."""
    retry = RetryOptions(base_delay=0.1)
    assert FlagKitOptions.from_mapping({"API_KEY": KEY, "RETRY": retry}).retry is retry


def test_from_mapping_bootstrap_keys_keep_their_case() -> None:
    """BOOTSTRAP holds flag keys, which are not option names and are not lower-cased."""
    options = FlagKitOptions.from_mapping({"API_KEY": KEY, "BOOTSTRAP": {"Dark-Mode": "on"}})
    assert options.bootstrap == {"Dark-Mode": "on"}


@pytest.mark.parametrize("separator", [".", ":"])
def test_from_mapping_imports_dotted_callables(separator: str) -> None:
    """Callbacks and the logger may be given as 'module.attr' or 'module:attr'."""
    options = FlagKitOptions.from_mapping(
        {
            "API_KEY": KEY,
            "ON_READY": f"{__name__}{separator}ready_marker",
            "ON_ERROR": "builtins.print",
            "ON_UPDATE": "builtins:print",
            "LOGGER": "logging.root",
        }
    )
    assert options.on_ready is ready_marker
    assert options.on_error is print and options.on_update is print
    assert options.logger is logging.root


def test_from_mapping_imports_nested_attributes() -> None:
    """A dotted path may go through a class to an attribute."""
    options = FlagKitOptions.from_mapping({"API_KEY": KEY, "ON_ERROR": "logging.Logger.exception"})
    expected: object = logging.Logger.exception
    assert options.on_error is expected


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("flagkit_no_such_module_xyz.ready", "no module named 'flagkit_no_such_module_xyz'"),
        ("os.path.no_such_function", "has no attribute"),
        ("ready", "dotted import path like 'pkg.module.attr'"),
        (":ready", "dotted import path like 'pkg.module.attr'"),
    ],
)
def test_from_mapping_bad_dotted_paths(path: str, fragment: str) -> None:
    """An unimportable path names the option and what went wrong."""
    with pytest.raises(ConfigurationError) as info:
        FlagKitOptions.from_mapping({"API_KEY": KEY, "ON_READY": path})
    assert info.value.option == "on_ready"
    assert "on_ready" in str(info.value)
    assert fragment in str(info.value)


def test_from_mapping_imported_object_must_fit_the_option() -> None:
    """A path to a non-callable is rejected by the constructor's rule."""
    with pytest.raises(ConfigurationError, match="on_ready must be None or a callable"):
        FlagKitOptions.from_mapping({"API_KEY": KEY, "ON_READY": "math.pi"})


def test_from_mapping_production_check_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings with LOCAL_PORT in production raise the same SecurityError."""
    monkeypatch.setenv("PYTHON_ENV", "production")
    with pytest.raises(SecurityError):
        FlagKitOptions.from_mapping({"API_KEY": KEY, "LOCAL_PORT": "8200"})


def test_from_mapping_does_not_mutate_its_input() -> None:
    """The caller's settings dict is left as it was."""
    settings: dict[str, Any] = {"API_KEY": KEY, "STREAMING": {"ENABLED": "false"}}
    FlagKitOptions.from_mapping(settings)
    assert settings == {"API_KEY": KEY, "STREAMING": {"ENABLED": "false"}}


def test_options_work_as_keyword_arguments_everywhere() -> None:
    """Every option name is a constructor keyword (what FlagKit.initialize forwards)."""
    assert build(**EXPECTED_DEFAULTS) == build()
