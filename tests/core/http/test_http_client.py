"""HttpClient over real loopback HTTP: headers, status mapping, retries, deadline, 429, breaker.

Signing and key rotation are in ``test_http_signing.py``; SSE lines in ``test_http_sse.py``.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from flagkit import __version__
from flagkit.errors import (
    AuthenticationError,
    CircuitOpenError,
    FlagKitError,
    NetworkError,
    SecurityError,
)
from flagkit.http import HttpConfig, error_from_response, parse_retry_after, parse_usage_headers
from flagkit.types.config import CircuitBreakerOptions, RetryOptions
from tests.support import wait_until
from tests.support.clients import MakeClient, http_clients, loopback_client
from tests.support.fault_server import FaultServer, Reply

API_KEY = "sdk_primary_key_0001"
FAST_RETRY = RetryOptions(base_delay=0.01, max_delay=0.05, multiplier=2.0, jitter=0.0)
OK = Reply.json({"ok": True})


@pytest.fixture
def make_client(server: FaultServer) -> Iterator[MakeClient]:
    yield from http_clients(server.base_url, api_key=API_KEY, retry=FAST_RETRY)


# -- headers and URLs --------------------------------------------------------------------


def test_rest_request_carries_the_sdk_headers(server: FaultServer, make_client: MakeClient) -> None:
    """Every REST call sends the §2.1 headers with our version and the FlagKit User-Agent."""
    server.script("GET", "/sdk/init", OK)
    assert make_client().get_json("/sdk/init") == {"ok": True}
    [request] = server.requests("GET", "/sdk/init")
    assert request.header("Content-Type") == "application/json"
    assert request.header("Accept") == "application/json"
    assert request.header("X-API-Key") == API_KEY
    assert request.header("X-FlagKit-SDK-Version") == __version__
    assert request.header("X-FlagKit-SDK-Language") == "python"
    user_agent = request.header("User-Agent") or ""
    assert re.fullmatch(
        rf"FlagKit-Python/{re.escape(__version__)} \(\w+/[\w.+]+; .+/.*\)", user_agent
    )
    assert request.header("X-Signature") is None


def test_query_parameters_are_url_encoded(server: FaultServer, make_client: MakeClient) -> None:
    """``+`` and ``:`` in a cursor are percent-encoded, so servers read them back intact."""
    server.script("GET", "/sdk/updates", OK)
    make_client().get_json("/sdk/updates", {"since": "2025-03-01T11:59:59.123456+00:00"})
    [request] = server.requests("GET", "/sdk/updates")
    assert "%2B00%3A00" in request.raw_path
    assert request.param("since") == "2025-03-01T11:59:59.123456+00:00"


def test_trailing_slash_in_base_url_does_not_double_slashes(
    server: FaultServer, make_client: MakeClient
) -> None:
    """A base URL ending in ``/`` still produces ``/api/v1/sdk/init``."""
    server.script("GET", "/sdk/init", OK)
    make_client(base_url=server.base_url + "/").get_json("/sdk/init")
    assert server.requests()[0].raw_path == "/api/v1/sdk/init"


def test_localhost_reaches_a_server_bound_on_ipv4_loopback(
    server: FaultServer, make_client: MakeClient
) -> None:
    """``http://localhost:PORT`` reaches a 127.0.0.1-only server even if ::1 is tried first."""
    server.script("GET", "/sdk/init", OK)
    client = make_client(base_url=f"http://localhost:{server.port}/api/v1")
    assert client.get_json("/sdk/init") == {"ok": True}


def test_stream_token_request_sends_only_its_own_headers(
    server: FaultServer, make_client: MakeClient
) -> None:
    """The token POST carries the API key and JSON type only: no SDK headers, no signature."""
    server.script("POST", "/sdk/stream/token", Reply.json({"token": "tok", "expiresIn": 60}))
    assert make_client().fetch_stream_token() == ("tok", 60)
    [request] = server.requests("POST", "/sdk/stream/token")
    assert request.header("X-API-Key") == API_KEY
    assert request.header("Content-Type") == "application/json"
    assert request.body == b"{}"
    for absent in ("X-FlagKit-SDK-Version", "X-FlagKit-SDK-Language", "X-Signature"):
        assert request.header(absent) is None
    assert not (request.header("User-Agent") or "").startswith("FlagKit-Python")


