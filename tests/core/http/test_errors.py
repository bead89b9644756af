"""The error tree, the code table (docs/protocol.md §13.1-13.2) and message sanitization (§13.3)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from flagkit.errors import (
    ERROR_CODES,
    AuthenticationError,
    CircuitOpenError,
    ConfigurationError,
    ErrorCode,
    ErrorSanitizationConfig,
    EvaluationError,
    EventError,
    FlagKitError,
    InitializationError,
    NetworkError,
    SecurityError,
    StorageError,
    configure_error_sanitization,
    get_sanitization_config,
    is_flagkit_error,
    is_retryable_code,
    is_retryable_error,
    sanitize_error_message,
)

# docs/protocol.md §13.2 (61 codes of 1.0.9 plus SECURITY_LOCAL_PORT_IN_PRODUCTION of 1.0.0).
PUBLISHED_CODES: dict[str, tuple[int, bool]] = {
    "INIT_FAILED": (1000, False),
    "INIT_TIMEOUT": (1001, True),
    "INIT_INVALID_CONFIG": (1002, False),
    "INIT_MISSING_API_KEY": (1003, False),
    "INIT_INVALID_BASE_URL": (1004, False),
    "INIT_ALREADY_INITIALIZED": (1005, False),
    "AUTH_INVALID_KEY": (1100, False),
    "AUTH_EXPIRED_KEY": (1101, False),
    "AUTH_REVOKED_KEY": (1102, False),
    "AUTH_INSUFFICIENT_PERMISSIONS": (1103, False),
    "AUTH_RATE_LIMITED": (1104, True),
    "AUTH_PROJECT_MISMATCH": (1105, False),
    "AUTH_ENVIRONMENT_MISMATCH": (1106, False),
    "AUTH_IP_RESTRICTED": (1107, False),
    "AUTH_ORGANIZATION_REQUIRED": (1108, False),
    "AUTH_SUBSCRIPTION_SUSPENDED": (1109, False),
    "EVAL_FLAG_NOT_FOUND": (1200, False),
    "EVAL_FLAG_DISABLED": (1201, False),
    "EVAL_TYPE_MISMATCH": (1202, False),
    "EVAL_INVALID_CONTEXT": (1203, False),
    "EVAL_RULE_ERROR": (1204, True),
    "EVAL_SEGMENT_ERROR": (1205, True),
    "EVAL_DEFAULT_USED": (1206, False),
    "EVAL_CACHED_VALUE": (1207, False),
    "EVAL_STALE_VALUE": (1208, False),
    "NETWORK_ERROR": (1300, True),
    "NETWORK_TIMEOUT": (1301, True),
    "NETWORK_DNS_ERROR": (1302, True),
    "NETWORK_CONNECTION_REFUSED": (1303, True),
    "NETWORK_SSL_ERROR": (1304, False),
    "NETWORK_OFFLINE": (1305, True),
    "NETWORK_SERVER_ERROR": (1306, True),
    "NETWORK_INVALID_RESPONSE": (1307, True),
    "NETWORK_SERVICE_UNAVAILABLE": (1308, True),
    "CACHE_READ_ERROR": (1400, True),
    "CACHE_WRITE_ERROR": (1401, True),
    "CACHE_EXPIRED": (1402, True),
    "CACHE_CORRUPT": (1403, True),
    "CACHE_STORAGE_FULL": (1404, True),
    "EVENT_SEND_FAILED": (1500, True),
    "EVENT_INVALID_TYPE": (1501, False),
    "EVENT_INVALID_DATA": (1502, False),
    "EVENT_QUEUE_FULL": (1503, True),
    "EVENT_BATCH_PARTIAL": (1504, True),
    "CONFIG_INVALID_OPTION": (1600, False),
    "CONFIG_MISSING_REQUIRED": (1601, False),
    "CONFIG_TYPE_ERROR": (1602, False),
    "CONFIG_DEPRECATED": (1603, False),
    "SECURITY_LOCAL_PORT_IN_PRODUCTION": (1700, False),
    "SECURITY_PII_DETECTED": (1701, False),
    "SECURITY_SIGNATURE_FAILED": (1702, True),
    "SECURITY_ENCRYPTION_FAILED": (1703, True),
    "SECURITY_DECRYPTION_FAILED": (1704, True),
    "SECURITY_BOOTSTRAP_VERIFICATION_FAILED": (1705, False),
    "STREAMING_TOKEN_INVALID": (1800, True),
    "STREAMING_TOKEN_EXPIRED": (1801, True),
    "STREAMING_SUBSCRIPTION_SUSPENDED": (1802, False),
    "STREAMING_CONNECTION_LIMIT": (1803, True),
    "STREAMING_UNAVAILABLE": (1804, True),
    "INTERNAL_ERROR": (1900, False),
    "INTERNAL_STATE_ERROR": (1901, False),
    "UNKNOWN_ERROR": (1999, False),
}
# Ours (docs/protocol.md §20.9): numbered in the free range of their category.
ADDED_CODES = {
    "INIT_NOT_INITIALIZED",
    "NETWORK_CIRCUIT_OPEN",
    "NETWORK_UNEXPECTED_STATUS",
    "NETWORK_RESPONSE_TOO_LARGE",
    "SECURITY_SIGNATURE_INVALID",
}

API_KEY = "sdk_live_abcdefgh12345678"


@pytest.fixture(autouse=True)
def _restore_sanitization() -> Iterator[None]:
    """Every test starts from, and leaves behind, the default process-wide setting."""
    configure_error_sanitization(ErrorSanitizationConfig())
    yield
    configure_error_sanitization(ErrorSanitizationConfig())


@pytest.mark.parametrize(("code", "expected"), sorted(PUBLISHED_CODES.items()))
def test_published_code_has_its_number_and_recoverability(
    code: str, expected: tuple[int, bool]
) -> None:
    """Each published code keeps its §13.2 number and recoverable flag."""
    definition = ERROR_CODES[code]
    assert (definition.numeric_code, definition.recoverable) == expected
    assert is_retryable_code(code) is expected[1]


def test_table_is_published_codes_plus_ours() -> None:
    """The table holds exactly the published codes and our five additions."""
    assert set(ERROR_CODES) == set(PUBLISHED_CODES) | ADDED_CODES


def test_added_codes_are_in_their_category_range_and_unique() -> None:
    """Added codes sit in their category's range and no two codes share a number."""
    numbers = [d.numeric_code for d in ERROR_CODES.values()]
    assert len(numbers) == len(set(numbers))
    assert 1000 <= ERROR_CODES["INIT_NOT_INITIALIZED"].numeric_code < 1100
    for code in ("NETWORK_CIRCUIT_OPEN", "NETWORK_UNEXPECTED_STATUS", "NETWORK_RESPONSE_TOO_LARGE"):
        assert 1300 <= ERROR_CODES[code].numeric_code < 1400
    assert 1700 <= ERROR_CODES["SECURITY_SIGNATURE_INVALID"].numeric_code < 1800


