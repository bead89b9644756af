"""Bootstrap signatures (docs/protocol.md §7) from an attacker's point of view, and the
production-environment rule (§1)."""

from __future__ import annotations

import logging
import secrets
from typing import Any

import pytest

from flagkit.errors import SecurityError
from flagkit.types.config import BootstrapConfig, BootstrapVerificationOptions
from flagkit.utils.security import (
    apply_bootstrap_verification,
    create_bootstrap_signature,
    is_production_environment,
    verify_bootstrap_signature,
)
from tests.support.loggers import RecordingLogger

API_KEY = "sdk_test_key_123456"
OTHER_KEY = "sdk_other_key_987654"
TS = 1700000000000
DAY_MS = 86_400_000
FLAGS = {"feature-b": "value", "feature-a": True, "limits": {"max": 10, "ratio": 0.5}}
VECTOR_FLAGS = {**FLAGS, "list": [3, 1, 2]}
SIG_WITH_TS = "605f0fbefe9bd7963a806d62f1ec74e3c2db7783302b04576157edccfd7973c0"
SIG_NO_TS = "76bd435a0d25cbd84323a362a527470c4c8df2496e0a897e47fa7ea30738bac1"
DEFAULTS = BootstrapVerificationOptions()
LOGGER = "flagkit.test.bootstrap"


def test_create_matches_the_vector() -> None:
    """create_bootstrap_signature gives the §18 signature for the §18 flags and timestamp."""
    config = create_bootstrap_signature(flags=VECTOR_FLAGS, api_key=API_KEY, timestamp=TS)
    assert isinstance(config, BootstrapConfig)
    assert (config.signature, config.timestamp) == (SIG_WITH_TS, TS)
    assert config.flags == VECTOR_FLAGS and config.flags is not VECTOR_FLAGS


def test_create_defaults_to_now_and_round_trips() -> None:
    """Without a timestamp the current time is signed, and verification accepts it."""
    config = create_bootstrap_signature(flags=FLAGS, api_key=API_KEY)
    assert config.timestamp is not None
    assert verify_bootstrap_signature(config, API_KEY, DEFAULTS) == (True, "valid")


def test_verify_accepts_both_vectors() -> None:
    """The §18 signatures verify: with the timestamp, and in the no-timestamp form."""
    with_ts = BootstrapConfig(flags=VECTOR_FLAGS, signature=SIG_WITH_TS, timestamp=TS)
    assert verify_bootstrap_signature(with_ts, API_KEY, DEFAULTS, now_ms=TS + 1000) == (
        True,
        "valid",
    )
    without = BootstrapConfig(flags=VECTOR_FLAGS, signature=SIG_NO_TS)
    assert verify_bootstrap_signature(without, API_KEY, DEFAULTS) == (True, "valid")


def test_create_rejects_bad_input() -> None:
    """Non-dict flags, an empty key, a non-int timestamp or NaN are refused."""
    with pytest.raises(TypeError):
        create_bootstrap_signature(flags=[("a", 1)], api_key=API_KEY)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        create_bootstrap_signature(flags=FLAGS, api_key="")
    with pytest.raises(TypeError):
        create_bootstrap_signature(flags=FLAGS, api_key=API_KEY, timestamp="1")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        create_bootstrap_signature(flags={"x": float("nan")}, api_key=API_KEY)


# --- attacks --------------------------------------------------------------------------------


def _forged() -> BootstrapConfig:
    return BootstrapConfig(flags=FLAGS, signature=secrets.token_hex(32), timestamp=TS)


def _for_other_flags() -> BootstrapConfig:
    """A genuine signature lifted from other flags and pasted onto the attacker's flags."""
    genuine = create_bootstrap_signature(flags={"admin": False}, api_key=API_KEY, timestamp=TS)
    return BootstrapConfig(flags={"admin": True}, signature=genuine.signature, timestamp=TS)


def _altered_timestamp() -> BootstrapConfig:
    """A genuine old signature with its timestamp moved forward to dodge expiry."""
    genuine = create_bootstrap_signature(flags=FLAGS, api_key=API_KEY, timestamp=TS - 2 * DAY_MS)
    return BootstrapConfig(flags=FLAGS, signature=genuine.signature, timestamp=TS)


def _expired() -> BootstrapConfig:
    return create_bootstrap_signature(flags=FLAGS, api_key=API_KEY, timestamp=TS - DAY_MS - 1)


def _future() -> BootstrapConfig:
    return create_bootstrap_signature(flags=FLAGS, api_key=API_KEY, timestamp=TS + 1)


def _wrong_key() -> BootstrapConfig:
    return create_bootstrap_signature(flags=FLAGS, api_key=OTHER_KEY, timestamp=TS)


def _uppercase() -> BootstrapConfig:
    genuine = create_bootstrap_signature(flags=FLAGS, api_key=API_KEY, timestamp=TS)
    assert genuine.signature is not None
    return BootstrapConfig(flags=FLAGS, signature=genuine.signature.upper(), timestamp=TS)


def _timestamp_dropped() -> BootstrapConfig:
    """A signed-with-timestamp config stripped of its timestamp (to escape max_age)."""
    genuine = create_bootstrap_signature(flags=FLAGS, api_key=API_KEY, timestamp=TS)
    return BootstrapConfig(flags=FLAGS, signature=genuine.signature, timestamp=None)


def _malformed() -> BootstrapConfig:
    return BootstrapConfig(flags=FLAGS, signature=12345, timestamp=TS)  # type: ignore[arg-type]


