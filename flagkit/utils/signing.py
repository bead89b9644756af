"""Canonical JSON and HMAC-SHA256 signatures (docs/protocol.md §3.2, §7.2, §20.3-20.5).

Shared by the HTTP client (signing event batches), bootstrap verification and the local
server (verifying signatures), so the algorithm exists once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Final

MAX_SIGNATURE_AGE_MS: Final = 300_000


def canonical_json(obj: object) -> str:
    """Sorted keys, compact separators, ASCII only, no NaN/Infinity (docs/protocol.md §20.3).

    >>> canonical_json({"x": 42.0, "y": 1e20, "z": 1e-7, "u": "é<&>"})
    '{"u":"\\\\u00e9<&>","x":42.0,"y":1e+20,"z":1e-07}'

    Raises ``ValueError`` for non-finite numbers and ``TypeError`` for values JSON cannot hold.
    """
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def key_id(api_key: str) -> str:
    """The first 8 characters of a key: safe to log and to send as ``X-Key-Id``."""
    return api_key[:8]


def hmac_sha256_hex(key: str, message: str) -> str:
    """Lowercase hex HMAC-SHA256 of ``message`` under ``key`` (both UTF-8)."""
    return hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_body(payload: str, api_key: str, timestamp_ms: int) -> str:
    """Signature of a request body: HMAC over ``"{ts}.{payload}"``."""
    return hmac_sha256_hex(api_key, f"{timestamp_ms}.{payload}")


def signature_matches(expected: str, given: str) -> bool:
    """Constant-time comparison of two hex signatures."""
    return hmac.compare_digest(
        expected.encode("ascii", "replace"), given.encode("ascii", "replace")
    )
