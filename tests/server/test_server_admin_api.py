"""The admin API over HTTP: auth, flags, segments, events, faults, reset, status, reload."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from flagkit.server import FlagKitServer


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}],
    ids=["missing", "wrong-token", "wrong-scheme"],
)
def test_admin_requires_the_bearer_token(server: FlagKitServer, headers: dict[str, str]) -> None:
    """Without the right bearer token every admin call is a 401 with the JSON error body."""
    response = httpx.get(server.base_url + "/admin/flags", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == "ADMIN_UNAUTHORIZED" and body["requestId"]


def test_api_key_does_not_open_the_admin_api(server: FlagKitServer) -> None:
    """An SDK API key is not an admin credential."""
    response = httpx.get(server.base_url + "/admin/flags", headers={"X-API-Key": server.api_key})
    assert response.status_code == 401


def test_list_get_put_patch_delete_flags(server: FlagKitServer, admin: httpx.Client) -> None:
    """Flags can be listed, read, created, merged, replaced and deleted."""
    listed = admin.get("/flags").json()["flags"]
    assert [f["key"] for f in listed] == ["dark-mode", "banner", "limit", "config"]
    assert admin.get("/flags/limit").json()["value"] == 10

    created = admin.put("/flags/new", json={"value": "x", "enabled": False}).json()
    assert (created["value"], created["flagType"], created["enabled"], created["version"]) == (
        "x",
        "string",
        False,
        1,
    )
    merged = admin.patch("/flags/config", json={"value": [1]}).json()
    assert merged["fallthrough"] == {"variation": "blue"} and merged["version"] == 2
    replaced = admin.put("/flags/config", params={"replace": "true"}, json={"value": {}}).json()
    assert "fallthrough" not in replaced and replaced["version"] == 3
    explicit = admin.put("/flags/limit", json={"value": 1, "version": 40}).json()
    assert explicit["version"] == 40
    via_post = admin.post("/flags", json={"key": "posted", "value": 1.5}).json()
    assert via_post["flagType"] == "number"

    assert admin.delete("/flags/new").json() == {"deleted": "new"}
    assert server.get_flag("new") is None
    missing = admin.get("/flags/new")
    assert missing.status_code == 404 and missing.json()["error"] == "FLAG_NOT_FOUND"
    assert admin.delete("/flags/new").status_code == 404
    assert admin.patch("/flags/new", json={"value": 1}).status_code == 404


def test_flag_keys_are_percent_decoded(server: FlagKitServer, admin: httpx.Client) -> None:
    """Keys are percent-decoded from the URL path; a key the client would drop is a 400."""
    assert admin.put("/flags/new%2Dsearch_2", json={"value": True}).status_code == 200
    assert server.get_flag("new-search_2") is not None
    refused = admin.put("/flags/caf%C3%A9%20mode", json={"value": True})
    assert refused.status_code == 400
    assert "flag key 'café mode' may contain only letters, digits" in refused.json()["message"]
    assert server.get_flag("café mode") is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": True, "enabled": "yes"}, "enabled"),
        ({"value": "x", "flagType": "boolean"}, "value"),
        ({"value": 1, "flagType": "float"}, "flagType"),
        ({"enabled": True}, "value"),
        ({"value": 1, "version": "2"}, "version"),
        ({"value": 1, "key": "other"}, "key"),
    ],
)
def test_wrong_types_are_400_naming_the_field(
    server: FlagKitServer, admin: httpx.Client, body: dict[str, object], field: str
) -> None:
    """Invalid flag fields are refused with a 400 whose message names the field."""
    response = admin.put("/flags/brand-new", json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["error"] == "INVALID_REQUEST"
    assert field in error["message"]
    assert server.get_flag("brand-new") is None


def test_malformed_admin_json_is_400(admin: httpx.Client) -> None:
    """A malformed or non-object body is a 400, and the server keeps serving."""
    bad = admin.put("/flags/x", content=b"{nope", headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and "malformed JSON" in bad.json()["message"]
    not_object = admin.put("/flags/x", json=[1])
    assert not_object.status_code == 400
    assert admin.get("/flags").status_code == 200


def test_unknown_admin_paths_are_404(admin: httpx.Client) -> None:
    """Unknown admin resources are 404."""
    for path in ("/nothing", "/flags/a/b", "/events/3"):
        assert admin.get(path).status_code == 404


def test_segments_crud(server: FlagKitServer, admin: httpx.Client) -> None:
    """Segments can be listed, read, replaced and deleted."""
    assert admin.get("/segments").json()["segments"] == [
        {"key": "beta-users", "included": ["u1", "u2"]}
    ]
    assert admin.put("/segments/vip", json={"included": ["u3"]}).json() == {
        "key": "vip",
        "included": ["u3"],
    }
    assert admin.get("/segments/vip").json()["included"] == ["u3"]
    assert admin.delete("/segments/vip").status_code == 200
    assert admin.get("/segments/vip").status_code == 404


def test_events_listing_with_filters_and_cursor(
    server: FlagKitServer, http: httpx.Client, admin: httpx.Client
) -> None:
    """Recorded events can be read with type/session filters, a limit and an ``after`` cursor."""
    events = [
        {"eventType": "view", "sessionId": "s1", "eventId": "1"},
        {"eventType": "purchase", "sessionId": "s1", "eventId": "2"},
        {"type": "purchase", "sessionId": "s2", "id": "3"},
    ]
    http.post("/sdk/events/batch", json={"events": events})
    page = admin.get("/events").json()
    assert page["events"] == events and page["total"] == 3 and page["cursor"] == 3
    assert admin.get("/events", params={"type": "purchase"}).json()["events"] == events[1:]
    assert admin.get("/events", params={"sessionId": "s2"}).json()["events"] == events[2:]
    assert admin.get("/events", params={"limit": "1"}).json()["events"] == events[2:]
    http.post("/sdk/events/batch", json={"events": [{"eventType": "later", "eventId": "4"}]})
    newer = admin.get("/events", params={"after": str(page["cursor"])}).json()
    assert [e["eventType"] for e in newer["events"]] == ["later"] and newer["cursor"] == 4
    assert admin.get("/events", params={"after": "x"}).status_code == 400
    assert admin.delete("/events").status_code == 200
    assert server.events() == []


def test_faults_can_be_set_listed_and_cleared(
    server: FlagKitServer, http: httpx.Client, admin: httpx.Client
) -> None:
    """Faults set through the admin API apply to SDK requests and can be cleared."""
    response = admin.post("/faults", json={"endpoint": "init", "statuses": [503], "retryAfter": 2})
    assert response.status_code == 200
    assert response.json()["faults"][0]["statuses"] == [503]
    failed = http.get("/sdk/init")
    assert failed.status_code == 503 and failed.headers["retry-after"] == "2"
    assert failed.json()["error"] == "SERVICE_UNAVAILABLE"
    assert http.get("/sdk/init").status_code == 200
    admin.post("/faults", json={"endpoint": "updates", "statuses": [500], "count": 5})
    assert admin.delete("/faults", params={"endpoint": "updates"}).json()["faults"] == []
    assert http.get("/sdk/updates").status_code == 200


@pytest.mark.parametrize(
    "spec",
    [
        {"endpoint": "nope"},
        {"endpoint": "init", "statuses": [200]},
        {"endpoint": "init", "latency": -1},
        {"endpoint": "init", "count": 0},
        {"endpoint": "init", "surprise": 1},
    ],
)
def test_bad_fault_specs_are_400(admin: httpx.Client, spec: dict[str, object]) -> None:
    """Fault specs are validated and refused with a message naming the problem."""
    response = admin.post("/faults", json=spec)
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_REQUEST"


def test_reset_restores_initial_flags_and_clears_state(
    server: FlagKitServer, http: httpx.Client, admin: httpx.Client
) -> None:
    """``POST /admin/reset`` restores the initial flags and clears events and faults."""
    server.set_flag("dark-mode", False)
    server.delete_flag("limit")
    http.post("/sdk/events/batch", json={"events": [{"eventType": "x"}]})
    server.inject_fault("init", statuses=[500])
    body = admin.post("/reset").json()
    flags = {f["key"]: f for f in body["flags"]}
    assert flags["dark-mode"]["value"] is True and flags["dark-mode"]["version"] == 3
    assert flags["limit"]["version"] == 2  # versions never go back, even after a delete
    assert flags["banner"]["version"] == 1  # unchanged flags keep their version
    assert server.events() == [] and server.faults() == []
    replaced = admin.post("/reset", json={"flags": {"only": "x"}, "events": False}).json()
    assert [f["key"] for f in replaced["flags"]] == ["only"]
    assert admin.post("/reset", json={"events": "no"}).status_code == 400


def test_status_reports_counts(server: FlagKitServer, admin: httpx.Client) -> None:
    """``GET /admin/status`` summarises the server."""
    status = admin.get("/status").json()
    assert status["flags"] == 4 and status["segments"] == 1 and status["streams"] == 0
    assert status["baseUrl"] == server.base_url and status["flagsFile"] is None


def test_reload_endpoint(tmp_path: Path) -> None:
    """``POST /admin/reload`` reloads the file now; a broken file is a 422 keeping the flags."""
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": [{"key": "a", "value": 1}]}))
    with FlagKitServer(flags_file=path, watch_interval=60) as srv:
        client = httpx.Client(
            base_url=srv.base_url + "/admin",
            headers={"Authorization": f"Bearer {srv.admin_token}"},
        )
        path.write_text(json.dumps({"flags": [{"key": "a", "value": 2}]}))
        assert client.post("/reload").json() == {"changed": ["a"]}
        path.write_text("{")
        broken = client.post("/reload")
        assert broken.status_code == 422 and str(path) in broken.json()["message"]
        assert srv.get_flag("a")["value"] == 2  # type: ignore[index]
        client.close()
    with FlagKitServer() as srv:
        response = httpx.post(
            srv.base_url + "/admin/reload", headers={"Authorization": f"Bearer {srv.admin_token}"}
        )
        assert response.status_code == 409


def test_admin_requests_are_not_in_the_request_log(
    server: FlagKitServer, admin: httpx.Client
) -> None:
    """The request log holds SDK traffic only, so admin calls do not disturb assertions."""
    admin.get("/flags")
    assert server.requests == []
