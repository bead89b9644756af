"""Security helpers: PII detection, bootstrap signatures, signed payloads, production checks.

One responsibility per group of functions:

- **PII detection** (PROTOCOL §9.4, extended): :func:`is_potential_pii_field` (by field name),
  :func:`find_pii` (names and values of a nested mapping), :func:`check_pii` /
  :class:`PiiChecker` (warn or raise ``SecurityError``), :func:`find_context_pii`.
- **Bootstrap signatures** (PROTOCOL §7): :func:`create_bootstrap_signature`,
  :func:`verify_bootstrap_signature` and :func:`apply_bootstrap_verification` (the one call a
  client makes at construction).
- **Signed payloads** (PROTOCOL §3.2 helper): :func:`sign_payload`, :func:`verify_signed_payload`.
- **Environment**: :func:`is_production_environment` (the PY100 env-var rule of PROTOCOL §1).

The HMAC and canonical-JSON primitives live in :mod:`flagkit.utils.signing` and are only
imported here. No function in this module logs or raises with a value it inspected: findings
name fields, never their contents, and API keys appear only as their 8-character key id.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
import time
from collections.abc import Collection, Iterator, Mapping, MutableSet
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from flagkit.errors import SecurityError
from flagkit.utils.signing import (
    MAX_SIGNATURE_AGE_MS,
    canonical_json,
    hmac_sha256_hex,
    key_id,
    sign_body,
    signature_matches,
)

if TYPE_CHECKING:
    # Imported lazily at run time: flagkit.types.config may itself import this module
    # (e.g. is_production_environment for validating local_port).
    from flagkit.types.config import (
        BootstrapConfig,
        BootstrapVerificationOptions,
        LoggerProtocol,
    )
    from flagkit.types.context import EvaluationContext

__all__ = [
    "PII_PATTERNS",
    "PRODUCTION_ENV_VARS",
    "AnyLogger",
    "PiiChecker",
    "apply_bootstrap_verification",
    "check_pii",
    "create_bootstrap_signature",
    "detect_pii_value",
    "find_context_pii",
    "find_pii",
    "is_potential_pii_field",
    "is_production_environment",
    "sign_payload",
    "verify_bootstrap_signature",
    "verify_signed_payload",
]

# A string alias: ``LoggerAdapter[...]`` is not subscriptable at runtime before Python 3.11.
AnyLogger: TypeAlias = "logging.Logger | logging.LoggerAdapter[Any] | LoggerProtocol"
"""A stdlib logger (or adapter) or any object with ``debug/info/warn/error(message)``."""

_log = logging.getLogger("flagkit.security")

# --------------------------------------------------------------------------------------------
# PII by field name (PROTOCOL §9.4)
# --------------------------------------------------------------------------------------------

PII_PATTERNS: Final[frozenset[str]] = frozenset(
    {
        "email", "phone", "telephone", "mobile", "ssn", "socialsecurity", "creditcard",
        "cardnumber", "cvv", "password", "passwd", "secret", "token", "apikey", "privatekey",
        "accesstoken", "refreshtoken", "authtoken", "address", "street", "zipcode",
        "postalcode", "dateofbirth", "dob", "birthdate", "passport", "driverlicense",
        "nationalid", "bankaccount", "routingnumber", "iban", "swift",
    }
)  # fmt: skip
"""The 32 normalised name patterns of PROTOCOL §9.4 (lowercase, no ``-``/``_``)."""


def _normalise_field_name(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def is_potential_pii_field(name: str) -> bool:
    """Whether a field *name* suggests personal data (PROTOCOL §9.4).

    The name is lower-cased and stripped of ``-`` and ``_``; it is PII when it *contains* any
    of :data:`PII_PATTERNS`. Substring matching is deliberate (it errs on the side of
    warning), so ``ip_address``, ``tokens_used`` and ``adobe_id`` match, ``userId`` does not.

    >>> is_potential_pii_field("Email_Address"), is_potential_pii_field("userId")
    (True, False)

    Pure function; thread-safe.
    """
    normalised = _normalise_field_name(name)
    return any(pattern in normalised for pattern in PII_PATTERNS)


# --------------------------------------------------------------------------------------------
# PII by value (our extension; strings only)
# --------------------------------------------------------------------------------------------

# An e-mail address anywhere in the text (a TLD of two or more letters is required).
_EMAIL_RE: Final = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}(?![\w-])"
)
# A run of 13..19 digits, optionally split by single spaces or dashes, not glued to other
# word characters or dashes (so UUID fragments and longer numbers do not match).
_CARD_RE: Final = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")
# Whole values shaped like phone numbers: international ("+31 6 1234 5678", "+1 (555)
# 123-4567"), with an area code in parentheses ("(555) 123-4567"), or 3+ groups of 2..4
# digits split by separators ("555-123-4567", "06 12 34 56 78").
_PHONE_INTL_RE: Final = re.compile(r"\+\d{1,4}(?:[ .-]?(?:\(\d{1,4}\)|\d{1,4})){1,7}")
_PHONE_AREA_RE: Final = re.compile(
    r"(?:\d{1,3}[ .-]?)?\(\d{1,4}\)[ .-]?\d{1,4}(?:[ .-]?\d{1,4}){1,5}"
)
_PHONE_GROUPED_RE: Final = re.compile(r"\d{2,4}(?:[ .-]\d{2,4}){2,6}")
_SEPARATOR_RE: Final = re.compile(r"[ .-]")
_DIGITS_RE: Final = re.compile(r"\d")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_network_matches(digits: str) -> bool:
    """Whether the issuer prefix and length are those of a major card network."""
    length = len(digits)
    p2, p3, p4 = int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4":  # Visa
        return length in (13, 16, 19)
    if 51 <= p2 <= 55 or 2221 <= p4 <= 2720:  # Mastercard
        return length == 16
    if p2 in (34, 37):  # American Express
        return length == 15
    if p4 == 6011 or 644 <= p3 <= 649 or p2 in (62, 65):  # Discover, UnionPay
        return 16 <= length <= 19
    if 3528 <= p4 <= 3589:  # JCB
        return 16 <= length <= 19
    if p2 in (36, 38, 39) or 300 <= p3 <= 305:  # Diners Club
        return 14 <= length <= 19
    if p2 == 50 or 56 <= p2 <= 69:  # Maestro
        return 13 <= length <= 19
    return False


def _contains_card_number(text: str) -> bool:
    for match in _CARD_RE.finditer(text):
        digits = match.group().replace(" ", "").replace("-", "")
        if _card_network_matches(digits) and _luhn_valid(digits):
            return True
    return False


def _is_ip_address(text: str) -> bool:
    if "." not in text and ":" not in text:
        return False
    candidate = text.split("%", 1)[0] if ":" in text else text  # IPv6 zone id
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        return False
    # "::" alone is syntactically an address but says nothing about anyone.
    return any(c.isalnum() for c in candidate)


def _is_phone_number(text: str) -> bool:
    digit_count = len(_DIGITS_RE.findall(text))
    if not 7 <= digit_count <= 15:
        return False
    if text.startswith("+"):
        return digit_count >= 8 and _PHONE_INTL_RE.fullmatch(text) is not None
    if "(" in text:
        return _PHONE_AREA_RE.fullmatch(text) is not None
    # Without "+" or "(area)": nine digits at least, in groups of 2..4, which rules out
    # dates (2023-11-14), versions, ISBNs and plain numeric ids (5551234567 is not reported).
    if digit_count < 9 or _PHONE_GROUPED_RE.fullmatch(text) is None:
        return False
    # "12 345 678 901" is a number with thousands separators, not a phone number.
    return not all(len(group) == 3 for group in _SEPARATOR_RE.split(text)[1:])


def detect_pii_value(value: str) -> str | None:
    """The kind of personal data ``value`` looks like, or ``None``.

    Kinds: ``"email"`` (an address anywhere in the text), ``"card"`` (13-19 digits, optionally
    grouped by spaces or dashes, anywhere in the text, with a major network's prefix and a
    valid Luhn check digit), ``"ip"`` (the whole value is an IPv4 or IPv6 address) and
    ``"phone"`` (the whole value is formatted like a phone number: ``+`` and 8-15 digits,
    an ``(area)`` group, or three or more groups of 2-4 digits with 9-15 digits in all).

    >>> detect_pii_value("mail bob@example.com"), detect_pii_value("order-12345")
    ('email', None)

    Bare digit strings such as ``"5551234567"`` are not reported as phone numbers, and numeric
    ids, millisecond timestamps, dates and UUIDs are not reported at all; the price is that
    unformatted national phone numbers go undetected. Pure function; thread-safe.
    """
    text = value.strip()
    if len(text) < 3:
        return None
    if "@" in text and _EMAIL_RE.search(text):
        return "email"
    if _is_ip_address(text):
        return "ip"
    if len(text) >= 13 and _contains_card_number(text):
        return "card"
    if _is_phone_number(text):
        return "phone"
    return None


# --------------------------------------------------------------------------------------------
# Walking nested data
# --------------------------------------------------------------------------------------------

_MAX_DEPTH: Final = 32
_REDACTED_KEY: Final = "[redacted-key]"


def _walk(
    value: object,
    path: str,
    allowed: frozenset[str],
    check_values: bool,
    depth: int,
    stack: set[int],
) -> Iterator[tuple[str, str]]:
    """Yield ``(path, kind)`` for every finding below ``value`` (``path`` names ``value``)."""
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, Mapping):
        if id(value) in stack:
            return
        stack.add(id(value))
        try:
            for raw_key, child in value.items():
                key = raw_key if isinstance(raw_key, str) else str(raw_key)
                key_kind = detect_pii_value(key) if check_values else None
                segment = _REDACTED_KEY if key_kind else key
                child_path = f"{path}.{segment}" if path else segment
                raw_path = f"{path}.{key}" if path else key
                if raw_path in allowed:
                    continue
                if key_kind:
                    yield child_path, f"key: {key_kind}"
                if is_potential_pii_field(key):
                    yield child_path, "name"
                yield from _walk(child, child_path, allowed, check_values, depth + 1, stack)
        finally:
            stack.discard(id(value))
    elif isinstance(value, (list, tuple)):
        if id(value) in stack:
            return
        stack.add(id(value))
        try:
            for index, child in enumerate(value):
                child_path = f"{path}[{index}]"
                if child_path in allowed:
                    continue
                yield from _walk(child, child_path, allowed, check_values, depth + 1, stack)
        finally:
            stack.discard(id(value))
    elif check_values and isinstance(value, str):
        kind = detect_pii_value(value)
        if kind:
            yield path, f"value: {kind}"


def find_pii(
    data: Mapping[str, Any], *, check_values: bool = True, allowed: Collection[str] = ()
) -> list[str]:
    """Every field of ``data`` that looks like personal data, as ``"path (kinds)"`` strings.

    >>> find_pii({"custom": {"email": "x"}, "contact": "+31 6 1234 5678", "plan": "pro"})
    ['custom.email (name)', 'contact (value: phone)']

    - Names are checked with :func:`is_potential_pii_field` at every level; nested mappings
      give dotted paths (``custom.email``).
    - Values are checked with :func:`detect_pii_value` when ``check_values``; strings only
      (numbers are never reported, so numeric ids and amounts cause no noise).
    - Lists and tuples are scanned too (going further than PROTOCOL §9.4): a list of
      e-mail addresses is as personal as one address. Elements get ``path[index]`` paths.
    - A mapping key that itself looks like an e-mail/phone/card/IP is reported with kind
      ``key: <kind>`` and shown as ``[redacted-key]``, so the finding never repeats it.
    - ``allowed`` paths (private attributes such as ``email`` or ``custom.email``) are
      skipped together with everything below them.

    A field with several findings appears once, its kinds joined: ``email (name, value:
    email)``. The result never contains a value. Pure function; thread-safe.
    """
    allowed_paths = frozenset(allowed)
    findings: dict[str, list[str]] = {}
    for path, kind in _walk(data, "", allowed_paths, check_values, 0, set()):
        kinds = findings.setdefault(path, [])
        if kind not in kinds:
            kinds.append(kind)
    return [f"{path} ({', '.join(kinds)})" for path, kinds in findings.items()]


def _context_data(context: EvaluationContext) -> dict[str, Any]:
    from flagkit.types.context import CONTEXT_FIELDS

    data: dict[str, Any] = {}
    for name in CONTEXT_FIELDS:
        value = getattr(context, name)
        if name != "anonymous" and value is not None:
            data[name] = value
    if context.custom:
        data["custom"] = context.custom
    return data


def find_context_pii(context: EvaluationContext, *, check_values: bool = True) -> list[str]:
    """The PII findings of an :class:`~flagkit.types.context.EvaluationContext`.

    Checks every set field by its Python name (``user_id``, ``email``, ``ip``, ...) and
    ``custom`` (``custom.<key>``); ``anonymous`` is ignored. The context's
    ``private_attributes`` are the allowed paths: marking ``email`` or ``custom.phone``
    private says "this is personal on purpose; keep it local", so it is not reported.

    >>> from flagkit.types.context import EvaluationContext
    >>> find_context_pii(EvaluationContext(user_id="u1", email="a@b.co"))
    ['email (name, value: email)']
    >>> find_context_pii(EvaluationContext(email="a@b.co", private_attributes=["email"]))
    []
    """
    return find_pii(
        _context_data(context), check_values=check_values, allowed=context.private_attributes
    )


def _emit(logger: AnyLogger | None, level: int, message: str) -> None:
    """Log through a stdlib logger or a ``LoggerProtocol`` object (``warn``, not ``warning``)."""
    if logger is None:
        _log.log(level, message)
    elif isinstance(logger, (logging.Logger, logging.LoggerAdapter)):
        logger.log(level, message)
    elif level >= logging.ERROR:
        logger.error(message)
    elif level >= logging.WARNING:
        logger.warn(message)
    elif level >= logging.INFO:
        logger.info(message)
    else:
        logger.debug(message)


_MAX_SEEN: Final = 1024


def _pii_error(data_type: str, findings: list[str]) -> SecurityError:
    return SecurityError(
        "SECURITY_PII_DETECTED",
        f"Potential PII in {data_type} data: {', '.join(findings)}. Remove these fields, list "
        f"them in private_attributes, or set strict_pii_mode=False.",
        details={"fields": list(findings), "data_type": data_type},
    )


def _warn_pii(logger: AnyLogger | None, data_type: str, findings: list[str]) -> None:
    _emit(
        logger,
        logging.WARNING,
        f"FlagKit: potential PII in {data_type} data: {', '.join(findings)}. Consider "
        f"removing these fields or listing them in private_attributes "
        f"(strict_pii_mode=True makes this an error).",
    )


def _claim(
    seen: MutableSet[tuple[str, frozenset[str]]], marker: tuple[str, frozenset[str]]
) -> bool:
    """Record ``marker``; False if it was already there. The set is bounded by clearing."""
    if marker in seen:
        return False
    if len(seen) >= _MAX_SEEN:
        seen.clear()
    seen.add(marker)
    return True


def check_pii(
    data: Mapping[str, Any],
    *,
    data_type: str,
    strict: bool,
    logger: AnyLogger | None,
    allowed: Collection[str] = (),
    check_values: bool = True,
    seen: MutableSet[tuple[str, frozenset[str]]] | None = None,
) -> list[str]:
    """Find PII in ``data``; raise in strict mode, else warn; return the findings.

    >>> check_pii({"plan": "pro"}, data_type="event", strict=True, logger=None)
    []

    ``data_type`` names the data in messages (``"context"``, ``"event"``). In strict mode a
    finding raises ``SecurityError("SECURITY_PII_DETECTED")`` whose message (and
    ``details["fields"]``) lists the fields, never their values. Otherwise one warning lists
    them; with a ``seen`` set the warning is logged once per distinct (data type, field set)
    — :class:`PiiChecker` keeps such a set for a client. Without ``seen`` every call with
    findings warns. See :func:`find_pii` for what is reported.

    Raises ``SecurityError`` (strict mode only). Thread-safe except for mutations of
    ``seen`` (use :class:`PiiChecker` from several threads).
    """
    findings = find_pii(data, check_values=check_values, allowed=allowed)
    if not findings:
        return findings
    if strict:
        raise _pii_error(data_type, findings)
    if seen is None or _claim(seen, (data_type, frozenset(findings))):
        _warn_pii(logger, data_type, findings)
    return findings


class PiiChecker:
    """A client's PII policy: strict or lenient, warning once per distinct field set.

    >>> checker = PiiChecker(strict=False, logger=logging.getLogger("flagkit"))
    >>> checker({"plan": "pro"}, "event")
    []

    Calling the instance has the ``pii_check(data, data_type)`` shape the event queue takes
    (it returns the findings, see :func:`find_pii`); :meth:`check_context` checks an
    :class:`~flagkit.types.context.EvaluationContext` with its private attributes allowed.

    Raises ``SecurityError("SECURITY_PII_DETECTED")`` when ``strict``. Thread-safe: the
    "already warned" set is guarded by a lock that is never held while logging.
    """

    def __init__(
        self, *, strict: bool, logger: AnyLogger | None, check_values: bool = True
    ) -> None:
        self.strict = strict
        self.check_values = check_values
        self._logger = logger
        self._lock = threading.Lock()
        self._seen: set[tuple[str, frozenset[str]]] = set()

    def __call__(
        self, data: Mapping[str, Any], data_type: str, allowed: Collection[str] = ()
    ) -> list[str]:
        """Check ``data``; raise (strict) or warn once per field set; return the findings."""
        findings = find_pii(data, check_values=self.check_values, allowed=allowed)
        if not findings:
            return findings
        if self.strict:
            raise _pii_error(data_type, findings)
        with self._lock:
            fresh = _claim(self._seen, (data_type, frozenset(findings)))
        if fresh:
            _warn_pii(self._logger, data_type, findings)
        return findings

    def check_context(self, context: EvaluationContext, data_type: str = "context") -> list[str]:
        """Check an evaluation context (see :func:`find_context_pii`) under this policy."""
        return self(_context_data(context), data_type, context.private_attributes)


# --------------------------------------------------------------------------------------------
# Bootstrap signatures (PROTOCOL §7)
# --------------------------------------------------------------------------------------------


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _require_api_key(api_key: object) -> str:
    if not isinstance(api_key, str) or not api_key:
        raise TypeError("api_key must be a non-empty string")
    return api_key


def create_bootstrap_signature(
    flags: dict[str, Any], api_key: str, timestamp: int | None = None
) -> BootstrapConfig:
    """Sign bootstrap flag values so a client can verify them (PROTOCOL §7.3).

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
    from flagkit.types.config import BootstrapConfig

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
    """Check a bootstrap's signature exactly as PROTOCOL §7.2; returns ``(ok, reason)``.

    >>> from flagkit.types.config import BootstrapVerificationOptions
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

    >>> from flagkit.types.config import BootstrapVerificationOptions
    >>> apply_bootstrap_verification({"a": True}, "sdk_k_12345678",
    ...                              BootstrapVerificationOptions(), None)
    {'a': True}

    - A plain mapping is never verified (PROTOCOL §7.1): its flags are returned.
    - A :class:`BootstrapConfig` that verifies (or is unsigned, or verification is
      disabled) returns its flags.
    - On failure, ``options.on_failure`` decides: ``"warn"`` logs a warning and returns the
      flags anyway; ``"ignore"`` logs at debug level and returns ``None`` (discard them);
      ``"error"`` raises.

    A copy of the flags is returned. Messages carry the reason and the key id, never the key.
    Raises ``SecurityError("SECURITY_BOOTSTRAP_VERIFICATION_FAILED")`` with ``"error"``.
    Thread-safe.
    """
    from flagkit.types.config import BootstrapConfig

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
        _emit(logger, logging.WARNING, f"FlagKit: {text}: using the bootstrap flags anyway")
        return dict(config.flags)
    _emit(logger, logging.DEBUG, f"FlagKit: {text}: bootstrap flags discarded")
    return None


