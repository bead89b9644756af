"""Bootstrap flag values and their HMAC signatures (``docs/protocol.md`` §7).

:class:`BootstrapConfig` holds flag values with an optional signature;
:func:`create_bootstrap_signature` makes one, :func:`verify_bootstrap_signature` checks it,
and :func:`apply_bootstrap_verification` is the one call a client makes at construction to
decide which bootstrap flags to use. :class:`BootstrapVerificationOptions` is the option
group that says how strictly.

These live with the utilities (not with the other option types) because the signature
helpers need them and the utilities sit below the types layer; ``flagkit`` and
``flagkit.types`` re-export them. The HMAC and canonical-JSON primitives are in
:mod:`flagkit.utils.signing`. Messages carry the key id (8 characters), never the key.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from flagkit.errors import SecurityError
from flagkit.utils.logger import AnyLogger, log_to
from flagkit.utils.signing import (
    canonical_json,
    hmac_sha256_hex,
    key_id,
    sign_body,
    signature_matches,
)
from flagkit.utils.validators import is_number, require

__all__ = [
    "BootstrapConfig",
    "BootstrapVerificationOptions",
    "apply_bootstrap_verification",
    "create_bootstrap_signature",
    "verify_bootstrap_signature",
]

_log = logging.getLogger("flagkit.security")


@dataclass
class BootstrapConfig:
    """Bootstrap flag values with an optional HMAC signature (``docs/protocol.md`` §7.1).

    ``timestamp`` is epoch milliseconds; build a signed one with
    :func:`create_bootstrap_signature`.
    """

    flags: dict[str, Any]
    signature: str | None = None
    timestamp: int | None = None

    def __repr__(self) -> str:
        return (
            f"BootstrapConfig(flags=<{len(self.flags)} flags>, "
            f"signed={self.signature is not None}, timestamp={self.timestamp!r})"
        )


@dataclass(frozen=True, kw_only=True)
class BootstrapVerificationOptions:
    """How a signed bootstrap is checked (``docs/protocol.md`` §7.2).

    ``max_age`` is in milliseconds; ``on_failure`` is ``"warn"`` (use the flags, log),
    ``"error"`` (raise ``SecurityError``) or ``"ignore"`` (discard the flags quietly).
    """

    enabled: bool = True
    max_age: int = 86_400_000
    on_failure: Literal["warn", "error", "ignore"] = "warn"

    def __post_init__(self) -> None:
        require(
            isinstance(self.enabled, bool), "bootstrap_verification.enabled", self.enabled, "a bool"
        )
        require(
            is_number(self.max_age) and self.max_age > 0,
            "bootstrap_verification.max_age",
            self.max_age,
            "a positive number of milliseconds",
        )
        require(
            self.on_failure in ("warn", "error", "ignore"),
            "bootstrap_verification.on_failure",
            self.on_failure,
            'one of "warn", "error", "ignore"',
        )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _require_api_key(api_key: object) -> str:
    if not isinstance(api_key, str) or not api_key:
        raise TypeError("api_key must be a non-empty string")
    return api_key


def create_bootstrap_signature(
    flags: dict[str, Any], api_key: str, timestamp: int | None = None
) -> BootstrapConfig:
    """Sign bootstrap flag values so a client can verify them (``docs/protocol.md`` §7.3).

    >>> config = create_bootstrap_signature(
    ...     flags={"feature-a": True}, api_key="sdk_test_key_123456", timestamp=1700000000000)
    >>> config.signature[:16], config.timestamp
    ('858d042aee1985d2', 1700000000000)

    The signature is lowercase hex HMAC-SHA256, keyed with ``api_key`` (the *primary* key of
    the client that will verify it), over ``"{timestamp}.{canonical JSON of flags}"``;
    ``timestamp`` defaults to now in epoch milliseconds and is always included, so the
    signature expires after ``bootstrap_verification.max_age``. Run this where the key is
    already known (your server) — never ship the API key to a place that should only read
    flags.

    Raises ``TypeError`` if ``flags`` is not a dict, ``api_key`` is empty or a value cannot
    be JSON-encoded, ``ValueError`` for NaN/Infinity. Pure function; thread-safe.
    """
    if not isinstance(flags, dict):
        raise TypeError(f"flags must be a dict of flag key -> value, got {type(flags).__name__}")
    key = _require_api_key(api_key)
    if timestamp is None:
        timestamp = _now_ms()
    elif isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError(f"timestamp must be epoch milliseconds (int), got {timestamp!r}")
    signature = sign_body(canonical_json(flags), key, timestamp)
    return BootstrapConfig(flags=dict(flags), signature=signature, timestamp=timestamp)


def verify_bootstrap_signature(
    config: BootstrapConfig,
    api_key: str,
    options: BootstrapVerificationOptions,
    *,
    now_ms: int | None = None,
) -> tuple[bool, str]:
    """Check a bootstrap's signature exactly as ``docs/protocol.md`` §7.2; returns ``(ok, reason)``.

    >>> cfg = create_bootstrap_signature({"a": 1}, "sdk_test_key_123456")
    >>> verify_bootstrap_signature(cfg, "sdk_test_key_123456", BootstrapVerificationOptions())
    (True, 'valid')

    Reasons: ``"valid"``; ``"unsigned"`` (no signature: nothing to verify, accepted as §7.2
    says); ``"disabled"`` (``options.enabled`` is false); and the failures ``"future"``
    (timestamp after ``now_ms``, no skew allowance), ``"expired"`` (older than
    ``options.max_age`` ms), ``"mismatch"`` (wrong key, altered flags or timestamp, forged
    signature) and ``"malformed"`` (signature/timestamp/flags of the wrong type, or flags
    that cannot be canonicalised). Without a timestamp the message is the canonical JSON
    alone. The comparison is constant-time and case-sensitive.

    Never raises; pure apart from reading the clock; thread-safe.
    """
    signature = config.signature
    if signature is None:
        return True, "unsigned"
    if not options.enabled:
        return True, "disabled"
    timestamp = config.timestamp
    if not isinstance(signature, str) or not isinstance(config.flags, dict):
        return False, "malformed"
    if timestamp is not None and (isinstance(timestamp, bool) or not isinstance(timestamp, int)):
        return False, "malformed"
    if timestamp is not None:
        age = (_now_ms() if now_ms is None else now_ms) - timestamp
        if age < 0:
            return False, "future"
        if age > options.max_age:
            return False, "expired"
    try:
        canonical = canonical_json(config.flags)
    except (TypeError, ValueError):
        return False, "malformed"
    message = canonical if timestamp is None else f"{timestamp}.{canonical}"
    expected = hmac_sha256_hex(_require_api_key(api_key), message)
    if signature_matches(expected, signature):
        return True, "valid"
    return False, "mismatch"


def apply_bootstrap_verification(
    config: BootstrapConfig | Mapping[str, Any],
    api_key: str,
    options: BootstrapVerificationOptions,
    logger: AnyLogger | None,
    *,
    now_ms: int | None = None,
) -> dict[str, Any] | None:
    """The bootstrap flags a client should use, after verification and ``on_failure``.

    >>> apply_bootstrap_verification({"a": True}, "sdk_k_12345678",
    ...                              BootstrapVerificationOptions(), None)
    {'a': True}

    - A plain mapping is never verified (``docs/protocol.md`` §7.1): its flags are returned.
    - A :class:`BootstrapConfig` that verifies (or is unsigned, or verification is
      disabled) returns its flags.
    - On failure, ``options.on_failure`` decides: ``"warn"`` logs a warning and returns the
      flags anyway; ``"ignore"`` logs at debug level and returns ``None`` (discard them);
      ``"error"`` raises.

    A copy of the flags is returned. Messages carry the reason and the key id, never the key.
    Raises ``SecurityError("SECURITY_BOOTSTRAP_VERIFICATION_FAILED")`` with ``"error"``.
    Thread-safe.
    """
    if not isinstance(config, BootstrapConfig):
        return dict(config)
    ok, reason = verify_bootstrap_signature(config, api_key, options, now_ms=now_ms)
    if ok:
        return dict(config.flags)
    text = (
        f"Bootstrap signature verification failed ({reason}) for key {key_id(api_key)}; "
        f"bootstrap_verification.on_failure={options.on_failure!r}"
    )
    if options.on_failure == "error":
        raise SecurityError(
            "SECURITY_BOOTSTRAP_VERIFICATION_FAILED", text, details={"reason": reason}
        )
    if options.on_failure == "warn":
        log_to(
            _log if logger is None else logger,
            logging.WARNING,
            f"FlagKit: {text}: using the bootstrap flags anyway",
        )
        return dict(config.flags)
    log_to(
        _log if logger is None else logger,
        logging.DEBUG,
        f"FlagKit: {text}: bootstrap flags discarded",
    )
    return None