@pytest.mark.parametrize(
    "body",
    [{"token": "", "expiresIn": 60}, {"token": "t"}, {"token": "t", "expiresIn": "60"}],
)
def test_stream_token_with_missing_or_mistyped_fields_is_invalid(
    server: FaultServer, make_client: MakeClient, body: dict[str, Any]
) -> None:
    """A token response without a non-empty token and an int expiresIn is rejected."""
    server.script("POST", "/sdk/stream/token", Reply.json(body))
    with pytest.raises(NetworkError) as info:
        make_client().fetch_stream_token()
    assert info.value.code == "NETWORK_INVALID_RESPONSE"


# -- status mapping ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls", "code", "recoverable"),
    [
        (302, NetworkError, "NETWORK_UNEXPECTED_STATUS", True),
        (400, NetworkError, "NETWORK_UNEXPECTED_STATUS", True),
        (401, AuthenticationError, "AUTH_INVALID_KEY", False),
        (403, AuthenticationError, "AUTH_INSUFFICIENT_PERMISSIONS", False),
        (404, NetworkError, "NETWORK_UNEXPECTED_STATUS", True),
        (409, NetworkError, "NETWORK_UNEXPECTED_STATUS", True),
        (429, AuthenticationError, "AUTH_RATE_LIMITED", True),
    ],
)
def test_client_errors_map_to_codes_and_are_not_retried(
    server: FaultServer,
    make_client: MakeClient,
    status: int,
    cls: type[FlagKitError],
    code: str,
    recoverable: bool,
) -> None:
    """3xx/4xx answers raise their error after exactly one request, whatever ``retries``;
    only a rejected key is permanent (not recoverable)."""
    server.script("GET", "/sdk/init", Reply.error(status, message="nope"))
    server.set_default("GET", "/sdk/init", OK)
    with pytest.raises(cls) as info:
        make_client(retries=5).get_json("/sdk/init")
    assert info.value.code == code
    assert info.value.status_code == status
    assert info.value.recoverable is recoverable
    assert len(server.requests("GET", "/sdk/init")) == 1


@pytest.mark.parametrize(
    ("status", "code"), [(408, "NETWORK_TIMEOUT"), (425, "NETWORK_UNEXPECTED_STATUS")]
)
def test_408_and_425_are_retried_within_the_call(
    server: FaultServer, make_client: MakeClient, status: int, code: str
) -> None:
    """408 Request Timeout and 425 Too Early ask to be retried: the call tries again."""
    server.script("GET", "/sdk/init", Reply.error(status), OK)
    assert make_client(retries=2).get_json("/sdk/init") == {"ok": True}
    assert len(server.requests("GET", "/sdk/init")) == 2
    assert error_from_response(status, b"", {}).code == code


def test_refused_signature_is_a_security_error_not_a_rejected_key(
    server: FaultServer, make_client: MakeClient
) -> None:
    """A 403 whose body says SECURITY_SIGNATURE_INVALID leaves the key usable."""
    server.script("POST", "/sdk/events/batch", Reply.error(403, code="SECURITY_SIGNATURE_INVALID"))
    server.set_default("GET", "/sdk/init", OK)
    client = make_client()
    with pytest.raises(SecurityError) as info:
        client.post_json("/sdk/events/batch", {"events": []})
    assert info.value.code == "SECURITY_SIGNATURE_INVALID"
    assert info.value.status_code == 403
    assert not info.value.recoverable
    assert not client.key_rejected
    assert client.get_json("/sdk/init") == {"ok": True}