def test_error_code_constants_cover_the_table() -> None:
    """ErrorCode has one constant per code, equal to its name."""
    constants = {n: v for n, v in vars(ErrorCode).items() if n.isupper()}
    assert set(constants) == set(ERROR_CODES)
    assert all(name == value for name, value in constants.items())


def test_unknown_code_is_a_key_error() -> None:
    """Building an error with a code outside the table is a programming mistake."""
    with pytest.raises(KeyError):
        FlagKitError("NOT_A_CODE")
    assert not is_retryable_code("NOT_A_CODE")


def test_str_is_code_and_message() -> None:
    """str(err) is "[CODE] message"; the message defaults to the code's default text."""
    assert str(FlagKitError("NETWORK_TIMEOUT", "timed out")) == "[NETWORK_TIMEOUT] timed out"
    assert str(FlagKitError("CACHE_CORRUPT")) == "[CACHE_CORRUPT] Cache data is corrupt"


def test_attributes_follow_the_code() -> None:
    """numeric_code and recoverable come from the table; the other fields are kept."""
    cause = OSError("boom")
    err = NetworkError(
        "NETWORK_SERVER_ERROR", "bad gateway", status_code=502, retry_after=7,
        request_id="req-1", details={"attempt": 3}, cause=cause,
    )  # fmt: skip
    assert (err.numeric_code, err.recoverable) == (1306, True)
    assert (err.status_code, err.retry_after, err.request_id) == (502, 7, "req-1")
    assert err.details == {"attempt": 3}
    assert err.__cause__ is cause
    assert isinstance(err.timestamp, datetime)


def test_to_dict_has_the_documented_snake_case_keys() -> None:
    """to_dict() returns the §13.1 keys with the sanitized message and an ISO timestamp."""
    err = AuthenticationError("AUTH_RATE_LIMITED", "slow down", status_code=429, retry_after=3)
    data = err.to_dict()
    assert set(data) == {
        "name", "code", "numeric_code", "message", "status_code", "details",
        "recoverable", "retry_after", "request_id", "timestamp",
    }  # fmt: skip
    assert data["name"] == "AuthenticationError"
    assert (data["code"], data["numeric_code"], data["recoverable"]) == (
        "AUTH_RATE_LIMITED", 1104, True,
    )  # fmt: skip
    assert (data["message"], data["status_code"], data["retry_after"]) == ("slow down", 429, 3)
    assert datetime.fromisoformat(data["timestamp"]) == err.timestamp


def test_tree_shape() -> None:
    """Each class sits where the module docstring draws it; two are also ValueErrors."""
    assert issubclass(ConfigurationError, InitializationError)
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(EventError, ValueError)
    assert issubclass(CircuitOpenError, NetworkError)
    for cls in (AuthenticationError, EvaluationError, SecurityError, StorageError):
        assert issubclass(cls, FlagKitError)
    assert not issubclass(NetworkError, ConnectionError)


def test_configuration_error_defaults_and_option() -> None:
    """ConfigurationError defaults to INIT_INVALID_CONFIG and remembers the option name."""
    err = ConfigurationError("timeout must be > 0, got -1", option="timeout")
    assert (err.code, err.option) == ("INIT_INVALID_CONFIG", "timeout")
    missing = ConfigurationError("api_key is required", code="INIT_MISSING_API_KEY")
    assert missing.code == "INIT_MISSING_API_KEY"


