"""Keep stream tokens and API keys out of every log line, httpx's own included.

The stream URL carries its bearer token in the query (``/sdk/stream?token=...``, kept for
compatibility with FlagKit servers), and httpx logs every request URL at INFO (``HTTP
Request: GET .../sdk/stream?token=...``); httpcore logs at DEBUG. The first
:class:`~flagkit.http.HttpClient` built in a process adds one :class:`RedactingFilter` to
the ``httpx`` logger and to httpcore's loggers (idempotent: a logger that has one gets no
second; a logging reconfiguration that dropped it gets it back with the next client),
which rewrites such records with ``token=[REDACTED]`` and API keys as
``sdk_[REDACTED]``. That is the only change the SDK makes to third-party logging.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from flagkit.errors.sanitizer import redact_api_keys

__all__ = ["RedactingFilter", "install_log_redaction", "redact", "safe_url"]

_TOKEN: Final = re.compile(r"(?i)(\btoken=)[^&\s\"'#]+")
_LOGGERS: Final = (
    "httpx",
    "httpcore",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
)

_install_lock = threading.Lock()


def redact(text: str) -> str:
    """``text`` with ``token=`` values and API keys replaced.

    >>> redact("GET /sdk/stream?token=abc123&x=1 with sdk_live_abcdefgh12")
    'GET /sdk/stream?token=[REDACTED]&x=1 with sdk_[REDACTED]'
    """
    return redact_api_keys(_TOKEN.sub(r"\1[REDACTED]", text))


def safe_url(url: str) -> str:
    """``url`` fit for a log line: no user info, no token, no API key.

    >>> safe_url("https://user:pw@flags.example.com/api/v1")
    'https://flags.example.com/api/v1'
    """
    parts = urlsplit(url)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
    return redact(urlunsplit(parts))


class RedactingFilter(logging.Filter):
    """Rewrite a record's message with secrets redacted; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's business, not ours
            return True
        clean = redact(message)
        if clean != message:
            record.msg = clean
            record.args = None
        return True


def install_log_redaction() -> None:
    """Add one :class:`RedactingFilter` to the httpx/httpcore loggers (idempotent)."""
    with _install_lock:
        for name in _LOGGERS:
            logger = logging.getLogger(name)
            if not any(isinstance(f, RedactingFilter) for f in logger.filters):
                logger.addFilter(RedactingFilter())