@pytest.mark.parametrize(
    ("status", "code"), [(401, "AUTH_INVALID_KEY"), (403, "AUTH_INSUFFICIENT_PERMISSIONS")]
)
def test_rejected_key_is_never_sent_again(
    server: FaultServer, make_client: MakeClient, status: int, code: str
) -> None:
    """After a 401 (no secondary key) or a 403, polls, event posts and stream tokens raise
    AuthenticationError at once and nothing more reaches the server."""
    server.script("GET", "/sdk/init", Reply.error(status))
    server.set_default("GET", "/sdk/init", OK)
    server.set_default("GET", "/sdk/updates", OK)
    server.set_default("POST", "/sdk/events/batch", OK)
    client = make_client()
    assert not client.key_rejected
    with pytest.raises(AuthenticationError):
        client.get_json("/sdk/init")
    assert client.key_rejected
    calls = (
        lambda: client.get_json("/sdk/updates"),
        lambda: client.post_json("/sdk/events/batch", {"events": []}),
        client.fetch_stream_token,
    )
    for call in calls:
        with pytest.raises(AuthenticationError) as info:
            call()
        assert info.value.code == code
        assert info.value.status_code == status
        assert not info.value.recoverable
        assert API_KEY not in str(info.value)
    with pytest.raises(AuthenticationError), client.open_event_stream("tok"):
        pass  # pragma: no cover - refused before opening
    assert len(server.requests()) == 1


def test_error_body_fields_reach_the_error(server: FaultServer, make_client: MakeClient) -> None:
    """``message`` becomes the text, ``requestId`` the request id, ``Retry-After`` retry_after."""
    server.script(
        "GET",
        "/sdk/init",
        Reply.json(
            {"error": "DOWN", "message": "maintenance window", "requestId": "r-42"},
            503,
            headers={"Retry-After": "7"},
        ),
    )
    with pytest.raises(NetworkError) as info:
        make_client(retries=1).get_json("/sdk/init")
    error = info.value
    assert error.code == "NETWORK_SERVER_ERROR"
    assert "maintenance window" in error.message
    assert error.request_id == "r-42"
    assert error.retry_after == 7
    assert error.details is not None and error.details["server_error"] == "DOWN"


def test_non_json_error_body_becomes_the_message() -> None:
    """A plain-text error body is used as the message; X-Request-Id is the fallback id."""
    error = error_from_response(
        502, b"Bad gateway from proxy", {"Content-Type": "text/plain", "X-Request-Id": "h-1"}
    )
    assert isinstance(error, NetworkError)
    assert "Bad gateway from proxy" in error.message
    assert error.request_id == "h-1"


def test_error_field_is_used_when_message_is_absent() -> None:
    """``error`` is the message when the body has no ``message``."""
    error = error_from_response(
        401, b'{"error": "key revoked"}', {"content-type": "application/json"}
    )
    assert "key revoked" in error.message


def test_retry_after_parsing_accepts_seconds_and_future_dates() -> None:
    """Retry-After is positive integer seconds or a future HTTP-date (+1 s), else None."""
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=timezone.utc)
    future = format_datetime(now + timedelta(seconds=10), usegmt=True)
    past = format_datetime(now - timedelta(seconds=10), usegmt=True)
    assert parse_retry_after("5") == 5
    assert parse_retry_after(" 12 ") == 12
    assert parse_retry_after(future, now=now) == 11
    assert parse_retry_after(past, now=now) is None
    for bad in (None, "", "0", "-3", "1.5", "tomorrow"):
        assert parse_retry_after(bad) is None


def test_redirects_are_not_followed(server: FaultServer, make_client: MakeClient) -> None:
    """A 3xx is NETWORK_UNEXPECTED_STATUS and its Location is never requested."""
    server.script("GET", "/sdk/init", Reply(status=302, headers={"Location": "/elsewhere"}))
    with pytest.raises(FlagKitError) as info:
        make_client().get_json("/sdk/init")
    assert info.value.code == "NETWORK_UNEXPECTED_STATUS"
    assert [r.path for r in server.requests()] == ["/sdk/init"]


