"""Validation: the flag-key and API-key rules, and the checks every option group uses.

- **Rules shared by the client and the local server**: :func:`is_valid_flag_key`,
  :func:`flag_key_problem`, :func:`api_key_problem`.
- **Option checks** (:func:`require`, :func:`check_number`, :func:`check_int`, ...): each
  raises :class:`~flagkit.errors.ConfigurationError` naming the option, the value it got and
  what is allowed. Every options dataclass validates in ``__post_init__`` with these, so the
  wording of a mistake is the same whichever option it is about.

Event types are validated by the event pipeline (:mod:`flagkit.core.events.validation`).
"""

from __future__ import annotations

import math
import re
from typing import Final

from flagkit.errors import ConfigurationError

__all__ = [
    "API_KEY_PREFIXES",
    "FLAG_KEY_PATTERN",
    "MAX_FLAG_KEY_LENGTH",
    "api_key_problem",
    "check_bool",
    "check_callable",
    "check_int",
    "check_number",
    "check_optional_str",
    "flag_key_problem",
    "is_number",
    "is_valid_flag_key",
    "require",
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
    the ``X-API-Key`` header). Any other character is allowed (``.``, ``/``, ``+``, ``=``):
    the text after the prefix is opaque. The README's placeholder ``sdk_...`` is valid.

    >>> api_key_problem("sdk_..."), api_key_problem("key_1234")
    (None, 'must start with sdk_, srv_ or cli_ followed by the key')

    The answer is a phrase to put after the option's name (``"api_key " + problem``). It
    never contains the key or any part of it, only its type, so callers may show it as is.
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


# --- option checks ----------------------------------------------------------------------


def require(condition: bool, option: str, value: object, allowed: str) -> None:
    """Raise ``ConfigurationError`` unless ``condition``: ``"{option} must be {allowed}, got
    {value!r}"`` (code ``INIT_INVALID_CONFIG``)."""
    if not condition:
        raise ConfigurationError(f"{option} must be {allowed}, got {value!r}", option=option)


def is_number(value: object) -> bool:
    """An ``int`` or ``float`` that is not a ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_number(
    option: str, value: object, *, minimum: float, strict: bool = False, unit: str = ""
) -> None:
    """A finite number ``>= minimum`` (``> minimum`` when ``strict``); ``unit`` is for the text.

    ``unit`` reads after "a finite number", e.g. ``" of seconds"``.
    """
    bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
    ok = (
        is_number(value)
        and math.isfinite(value)  # type: ignore[arg-type]
        and (value > minimum if strict else value >= minimum)  # type: ignore[operator]
    )
    require(ok, option, value, f"a finite number{unit} {bound}")


def check_int(option: str, value: object, *, minimum: int, unit: str = "") -> None:
    """An ``int`` (not a ``bool``) ``>= minimum``; ``unit`` reads after "an int"."""
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
    require(ok, option, value, f"an int{unit} >= {minimum}")


def check_bool(option: str, value: object) -> None:
    """``True`` or ``False`` (not ``0``/``1`` or a string)."""
    require(isinstance(value, bool), option, value, "a bool (True or False)")


def check_optional_str(option: str, value: object, allowed: str) -> None:
    """``None`` or a non-empty ``str``; ``allowed`` says what the string is for."""
    require(value is None or (isinstance(value, str) and value != ""), option, value, allowed)


def check_callable(option: str, value: object, signature: str) -> None:
    """``None`` or a callable; ``signature`` says what it is called with."""
    require(value is None or callable(value), option, value, f"None or a callable {signature}")
