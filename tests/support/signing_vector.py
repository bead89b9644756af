"""The request-signing test vector of docs/protocol.md §18: key, timestamp, body, signature."""

from __future__ import annotations

from typing import Any

__all__ = ["VECTOR_BODY", "VECTOR_CANONICAL", "VECTOR_KEY", "VECTOR_SIGNATURE", "VECTOR_TS"]

VECTOR_KEY = "sdk_test_key_123456"
VECTOR_TS = 1700000000000
VECTOR_BODY: dict[str, Any] = {
    "events": [
        {
            "eventType": "purchase",
            "timestamp": "2023-11-14T22:13:20.000000+00:00",
            "sdkVersion": "1.0.9",
            "sdkLanguage": "python",
            "sessionId": "00000000-0000-4000-8000-000000000000",
            "environmentId": "env-1",
            "eventData": {"amount": 9.5, "currency": "EUR", "note": "café"},
        }
    ]
}
VECTOR_CANONICAL = (
    '{"events":[{"environmentId":"env-1","eventData":{"amount":9.5,"currency":"EUR",'
    '"note":"caf\\u00e9"},"eventType":"purchase","sdkLanguage":"python","sdkVersion":"1.0.9",'
    '"sessionId":"00000000-0000-4000-8000-000000000000",'
    '"timestamp":"2023-11-14T22:13:20.000000+00:00"}]}'
)
VECTOR_SIGNATURE = "73cb59dbc9bb14a1eac5a4f9cf7cf5c26ce1dcd53e71fb8eee92cb60786fbd38"
