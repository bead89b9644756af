"""StreamingManager against the real local FlagKit server (``flagkit.testing.FlagKitServer``)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from flagkit.core.updates.streaming import StreamingManager
from flagkit.http import HttpClient, HttpConfig
from flagkit.testing import FlagKitServer
from flagkit.types.config import StreamingOptions


class Recorder:
    """Callback sink with a condition to wait on."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.events: list[tuple[str, Any]] = []
        self.connected = 0
        self.fallbacks: list[str] = []

    def on_event(self, name: str, data: Any) -> None:
        with self.cond:
            self.events.append((name, data))
            self.cond.notify_all()

    def on_connected(self) -> None:
        with self.cond:
            self.connected += 1
            self.cond.notify_all()

    def on_fallback(self, reason: str) -> None:
        with self.cond:
            self.fallbacks.append(reason)
            self.cond.notify_all()

    def wait(self, predicate: Any, what: str) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, 5.0), f"timed out waiting for {what}"


def test_flag_changes_reach_the_manager_and_it_survives_disconnects() -> None:
    """Admin changes arrive as events; a dropped stream and expired tokens are recovered."""
    with FlagKitServer(flags={"dark-mode": False}, heartbeat_interval=0.05) as server:
        http = HttpClient(HttpConfig(base_url=server.base_url, api_key=server.api_key))
        recorder = Recorder()
        manager = StreamingManager(
            http,
            StreamingOptions(heartbeat_interval=1.0, reconnect_interval=0.02, max_backoff=0.1),
            on_event=recorder.on_event,
            on_connected=recorder.on_connected,
            on_fallback=recorder.on_fallback,
            logger=logging.getLogger("flagkit.streaming"),
        )
        try:
            manager.start()
            recorder.wait(lambda: recorder.connected == 1, "connection")
            server.wait_for_streams(1)

            server.set_flag("dark-mode", True)
            recorder.wait(lambda: len(recorder.events) >= 1, "flag_updated")
            name, data = recorder.events[0]
            assert name == "flag_updated"
            assert data["key"] == "dark-mode" and data["value"] is True

            server.delete_flag("dark-mode")
            recorder.wait(lambda: len(recorder.events) >= 2, "flag_deleted")
            assert recorder.events[1] == ("flag_deleted", {"key": "dark-mode"})

            server.disconnect_streams()
            recorder.wait(lambda: recorder.connected == 2, "reconnect after disconnect")

            server.expire_stream_tokens()
            server.disconnect_streams()
            recorder.wait(lambda: recorder.connected == 3, "reconnect with a new token")
            assert manager.state == "connected"
            assert recorder.fallbacks == []
        finally:
            manager.stop()
            http.close()
