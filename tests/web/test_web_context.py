"""flagkit.web.context: the request-context rules shared by the web adapters."""

from __future__ import annotations

from flagkit import EvaluationContext
from flagkit.web.context import (
    ANONYMOUS_KEY_LENGTH,
    PRIVATE_ATTRIBUTES,
    AnonymousKey,
    client_ip,
    country_code,
    first_language_tag,
    is_anonymous_key,
    user_part,
    with_request_attributes,
)

GOOD_KEY = "0123456789abcdef0123456789ABCDEF"


def test_anonymous_keys_are_32_hex_characters() -> None:
    """Only a 32-character hex string counts as an anonymous key."""
    assert is_anonymous_key(GOOD_KEY)
    assert not is_anonymous_key(GOOD_KEY[:-1])
    assert not is_anonymous_key("g" * ANONYMOUS_KEY_LENGTH)
    assert not is_anonymous_key(None)
    assert not is_anonymous_key(b"0" * ANONYMOUS_KEY_LENGTH)


def test_anonymous_key_keeps_a_valid_one_and_replaces_anything_else() -> None:
    """A valid key read back is kept (not new); a missing or forged one gets a fresh key."""
    kept = AnonymousKey(GOOD_KEY)
    assert (kept.value, kept.is_new) == (GOOD_KEY, False)
    fresh = [AnonymousKey(bad) for bad in (None, "", "nonsense", 42)]
    assert all(key.is_new and is_anonymous_key(key.value) for key in fresh)
    assert len({key.value for key in fresh}) == len(fresh)


def test_first_language_tag() -> None:
    """The first ``Accept-Language`` tag, without quality; nothing for empty or ``*``."""
    assert first_language_tag("nl-NL,nl;q=0.9,en;q=0.8") == "nl-NL"
    assert first_language_tag("de;q=0.5") == "de"
    assert first_language_tag("*") is None
    assert first_language_tag("") is None
    assert first_language_tag(None) is None


def test_client_ip_prefers_the_first_forwarded_address() -> None:
    """The first address of a (trusted) forwarded header wins; else the peer address."""
    assert client_ip("10.0.0.1", "203.0.113.7, 10.0.0.1") == "203.0.113.7"
    assert client_ip("10.0.0.1", " , 10.0.0.2") == "10.0.0.1"
    assert client_ip("10.0.0.1") == "10.0.0.1"
    assert client_ip(None) is None
    assert client_ip("", "") is None


def test_country_code_is_upper_cased_or_none() -> None:
    """A country header is stripped and upper-cased; empty means none."""
    assert country_code(" nl ") == "NL"
    assert country_code("   ") is None
    assert country_code("") is None
    assert country_code(None) is None


def test_user_part_keeps_email_and_name_private() -> None:
    """The user part has a string id and private e-mail and name."""
    user = user_part(42, email="ada@example.com", name="Ada", anonymous=False, custom={"a": 1})
    assert (user.user_id, user.email, user.name, user.anonymous) == (
        "42",
        "ada@example.com",
        "Ada",
        False,
    )
    assert user.custom == {"a": 1}
    assert user.private_attributes == ["email", "name"]
    assert user_part(None, email=None, name=None, anonymous=True).user_id is None


def test_request_attributes_are_added_to_a_copy_of_the_user_part() -> None:
    """Language, country, IP and user agent join the user part; the input is unchanged and
    private attributes are listed once."""
    user = EvaluationContext(
        user_id="42", country="BE", custom={"plan": "pro"}, private_attributes=["email", "ssn"]
    )
    context = with_request_attributes(
        user,
        anonymous_key=GOOD_KEY,
        language="nl-NL",
        country="NL",
        ip="203.0.113.7",
        user_agent="Mozilla/5.0",
    )
    assert context.user_id == "42"
    assert context.user_key is None  # a known user keeps no anonymous key
    assert (context.country, context.ip, context.user_agent) == ("NL", "203.0.113.7", "Mozilla/5.0")
    assert context.custom == {"plan": "pro", "language": "nl-NL"}
    assert context.private_attributes == ["email", "ssn", *PRIVATE_ATTRIBUTES[1:]]
    assert user.custom == {"plan": "pro"} and user.ip is None


def test_anonymous_visitors_get_the_key_and_keep_their_own_country() -> None:
    """Without a user id the anonymous key becomes ``user_key``; no country header keeps
    the user part's country; an empty user agent is none."""
    visitor = EvaluationContext(anonymous=True, country="BE")
    context = with_request_attributes(visitor, anonymous_key=GOOD_KEY, user_agent="")
    assert (context.user_key, context.anonymous, context.country) == (GOOD_KEY, True, "BE")
    assert context.user_agent is None and "language" not in context.custom
    assert context.private_attributes == list(PRIVATE_ATTRIBUTES)
