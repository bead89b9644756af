"""Fault injection from Python: forced statuses, latency, drops and malformed bodies."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from flagkit.server import FlagKitServer
from tests.server.helpers import SSEReader, Unparsable

OpenStream = Callable[..., SSEReader]


def test_status_queue_then_normal(server: FlagKitServer, http: httpx.Client) -> None:
    """``statuses=[503, 503]`` fails the next two requests, then serves normally."""
    server.inject_fault("init", statuses=[503, 503])
    codes = [http.get("/sdk/init").status_code for _ in range(3)]
    assert codes == [503, 503, 200]
    assert [r.status for r in server.requests_to("init")] == [503, 503, 200]
    assert server.faults() == []


def test_forced_status_has_error_body(server: FlagKitServer, http: httpx.Client) -> None:
    """A forced status answers with the §2.4 JSON error body."""
    server.inject_fault("events", statuses=[429], retry_after=1)
    response = http.post("/sdk/events/batch", json={"events": [{"eventType": "x"}]})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["error"] == "TOO_MANY_REQUESTS" and "429" in body["message"]
    assert server.events() == []


def test_faults_apply_before_authentication(server: FlagKitServer) -> None:
    """A forced status is sent even to a request with a wrong key (infrastructure failure)."""
    server.inject_fault("init", statuses=[502])
    response = httpx.get(server.base_url + "/sdk/init", headers={"X-API-Key": "sdk_bad_key_0000"})
    assert response.status_code == 502


def test_latency_makes_a_short_timeout_expire(server: FlagKitServer, http: httpx.Client) -> None:
    """Injected latency is longer than a client's read timeout, so that client times out."""
    server.inject_fault("updates", latency=1.0, count=1)
    with pytest.raises(httpx.ReadTimeout):
        http.get("/sdk/updates", timeout=0.2)
    assert http.get("/sdk/updates").status_code == 200


def test_drop_closes_the_connection_without_a_response(
    server: FlagKitServer, http: httpx.Client
) -> None:
    """``drop`` closes the connection; the client sees a transport error, not a status."""
    server.inject_fault("init", drop=True, count=2)
    for _ in range(2):
        with pytest.raises(httpx.TransportError):
            http.get("/sdk/init")
    assert http.get("/sdk/init").status_code == 200
    assert [r.status for r in server.requests_to("init")] == [0, 0, 200]


def test_malformed_body_is_not_json(server: FlagKitServer, http: httpx.Client) -> None:
    """``malformed`` answers 200 application/json with a body that does not parse."""
    server.inject_fault("init", malformed=True, count=1)
    response = http.get("/sdk/init")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(ValueError):
        response.json()
    assert http.get("/sdk/init").json()["flags"]


def test_fault_without_count_lasts_until_cleared(server: FlagKitServer, http: httpx.Client) -> None:
    """A drop fault with no statuses and no count lasts until ``clear_faults``."""
    server.inject_fault("stream_token", malformed=True)
    for _ in range(3):
        with pytest.raises(ValueError):
            http.post("/sdk/stream/token", json={}).json()
    server.clear_faults("stream_token")
    assert http.post("/sdk/stream/token", json={}).json()["token"]


def test_count_covers_statuses_then_other_faults(server: FlagKitServer, http: httpx.Client) -> None:
    """With a count, statuses come first and the remaining requests get the other fault."""
    server.inject_fault("updates", statuses=[500], malformed=True, count=2)
    first = http.get("/sdk/updates")
    second = http.get("/sdk/updates")
    third = http.get("/sdk/updates")
    assert first.status_code == 500
    assert second.status_code == 200 and not second.text.endswith("}")
    assert third.json()["checkedAt"]


def test_faults_on_the_stream(server: FlagKitServer, open_stream: OpenStream) -> None:
    """Stream faults: a forced status refuses the stream; malformed sends a broken frame first."""
    token = httpx.post(
        server.base_url + "/sdk/stream/token", headers={"X-API-Key": server.api_key}
    ).json()["token"]
    server.inject_fault("stream", statuses=[503])
    assert httpx.get(f"{server.base_url}/sdk/stream?token={token}").status_code == 503
    server.inject_fault("stream", malformed=True, count=1)
    reader = open_stream()
    assert isinstance(reader.next("flag_updated"), Unparsable)
    server.set_flag("limit", 1)
    assert reader.next("flag_updated")["value"] == 1  # the stream keeps working after it


def test_invalid_fault_arguments_raise(server: FlagKitServer) -> None:
    """Bad arguments raise ValueError naming the argument."""
    with pytest.raises(ValueError, match="endpoint"):
        server.inject_fault("nope", statuses=[503])
    with pytest.raises(ValueError, match="statuses"):
        server.inject_fault("init", statuses=[99])
    with pytest.raises(ValueError, match="latency"):
        server.inject_fault("init", latency=-0.1)
    with pytest.raises(ValueError, match="count"):
        server.inject_fault("init", count=0)


def test_stop_interrupts_injected_latency() -> None:
    """A request waiting on injected latency ends when the server stops."""
    srv = FlagKitServer().start()
    srv.inject_fault("init", latency=60)
    import threading

    outcome: list[BaseException | int] = []

    def call() -> None:
        try:
            outcome.append(
                httpx.get(
                    srv.base_url + "/sdk/init", headers={"X-API-Key": srv.api_key}, timeout=30
                ).status_code
            )
        except httpx.HTTPError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    srv.wait_for_requests("init")
    srv.stop()
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(outcome[0], httpx.TransportError)
