"""API keys never appear in option errors, reprs or the client logger, whatever they hold.

Keys are opaque after their ``sdk_``/``srv_``/``cli_`` prefix: ``.``, ``/``, ``+``, ``=`` or
quotes are valid, and a key with them must be hidden as well as one of the usual shape.
Where the key is known (the options, the client's logger) it is removed by value.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from flagkit.errors import ConfigurationError, FlagKitError
from flagkit.types.config import FlagKitOptions
from flagkit.utils.logger import build_logger
from tests.support.loggers import RecordingLogger

# Valid keys the usual-shape pattern (sdk_ + 8 of [A-Za-z0-9_-]) does not fully match.
ODD_KEYS = [
    "sdk_live.4f9a2c7e1b",
    "sdk_a/b/c/d/e/f/g/h",
    "srv_c2VjcmV0+key/with==",
    "cli_quote'and\"dq\\back",
    "sdk_a.b",
    "sdk_" + "x.y" * 4000,
]
# Invalid keys: each is rejected, and its message shows none of it.
BAD_KEYS = [
    "sdk_live.4f9a\n",  # trailing newline
    "sdk_live.caf\u00e9.key",  # non-ASCII
    "sdk_\u5bc6\u94a5\u5bc6\u94a5\u5bc6\u94a5",  # only non-ASCII after the prefix
    "pk_live.0123456789/abc",  # wrong prefix
    "sdk_tab\tinside.key",
    "token." + "z" * 5000,  # very long, wrong prefix
]


def _texts(error: FlagKitError) -> list[str]:
    return [str(error), repr(error), str(error.to_dict()), str(error.args)]


def _fragments(key: str) -> list[str]:
    """The key and its parts after the prefix that would give it away."""
    body = key[4:].strip()
    return [key, repr(key)[1:-1], body[:6], body[-6:], repr(body)[-7:-1]]


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_but_valid_keys_are_accepted(key: str) -> None:
    """Any printable ASCII after the prefix is a valid key (one rule: api_key_problem)."""
    assert FlagKitOptions(api_key=key).api_key == key
    assert FlagKitOptions(api_key="sdk_abc", secondary_api_key=key).secondary_api_key == key


def test_the_readme_placeholder_is_a_valid_key() -> None:
    """``sdk_...``, the README's placeholder, builds options (samples run as written)."""
    assert FlagKitOptions(api_key="sdk_...").api_key == "sdk_..."


@pytest.mark.parametrize("key", BAD_KEYS)
@pytest.mark.parametrize("option", ["api_key", "secondary_api_key"])
def test_a_rejected_key_shows_no_part_of_itself(key: str, option: str) -> None:
    """The message names the option and the problem, never a character of the key."""
    kwargs: dict[str, Any] = {"api_key": "sdk_abcdefgh1234"} | {option: key}
    with pytest.raises(ConfigurationError) as info:
        FlagKitOptions(**kwargs)
    assert info.value.option == option
    assert str(info.value).startswith(f"[INIT_INVALID_CONFIG] {option} ")
    for text in _texts(info.value):
        for fragment in _fragments(key):
            assert fragment not in text


@pytest.mark.parametrize("key", ODD_KEYS)
def test_a_key_pasted_into_another_option_is_redacted_by_value(key: str) -> None:
    """A mistake that echoes a value (here the key given as polling_interval) hides the key."""
    with pytest.raises(ConfigurationError) as info:
        FlagKitOptions(api_key=key, polling_interval=key)  # type: ignore[arg-type]
    assert info.value.option == "polling_interval"
    assert "[REDACTED]" in str(info.value)
    for text in _texts(info.value):
        for fragment in _fragments(key):
            assert fragment not in text


@pytest.mark.parametrize("key", ODD_KEYS)
def test_the_secondary_key_is_redacted_by_value_too(key: str) -> None:
    """The secondary key, echoed in another option's message, is hidden as well."""
    with pytest.raises(ConfigurationError) as info:
        FlagKitOptions(api_key="sdk_abcdefgh1234", secondary_api_key=key, cache_storage_key=[key])  # type: ignore[arg-type]
    for text in _texts(info.value):
        for fragment in _fragments(key):
            assert fragment not in text


@pytest.mark.parametrize("key", ODD_KEYS)
def test_from_mapping_redacts_the_key_from_conversion_errors(key: str) -> None:
    """Settings that put the key where a number belongs do not echo it."""
    with pytest.raises(ConfigurationError) as info:
        FlagKitOptions.from_mapping({"API_KEY": key, "TIMEOUT": key})
    assert info.value.option == "timeout"
    for text in _texts(info.value):
        for fragment in _fragments(key):
            assert fragment not in text


@pytest.mark.parametrize("key", ODD_KEYS)
def test_repr_hides_every_secret_field(key: str) -> None:
    """Neither key appears in the repr; long keys show their key id, short ones the prefix."""
    options = FlagKitOptions(api_key=key, secondary_api_key=key.replace("sdk_", "srv_", 1))
    text = repr(options)
    assert key not in text and key[4:] not in text
    expected = f"{key[:8]}..." if len(key) >= 16 else f"{key[:4]}..."
    assert f"api_key={expected!r}" in text


def test_repr_of_a_short_key_shows_only_its_prefix() -> None:
    """An 8-character key id of an 8-character key would be the key: only the prefix shows."""
    assert "api_key='sdk_...'" in repr(FlagKitOptions(api_key="sdk_a.b.c"))


@pytest.mark.parametrize("key", ODD_KEYS[:4])
def test_client_logger_removes_its_keys_by_value(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Messages, %-arguments and tracebacks reach handlers without the client's keys."""
    target = logging.getLogger("flagkit.test.secrets")
    log = build_logger(target, secrets=[key, None])
    with caplog.at_level(logging.DEBUG, logger="flagkit.test.secrets"):
        log.warning("server said: bad key %s", key)
        log.getChild("http").info(f"request with {key!r}")
        try:
            raise RuntimeError(f"boom {key}")
        except RuntimeError:
            log.exception("failed")
    assert len(caplog.records) == 3
    for fragment in _fragments(key):
        assert fragment not in caplog.text
    assert caplog.text.count("[REDACTED]") >= 3

    recorder = RecordingLogger()
    build_logger(recorder, secrets=[key]).error(f"key={key}")
    assert recorder.calls == [("error", "key=[REDACTED]")]


def test_a_rejected_odd_key_is_not_logged_by_a_real_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """End to end: a client whose key (with '.', '/', '+', '=') the local server rejects
    logs the failure without the key, at every level, in every logger."""
    from flagkit.errors import AuthenticationError
    from flagkit.testing import FlagKitServer
    from tests.support.clients import loopback_client

    key = "sdk_live.4f9a/2c7e+1b=="
    with FlagKitServer(flags={"dark-mode": True}) as server, caplog.at_level(logging.DEBUG):
        client = loopback_client(server.base_url, api_key=key, debug=True)
        with pytest.raises(AuthenticationError) as info:
            client.initialize()
        client.close(timeout=1)
    assert caplog.records  # the failure was logged
    texts = [caplog.text, *_texts(info.value)]
    for text in texts:
        for fragment in _fragments(key):
            assert fragment not in text
