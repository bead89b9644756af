"""Request signing (docs/protocol.md §3.2, §20.4) and key rotation (§3.3) over real HTTP."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from flagkit.errors import AuthenticationError
from flagkit.types.config import RetryOptions
from flagkit.utils.signing import canonical_json, key_id, sign_body, signature_matches
from tests.support.clients import MakeClient, http_clients
from tests.support.fault_server import FaultServer, RecordedRequest, Reply
from tests.support.signing_vector import (
    VECTOR_BODY,
    VECTOR_CANONICAL,
    VECTOR_KEY,
    VECTOR_SIGNATURE,
    VECTOR_TS,
)

PRIMARY = "sdk_primary_key_0001"
SECONDARY = "sdk_secondary_key_0002"
FAST_RETRY = RetryOptions(base_delay=0.01, max_delay=0.05, jitter=0.0)
OK = Reply.json({"success": True})
BODY: dict[str, Any] = {
    "events": [{"eventType": "purchase", "eventData": {"note": "café", "b": 1}}]
}


@pytest.fixture
def make_client(server: FaultServer) -> Iterator[MakeClient]:
    yield from http_clients(server.base_url, api_key=PRIMARY, retry=FAST_RETRY)


def assert_signed_with(request: RecordedRequest, api_key: str) -> None:
    """The request's X-Signature is the HMAC of ``"{ts}.{raw body}"`` under ``api_key``."""
    timestamp = request.header("X-Timestamp")
    signature = request.header("X-Signature")
    assert timestamp is not None and timestamp.isdigit()
    assert signature is not None
    assert request.header("X-Key-Id") == key_id(api_key)
    expected = sign_body(request.body.decode("ascii"), api_key, int(timestamp))
    assert signature_matches(expected, signature)


def test_protocol_signing_vector() -> None:
    """The §18 request-signing vector: canonical payload, signature and key id."""
    payload = canonical_json(VECTOR_BODY)
    assert payload == VECTOR_CANONICAL
    assert sign_body(payload, VECTOR_KEY, VECTOR_TS) == VECTOR_SIGNATURE
    assert key_id(VECTOR_KEY) == "sdk_test"


def test_signed_post_sends_exactly_the_signed_canonical_bytes(
    server: FaultServer, make_client: MakeClient
) -> None:
    """The body on the wire is the canonical JSON and the HMAC over it verifies."""
    server.script("POST", "/sdk/events/batch", OK)
    assert make_client().post_json("/sdk/events/batch", BODY) == {"success": True}
    [request] = server.requests("POST", "/sdk/events/batch")
    assert request.body == canonical_json(BODY).encode("ascii")
    assert b"\\u00e9" in request.body
    assert request.header("Content-Type") == "application/json"
    assert_signed_with(request, PRIMARY)


def test_signing_disabled_sends_canonical_json_unsigned(
    server: FaultServer, make_client: MakeClient
) -> None:
    """With enable_request_signing=False the body is still canonical, with no signature."""
    server.script("POST", "/sdk/events/batch", OK, OK)
    make_client(enable_request_signing=False).post_json("/sdk/events/batch", BODY)
    make_client().post_json("/sdk/events/batch", BODY, sign=False)
    for request in server.requests("POST", "/sdk/events/batch"):
        assert request.body == canonical_json(BODY).encode("ascii")
        for header in ("X-Signature", "X-Timestamp", "X-Key-Id"):
            assert request.header(header) is None


def test_retries_reuse_the_signature_and_timestamp(
    server: FaultServer, make_client: MakeClient
) -> None:
    """All attempts of one logical POST carry the same X-Timestamp and X-Signature."""
    server.script("POST", "/sdk/events/batch", Reply.error(503), Reply.error(502), OK)
    make_client(retries=3).post_json("/sdk/events/batch", BODY)
    requests = server.requests("POST", "/sdk/events/batch")
    assert len(requests) == 3
    assert len({r.header("X-Timestamp") for r in requests}) == 1
    assert len({r.header("X-Signature") for r in requests}) == 1
    assert_signed_with(requests[-1], PRIMARY)


def test_unserialisable_body_raises_before_sending(
    server: FaultServer, make_client: MakeClient
) -> None:
    """A body JSON cannot hold (NaN) raises INTERNAL_ERROR and nothing is sent."""
    with pytest.raises(Exception) as info:
        make_client().post_json("/sdk/events/batch", {"x": float("nan")})
    assert getattr(info.value, "code", None) == "INTERNAL_ERROR"
    assert server.requests() == []


# -- key rotation ------------------------------------------------------------------------