@pytest.mark.parametrize(
    "reply",
    [
        Reply.malformed_json(),
        Reply.text("<html>hi</html>", content_type="text/html"),
        Reply.json([1, 2, 3]),
        Reply.json("just a string"),
    ],
    ids=["truncated", "html", "array", "string"],
)
def test_2xx_that_is_not_a_json_object_is_an_invalid_response(
    server: FaultServer, make_client: MakeClient, reply: Reply
) -> None:
    """Malformed JSON, a non-JSON type or a non-object body raise NETWORK_INVALID_RESPONSE."""
    server.set_default("GET", "/sdk/init", reply)
    with pytest.raises(NetworkError) as info:
        make_client(retries=1).get_json("/sdk/init")
    assert info.value.code == "NETWORK_INVALID_RESPONSE"


def test_204_is_an_empty_object(server: FaultServer, make_client: MakeClient) -> None:
    """A 204 No Content answer is a success with an empty object."""
    server.script("POST", "/sdk/events/batch", Reply(status=204))
    assert make_client().post_json("/sdk/events/batch", {"events": []}) == {}


# -- transport failures --------------------------------------------------------------------


def test_read_timeout_mentions_the_seconds(server: FaultServer, make_client: MakeClient) -> None:
    """A response slower than ``timeout`` raises NETWORK_TIMEOUT naming the timeout."""
    gate = threading.Event()
    server.set_default("GET", "/sdk/init", Reply.json({}, gate=gate))
    try:
        with pytest.raises(NetworkError) as info:
            make_client(timeout=0.2, retries=1).get_json("/sdk/init")
    finally:
        gate.set()
    assert info.value.code == "NETWORK_TIMEOUT"
    assert "0.2s" in info.value.message
    assert isinstance(info.value.__cause__, Exception)


def test_connection_refused(make_client: MakeClient) -> None:
    """Nothing listening on the port gives NETWORK_CONNECTION_REFUSED."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(NetworkError) as info:
        make_client(base_url=f"http://127.0.0.1:{port}/api/v1", retries=1).get_json("/sdk/init")
    assert info.value.code == "NETWORK_CONNECTION_REFUSED"


def test_dropped_connection_is_retried(server: FaultServer, make_client: MakeClient) -> None:
    """A connection closed without a response is a NETWORK_ERROR and is retried."""
    server.script("GET", "/sdk/init", Reply.dropped(), Reply.dropped(), OK)
    assert make_client(retries=3).get_json("/sdk/init") == {"ok": True}
    assert len(server.requests("GET", "/sdk/init")) == 3


def test_dropped_connection_on_last_attempt_raises_network_error(
    server: FaultServer, make_client: MakeClient
) -> None:
    """When every attempt is dropped the error code is NETWORK_ERROR."""
    server.set_default("GET", "/sdk/init", Reply.dropped())
    with pytest.raises(NetworkError) as info:
        make_client(retries=2).get_json("/sdk/init")
    assert info.value.code == "NETWORK_ERROR"


def test_tls_failure_is_an_ssl_error_and_not_retried(
    server: FaultServer, make_client: MakeClient
) -> None:
    """Speaking TLS to a plain-HTTP port fails with NETWORK_SSL_ERROR, without retries."""
    client = make_client(base_url=f"https://127.0.0.1:{server.port}/api/v1", retries=3)
    with pytest.raises(NetworkError) as info:
        client.get_json("/sdk/init")
    assert info.value.code == "NETWORK_SSL_ERROR"
    assert not info.value.recoverable


def test_tls_verification_is_always_required() -> None:
    """Every client's TLS context requires a verified certificate and hostname."""
    from flagkit.http._transport import ssl_context

    for base_url in ("https://api.flagkit.dev/api/v1", "http://localhost:8200/api/v1"):
        context = ssl_context(base_url)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
    # Plain-http clients get a context with no trust anchors: any certificate is refused.
    assert ssl_context("http://localhost:8200").get_ca_certs() == []


