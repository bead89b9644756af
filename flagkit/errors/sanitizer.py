"""Redaction of sensitive text (paths, IPs, API keys, e-mails, DSNs) from error messages.

The patterns and their order are those of ``docs/protocol.md`` §13.3. API keys are redacted
from every message whatever the configuration says: a key must never reach a log, a repr or
an exception text. The other patterns follow :class:`ErrorSanitizationConfig`.

The key patterns find keys of the usual shape (``sdk_`` and 8 or more of
``[A-Za-z0-9_-]``). A key may hold any printable ASCII character, so wherever the key
itself is known (a client's options, its logger) it is also removed by value with
:func:`redact_secrets`, which does not depend on its shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

_KEY_PATTERNS: Final = (
    (re.compile(r"sdk_[a-zA-Z0-9_-]{8,}"), "sdk_[REDACTED]"),
    (re.compile(r"srv_[a-zA-Z0-9_-]{8,}"), "srv_[REDACTED]"),
    (re.compile(r"cli_[a-zA-Z0-9_-]{8,}"), "cli_[REDACTED]"),
)

_PATTERNS: Final = (
    (re.compile(r"/(?:[\w.-]+/)+[\w.-]+"), "[PATH]"),
    (re.compile(r"[A-Za-z]:\\(?:[\w\s.-]+\\)+[\w.-]*"), "[PATH]"),
    (re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b"), "[IP]"),
    *_KEY_PATTERNS,
    # §13.3's e-mail pattern with the local part bounded (RFC 5321 allows 64 characters):
    # the unbounded form is quadratic and took seconds on a 40 KB message without an "@".
    (re.compile(r"[\w.+-]{1,64}@[\w.-]+\.\w+"), "[EMAIL]"),
    (re.compile(r"(?:postgres|mysql|mongodb|redis)://[^\s]+"), "[CONNECTION_STRING]"),
)


@dataclass(frozen=True, kw_only=True)
class ErrorSanitizationConfig:
    """How error messages are sanitized.

    ``enabled`` applies every §13.3 pattern; with it off, API keys are still redacted.
    ``preserve_original`` keeps the raw text in ``FlagKitError.original_message`` (never
    shown by ``str()``/``repr()``/``to_dict()``; API keys are redacted from it too).
    """

    enabled: bool = True
    preserve_original: bool = False


def redact_api_keys(text: str) -> str:
    """Replace every API key (``sdk_``/``srv_``/``cli_`` + 8 or more chars) in ``text``."""
    for pattern, replacement in _KEY_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def mask_api_key(key: str) -> str:
    """An API key as a repr may show it: its 8-character key id, or only its prefix.

    >>> mask_api_key("sdk_abcdefgh12345678"), mask_api_key("sdk_a.b")
    ('sdk_abcd...', 'sdk_...')

    The key id (the first 8 characters, sent as ``X-Key-Id``) is shown only when the key is
    at least 16 characters long, so at least half of it stays hidden; a shorter key shows
    its first 4 characters, which for a valid key are its ``sdk_``/``srv_``/``cli_``
    prefix. Meant for keys that passed validation; error messages about an invalid key
    show none of it.
    """
    return f"{key[:8] if len(key) >= 16 else key[:4]}..."


SECRET_PLACEHOLDER: Final = "[REDACTED]"
"""What :func:`redact_secrets` puts where a secret was."""


def redact_secrets(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each secret in ``text``, whatever characters it holds.

    >>> redact_secrets("bad key 'sdk_a.b/c' given", ["sdk_a.b/c"])
    "bad key '[REDACTED]' given"

    Each secret is also replaced in the forms ``repr()`` and ``ascii()`` give it inside
    quotes (with ``\\n``, ``\\x..``, ``\\u....`` escapes), so ``f"{key!r}"`` in a message is
    caught too, and in the form :func:`redact_api_keys` leaves of it (``srv_[REDACTED]+x=``
    for ``srv_abcdefgh+x=``), so text that was pattern-redacted first loses the rest of the
    key too. Longer forms go first, so a key that contains another is removed whole.
    ``None`` and empty strings are ignored.
    """
    forms: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        for form in (secret, repr(secret)[1:-1], ascii(secret)[1:-1]):
            if form:
                forms.add(form)
                forms.add(redact_api_keys(form))
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, SECRET_PLACEHOLDER)
    return text


def sanitize_error_message(message: str, config: ErrorSanitizationConfig | None = None) -> str:
    """Return ``message`` with sensitive data replaced by placeholders.

    >>> sanitize_error_message("key sdk_abcdefgh123 bad")
    'key sdk_[REDACTED] bad'

    ``config=None`` or ``enabled=False`` redacts API keys only.
    """
    if not isinstance(message, str):
        message = str(message)
    if config is None or not config.enabled:
        return redact_api_keys(message)
    for pattern, replacement in _PATTERNS:
        message = pattern.sub(replacement, message)
    return message
