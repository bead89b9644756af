"""Signature verification of event batches (docs/protocol.md §3.2, §18 vectors, §20.5)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flagkit.server import FlagKitServer
from flagkit.server.requests_log import Headers
from flagkit.server.signatures import verify_signature
from flagkit.utils.signing import canonical_json, key_id, sign_body
from tests.support.signing_vector import VECTOR_BODY, VECTOR_CANONICAL, VECTOR_SIGNATURE, VECTOR_TS

KEY = "sdk_test_key_123456"


def vector_headers(signature: str = VECTOR_SIGNATURE, kid: str = "sdk_test") -> Headers:
    """The §18 signature headers."""
    return Headers([("X-Signature", signature), ("X-Timestamp", str(VECTOR_TS)), ("X-Key-Id", kid)])


def test_vector_canonical_form_and_signature() -> None:
    """The §18 canonical payload and signature come out of the shared signing helpers."""
    assert canonical_json(VECTOR_BODY) == VECTOR_CANONICAL
    assert sign_body(VECTOR_CANONICAL, KEY, VECTOR_TS) == VECTOR_SIGNATURE
    assert key_id(KEY) == "sdk_test"


@pytest.mark.parametrize(
    "wire",
    [
        VECTOR_CANONICAL.encode(),  # our client sends the canonical bytes (§20.4)
        json.dumps(VECTOR_BODY, ensure_ascii=False).encode(),  # published client, httpx >= 0.28
        json.dumps(VECTOR_BODY).encode(),  # older httpx: spaces and ASCII escapes
    ],
    ids=["canonical-bytes", "raw-utf8-insertion-order", "spaced-ascii"],
)
def test_verifier_accepts_the_vector_in_every_wire_form(wire: bytes) -> None:
    """The verifier accepts the §18 vector whether it hashes the raw body or the canonical form."""
    problem = verify_signature(
        vector_headers(), wire, json.loads(wire), [KEY], now_ms=lambda: VECTOR_TS + 1000
    )
    assert problem is None


def test_verifier_rejects_tampering_and_stale_timestamps() -> None:
    """A changed body, a wrong key id or a timestamp outside ±5 minutes fail verification."""
    body = VECTOR_CANONICAL.encode()
    tampered = VECTOR_CANONICAL.replace("9.5", "95").encode()
    ok_clock = lambda: VECTOR_TS  # noqa: E731
    assert verify_signature(
        vector_headers(), tampered, json.loads(tampered), [KEY], now_ms=ok_clock
    )
    assert verify_signature(
        vector_headers(kid="sdk_othr"), body, json.loads(body), [KEY], now_ms=ok_clock
    )
    late = lambda: VECTOR_TS + 300_001  # noqa: E731
    early = lambda: VECTOR_TS - 300_001  # noqa: E731
    assert "window" in (
        verify_signature(vector_headers(), body, VECTOR_BODY, [KEY], now_ms=late) or ""
    )
    assert verify_signature(vector_headers(), body, VECTOR_BODY, [KEY], now_ms=early)
    edge = lambda: VECTOR_TS + 300_000  # noqa: E731
    assert verify_signature(vector_headers(), body, VECTOR_BODY, [KEY], now_ms=edge) is None


@pytest.fixture
def signed_server() -> Iterator[FlagKitServer]:
    """A server verifying signatures, with two keys sharing nothing but the prefix length."""
    with FlagKitServer(api_keys=[KEY, "sdk_other_key_98765"], verify_signatures=True) as srv:
        yield srv


def post_signed(
    srv: FlagKitServer,
    body: dict[str, Any],
    *,
    key: str = KEY,
    ts: int | None = None,
    wire: bytes | None = None,
    signature: str | None = None,
) -> httpx.Response:
    """POST an event batch signed over its canonical form with ``key``."""
    ts = int(time.time() * 1000) if ts is None else ts
    sig = signature or sign_body(canonical_json(body), key, ts)
    return httpx.post(
        srv.base_url + "/sdk/events/batch",
        content=wire if wire is not None else canonical_json(body).encode(),
        headers={
            "Content-Type": "application/json",
            "X-API-Key": key,
            "X-Signature": sig,
            "X-Timestamp": str(ts),
            "X-Key-Id": key_id(key),
        },
    )


def test_freshly_signed_batches_are_accepted(signed_server: FlagKitServer) -> None:
    """Signed over the canonical form, sent as canonical or raw UTF-8 bytes: both accepted."""
    assert post_signed(signed_server, VECTOR_BODY).status_code == 200
    raw = json.dumps(VECTOR_BODY, ensure_ascii=False).encode()
    assert post_signed(signed_server, VECTOR_BODY, wire=raw).status_code == 200
    assert signed_server.event_stats["total"] == 2


def test_key_is_chosen_by_key_id(signed_server: FlagKitServer) -> None:
    """A batch signed with the second configured key verifies against that key."""
    response = post_signed(
        signed_server, {"events": [{"eventType": "x"}]}, key="sdk_other_key_98765"
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "case", ["wrong-signature", "stale", "future", "unsigned", "unknown-key-id", "tampered"]
)
def test_bad_signatures_are_403_never_401(signed_server: FlagKitServer, case: str) -> None:
    """Every verification failure is 403 SECURITY_SIGNATURE_INVALID and records nothing."""
    body = {"events": [{"eventType": "x", "eventId": "e1"}]}
    now = int(time.time() * 1000)
    if case == "wrong-signature":
        response = post_signed(signed_server, body, signature="0" * 64)
    elif case == "stale":
        response = post_signed(signed_server, body, ts=now - 301_000)
    elif case == "future":
        response = post_signed(signed_server, body, ts=now + 301_000)
    elif case == "unsigned":
        response = httpx.post(
            signed_server.base_url + "/sdk/events/batch",
            json=body,
            headers={"X-API-Key": KEY},
        )
    elif case == "unknown-key-id":
        response = httpx.post(
            signed_server.base_url + "/sdk/events/batch",
            content=canonical_json(body).encode(),
            headers={
                "X-API-Key": KEY,
                "X-Signature": sign_body(canonical_json(body), KEY, now),
                "X-Timestamp": str(now),
                "X-Key-Id": "sdk_nope",
            },
        )
    else:
        tampered = canonical_json({"events": [{"eventType": "y", "eventId": "e1"}]}).encode()
        response = post_signed(signed_server, body, wire=tampered)
    assert response.status_code == 403
    error = response.json()
    assert error["error"] == "SECURITY_SIGNATURE_INVALID" and error["message"]
    assert signed_server.event_stats["total"] == 0


def test_unsigned_batches_are_accepted_when_verification_is_off() -> None:
    """By default (verification off) unsigned and wrongly signed batches are accepted."""
    with FlagKitServer() as srv:
        unsigned = httpx.post(
            srv.base_url + "/sdk/events/batch",
            json={"events": [{"eventType": "x"}]},
            headers={"X-API-Key": srv.api_key},
        )
        wrong = post_signed(srv, {"events": [{"eventType": "y"}]}, signature="f" * 64)
    assert (unsigned.status_code, wrong.status_code) == (200, 200)