# -- retries -----------------------------------------------------------------------------


def test_5xx_is_retried_until_success(server: FaultServer, make_client: MakeClient) -> None:
    """503, 503, 200 with retries=3 makes exactly three requests and returns the body."""
    server.script("GET", "/sdk/init", Reply.error(503), Reply.error(503), Reply.json({"n": 3}))
    assert make_client(retries=3).get_json("/sdk/init") == {"n": 3}
    assert len(server.requests("GET", "/sdk/init")) == 3


def test_retries_stop_at_the_attempt_limit(server: FaultServer, make_client: MakeClient) -> None:
    """With every answer a 500, ``retries=2`` makes two requests and raises the 5xx."""
    server.set_default("GET", "/sdk/init", Reply.error(500))
    with pytest.raises(NetworkError) as info:
        make_client(retries=2).get_json("/sdk/init")
    assert info.value.code == "NETWORK_SERVER_ERROR"
    assert len(server.requests("GET", "/sdk/init")) == 2


def test_retries_zero_makes_one_attempt(server: FaultServer, make_client: MakeClient) -> None:
    """``retries=0`` still sends the request once."""
    server.script("GET", "/sdk/init", OK)
    assert make_client(retries=0).get_json("/sdk/init") == {"ok": True}
    assert len(server.requests()) == 1


def test_retry_after_on_503_is_honoured(server: FaultServer, make_client: MakeClient) -> None:
    """The retry after a 503 with ``Retry-After: 1`` comes at least one second later."""
    server.script("GET", "/sdk/init", Reply.error(503, retry_after=1), OK)
    assert make_client(retries=2).get_json("/sdk/init") == {"ok": True}
    first, second = server.requests("GET", "/sdk/init")
    assert second.received_at - first.received_at >= 1.0


# -- 429 cooldown --------------------------------------------------------------------------


def test_429_starts_a_cooldown_during_which_nothing_is_sent(
    server: FaultServer, make_client: MakeClient
) -> None:
    """After a 429 further calls fail fast with AUTH_RATE_LIMITED until Retry-After passes."""
    server.script("GET", "/sdk/init", Reply.error(429, retry_after=1))
    server.set_default("GET", "/sdk/init", OK)
    server.set_default("POST", "/sdk/events/batch", OK)
    client = make_client(retries=3)
    with pytest.raises(AuthenticationError) as first:
        client.get_json("/sdk/init")
    assert first.value.retry_after == 1
    with pytest.raises(AuthenticationError) as second:
        client.post_json("/sdk/events/batch", {"events": []})
    assert second.value.code == "AUTH_RATE_LIMITED"
    assert len(server.requests()) == 1

    def goes_through() -> bool:
        try:
            client.get_json("/sdk/init")
        except AuthenticationError:
            return False
        return True

    wait_until(goes_through, timeout=5, interval=0.05, message="cooldown end")
    first_request, second_request = server.requests()
    assert second_request.received_at - first_request.received_at >= 1.0


def test_429_without_retry_after_still_cools_down(
    server: FaultServer, make_client: MakeClient
) -> None:
    """A 429 with no Retry-After pauses requests too (default cooldown)."""
    server.script("GET", "/sdk/init", Reply.error(429))
    server.set_default("GET", "/sdk/init", OK)
    client = make_client()
    with pytest.raises(AuthenticationError):
        client.get_json("/sdk/init")
    with pytest.raises(AuthenticationError) as info:
        client.get_json("/sdk/init")
    assert info.value.code == "AUTH_RATE_LIMITED"
    assert len(server.requests()) == 1


# -- deadline -------------------------------------------------------------------------------


