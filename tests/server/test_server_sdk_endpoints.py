"""The SDK endpoints over real HTTP: shapes (docs/protocol.md §4, §17), cursors, events, errors."""

from __future__ import annotations

import json
import re
import string
from typing import Any

import httpx
import pytest

from flagkit.server import FlagKitServer

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
FLAG_FIELDS = {"key", "value", "enabled", "version", "flagType", "lastModified"}


def assert_error_body(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check the §2.4 error shape and return the body."""
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert body["requestId"] == response.headers["x-request-id"]
    return body


def test_init_returns_full_flag_states_and_environment(http: httpx.Client) -> None:
    """/sdk/init sends every flag with all six fields plus the environment fields of §4.2."""
    response = http.get("/sdk/init")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert [f["key"] for f in body["flags"]] == ["dark-mode", "banner", "limit", "config"]
    for flag in body["flags"]:
        assert set(flag) >= FLAG_FIELDS
        assert flag["version"] == 1
        assert ISO_Z.match(flag["lastModified"])
    types = {f["key"]: f["flagType"] for f in body["flags"]}
    assert types == {
        "dark-mode": "boolean",
        "banner": "string",
        "limit": "number",
        "config": "json",
    }
    banner = next(f for f in body["flags"] if f["key"] == "banner")
    assert banner["enabled"] is False and banner["value"] == "Hello"
    config = next(f for f in body["flags"] if f["key"] == "config")
    assert config["fallthrough"] == {"variation": "blue"}  # targeting fields served untouched
    assert config["variations"][1] == {"id": "red", "value": {}}
    for name in ("environment", "environmentId", "projectId", "organizationId"):
        assert isinstance(body[name], str) and body[name]
    assert ISO_Z.match(body["serverTime"])
    assert isinstance(body["pollingIntervalSeconds"], int)
    assert body["streamingUrl"].endswith("/api/v1/sdk/stream")
    assert body["metadata"] == {}
    assert body["segments"] == [{"key": "beta-users", "included": ["u1", "u2"]}]


def test_init_environment_overrides_and_metadata() -> None:
    """Constructor overrides reach /sdk/init (environment id, polling interval, metadata)."""
    with FlagKitServer(
        environment_id="env-1",
        environment="staging",
        polling_interval_seconds=45,
        metadata={"sdkVersionMin": "1.0.0"},
    ) as srv:
        body = httpx.get(srv.base_url + "/sdk/init", headers={"X-API-Key": srv.api_key}).json()
    assert body["environmentId"] == "env-1"
    assert body["environment"] == "staging"
    assert body["pollingIntervalSeconds"] == 45
    assert body["metadata"] == {"sdkVersionMin": "1.0.0"}
    assert body["flags"] == []


def test_updates_returns_only_flags_changed_since_the_cursor(
    server: FlagKitServer, http: httpx.Client
) -> None:
    """A change after init's serverTime shows up in /sdk/updates with a new version."""
    cursor = http.get("/sdk/init").json()["serverTime"]
    assert http.get("/sdk/updates", params={"since": cursor}).json()["flags"] == []
    server.set_flag("limit", 20)
    body = http.get("/sdk/updates", params={"since": cursor}).json()
    assert [f["key"] for f in body["flags"]] == ["limit"]
    changed = body["flags"][0]
    assert set(changed) >= FLAG_FIELDS
    assert changed["value"] == 20 and changed["version"] == 2
    assert body["since"] == cursor
    assert ISO_Z.match(body["checkedAt"]) and body["checkedAt"] > cursor
    assert body["deleted"] == [] and body["segments"] == []


def test_updates_since_is_inclusive(server: FlagKitServer, http: httpx.Client) -> None:
    """A flag whose lastModified equals ``since`` is returned (§20.2)."""
    flag = server.set_flag("banner", "Bye")
    body = http.get("/sdk/updates", params={"since": flag["lastModified"]}).json()
    assert [f["key"] for f in body["flags"]] == ["banner"]


@pytest.mark.parametrize(
    "render",
    [
        lambda s: s,  # ...Z
        lambda s: s[:-1] + "+00:00",  # Python isoformat
        lambda s: s[:-1] + "%2B00:00",  # properly encoded
        lambda s: s[:-1] + "+00:00",  # sent literally: "+" is form-decoded to a space
        lambda s: s[:-1].replace("T", " ") + "Z",  # space separator
        lambda s: s[:-4] + "Z",  # milliseconds only
    ],
    ids=["Z", "offset-encoded-by-httpx", "percent-2B", "literal-plus", "space-sep", "millis"],
)
def test_updates_parses_since_leniently(
    server: FlagKitServer, http: httpx.Client, render: Any
) -> None:
    """Every cursor form of §17.4/§20.2 selects the same changed flag, and only it."""
    cursor = server.set_flag("dark-mode", False)["lastModified"]
    raw = render(cursor)
    url = f"{server.base_url}/sdk/updates?since={raw}"  # not percent-encoded, like the SDK
    body = http.get(url).json()
    assert [f["key"] for f in body["flags"]] == ["dark-mode"]


def test_updates_literal_plus_offset_in_other_timezone(
    server: FlagKitServer, http: httpx.Client
) -> None:
    """A non-UTC offset sent literally (form-decoded to a space) is still applied."""
    server.set_flag("dark-mode", False)
    # 2 hours ahead of UTC and one hour in the future: nothing changed since then.
    body = http.get(f"{server.base_url}/sdk/updates?since=2999-01-01T10:00:00+02:00").json()
    assert body["flags"] == []


@pytest.mark.parametrize("since", ["", "garbage", "2025-13-45T99:00:00Z"])
def test_updates_with_missing_or_unparsable_since_returns_everything(
    http: httpx.Client, since: str
) -> None:
    """A missing or unparsable ``since`` returns all flags (§17.4), echoing the value."""
    body = http.get("/sdk/updates", params={"since": since} if since else None).json()
    assert len(body["flags"]) == 4
    assert body["since"] == since


def test_updates_cursor_from_same_snapshot_loses_nothing(
    server: FlagKitServer, http: httpx.Client
) -> None:
    """Using checkedAt as the next cursor returns exactly the later change."""
    first = http.get("/sdk/updates", params={"since": "2000-01-01T00:00:00Z"}).json()
    server.set_flag("banner", "next")
    second = http.get("/sdk/updates", params={"since": first["checkedAt"]}).json()
    assert [f["key"] for f in second["flags"]] == ["banner"]
    third = http.get("/sdk/updates", params={"since": second["checkedAt"]}).json()
    assert third["flags"] == []


def test_updates_lists_deleted_flags_and_changed_segments(
    server: FlagKitServer, http: httpx.Client
) -> None:
    """Deletions and segment changes since the cursor appear in the extension fields."""
    cursor = http.get("/sdk/init").json()["serverTime"]
    server.delete_flag("limit")
    server.set_segment("vip", included=["u9"])
    server.delete_segment("beta-users")
    body = http.get("/sdk/updates", params={"since": cursor}).json()
    assert body["deleted"] == ["limit"]
    assert body["segments"] == [{"key": "vip", "included": ["u9"]}]
    assert body["deletedSegments"] == ["beta-users"]
    assert body["flags"] == []


def test_stream_token_is_url_safe_with_expiry(http: httpx.Client) -> None:
    """The token endpoint returns a URL-safe token and an integer lifetime (§4.4)."""
    response = http.post("/sdk/stream/token", json={})
    assert response.status_code == 200
    body = response.json()
    allowed = set(string.ascii_letters + string.digits + "-_")
    assert body["token"] and set(body["token"]) <= allowed
    assert body["expiresIn"] == 3600
    assert http.post("/sdk/stream/token", json={}).json()["token"] != body["token"]


def python_event(event_id: str, event_type: str = "purchase") -> dict[str, Any]:
    """An event in the Python dialect (§10.2) with an id (§20.6)."""
    return {
        "eventType": event_type,
        "timestamp": "2025-03-01T12:00:00.123456+00:00",
        "sdkVersion": "1.1.0",
        "sdkLanguage": "python",
        "sessionId": "s-1",
        "environmentId": "",
        "eventData": {"amount": 9.5},
        "eventId": event_id,
    }


def test_events_batch_accepts_both_dialects(server: FlagKitServer, http: httpx.Client) -> None:
    """Python and Go event shapes are both recorded as received (§10.2, §17.5)."""
    go_event = {
        "id": "evt_1_abcdefgh",
        "type": "signup",
        "timestamp": "2025-03-01T12:00:00Z",
        "sessionId": "s-2",
        "environmentId": "env",
        "sdkVersion": "1.1.0",
        "data": {"plan": "pro"},
        "context": {"userId": "u1"},
    }
    response = http.post("/sdk/events/batch", json={"events": [python_event("e1"), go_event]})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["success"] is True and body["recorded"] == 2 and body["errors"] == 0
    assert isinstance(body["message"], str)
    assert server.events("purchase") == [python_event("e1")]
    assert server.events("signup") == [go_event]
    assert server.events(session_id="s-2") == [go_event]


def test_duplicate_event_ids_are_recorded_once(server: FlagKitServer, http: httpx.Client) -> None:
    """Re-delivered events (same eventId, or Go ``id``) are recorded once (§20.6)."""
    batch = {"events": [python_event("a"), python_event("b"), python_event("a")]}
    first = http.post("/sdk/events/batch", json=batch).json()
    assert (first["recorded"], first["duplicates"]) == (2, 1)
    again = http.post(
        "/sdk/events/batch", json={"events": [python_event("b"), {"type": "x", "id": "g1"}]}
    ).json()
    go_again = http.post("/sdk/events/batch", json={"events": [{"type": "x", "id": "g1"}]}).json()
    assert (again["recorded"], again["duplicates"]) == (1, 1)
    assert (go_again["recorded"], go_again["duplicates"]) == (0, 1)
    assert [e.get("eventId", e.get("id")) for e in server.events()] == ["a", "b", "g1"]
    assert server.event_stats == {"total": 3, "duplicates": 3, "errors": 0}


def test_events_without_ids_are_all_recorded(server: FlagKitServer, http: httpx.Client) -> None:
    """Events lacking an id cannot be de-duplicated and are each recorded."""
    event = {"eventType": "view"}
    body = http.post("/sdk/events/batch", json={"events": [event, event]}).json()
    assert body["recorded"] == 2
    assert len(server.events("view")) == 2


def test_malformed_events_are_counted_and_skipped(
    server: FlagKitServer, http: httpx.Client
) -> None:
    """Bad events inside a valid batch are counted in ``errors``; the rest recorded (§20.7)."""
    events = [
        python_event("ok"),
        "not an object",
        {"eventType": ""},
        {"eventData": {}},
        {"eventType": "x", "eventData": [1]},
        {"type": "y", "data": "str"},
        {"eventType": 5},
    ]
    response = http.post("/sdk/events/batch", json={"events": events})
    assert response.status_code == 200
    assert (response.json()["recorded"], response.json()["errors"]) == (1, 6)
    assert [e["eventId"] for e in server.events()] == ["ok"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"[1, 2]", "JSON object"),
        (b'{"evts": []}', "'events'"),
        (b'{"events": {"a": 1}}', "'events'"),
        (b'{"events": [', "malformed JSON"),
        (b"", "empty"),
        (b"\xff\xfe", "UTF-8"),
    ],
)
def test_events_batch_rejects_bad_bodies_with_400(
    server: FlagKitServer, http: httpx.Client, body: bytes, fragment: str
) -> None:
    """A body that is not an object with an ``events`` array is a 400 naming the problem."""
    response = http.post(
        "/sdk/events/batch", content=body, headers={"Content-Type": "application/json"}
    )
    error = assert_error_body(response, 400, "INVALID_REQUEST")
    assert fragment in error["message"]
    assert http.get("/sdk/init").status_code == 200  # still serving, same connection


