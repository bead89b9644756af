"""Per-client error sanitization: ``apply_error_sanitization`` and by-value key redaction.

A client applies its ``error_sanitization`` option to the errors it reports; the
process-wide default (``configure_error_sanitization``) stays as it was, so two clients with
different settings do not change each other's errors.
"""

from __future__ import annotations

import pytest

from flagkit.errors import (
    ConfigurationError,
    ErrorSanitizationConfig,
    NetworkError,
    get_sanitization_config,
)
from flagkit.errors.flagkit_error import apply_error_sanitization

RAW = "connect to 10.1.2.3 failed reading /etc/flagkit/cache.json for ops@example.com"
KEY = "sdk_live.4f9a/2c7e+1b=="
OFF = ErrorSanitizationConfig(enabled=False)
KEEP = ErrorSanitizationConfig(preserve_original=True)


def test_errors_are_sanitized_by_default() -> None:
    """Without a client's setting, the process default (enabled) applies."""
    error = NetworkError("NETWORK_ERROR", RAW)
    assert "10.1.2.3" not in str(error) and "[IP]" in str(error)
    assert error.original_message is None


def test_a_client_that_disables_sanitization_gets_the_raw_text() -> None:
    """enabled=False restores paths, hosts and addresses for that error only."""
    before = get_sanitization_config()
    error = apply_error_sanitization(NetworkError("NETWORK_ERROR", RAW), OFF)
    assert str(error) == f"[NETWORK_ERROR] {RAW}" and error.args == (RAW,)
    assert error.to_dict()["message"] == RAW
    assert get_sanitization_config() is before  # nothing process-wide changed
    assert "[IP]" in str(NetworkError("NETWORK_ERROR", RAW))  # other errors unaffected


def test_preserve_original_keeps_the_raw_text_aside() -> None:
    """preserve_original sets original_message; str/repr/to_dict stay sanitized."""
    error = apply_error_sanitization(NetworkError("NETWORK_ERROR", RAW), KEEP)
    assert error.original_message == RAW
    for text in (str(error), repr(error), str(error.to_dict())):
        assert "10.1.2.3" not in text and "ops@example.com" not in text


def test_reapplying_starts_from_the_original_text() -> None:
    """A second config re-sanitizes from the original, not from the sanitized text."""
    error = apply_error_sanitization(NetworkError("NETWORK_ERROR", RAW), None)
    assert "[IP]" not in str(error)  # None: API keys only
    apply_error_sanitization(error, ErrorSanitizationConfig())
    assert "[IP]" in str(error)
    apply_error_sanitization(error, OFF)
    assert RAW in str(error)


def test_api_keys_stay_redacted_whatever_the_config() -> None:
    """No config brings an API key back, not even preserve_original."""
    error = NetworkError("NETWORK_ERROR", "rejected sdk_abcdefgh12345678 at 10.0.0.1")
    for config in (OFF, KEEP, None):
        apply_error_sanitization(error, config)
        assert "abcdefgh" not in str(error)
        assert "abcdefgh" not in (error.original_message or "")


def test_configuration_errors_and_other_exceptions_are_left_alone() -> None:
    """A ConfigurationError describes the caller's own setting; it is not sanitized."""
    error = ConfigurationError("base_url 'http://10.0.0.5/x/y' is not allowed", option="base_url")
    apply_error_sanitization(error, ErrorSanitizationConfig())
    assert "10.0.0.5/x/y" in str(error)
    other = ValueError(RAW)
    assert apply_error_sanitization(other, ErrorSanitizationConfig()) is other
    assert str(other) == RAW


@pytest.mark.parametrize("config", [OFF, KEEP])
def test_redact_removes_a_known_key_by_value(config: ErrorSanitizationConfig) -> None:
    """redact() hides a key of any shape from message, args and original_message, also
    after a later re-sanitization."""
    error = NetworkError("NETWORK_ERROR", f"server echoed {KEY!r} from 10.0.0.1")
    error.redact([KEY, None])
    apply_error_sanitization(error, config)
    texts = [str(error), repr(error), str(error.to_dict()), str(error.args)]
    texts.append(error.original_message or "")
    for text in texts:
        assert "4f9a" not in text and "1b==" not in text