# --------------------------------------------------------------------------------------------
# Signed payloads (PROTOCOL §3.2 helper)
# --------------------------------------------------------------------------------------------


def sign_payload(data: Any, api_key: str, timestamp: int | None = None) -> dict[str, Any]:
    """Wrap ``data`` with an HMAC signature: ``{data, signature, timestamp, key_id}``.

    The signature is HMAC-SHA256 over ``"{timestamp}.{canonical JSON of data}"`` with the
    API key; ``key_id`` is the key's first 8 characters (never the key).

    >>> signed = sign_payload({"a": 1}, "sdk_test_key_123456", timestamp=1)
    >>> sorted(signed), signed["key_id"]
    (['data', 'key_id', 'signature', 'timestamp'], 'sdk_test')

    Raises ``TypeError``/``ValueError`` for data JSON cannot hold. Thread-safe.
    """
    key = _require_api_key(api_key)
    ts = _now_ms() if timestamp is None else timestamp
    return {
        "data": data,
        "signature": sign_body(canonical_json(data), key, ts),
        "timestamp": ts,
        "key_id": key_id(key),
    }


def verify_signed_payload(
    signed: Mapping[str, Any],
    api_key: str,
    *,
    max_age_ms: int = MAX_SIGNATURE_AGE_MS,
    now_ms: int | None = None,
) -> bool:
    """Whether a :func:`sign_payload` result is authentic and at most ``max_age_ms`` old.

    A timestamp in the future, a missing field or a signature that does not match (compared
    in constant time) gives ``False``. Never raises; thread-safe.
    """
    signature = signed.get("signature")
    timestamp = signed.get("timestamp")
    if not isinstance(signature, str) or isinstance(timestamp, bool):
        return False
    if not isinstance(timestamp, int) or "data" not in signed:
        return False
    age = (_now_ms() if now_ms is None else now_ms) - timestamp
    if age < 0 or age > max_age_ms:
        return False
    try:
        expected = sign_body(canonical_json(signed["data"]), _require_api_key(api_key), timestamp)
    except (TypeError, ValueError):
        return False
    return signature_matches(expected, signature)


# --------------------------------------------------------------------------------------------
# Environment
# --------------------------------------------------------------------------------------------

PRODUCTION_ENV_VARS: Final = ("PYTHON_ENV", "NODE_ENV", "ENV", "ENVIRONMENT")
"""Environment variables that mark a production process when set to ``production``."""


def is_production_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the process looks like production (PROTOCOL §1, the PY100 rule).

    True when any of ``PYTHON_ENV``, ``NODE_ENV``, ``ENV`` or ``ENVIRONMENT`` equals
    ``production`` (case-insensitive, surrounding whitespace ignored). ``environ`` defaults
    to ``os.environ`` read at call time.

    >>> is_production_environment({"ENV": "Production"}), is_production_environment({})
    (True, False)
    """
    if environ is None:
        import os

        environ = os.environ
    return any(
        (environ.get(name) or "").strip().lower() == "production" for name in PRODUCTION_ENV_VARS
    )
