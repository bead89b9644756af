"""The cheap forms of the wire event keep the guarantees of the plain ones.

``iso_time`` is ``datetime.isoformat()``, ``event_ids`` are version-4 UUIDs, and the PII
warner's cached verdicts are the check's own verdicts.
"""

from __future__ import annotations

import logging
import random
import uuid
from datetime import datetime, timezone
from typing import Any

import pytest

from flagkit.core.events.validation import PiiWarner
from flagkit.core.events.wire import event_ids, iso_time
from flagkit.utils.security import find_pii


def test_iso_time_is_datetime_isoformat() -> None:
    """Same text as datetime.fromtimestamp(ts, utc).isoformat(), fraction or not, across
    second boundaries, rounding, the epoch and far dates."""
    rng = random.Random(1234)
    stamps = [0.0, 0.5e-6, 1.5e-6, 1.9999995, 59.9999996, 1735689600.0, 4102444799.9999999]
    for _ in range(20_000):
        whole = rng.randrange(0, 4_102_444_800)
        stamps += [whole + rng.random(), float(whole), whole + rng.randrange(1_000_000) / 1e6]
    for stamp in stamps:
        expected = datetime.fromtimestamp(stamp, timezone.utc).isoformat()
        assert iso_time(stamp) == expected, stamp


def test_event_ids_are_random_version_4_uuids() -> None:
    """Every id parses as an RFC 4122 version-4 UUID and prints back the same; none repeat."""
    ids = event_ids(5000) + event_ids(1)
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


FLAT: list[dict[str, Any]] = [
    {"amount": 9.5, "currency": "USD"},
    {"email": 1, "plan": "pro"},
    {"contact": "+31 6 1234 5678", "n": None},
    {"note": "mail bob@example.com", "ok": True},
    {"user_password": "x", "tokens_used": 3},
    {"a@example.com": 1, "id": "order-12345"},
    {"long": "y" * 200 + " bob@example.com"},
    {"nested": {"email": "x"}, "plan": "free"},
]


@pytest.mark.parametrize("data", FLAT)
def test_pii_warnings_with_cached_verdicts_match_the_check(
    data: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The warner names exactly the fields find_pii names, on the first event and on the
    next one (answered from the cache)."""
    logger = logging.getLogger("test.pii")
    calls: list[dict[str, Any]] = []

    def check(value: Any, data_type: str) -> list[str]:
        calls.append(dict(value))
        return find_pii(value)

    warner = PiiWarner(check, logger)
    expected = find_pii(data)
    with caplog.at_level(logging.WARNING, logger="test.pii"):
        warner.scan(data)
        first_calls = len(calls)
        warner.scan(dict(data))
    warnings = [r.getMessage() for r in caplog.records]
    if expected:
        assert len(warnings) == 1  # once per set of fields
        for finding in expected:
            assert finding in warnings[0]
    else:
        assert warnings == []
    nested = any(isinstance(v, dict) for v in data.values())
    long_value = any(isinstance(v, str) and len(v) > 64 for v in data.values())
    if not (nested or long_value):
        assert len(calls) == first_calls  # the second event was answered from the cache