def test_deadline_shortens_the_attempt_timeout(
    server: FaultServer, make_client: MakeClient
) -> None:
    """A deadline closer than ``timeout`` ends a slow request with NETWORK_TIMEOUT, no retry."""
    gate = threading.Event()
    server.set_default("GET", "/sdk/init", Reply.json({}, gate=gate))
    client = make_client(timeout=30.0, retries=3)
    try:
        with pytest.raises(NetworkError) as info:
            client.get_json("/sdk/init", deadline=time.monotonic() + 0.3)
    finally:
        gate.set()
    assert info.value.code == "NETWORK_TIMEOUT"
    assert len(server.requests()) == 1


def test_backoff_that_would_pass_the_deadline_is_not_slept(
    server: FaultServer, make_client: MakeClient
) -> None:
    """With a 1 s backoff and a 0.3 s deadline, the 503 is raised after one request."""
    server.script("GET", "/sdk/init", Reply.error(503), OK)
    client = make_client(retries=3, retry=RetryOptions(base_delay=1.0, jitter=0.0))
    with pytest.raises(NetworkError) as info:
        client.get_json("/sdk/init", deadline=time.monotonic() + 0.3)
    assert info.value.code == "NETWORK_SERVER_ERROR"
    assert len(server.requests()) == 1


def test_retry_after_beyond_the_deadline_stops_retrying(
    server: FaultServer, make_client: MakeClient
) -> None:
    """A Retry-After that ends after the deadline is not waited for."""
    server.script("GET", "/sdk/init", Reply.error(503, retry_after=30), OK)
    with pytest.raises(NetworkError):
        make_client(retries=3).get_json("/sdk/init", deadline=time.monotonic() + 2)
    assert len(server.requests()) == 1


def test_passed_deadline_sends_nothing(server: FaultServer, make_client: MakeClient) -> None:
    """A deadline already in the past fails with NETWORK_TIMEOUT before sending."""
    server.set_default("GET", "/sdk/init", OK)
    with pytest.raises(NetworkError) as info:
        make_client().get_json("/sdk/init", deadline=time.monotonic() - 1)
    assert info.value.code == "NETWORK_TIMEOUT"
    assert server.requests() == []


# -- circuit breaker -----------------------------------------------------------------------


def breaker(threshold: int = 2, reset: float = 0.3) -> CircuitBreakerOptions:
    return CircuitBreakerOptions(failure_threshold=threshold, reset_timeout=reset)


def test_breaker_opens_after_n_failures_and_sends_nothing(
    server: FaultServer, make_client: MakeClient
) -> None:
    """Two failed attempts open the circuit; the next call raises CircuitOpenError unsent."""
    server.set_default("GET", "/sdk/init", Reply.error(503))
    client = make_client(retries=1, circuit_breaker=breaker(reset=60))
    for _ in range(2):
        with pytest.raises(NetworkError):
            client.get_json("/sdk/init")
    assert client.circuit_state == "OPEN"
    with pytest.raises(CircuitOpenError) as info:
        client.get_json("/sdk/init")
    assert info.value.code == "NETWORK_CIRCUIT_OPEN"
    assert len(server.requests()) == 2


def test_breaker_counts_each_attempt(server: FaultServer, make_client: MakeClient) -> None:
    """Retries count individually: one call with 3 attempts opens a threshold-2 breaker."""
    server.set_default("GET", "/sdk/init", Reply.error(503))
    client = make_client(retries=3, circuit_breaker=breaker(reset=60))
    with pytest.raises(CircuitOpenError):
        client.get_json("/sdk/init")
    assert len(server.requests()) == 2


def test_definite_answers_do_not_open_the_breaker(
    server: FaultServer, make_client: MakeClient
) -> None:
    """4xx answers (other than 408/429) mean the server is up and never open the circuit."""
    server.set_default("GET", "/sdk/init", Reply.error(404))
    server.set_default("GET", "/sdk/updates", Reply.error(409))
    client = make_client(circuit_breaker=breaker(threshold=1, reset=60))
    for path in ("/sdk/init", "/sdk/updates", "/sdk/init"):
        with pytest.raises(FlagKitError) as info:
            client.get_json(path)
        assert not isinstance(info.value, CircuitOpenError)
    assert client.circuit_state == "CLOSED"
    assert len(server.requests()) == 3


