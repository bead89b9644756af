"""Building a web request's :class:`~flagkit.EvaluationContext`: the rules both web
adapters share.

>>> user = user_part("42", email="ada@example.com", name="Ada", anonymous=False)
>>> context = with_request_attributes(
...     user,
...     language=first_language_tag("nl-NL,nl;q=0.9"),
...     country=country_code(" nl "),
...     ip=client_ip("10.0.0.1", forwarded_for="203.0.113.7, 10.0.0.1"),
...     user_agent="Mozilla/5.0",
... )
>>> context.country, context.ip, context.custom["language"]
('NL', '203.0.113.7', 'nl-NL')

Each adapter reads its framework's request and user (headers, cookies, ``request.user``,
Flask-Login) and passes plain values here: anonymous keys, proxy and country headers,
the language tag and how the user part and the request part combine are decided once.
Framework-neutral: imports neither Django nor Flask. Pure functions; thread-safe.
"""

from __future__ import annotations

import secrets
from typing import Any, Final

from flagkit.types.context import EvaluationContext

__all__ = [
    "ANONYMOUS_KEY_LENGTH",
    "PRIVATE_ATTRIBUTES",
    "USER_PRIVATE_ATTRIBUTES",
    "AnonymousKey",
    "client_ip",
    "country_code",
    "first_language_tag",
    "is_anonymous_key",
    "user_part",
    "with_request_attributes",
]

#: Hex characters of an anonymous visitor's key.
ANONYMOUS_KEY_LENGTH: Final = 32
#: Attributes of a user's context that stay in the process (local evaluation only).
USER_PRIVATE_ATTRIBUTES: Final = ("email", "name")
#: Attributes of a request context that stay in the process.
PRIVATE_ATTRIBUTES: Final = ("email", "name", "ip")


def is_anonymous_key(value: object) -> bool:
    """Whether ``value`` is a well-formed anonymous key (32 hex characters), e.g. one read
    back from a cookie."""
    if not isinstance(value, str) or len(value) != ANONYMOUS_KEY_LENGTH:
        return False
    try:
        int(value, 16)
    except ValueError:
        return False
    return True


class AnonymousKey:
    """The stable key of an anonymous visitor: the one read from its cookie when that is
    well-formed, else a new random one (``is_new``, so the adapter sets the cookie).

    >>> AnonymousKey(None).is_new
    True
    >>> AnonymousKey("0123456789abcdef0123456789abcdef").value
    '0123456789abcdef0123456789abcdef'

    Adapters subclass it to read and write their framework's signed cookie. Created per
    request; not shared between threads.
    """

    __slots__ = ("is_new", "value")

    def __init__(self, existing: object = None) -> None:
        if is_anonymous_key(existing):
            self.value: str = str(existing)
            self.is_new = False
        else:
            self.value = secrets.token_hex(ANONYMOUS_KEY_LENGTH // 2)
            self.is_new = True


def first_language_tag(header: object) -> str | None:
    """The first tag of an ``Accept-Language`` header (``"nl-NL,nl;q=0.9"`` -> ``"nl-NL"``),
    or None for an empty header or ``*``."""
    first = str(header or "").split(",", 1)[0].split(";", 1)[0].strip()
    return first if first and first != "*" else None


def client_ip(remote_addr: object, forwarded_for: object = None) -> str | None:
    """The client's address: the first address of ``forwarded_for`` (a proxy's
    ``X-Forwarded-For``; pass it only when proxy headers are trusted) when it has one, else
    ``remote_addr``; None when neither is set."""
    if forwarded_for:
        first = str(forwarded_for).split(",", 1)[0].strip()
        if first:
            return first
    return str(remote_addr) if remote_addr else None


def country_code(raw: object) -> str | None:
    """A country header's value upper-cased (``" nl "`` -> ``"NL"``), or None when empty."""
    if not raw:
        return None
    return str(raw).strip().upper() or None


def user_part(
    user_id: object,
    *,
    email: str | None,
    name: str | None,
    anonymous: bool,
    custom: dict[str, Any] | None = None,
) -> EvaluationContext:
    """The user part of a request's context: ``user_id`` as a str (None stays None), the
    e-mail and name kept private (:data:`USER_PRIVATE_ATTRIBUTES`)."""
    return EvaluationContext(
        user_id=None if user_id is None else str(user_id),
        email=email,
        name=name,
        anonymous=anonymous,
        custom={} if custom is None else custom,
        private_attributes=list(USER_PRIVATE_ATTRIBUTES),
    )


def with_request_attributes(
    user: EvaluationContext,
    *,
    anonymous_key: str | None = None,
    language: str | None = None,
    country: str | None = None,
    ip: str | None = None,
    user_agent: object = None,
) -> EvaluationContext:
    """A new context: ``user`` plus the request's attributes.

    ``anonymous_key`` becomes ``user_key`` when the user has no ``user_id``; ``language``
    goes to ``custom["language"]``; ``country`` (if set) wins over the user's;
    ``private_attributes`` gain :data:`PRIVATE_ATTRIBUTES` (the IP stays in the process).
    ``user`` is not changed.
    """
    merged = dict(user.custom)
    if language is not None:
        merged["language"] = language
    return EvaluationContext(
        user_id=user.user_id,
        user_key=(
            anonymous_key if anonymous_key is not None and user.user_id is None else user.user_key
        ),
        email=user.email,
        name=user.name,
        anonymous=user.anonymous,
        country=country or user.country,
        ip=ip,
        user_agent=str(user_agent) if user_agent else None,
        custom=merged,
        private_attributes=list(dict.fromkeys([*user.private_attributes, *PRIVATE_ATTRIBUTES])),
    )
