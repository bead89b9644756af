"""Input validation shared by the client and the local server: flag keys and API keys.

Event types are validated by the event pipeline (:mod:`flagkit.core.events.validation`).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "API_KEY_PREFIXES",
    "FLAG_KEY_PATTERN",
    "MAX_FLAG_KEY_LENGTH",
    "api_key_problem",
    "flag_key_problem",
    "is_valid_flag_key",
]

API_KEY_PREFIXES: Final = ("sdk_", "srv_", "cli_")
"""An API key starts with one of these; the text after it is opaque."""

FLAG_KEY_PATTERN: Final = re.compile(r"^[a-zA-Z0-9_-]+$")
"""Letters, digits, ``_`` and ``-``; at least one character."""

MAX_FLAG_KEY_LENGTH: Final = 256


def is_valid_flag_key(key: object) -> bool:
    """Whether ``key`` is a usable flag key.

    >>> is_valid_flag_key("dark-mode"), is_valid_flag_key("dark mode"), is_valid_flag_key(7)
    (True, False, False)
    """
    return (
        isinstance(key, str)
        and len(key) <= MAX_FLAG_KEY_LENGTH
        and FLAG_KEY_PATTERN.fullmatch(key) is not None
    )


def flag_key_problem(key: object) -> str | None:
    """Why ``key`` is not a valid flag key, or ``None`` when it is.

    >>> flag_key_problem("a" * 300)
    'flag key is 300 characters long; the maximum is 256'

    Used for the ``error_message`` of an evaluation that fell back to the default; the text
    shows at most the first 40 characters of the key.
    """
    if not isinstance(key, str):
        return f"flag key must be a str, got {type(key).__name__}"
    if not key:
        return "flag key must not be empty"
    if len(key) > MAX_FLAG_KEY_LENGTH:
        return f"flag key is {len(key)} characters long; the maximum is {MAX_FLAG_KEY_LENGTH}"
    if FLAG_KEY_PATTERN.fullmatch(key) is None:
        shown = key if len(key) <= 40 else key[:40] + "..."
        return f"flag key {shown!r} may contain only letters, digits, '_' and '-'"
    return None


def api_key_problem(key: object) -> str | None:
    """Why ``key`` is not a usable API key, or ``None`` when it is.

    The one rule for API keys, used by the client's options and the local server alike: a
    ``str`` that starts with ``sdk_``, ``srv_`` or ``cli_``, has at least one character
    after the prefix, and contains only printable ASCII without whitespace (it travels in
    the ``X-API-Key`` header). The README's placeholder ``sdk_...`` is valid.

    >>> api_key_problem("sdk_..."), api_key_problem("key_1234")
    (None, 'must start with sdk_, srv_ or cli_ followed by the key')

    The text never contains the key or any part of it beyond its type.
    """
    if not isinstance(key, str):
        return f"must be a str starting with sdk_, srv_ or cli_, got a {type(key).__name__}"
    if not key.startswith(API_KEY_PREFIXES) or len(key) <= len("sdk_"):
        return "must start with sdk_, srv_ or cli_ followed by the key"
    if any(ch.isspace() or not ch.isprintable() for ch in key):
        return "must not contain whitespace or control characters (check for a trailing newline)"
    if not key.isascii():
        return "must contain only ASCII characters"
    return None