def test_401_switches_to_the_secondary_key_and_resends_once_resigned(
    server: FaultServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """On 401 the POST is re-sent once with the secondary key and re-signed with it."""
    server.script("POST", "/sdk/events/batch", Reply.error(401), OK, OK)
    client = make_client(secondary_api_key=SECONDARY)
    assert not client.is_in_key_rotation()
    with caplog.at_level(logging.DEBUG, logger="flagkit"):
        client.post_json("/sdk/events/batch", BODY)
    first, second = server.requests("POST", "/sdk/events/batch")
    assert first.header("X-API-Key") == PRIMARY
    assert_signed_with(first, PRIMARY)
    assert second.header("X-API-Key") == SECONDARY
    assert_signed_with(second, SECONDARY)
    assert second.body == first.body
    assert client.is_in_key_rotation()
    assert client.active_key_id == key_id(SECONDARY)

    client.post_json("/sdk/events/batch", BODY)  # later requests stay on the secondary key
    third = server.requests("POST", "/sdk/events/batch")[2]
    assert third.header("X-API-Key") == SECONDARY
    assert_signed_with(third, SECONDARY)

    assert PRIMARY not in caplog.text and SECONDARY not in caplog.text
    assert key_id(PRIMARY) in caplog.text and key_id(SECONDARY) in caplog.text


def test_rotation_applies_to_get_requests(server: FaultServer, make_client: MakeClient) -> None:
    """A GET rejected with 401 is re-sent with the secondary key."""
    server.script("GET", "/sdk/init", Reply.error(401), Reply.json({"flags": []}))
    client = make_client(secondary_api_key=SECONDARY)
    assert client.get_json("/sdk/init") == {"flags": []}
    assert [r.header("X-API-Key") for r in server.requests()] == [PRIMARY, SECONDARY]


def test_second_401_propagates_and_never_loops(
    server: FaultServer, make_client: MakeClient
) -> None:
    """When the secondary key is rejected too, the 401 is raised; later calls send nothing."""
    server.set_default("GET", "/sdk/init", Reply.error(401))
    client = make_client(secondary_api_key=SECONDARY, retries=3)
    with pytest.raises(AuthenticationError) as info:
        client.get_json("/sdk/init")
    assert info.value.code == "AUTH_INVALID_KEY"
    assert len(server.requests()) == 2
    assert client.key_rejected
    with pytest.raises(AuthenticationError) as later:
        client.get_json("/sdk/init")
    assert later.value.code == "AUTH_INVALID_KEY"
    assert [r.header("X-API-Key") for r in server.requests()] == [PRIMARY, SECONDARY]


def test_without_secondary_key_401_is_raised_after_one_request(
    server: FaultServer, make_client: MakeClient
) -> None:
    """No secondary key: a 401 propagates at once and no rotation is reported."""
    server.set_default("GET", "/sdk/init", Reply.error(401))
    client = make_client()
    with pytest.raises(AuthenticationError):
        client.get_json("/sdk/init")
    assert len(server.requests()) == 1
    assert not client.is_in_key_rotation()


def test_403_does_not_rotate(server: FaultServer, make_client: MakeClient) -> None:
    """Only 401 triggers rotation; a 403 is raised with the primary key still active."""
    server.set_default("GET", "/sdk/init", Reply.error(403))
    client = make_client(secondary_api_key=SECONDARY)
    with pytest.raises(AuthenticationError) as info:
        client.get_json("/sdk/init")
    assert info.value.code == "AUTH_INSUFFICIENT_PERMISSIONS"
    assert len(server.requests()) == 1
    assert client.active_key_id == key_id(PRIMARY)


def test_grace_period_bounds_is_in_key_rotation(
    server: FaultServer, make_client: MakeClient
) -> None:
    """With a zero grace period the switch happens but rotation is not reported."""
    server.script("GET", "/sdk/init", Reply.error(401), Reply.json({}))
    client = make_client(secondary_api_key=SECONDARY, key_rotation_grace_period=0)
    client.get_json("/sdk/init")
    assert client.active_key_id == key_id(SECONDARY)
    assert not client.is_in_key_rotation()


def test_concurrent_401s_rotate_once(
    server: FaultServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Several threads hit by 401 at once all succeed on the secondary; one switch is logged."""

    def by_key(request: RecordedRequest) -> Reply:
        if request.header("X-API-Key") == SECONDARY:
            return Reply.json({"ok": True})
        return Reply.error(401)

    server.set_default("GET", "/sdk/init", by_key)
    client = make_client(secondary_api_key=SECONDARY)
    results: list[object] = []
    barrier = threading.Barrier(4)

    def call() -> None:
        barrier.wait(5)
        results.append(client.get_json("/sdk/init"))

    with caplog.at_level(logging.WARNING, logger="flagkit"):
        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(5)
    assert results == [{"ok": True}] * 4
    assert caplog.text.count("switched to the secondary key") == 1
    assert server.errors == []