ATTACKS = {
    "forged": (_forged, "mismatch"),
    "signature-for-other-flags": (_for_other_flags, "mismatch"),
    "timestamp-altered": (_altered_timestamp, "mismatch"),
    "timestamp-dropped": (_timestamp_dropped, "mismatch"),
    "expired": (_expired, "expired"),
    "future-dated": (_future, "future"),
    "wrong-key": (_wrong_key, "mismatch"),
    "uppercase-hex": (_uppercase, "mismatch"),
    "malformed": (_malformed, "malformed"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_verify_rejects_attack_with_reason(attack: str) -> None:
    """Each tampering attempt fails verification with the reason that explains it."""
    build, reason = ATTACKS[attack]
    assert verify_bootstrap_signature(build(), API_KEY, DEFAULTS, now_ms=TS) == (False, reason)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_on_failure_error_raises(attack: str) -> None:
    """on_failure="error": the attack raises SECURITY_BOOTSTRAP_VERIFICATION_FAILED."""
    build, reason = ATTACKS[attack]
    options = BootstrapVerificationOptions(on_failure="error")
    with pytest.raises(SecurityError) as info:
        apply_bootstrap_verification(build(), API_KEY, options, None, now_ms=TS)
    err = info.value
    assert err.code == "SECURITY_BOOTSTRAP_VERIFICATION_FAILED" and not err.recoverable
    assert err.details == {"reason": reason}
    assert reason in err.message and API_KEY not in str(err)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_on_failure_warn_uses_flags_and_warns(
    attack: str, caplog: pytest.LogCaptureFixture
) -> None:
    """on_failure="warn": the flags are still used and one warning names the reason."""
    build, reason = ATTACKS[attack]
    options = BootstrapVerificationOptions(on_failure="warn")
    config = build()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        flags = apply_bootstrap_verification(
            config, API_KEY, options, logging.getLogger(LOGGER), now_ms=TS
        )
    assert flags == config.flags
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert reason in caplog.text and API_KEY not in caplog.text and "sdk_test" in caplog.text


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_on_failure_ignore_discards_flags_quietly(
    attack: str, caplog: pytest.LogCaptureFixture
) -> None:
    """on_failure="ignore": the flags are discarded (None) with a debug line only."""
    build, _ = ATTACKS[attack]
    options = BootstrapVerificationOptions(on_failure="ignore")
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        flags = apply_bootstrap_verification(
            build(), API_KEY, options, logging.getLogger(LOGGER), now_ms=TS
        )
    assert flags is None
    assert [r.levelno for r in caplog.records] == [logging.DEBUG]


@pytest.mark.parametrize("mode", ["warn", "error", "ignore"])
def test_genuine_bootstrap_passes_in_every_mode(
    mode: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A valid signature yields a copy of the flags and logs nothing, whatever on_failure."""
    config = create_bootstrap_signature(flags=FLAGS, api_key=API_KEY, timestamp=TS)
    options = BootstrapVerificationOptions(on_failure=mode)
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        flags = apply_bootstrap_verification(
            config, API_KEY, options, logging.getLogger(LOGGER), now_ms=TS + DAY_MS
        )
    assert flags == FLAGS and flags is not config.flags
    assert caplog.records == []


def test_max_age_boundary() -> None:
    """Exactly max_age old is accepted; one millisecond more is expired."""
    config = create_bootstrap_signature(flags=FLAGS, api_key=API_KEY, timestamp=TS)
    options = BootstrapVerificationOptions(max_age=1000)
    assert verify_bootstrap_signature(config, API_KEY, options, now_ms=TS + 1000)[0]
    assert verify_bootstrap_signature(config, API_KEY, options, now_ms=TS + 1001) == (
        False,
        "expired",
    )
    assert verify_bootstrap_signature(config, API_KEY, options, now_ms=TS) == (True, "valid")


def test_plain_mapping_and_unsigned_config_are_not_verified() -> None:
    """§7.2: a plain dict or a config without signature is used as is (documented limit)."""
    options = BootstrapVerificationOptions(on_failure="error")
    assert apply_bootstrap_verification({"a": 1}, API_KEY, options, None) == {"a": 1}
    unsigned = BootstrapConfig(flags={"a": 1})
    assert verify_bootstrap_signature(unsigned, API_KEY, options) == (True, "unsigned")
    assert apply_bootstrap_verification(unsigned, API_KEY, options, None) == {"a": 1}


def test_disabled_verification_accepts_anything() -> None:
    """enabled=False skips the check, even for a forged signature."""
    options = BootstrapVerificationOptions(enabled=False, on_failure="error")
    assert verify_bootstrap_signature(_forged(), API_KEY, options) == (True, "disabled")
    assert apply_bootstrap_verification(_forged(), API_KEY, options, None) == FLAGS


def test_warn_through_a_protocol_logger() -> None:
    """A custom logger with warn()/debug() receives the failure message."""
    recorder = RecordingLogger()
    apply_bootstrap_verification(_expired(), API_KEY, DEFAULTS, recorder, now_ms=TS)
    assert len(recorder.calls) == 1
    level, message = recorder.calls[0]
    assert level == "warn" and "expired" in message


# --- production detection -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"PYTHON_ENV": "production"}, True),
        ({"NODE_ENV": "Production"}, True),
        ({"ENV": " PRODUCTION "}, True),
        ({"ENVIRONMENT": "production"}, True),
        ({"ENV": "staging", "ENVIRONMENT": "development"}, False),
        ({"APP_ENV": "production"}, False),  # not one of the four variables
        ({"ENV": "prod"}, False),
    ],
)
def test_is_production_environment(environ: dict[str, str], expected: bool) -> None:
    """Production means one of the four §1 variables equals "production", any case."""
    assert is_production_environment(environ) is expected


def test_is_production_environment_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an argument the real environment is read at call time."""
    for name in ("PYTHON_ENV", "NODE_ENV", "ENV", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    assert not is_production_environment()
    monkeypatch.setenv("NODE_ENV", "production")
    assert is_production_environment()
