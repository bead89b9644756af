"""SSE over real HTTP: token exchange, events on admin and file changes, heartbeats, framing."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import httpx

from flagkit.server import FlagKitServer
from tests.server.helpers import SSEReader
from tests.support import wait_until

OpenStream = Callable[..., SSEReader]


def test_stream_is_event_stream_and_pushes_flag_updated(
    server: FlagKitServer, open_stream: OpenStream
) -> None:
    """A Python-API change reaches an open stream as ``flag_updated`` with a full FlagState."""
    reader = open_stream()
    assert reader.status == 200
    assert reader.content_type == "text/event-stream"
    server.set_flag("dark-mode", False)
    data = reader.next("flag_updated")
    assert data["key"] == "dark-mode" and data["value"] is False and data["version"] == 2
    assert set(data) >= {"key", "value", "enabled", "version", "flagType", "lastModified"}


def test_admin_api_changes_are_pushed(
    server: FlagKitServer, admin: httpx.Client, open_stream: OpenStream
) -> None:
    """Setting and deleting through the admin API push ``flag_updated``/``flag_deleted``."""
    reader = open_stream()
    assert admin.put("/flags/new-flag", json={"value": "x"}).status_code == 200
    assert reader.next("flag_updated")["key"] == "new-flag"
    assert admin.delete("/flags/new-flag").status_code == 200
    assert reader.next("flag_deleted") == {"key": "new-flag"}


def test_reset_pushes_flags_reset_array(server: FlagKitServer, open_stream: OpenStream) -> None:
    """``reset`` sends the whole new flag set as a JSON array (``flags_reset``)."""
    reader = open_stream()
    server.reset({"only": 1})
    data = reader.next("flags_reset")
    assert isinstance(data, list)
    assert [f["key"] for f in data] == ["only"]


def test_segment_changes_use_extension_events(
    server: FlagKitServer, open_stream: OpenStream
) -> None:
    """Segments travel as ``segment_updated``, ``segment_deleted`` and ``segments_reset``."""
    reader = open_stream()
    server.set_segment("vip", included=["u7"])
    assert reader.next("segment_updated") == {"key": "vip", "included": ["u7"]}
    server.delete_segment("vip")
    assert reader.next("segment_deleted") == {"key": "vip"}
    server.reset(segments=[{"key": "s2"}])
    assert reader.next("segments_reset") == [{"key": "s2"}]


def test_every_open_stream_gets_each_event(server: FlagKitServer, open_stream: OpenStream) -> None:
    """Changes fan out to all connected streams."""
    readers = [open_stream() for _ in range(3)]
    server.set_flag("limit", 99)
    for reader in readers:
        assert reader.next("flag_updated")["value"] == 99


def test_heartbeats_carry_non_empty_data(open_stream: OpenStream) -> None:
    """Heartbeats arrive every ``heartbeat_interval`` with a non-empty payload."""
    with FlagKitServer(heartbeat_interval=0.05) as srv:
        reader = open_stream(srv)
        first = reader.next("heartbeat")
        second = reader.next("heartbeat")
    assert first["timestamp"] < second["timestamp"]


def test_payloads_are_single_line_ascii(server: FlagKitServer, open_stream: OpenStream) -> None:
    """Non-ASCII values (incl. U+2028) are escaped so each event is one ASCII data line."""
    reader = open_stream()
    tricky = "café\u2028line\nbreak \U0001f600"
    server.set_flag("banner", tricky)
    assert reader.next("flag_updated")["value"] == tricky
    raw = bytes(reader.raw)
    raw.decode("ascii")  # raises if anything is not ASCII
    frame = next(f for f in raw.split(b"\n\n") if b"flag_updated" in f)
    assert frame.split(b"\n") == [b"event: flag_updated", frame.split(b"\n")[1]]
    assert frame.split(b"\n")[1].startswith(b"data: {")


def test_unknown_token_gets_token_invalid_error_event(server: FlagKitServer) -> None:
    """An unknown token gets an ``error`` event with code TOKEN_INVALID, then the end."""
    reader = SSEReader(f"{server.base_url}/sdk/stream?token=not-a-token")
    data = reader.next("error")
    assert data["code"] == "TOKEN_INVALID" and data["message"]
    assert reader.done.wait(5)


def test_expired_token_gets_token_expired(server: FlagKitServer) -> None:
    """A token past its lifetime gets TOKEN_EXPIRED."""
    with FlagKitServer(token_ttl=0.05) as srv:
        token = httpx.post(
            srv.base_url + "/sdk/stream/token", headers={"X-API-Key": srv.api_key}
        ).json()["token"]
        wait_until(lambda: srv._tokens.check(token) == "expired")
        reader = SSEReader(f"{srv.base_url}/sdk/stream?token={token}")
        assert reader.next("error")["code"] == "TOKEN_EXPIRED"


def test_expired_tokens_helper_invalidates_issued_tokens(server: FlagKitServer) -> None:
    """``expire_stream_tokens`` makes later connections with old tokens fail."""
    token = httpx.post(
        server.base_url + "/sdk/stream/token", headers={"X-API-Key": server.api_key}
    ).json()["token"]
    server.expire_stream_tokens()
    reader = SSEReader(f"{server.base_url}/sdk/stream?token={token}")
    assert reader.next("error")["code"] == "TOKEN_INVALID"


def test_missing_token_is_401(server: FlagKitServer) -> None:
    """A stream request without a token is a 401 with the JSON error body."""
    response = httpx.get(server.base_url + "/sdk/stream")
    assert response.status_code == 401
    assert response.json()["error"] == "TOKEN_INVALID"


def test_stream_needs_no_api_key(server: FlagKitServer) -> None:
    """The stream GET carries only the token (§4.5) and is accepted."""
    token = httpx.post(
        server.base_url + "/sdk/stream/token", headers={"X-API-Key": server.api_key}
    ).json()["token"]
    reader = SSEReader(f"{server.base_url}/sdk/stream?token={token}")
    server.wait_for_streams(1)
    assert reader.connected.wait(5)
    assert reader.status == 200


def test_file_edit_is_pushed_to_streams(tmp_path: Path, open_stream: OpenStream) -> None:
    """Editing the watched flags file pushes the changed flag within a second."""
    path = tmp_path / "flags.json"
    path.write_text(json.dumps({"flags": [{"key": "a", "value": 1}, {"key": "b", "value": 2}]}))
    with FlagKitServer(flags_file=path, watch_interval=0.05) as srv:
        reader = open_stream(srv)
        path.write_text(json.dumps({"flags": [{"key": "a", "value": 1}, {"key": "b", "value": 3}]}))
        data = reader.next("flag_updated")
        assert (data["key"], data["value"], data["version"]) == ("b", 3, 2)
        path.write_text(json.dumps({"flags": [{"key": "b", "value": 3}]}))
        assert reader.next("flag_deleted") == {"key": "a"}


def test_stop_ends_streams_and_threads_promptly(open_stream: OpenStream) -> None:
    """``stop()`` closes open streams and joins every server thread."""
    srv = FlagKitServer(heartbeat_interval=30).start()
    readers = [open_stream(srv) for _ in range(2)]
    srv.stop()
    for reader in readers:
        assert reader.done.wait(5)
    names = {t.name for t in threading.enumerate()}
    assert f"flagkit-server-{srv.port}" not in names
    assert srv.stream_count == 0


def test_disconnect_streams_ends_open_streams(
    server: FlagKitServer, open_stream: OpenStream
) -> None:
    """``disconnect_streams`` drops every stream while the server keeps running."""
    reader = open_stream()
    assert server.disconnect_streams() == 1
    assert reader.done.wait(5)
    again = open_stream()
    server.set_flag("limit", 5)
    assert again.next("flag_updated")["value"] == 5


def test_publish_stream_event_sends_custom_events(
    server: FlagKitServer, open_stream: OpenStream
) -> None:
    """Tests can push any event, e.g. an ``error`` with SUBSCRIPTION_SUSPENDED."""
    reader = open_stream()
    server.publish_stream_event("error", {"code": "SUBSCRIPTION_SUSPENDED", "message": "x"})
    assert reader.next("error")["code"] == "SUBSCRIPTION_SUSPENDED"