def test_half_open_lets_one_probe_through_and_closes_on_success(
    server: FaultServer, make_client: MakeClient
) -> None:
    """After reset_timeout one probe is sent; concurrent calls fail fast; success closes."""
    server.script("GET", "/sdk/init", Reply.error(503), Reply.error(503))
    gate = threading.Event()
    server.script("GET", "/sdk/init", Reply.json({"probe": True}, gate=gate))
    server.set_default("GET", "/sdk/init", OK)
    client = make_client(retries=1, circuit_breaker=breaker(reset=0.2))
    for _ in range(2):
        with pytest.raises(NetworkError):
            client.get_json("/sdk/init")
    wait_until(lambda: client.circuit_state == "HALF_OPEN", message="half-open")

    results: list[object] = []
    probe = threading.Thread(target=lambda: results.append(client.get_json("/sdk/init")))
    probe.start()
    try:
        server.wait_for_requests(3)
        with pytest.raises(CircuitOpenError):
            client.get_json("/sdk/init")
        assert len(server.requests()) == 3
    finally:
        gate.set()
        probe.join(5)
    assert results == [{"probe": True}]
    assert client.circuit_state == "CLOSED"
    assert client.get_json("/sdk/init") == {"ok": True}
    assert len(server.requests()) == 4


def test_failed_probe_reopens_the_circuit(server: FaultServer, make_client: MakeClient) -> None:
    """A half-open probe that fails puts the breaker back to OPEN, failing fast again."""
    server.set_default("GET", "/sdk/init", Reply.error(503))
    client = make_client(retries=1, circuit_breaker=breaker(reset=0.2))
    for _ in range(2):
        with pytest.raises(NetworkError):
            client.get_json("/sdk/init")
    wait_until(lambda: client.circuit_state == "HALF_OPEN", message="half-open")
    with pytest.raises(NetworkError) as info:
        client.get_json("/sdk/init")
    assert not isinstance(info.value, CircuitOpenError)
    assert client.circuit_state == "OPEN"
    with pytest.raises(CircuitOpenError):
        client.get_json("/sdk/init")
    assert len(server.requests()) == 3


# -- usage headers, lifecycle, concurrency -------------------------------------------------


