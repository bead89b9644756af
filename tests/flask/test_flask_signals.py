"""Blinker signals: client_ready, flags_updated (server change over SSE), client_error."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from typing import Any

import pytest
from flask import Flask

from flagkit import AuthenticationError, FlagState
from flagkit.testing import FlagKitServer
from flagkit_flask.extension import get_state
from flagkit_flask.signals import client_error, client_ready, flags_updated
from tests.flask.conftest import AppFactory

STREAMING = {"FLAGKIT_STREAMING": {"ENABLED": True}, "FLAGKIT_POLLING_INTERVAL": 60}


def _admin_patch(server: FlagKitServer, key: str, fields: dict[str, Any]) -> None:
    """Change a flag through the server's admin HTTP API (as an operator would)."""
    request = urllib.request.Request(
        f"{server.base_url}/admin/flags/{key}",
        data=json.dumps(fields).encode(),
        method="PATCH",
        headers={
            "Authorization": f"Bearer {server.admin_token}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def test_client_ready_sent_with_the_app_as_sender(make_app: AppFactory) -> None:
    """client_ready reaches a receiver connected for the app, with the real app as sender."""
    app = make_app()
    got = threading.Event()
    senders: list[object] = []
    threads: list[str] = []

    def receiver(sender: Flask, **extra: Any) -> None:
        senders.append(sender)
        threads.append(threading.current_thread().name)
        got.set()

    with client_ready.connected_to(receiver, app):
        app.test_client().get("/")
        assert got.wait(5)
    assert senders == [app]
    assert threads == ["flagkit-dispatch"]


def test_flags_updated_on_a_server_side_change(make_app: AppFactory, server: FlagKitServer) -> None:
    """An admin change reaches the app over SSE and flags_updated carries the new state;
    the next request sees the new value."""
    app = make_app(STREAMING)
    other = make_app(STREAMING)  # connected separately: must not hear app's signal
    client = get_state(app).client
    assert client.wait_for_ready(5)
    assert get_state(other).client.wait_for_ready(5)
    server.wait_for_streams(2, timeout=5)
    # Each client catches up once by polling when its stream connects; after that, with a
    # 60 s polling interval, only the stream can deliver a change within the test.
    server.wait_for_requests("updates", n=2, timeout=5)
    polls_before = len(server.requests_to("updates"))
    got = threading.Event()
    received: list[list[FlagState]] = []
    other_calls: list[object] = []

    def receiver(sender: Flask, flags: list[FlagState], **extra: Any) -> None:
        assert sender is app
        received.append(flags)
        got.set()

    def other_receiver(sender: Flask, **extra: Any) -> None:
        other_calls.append(sender)

    with (
        flags_updated.connected_to(receiver, app),
        flags_updated.connected_to(other_receiver, other),
    ):
        assert app.test_client().get("/value/banner-text").json == {"value": "Spring sale"}
        _admin_patch(server, "banner-text", {"value": "Flash sale"})
        assert got.wait(5)
        assert get_state(other).client.wait_for_callbacks(5)
    changed = {state.key: state.value for flags in received for state in flags}
    assert changed == {"banner-text": "Flash sale"}
    assert app.test_client().get("/value/banner-text").json == {"value": "Flash sale"}
    assert all(sender is other for sender in other_calls)
    assert len(server.requests_to("updates")) == polls_before  # delivered by SSE


def test_failing_receiver_is_logged_and_others_still_run(
    make_app: AppFactory, server: FlagKitServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver that raises is logged with its traceback; the next receiver still runs."""
    app = make_app(STREAMING)
    client = get_state(app).client
    assert client.wait_for_ready(5)
    server.wait_for_streams(1, timeout=5)
    got = threading.Event()

    def broken(sender: Flask, **extra: Any) -> None:
        raise RuntimeError("receiver bug")

    def good(sender: Flask, **extra: Any) -> None:
        got.set()

    with (
        caplog.at_level(logging.ERROR, logger="flagkit.flask"),
        flags_updated.connected_to(broken, app),
        flags_updated.connected_to(good, app),
    ):
        server.set_flag("beta", False)
        assert got.wait(5)
        assert client.wait_for_callbacks(5)
    errors = [r for r in caplog.records if r.name == "flagkit.flask" and r.exc_info]
    assert errors and "receiver bug" in str(errors[0].exc_info[1])
    assert app.test_client().get("/is/beta").text == "off"


def test_client_error_for_a_rejected_key(make_app: AppFactory) -> None:
    """A rejected API key is reported through client_error; lookups serve defaults."""
    app = make_app({"FLAGKIT_API_KEY": "sdk_not_accepted_key_1"})
    got = threading.Event()
    errors: list[Exception] = []

    def receiver(sender: Flask, error: Exception, **extra: Any) -> None:
        assert sender is app
        errors.append(error)
        got.set()

    with client_error.connected_to(receiver, app):
        response = app.test_client().get("/value/banner-text?default=fallback")
        assert got.wait(5)
    assert response.json == {"value": "fallback"}
    assert isinstance(errors[0], AuthenticationError)
    assert "sdk_not_accepted_key_1" not in str(errors[0])
