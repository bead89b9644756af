"""PII detection by field name (docs/protocol.md §9.4) and by value, strict and lenient."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from flagkit.errors import SecurityError
from flagkit.types.context import EvaluationContext
from flagkit.utils.pii import (
    PII_PATTERNS,
    PiiChecker,
    detect_pii_value,
    find_pii,
    is_potential_pii_field,
)
from tests.support.loggers import RecordingLogger

CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"
PHONE = "+31 6 1234 5678"


def test_pattern_set_is_the_published_one() -> None:
    """The name patterns are the 32 normalised patterns of §9.4."""
    assert len(PII_PATTERNS) == 32
    assert {"email", "ssn", "apikey", "dob", "swift", "iban"} <= PII_PATTERNS


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("ip_address", True),  # §18: substring rule
        ("tokens_used", True),
        ("adobe_id", True),
        ("userId", False),
        ("Email", True),
        ("user-email", True),
        ("CREDIT_CARD", True),
        ("api-Key", True),
        ("date_of_birth", True),
        ("plan", False),
        ("country", False),
        ("amount", False),
    ],
)
def test_is_potential_pii_field(name: str, expected: bool) -> None:
    """Names are lower-cased, stripped of - and _, then matched by substring."""
    assert is_potential_pii_field(name) is expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (EMAIL, "email"),
        ("reach me at bob+tag@mail.example.co.uk tonight", "email"),
        ("4111111111111111", "card"),
        (CARD, "card"),
        ("4111-1111-1111-1111", "card"),
        ("378282246310005", "card"),  # Amex, 15 digits
        ("5555555555554444", "card"),  # Mastercard
        ("paid with 4111 1111 1111 1111 yesterday", "card"),
        ("10.0.0.1", "ip"),
        ("2001:db8::1", "ip"),
        ("fe80::1%eth0", "ip"),
        (PHONE, "phone"),
        ("+31612345678", "phone"),
        ("+1 (555) 123-4567", "phone"),
        ("(555) 123-4567", "phone"),
        ("555-123-4567", "phone"),
        ("020 7946 0958", "phone"),
    ],
)
def test_values_that_are_pii(value: str, kind: str) -> None:
    """E-mails, Luhn-valid card numbers, IP addresses and formatted phones are detected."""
    assert detect_pii_value(value) == kind


@pytest.mark.parametrize(
    "value",
    [
        "4111111111111112",  # fails the Luhn check
        "1234567890123456",  # no card network starts with 1
        "1700000000000",  # a millisecond timestamp
        "00000000-0000-4000-8000-000000000000",  # UUID of digits only
        "550e8400-e29b-41d4-a716-446655440000",
        "5551234567",  # bare digits: an id as likely as a phone
        "2023-11-14",
        "14.11.2023",
        "2023-11-14T22:13:20.000000+00:00",
        "12:30:45",
        "12 345 678 901",  # thousands separators
        "978-3-16-148410-0",  # ISBN
        "1.2.3",
        "order-12345",
        "99.95",
        "+100",
        "user@localhost",
        "::",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
        "sdk_abcdefgh",
        "",
    ],
)
def test_ordinary_values_are_not_pii(value: str) -> None:
    """Ids, timestamps, dates, versions, amounts and UUIDs are not reported."""
    assert detect_pii_value(value) is None


def test_find_pii_reports_dotted_paths_and_kinds() -> None:
    """Nested names get dotted paths; a field hit by name and value is listed once."""
    data = {
        "plan": "pro",
        "email": EMAIL,
        "custom": {"home_address": "1 Main St", "contact": PHONE, "level": 3},
        "count": 4111111111111111,  # numbers are never checked as values
    }
    assert find_pii(data) == [
        "email (name, value: email)",
        "custom.home_address (name)",
        "custom.contact (value: phone)",
    ]


def test_find_pii_names_only() -> None:
    """check_values=False keeps the published name-only behaviour."""
    data = {"contact": EMAIL, "custom": {"secret_code": "x"}}
    assert find_pii(data, check_values=False) == ["custom.secret_code (name)"]


def test_lists_are_scanned_with_indexes() -> None:
    """Strings and mappings inside lists are checked, with path[index] paths."""
    data = {"recipients": ["ok", EMAIL], "rows": [{"phone_number": "x"}, {"ip": "10.0.0.9"}]}
    assert find_pii(data) == [
        "recipients[1] (value: email)",
        "rows[0].phone_number (name)",
        "rows[1].ip (value: ip)",
    ]


def test_allowed_paths_and_their_children_are_skipped() -> None:
    """An allowed path (a private attribute) hides the field and everything below it."""
    data = {"email": EMAIL, "custom": {"email": EMAIL, "tags": [EMAIL]}, "mobile": "x"}
    assert find_pii(data, allowed=["email", "custom.email", "custom.tags"]) == ["mobile (name)"]
    assert find_pii(data, allowed=["custom"]) == [
        "email (name, value: email)",
        "mobile (name)",
    ]


def test_a_key_that_is_pii_is_reported_without_repeating_it() -> None:
    """A mapping keyed by e-mail addresses is reported, and the address is not echoed."""
    findings = find_pii({"scores": {EMAIL: 10}})
    assert findings == ["scores.[redacted-key] (key: email)"]
    assert EMAIL not in " ".join(findings)


def test_cycles_and_deep_nesting_do_not_crash() -> None:
    """Self-referencing or very deep data is walked without recursion errors."""
    data: dict[str, Any] = {"email": "x"}
    data["self"] = data
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(500):
        node["n"] = {}
        node = node["n"]
    node["email"] = EMAIL
    assert find_pii(data) == ["email (name)"]
    assert find_pii(deep) == []  # beyond the depth limit: not walked


def test_strict_raises_naming_fields_but_not_values() -> None:
    """Strict mode raises SECURITY_PII_DETECTED; message and details omit the values."""
    data = {"contact": EMAIL, "custom": {"card_number": CARD}, "plan": "pro"}
    with pytest.raises(SecurityError) as info:
        PiiChecker(strict=True, logger=None)(data, "event")
    err = info.value
    assert err.code == "SECURITY_PII_DETECTED" and err.numeric_code == 1701
    assert "contact (value: email)" in err.message and "custom.card_number" in err.message
    assert err.details == {
        "fields": ["contact (value: email)", "custom.card_number (name, value: card)"],
        "data_type": "event",
    }
    for text in (str(err), repr(err), str(err.to_dict())):
        assert EMAIL not in text and "4111" not in text


def test_strict_passes_clean_data_and_allowed_fields() -> None:
    """Clean data, or PII only in allowed paths, does not raise in strict mode."""
    checker = PiiChecker(strict=True, logger=None)
    assert checker({"plan": "pro"}, "event") == []
    assert checker({"email": EMAIL}, "context", allowed=["email"]) == []


def test_lenient_warns_without_values(caplog: pytest.LogCaptureFixture) -> None:
    """Lenient mode returns the findings and logs one warning naming fields, not values."""
    logger = logging.getLogger("flagkit.test.pii")
    with caplog.at_level(logging.WARNING, logger="flagkit.test.pii"):
        found = PiiChecker(strict=False, logger=logger)({"contact": EMAIL}, "event")
    assert found == ["contact (value: email)"]
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "contact (value: email)" in caplog.text and EMAIL not in caplog.text


def test_lenient_checker_warns_once_per_field_set(caplog: pytest.LogCaptureFixture) -> None:
    """A repeated (data type, field set) is not logged again; a new one is."""
    checker = PiiChecker(strict=False, logger=logging.getLogger("flagkit.test.pii"))
    with caplog.at_level(logging.WARNING, logger="flagkit.test.pii"):
        for _ in range(3):
            checker({"email": "x"}, "event")
        checker({"phone": "x"}, "event")
        checker({"email": "x"}, "context")
    assert len(caplog.records) == 3


def test_lenient_checker_without_logger_uses_the_flagkit_security_logger(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """logger=None sends the warning to the stdlib logger flagkit.security."""
    with caplog.at_level(logging.WARNING, logger="flagkit.security"):
        PiiChecker(strict=False, logger=None)({"ssn": "x"}, "event")
    assert [r.name for r in caplog.records] == ["flagkit.security"]


def test_custom_logger_protocol_is_supported() -> None:
    """A LoggerProtocol object receives the warning through its warn() method."""
    logger = RecordingLogger()
    PiiChecker(strict=False, logger=logger)({"ssn": "x"}, "event")
    assert len(logger.calls) == 1 and logger.calls[0][0] == "warn"
    assert "ssn (name)" in logger.calls[0][1]


def test_checker_warns_once_across_threads() -> None:
    """PiiChecker logs a given field set once even when many threads report it at once."""
    logger = RecordingLogger()
    checker = PiiChecker(strict=False, logger=logger)
    barrier = threading.Barrier(8)

    def report() -> None:
        barrier.wait()
        for _ in range(50):
            checker({"email": EMAIL}, "event")

    threads = [threading.Thread(target=report) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(logger.calls) == 1
    assert EMAIL not in logger.calls[0][1]


def test_strict_checker_raises_every_time() -> None:
    """A strict PiiChecker raises on each offending call, not just the first."""
    checker = PiiChecker(strict=True, logger=None)
    for _ in range(2):
        with pytest.raises(SecurityError):
            checker({"card_number": "x"}, "event")
    assert checker({"plan": "pro"}, "event") == []


def test_context_fields_checked_and_private_attributes_allowed() -> None:
    """A context's email/ip and custom data are checked; private attributes are exempt."""
    ctx = EvaluationContext(
        user_id="user-1", email=EMAIL, ip="10.0.0.1", country="NL", anonymous=False,
        custom={"plan": "pro", "phone": PHONE},
    )  # fmt: skip
    with pytest.raises(SecurityError) as info:
        PiiChecker(strict=True, logger=None).check_context(ctx)
    assert info.value.details is not None
    assert info.value.details["fields"] == [
        "email (name, value: email)",
        "ip (value: ip)",
        "custom.phone (name, value: phone)",
    ]
    private = EvaluationContext(
        user_id="user-1", email=EMAIL, ip="10.0.0.1", custom={"phone": PHONE},
        private_attributes=["email", "ip", "custom.phone"],
    )  # fmt: skip
    assert PiiChecker(strict=True, logger=None).check_context(private) == []


def test_user_id_that_is_an_email_is_reported() -> None:
    """A user id holding an e-mail address is PII unless marked private."""
    checker = PiiChecker(strict=False, logger=None)
    assert checker.check_context(EvaluationContext(user_id=EMAIL)) == ["user_id (value: email)"]


def test_checker_check_context_strict_and_private() -> None:
    """PiiChecker.check_context raises in strict mode unless the field is private."""
    checker = PiiChecker(strict=True, logger=None)
    with pytest.raises(SecurityError, match="email"):
        checker.check_context(EvaluationContext(user_id="u", email=EMAIL))
    ok = EvaluationContext(user_id="u", email=EMAIL, private_attributes=["email"])
    assert checker.check_context(ok) == []