def test_usage_headers_are_parsed_and_logged(
    server: FaultServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """High usage logs warnings and a suspended subscription logs an error."""
    headers = {
        "X-API-Usage-Percent": "91.5",
        "X-Evaluation-Usage-Percent": "12",
        "X-Rate-Limit-Warning": "true",
        "X-Subscription-Status": "suspended",
    }
    server.script("GET", "/sdk/init", Reply.json({}, headers=headers))
    client = make_client()
    with caplog.at_level(logging.DEBUG, logger="flagkit"):
        client.get_json("/sdk/init")
    usage = client.last_usage
    assert usage is not None
    assert usage.api_usage_percent == 91.5
    assert usage.evaluation_usage_percent == 12.0
    assert usage.rate_limit_warning is True
    assert usage.subscription_status == "suspended"
    messages = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (logging.WARNING, "API usage at 91.5% of the plan limit") in messages
    assert not any("evaluation usage" in m for _, m in messages)
    assert (logging.ERROR, "the FlagKit subscription is suspended") in messages


def test_usage_headers_absent_or_odd() -> None:
    """No usage headers means no metrics; unknown status values are ignored."""
    assert parse_usage_headers({"Content-Type": "application/json"}) is None
    metrics = parse_usage_headers(
        {"x-subscription-status": "weird", "X-Rate-Limit-Warning": "TRUE"}
    )
    assert metrics is not None
    assert metrics.subscription_status is None
    assert metrics.rate_limit_warning is False


def test_closed_client_sends_nothing(server: FaultServer, make_client: MakeClient) -> None:
    """After ``close()`` calls raise INTERNAL_STATE_ERROR without sending."""
    server.set_default("GET", "/sdk/init", OK)
    client = make_client()
    client.close()
    client.close()
    with pytest.raises(FlagKitError) as info:
        client.get_json("/sdk/init")
    assert info.value.code == "INTERNAL_STATE_ERROR"
    assert server.requests() == []


def test_close_interrupts_a_backoff_sleep(
    server: FaultServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A caller sleeping before its retry is released by ``close()`` with the last error."""
    server.set_default("GET", "/sdk/init", Reply.error(503))
    client = make_client(retries=3, retry=RetryOptions(base_delay=60.0, max_delay=60.0))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.get_json("/sdk/init")
        except FlagKitError as exc:
            errors.append(exc)

    thread = threading.Thread(target=call)
    with caplog.at_level(logging.WARNING, logger="flagkit.http"):
        thread.start()
        wait_until(lambda: "retrying in 60" in caplog.text, message="backoff sleep")
        client.close()
    thread.join(5)
    assert not thread.is_alive()
    assert [getattr(e, "code", None) for e in errors] == ["NETWORK_SERVER_ERROR"]


def test_concurrent_callers_share_one_client(server: FaultServer, make_client: MakeClient) -> None:
    """Eight threads making requests at once all succeed."""
    server.set_default("GET", "/sdk/init", OK)
    client = make_client()
    failures: list[BaseException] = []

    def work() -> None:
        for _ in range(10):
            try:
                client.get_json("/sdk/init")
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert failures == []
    assert len(server.requests()) == 80


def test_repr_and_config_hide_the_api_key(make_client: MakeClient) -> None:
    """Neither the config's nor the client's repr contains the key; both show its id."""
    client = make_client(secondary_api_key="sdk_secondary_key_0002")
    config = HttpConfig(base_url="http://127.0.0.1:1/api/v1", api_key=API_KEY)
    for text in (repr(client), repr(config)):
        assert API_KEY not in text
        assert "sdk_prim" in text


@pytest.mark.parametrize("status", [302, 400, 404, 408, 409, 425, 500])
def test_a_transient_answer_to_the_first_load_is_retried(server: FaultServer, status: int) -> None:
    """Through the SDK client: one odd answer to the first ``/sdk/init`` does not fail the
    client for good; it becomes ready once the server answers normally."""
    server.script("GET", "/sdk/init", Reply.error(status))
    server.set_default("GET", "/sdk/init", Reply.json({"flags": []}))
    client = loopback_client(server.base_url, api_key=API_KEY, polling_interval=0.05)
    with contextlib.suppress(NetworkError):
        client.initialize()
    assert client.wait_for_ready(5)
    assert client.state.name == "READY"


def test_a_rejected_key_fails_the_first_load_for_good(server: FaultServer) -> None:
    """Through the SDK client: a 401 is permanent, and the key is not sent again, not even
    to deliver the events tracked meanwhile at ``close()``."""
    server.set_default("GET", "/sdk/init", Reply.error(401))
    server.set_default("POST", "/sdk/events/batch", Reply.json({"success": True}))
    client = loopback_client(server.base_url, api_key=API_KEY, polling_interval=0.05)
    with pytest.raises(AuthenticationError):
        client.initialize()
    assert client.state.name == "FAILED"
    client.track("purchase", {"amount": 1})
    client.close(timeout=1)
    assert [r.path for r in server.requests()] == ["/sdk/init"]


def test_only_a_rejected_key_is_permanent_among_all_statuses() -> None:
    """Over every 3xx-5xx status the table gives a recoverable error, except 401 and 403;
    no HTTP status maps to an evaluation code."""
    for status in range(300, 600):
        error = error_from_response(status, b"", {})
        assert error.recoverable is (status not in (401, 403)), status
        assert error.status_code == status
        assert not error.code.startswith("EVAL_"), status
