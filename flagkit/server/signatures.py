"""Verification of signed event batches (docs/protocol.md §3.2 and §20.5).

A request is accepted when some configured key whose first 8 characters equal
``X-Key-Id`` gives an HMAC-SHA256 over ``"{X-Timestamp}.{body}"`` equal to
``X-Signature``, where ``body`` is the raw request body or its canonical JSON form, and
``|now - X-Timestamp| <= 300000`` ms. Failures are answered 403 (never 401).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Final, Protocol

from flagkit.utils.signing import (
    MAX_SIGNATURE_AGE_MS,
    canonical_json,
    key_id,
    sign_body,
    signature_matches,
)

__all__ = ["HeaderLookup", "verify_signature"]

_TIMESTAMP: Final = re.compile(r"[0-9]{1,16}")


class HeaderLookup(Protocol):
    """Anything with a case-insensitive ``get(name)`` (``http.client.HTTPMessage``, ``Headers``)."""

    def get(self, name: str, /) -> str | None: ...


def verify_signature(
    headers: HeaderLookup,
    body: bytes,
    parsed: object,
    api_keys: Iterable[str],
    *,
    now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    window_ms: int = MAX_SIGNATURE_AGE_MS,
) -> str | None:
    """None if the request is correctly signed, else the reason it is not.

    ``headers`` must look names up case-insensitively.
    ``parsed`` is the JSON-decoded body (for the canonical form). Thread-safe (pure).
    """
    signature = headers.get("X-Signature")
    timestamp = headers.get("X-Timestamp")
    kid = headers.get("X-Key-Id")
    if not signature or not timestamp or not kid:
        return "the request is not signed (X-Signature, X-Timestamp and X-Key-Id are required)"
    timestamp = timestamp.strip()
    if _TIMESTAMP.fullmatch(timestamp) is None:
        return "X-Timestamp must be integer milliseconds since the epoch (ASCII digits)"
    ts = int(timestamp)
    if abs(now_ms() - ts) > window_ms:
        return f"X-Timestamp is outside the allowed window of {window_ms // 1000} s"
    candidates = [k for k in api_keys if key_id(k) == kid.strip()]
    if not candidates:
        return "X-Key-Id does not identify a configured API key"
    signature = signature.strip().lower()
    try:
        raw = body.decode("utf-8")
    except UnicodeDecodeError:
        raw = None
    canonical: str | None = None
    for key in candidates:
        if raw is not None and signature_matches(sign_body(raw, key, ts), signature):
            return None
        if canonical is None:
            try:
                canonical = canonical_json(parsed)
            except (TypeError, ValueError):
                canonical = ""
        if canonical and signature_matches(sign_body(canonical, key, ts), signature):
            return None
    return "X-Signature does not match the request body"
