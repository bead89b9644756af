"""Personal-data (PII) detection in contexts and event data.

- :func:`is_potential_pii_field`: by field name (``docs/protocol.md`` §9.4).
- :func:`detect_pii_value`: by the shape of a string value (e-mail, card, IP, phone).
- :func:`find_pii`: both, over a nested mapping, as ``"path (kinds)"`` findings.
- :class:`PiiChecker`: a client's policy, which raises in strict mode or warns once per
  distinct set of fields.

Findings name fields, never their contents: nothing here logs or raises with a value it
inspected.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import threading
from collections.abc import Collection, Iterator, Mapping, MutableSet
from dataclasses import fields
from typing import Any, ClassVar, Final, Protocol

from flagkit.errors import SecurityError
from flagkit.utils.logger import AnyLogger, log_to

__all__ = [
    "PII_PATTERNS",
    "PiiChecker",
    "detect_pii_value",
    "find_pii",
    "is_potential_pii_field",
]

_log = logging.getLogger("flagkit.security")

# --------------------------------------------------------------------------------------------
# PII by field name (docs/protocol.md §9.4)
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
"""The 32 normalised name patterns of ``docs/protocol.md`` §9.4 (lowercase, no ``-``/``_``)."""


def _normalise_field_name(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def is_potential_pii_field(name: str) -> bool:
    """Whether a field *name* suggests personal data (``docs/protocol.md`` §9.4).

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
    - Lists and tuples are scanned too (going further than ``docs/protocol.md`` §9.4): a list of
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


class ContextLike(Protocol):
    """What :meth:`PiiChecker.check_context` reads: a dataclass with ``private_attributes``.

    :class:`~flagkit.types.context.EvaluationContext` is one; this module does not import it
    (the types layer sits above the utilities).
    """

    __dataclass_fields__: ClassVar[dict[str, Any]]
    private_attributes: list[str]


# Fields of a context that are not attributes of the person it describes.
_NOT_CHECKED: Final = frozenset({"anonymous", "private_attributes"})


def _context_data(context: ContextLike) -> dict[str, Any]:
    """Every set field of ``context`` by its Python name, ``custom`` when non-empty."""
    data: dict[str, Any] = {}
    for f in fields(context):
        value = getattr(context, f.name)
        if f.name in _NOT_CHECKED or value is None or (f.name == "custom" and not value):
            continue
        data[f.name] = value
    return data


_MAX_SEEN: Final = 1024


def _pii_error(data_type: str, findings: list[str]) -> SecurityError:
    return SecurityError(
        "SECURITY_PII_DETECTED",
        f"Potential PII in {data_type} data: {', '.join(findings)}. Remove these fields, list "
        f"them in private_attributes, or set strict_pii_mode=False.",
        details={"fields": list(findings), "data_type": data_type},
    )


def _warn_pii(logger: AnyLogger | None, data_type: str, findings: list[str]) -> None:
    log_to(
        _log if logger is None else logger,
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

    def check_context(self, context: ContextLike, data_type: str = "context") -> list[str]:
        """Check an evaluation context under this policy.

        Every set field is checked by its Python name (``user_id``, ``email``, ``ip``, ...)
        and ``custom`` by ``custom.<key>``; ``anonymous`` is ignored. The context's
        ``private_attributes`` are the allowed paths: marking ``email`` or ``custom.phone``
        private says "this is personal on purpose; keep it local", so it is not reported.
        """
        return self(_context_data(context), data_type, context.private_attributes)