def test_oversized_body_is_413(http: httpx.Client) -> None:
    """A body above ``max_body_bytes`` is refused with 413 before it is read."""
    with FlagKitServer(max_body_bytes=1024) as srv:
        big = {"events": [{"eventType": "x", "eventData": {"pad": "x" * 2000}}]}
        response = httpx.post(
            srv.base_url + "/sdk/events/batch", json=big, headers={"X-API-Key": srv.api_key}
        )
        error = assert_error_body(response, 413, "PAYLOAD_TOO_LARGE")
        assert "1024" in error["message"]
        ok = httpx.post(
            srv.base_url + "/sdk/events/batch",
            json={"events": [{"eventType": "x"}]},
            headers={"X-API-Key": srv.api_key},
        )
        assert ok.status_code == 200 and srv.event_stats["total"] == 1


def test_chunked_request_bodies_are_read(server: FlagKitServer, http: httpx.Client) -> None:
    """A body sent with chunked transfer encoding is decoded like any other."""
    payload = json.dumps({"events": [python_event("c1"), python_event("c2")]}).encode()

    def chunks() -> Any:
        yield payload[:10]
        yield payload[10:]

    response = http.post(
        "/sdk/events/batch", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200 and response.json()["recorded"] == 2


@pytest.mark.parametrize("endpoint", ["/sdk/init", "/sdk/updates", "/sdk/stream/token"])
def test_missing_or_wrong_api_key_is_401(server: FlagKitServer, endpoint: str) -> None:
    """REST endpoints need a configured X-API-Key; else 401 with the error body (§17.2)."""
    method = "POST" if endpoint.endswith("token") else "GET"
    url = server.base_url + endpoint
    missing = httpx.request(method, url)
    assert "X-API-Key" in assert_error_body(missing, 401, "AUTH_INVALID_KEY")["message"]
    wrong = httpx.request(method, url, headers={"X-API-Key": "sdk_wrong_key_0000"})
    body = assert_error_body(wrong, 401, "AUTH_INVALID_KEY")
    assert "sdk_wrong_key_0000" not in json.dumps(body)


def test_events_endpoint_requires_an_api_key(server: FlagKitServer) -> None:
    """Event batches without a key are refused and not recorded."""
    response = httpx.post(
        server.base_url + "/sdk/events/batch", json={"events": [{"eventType": "x"}]}
    )
    assert_error_body(response, 401, "AUTH_INVALID_KEY")
    assert server.events() == []


def test_sdk_headers_are_not_required(server: FlagKitServer) -> None:
    """Only X-API-Key is needed: no SDK headers or FlagKit User-Agent (§17.2)."""
    response = httpx.get(
        server.base_url + "/sdk/init", headers={"X-API-Key": server.api_key, "User-Agent": "curl/8"}
    )
    assert response.status_code == 200


def test_any_configured_key_is_accepted() -> None:
    """Every configured key works; the first is ``api_key``."""
    with FlagKitServer(api_keys=["sdk_first_key_0001", "srv_second_key_002"]) as srv:
        assert srv.api_key == "sdk_first_key_0001"
        for key in srv.api_keys:
            response = httpx.get(srv.base_url + "/sdk/init", headers={"X-API-Key": key})
            assert response.status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/sdk", "/other", "/api/v2/sdk/init"])
def test_unknown_paths_are_404_json(server: FlagKitServer, path: str) -> None:
    """Unknown paths get a 404 with the JSON error body (``/`` is the dashboard)."""
    response = httpx.get(server.url + path, headers={"X-API-Key": server.api_key})
    assert_error_body(response, 404, "NOT_FOUND")


def test_wrong_method_is_405_json(http: httpx.Client) -> None:
    """A known path with the wrong method is a 405 with an Allow header."""
    response = http.post("/sdk/init", json={})
    assert_error_body(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "GET"


def test_unsupported_method_and_garbage_request_line_get_json_errors(
    server: FlagKitServer,
) -> None:
    """Requests the HTTP layer rejects still get the JSON error body."""
    response = httpx.request("BREW", server.base_url + "/sdk/init")
    assert_error_body(response, 501, "NOT_IMPLEMENTED")
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    head, _, payload = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"Content-Type: application/json" in head
    assert json.loads(payload)["error"] == "BAD_REQUEST"
    assert httpx.get(server.base_url + "/health").json()["status"] == "ok"


def test_health_needs_no_key(server: FlagKitServer) -> None:
    """/api/v1/health answers without an API key (for readiness checks)."""
    response = httpx.get(server.base_url + "/health")
    assert response.status_code == 200 and response.json()["status"] == "ok"


def test_request_log_keeps_method_path_query_headers_and_body(
    server: FlagKitServer, http: httpx.Client
) -> None:
    """Tests of other parts can assert on what the server received."""
    http.post("/sdk/events/batch", json={"events": [python_event("r1")]})
    http.get(f"{server.base_url}/sdk/updates?since=2025-01-01T00:00:00+00:00")
    events_req = server.requests_to("events")[-1]
    assert events_req.method == "POST" and events_req.path == "/api/v1/sdk/events/batch"
    assert events_req.headers["x-api-key"] == server.api_key
    assert events_req.headers["X-API-KEY"] == server.api_key
    assert events_req.json()["events"][0]["eventId"] == "r1"
    assert events_req.status == 200
    assert server.api_key not in repr(events_req.headers)
    updates_req = server.requests_to("updates")[-1]
    assert updates_req.raw_query == "since=2025-01-01T00:00:00+00:00"
    assert updates_req.query == {"since": "2025-01-01T00:00:00 00:00"}
    assert [r.endpoint for r in server.requests] == ["events", "updates"]