def test_circuit_open_error_code() -> None:
    """CircuitOpenError carries NETWORK_CIRCUIT_OPEN and is recoverable."""
    err = CircuitOpenError(retry_after=5)
    assert (err.code, err.recoverable, err.retry_after) == ("NETWORK_CIRCUIT_OPEN", True, 5)


def test_predicates() -> None:
    """is_flagkit_error / is_retryable_error recognise our errors and their recoverability."""
    assert is_flagkit_error(SecurityError("SECURITY_PII_DETECTED"))
    assert not is_flagkit_error(ValueError("x"))
    assert is_retryable_error(NetworkError("NETWORK_TIMEOUT"))
    assert not is_retryable_error(SecurityError("SECURITY_PII_DETECTED"))
    assert not is_retryable_error(TimeoutError())


# --- sanitizer (docs/protocol.md §13.3 and §18) ---------------------------------------------

ON = ErrorSanitizationConfig()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("key sdk_abcdefgh123 bad", "key sdk_[REDACTED] bad"),
        ("sdk_short", "sdk_short"),
        ("conn 10.0.0.1:8080 refused", "conn [IP]:8080 refused"),
        ("postgres://u:p@db.host.com:5432/x", "[CONNECTION_STRING]"),
        ("server srv_abcdefgh9 and cli_zyxwvuts1", "server srv_[REDACTED] and cli_[REDACTED]"),
        ("read /var/lib/flagkit/cache.json failed", "read [PATH] failed"),
        ("read C:\\Users\\bob\\cache.json failed", "read [PATH] failed"),
        ("mail bob.smith+x@example.com now", "mail [EMAIL] now"),
        ("GET https://api.flagkit.dev/api/v1/sdk/init", "GET https:/[PATH]"),
        ("nothing sensitive here", "nothing sensitive here"),
    ],
)
def test_sanitizer_cases(raw: str, clean: str) -> None:
    """Each §13.3 pattern replaces what it matches (§18 cases included)."""
    assert sanitize_error_message(raw, ON) == clean


def test_sanitizer_disabled_still_redacts_api_keys() -> None:
    """With sanitization off (or no config) API keys are still removed; the rest stays."""
    raw = f"key {API_KEY} from 10.0.0.1 at /etc/x/y"
    for config in (ErrorSanitizationConfig(enabled=False), None):
        assert sanitize_error_message(raw, config) == "key sdk_[REDACTED] from 10.0.0.1 at /etc/x/y"


def test_error_messages_are_sanitized_at_construction() -> None:
    """A FlagKitError's message, str, repr and to_dict never show the redacted parts."""
    err = NetworkError("NETWORK_ERROR", f"{API_KEY} at 10.1.2.3 /srv/app/x.py")
    for text in (err.message, str(err), repr(err), str(err.to_dict())):
        assert API_KEY not in text
        assert "10.1.2.3" not in text
        assert "/srv/app/x.py" not in text
    assert err.original_message is None


def test_api_keys_are_redacted_even_with_sanitization_disabled() -> None:
    """Turning sanitization off keeps IPs but never lets an API key into an error."""
    configure_error_sanitization(ErrorSanitizationConfig(enabled=False))
    err = NetworkError("NETWORK_ERROR", f"key {API_KEY} host 10.1.2.3")
    assert API_KEY not in str(err) and "sdk_[REDACTED]" in str(err)
    assert "10.1.2.3" in str(err)
    configure_error_sanitization(None)
    assert API_KEY not in str(NetworkError("NETWORK_ERROR", f"key {API_KEY}"))


def test_preserve_original_keeps_raw_text_without_keys() -> None:
    """preserve_original stores the unsanitized text, API keys still redacted, off to_dict."""
    configure_error_sanitization(ErrorSanitizationConfig(preserve_original=True))
    assert get_sanitization_config() == ErrorSanitizationConfig(preserve_original=True)
    err = NetworkError("NETWORK_ERROR", f"key {API_KEY} host 10.1.2.3")
    assert err.message == "key sdk_[REDACTED] host [IP]"
    assert err.original_message == "key sdk_[REDACTED] host 10.1.2.3"
    assert "original_message" not in err.to_dict()
    assert "10.1.2.3" not in str(err) and "10.1.2.3" not in repr(err)


def test_preserve_original_is_none_when_nothing_changed() -> None:
    """original_message is only set when sanitization changed the text."""
    configure_error_sanitization(ErrorSanitizationConfig(preserve_original=True))
    assert NetworkError("NETWORK_ERROR", "plain").original_message is None


@pytest.mark.timeout(10)
def test_sanitizing_a_huge_message_is_linear() -> None:
    """A 200 KB message without an "@" is sanitized at once (the unbounded e-mail pattern
    was quadratic: minutes at this size)."""
    message = "a" * 200_000 + " contact ops@example.com"
    assert sanitize_error_message(message, ErrorSanitizationConfig()).endswith("[EMAIL]")
