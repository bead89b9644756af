"""Redaction of sensitive text (paths, IPs, API keys, e-mails, DSNs) from error messages.

The patterns and their order are those of PROTOCOL §13.3. API keys are redacted from every
message whatever the configuration says: a key must never reach a log, a repr or an
exception text. The other patterns follow :class:`ErrorSanitizationConfig`.
"""

from __future__ import annotations

import re
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
