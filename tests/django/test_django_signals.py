"""Signals: ``flags_updated`` on a server-side change (admin → SSE → client → signal),
``client_ready``, ``client_error``, and robust delivery."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from django.test import Client

from flagkit.testing import FlagKitServer
from flagkit.types.flag import FlagState
from flagkit_django import get_client
from flagkit_django.signals import client_error, client_ready, flags_updated
from tests.django.conftest import live_settings, reconfigure
from tests.support import wait_until


class Recorder:
    """Collects signal calls; ``event`` is set on the first one matching ``wanted``."""

    def __init__(self, wanted: str | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.threads: list[str] = []
        self.event = threading.Event()
        self.wanted = wanted

    def __call__(self, sender: Any, **kwargs: Any) -> None:
        self.calls.append({"sender": sender, **kwargs})
        self.threads.append(threading.current_thread().name)
        flags = kwargs.get("flags")
        if self.wanted is None or (flags and any(f.key == self.wanted for f in flags)):
            self.event.set()


def test_flags_updated_on_server_change(
    django_flagkit_server: FlagKitServer, client: Client, settings: Any
) -> None:
    """An admin change on the server reaches the client by SSE and fires ``flags_updated``
    with the changed flag, on the ``flagkit-dispatch`` thread; the next request sees it."""
    live = django_flagkit_server
    # Polling far apart: the change can only arrive through the stream.
    reconfigure(settings, live, POLLING_INTERVAL=600)
    shared = get_client()
    live.wait_for_streams(1, timeout=5)
    recorder = Recorder("banner-text")
    flags_updated.connect(recorder)
    try:
        live.set_flag("banner-text", "Summer sale")
        assert recorder.event.wait(5), "flags_updated was not sent"
    finally:
        flags_updated.disconnect(recorder)
    call = next(c for c in recorder.calls if any(f.key == "banner-text" for f in c["flags"]))
    assert call["sender"] is shared
    changed = [f for f in call["flags"] if f.key == "banner-text"]
    assert isinstance(changed[0], FlagState)
    assert changed[0].value == "Summer sale"
    assert set(recorder.threads) == {"flagkit-dispatch"}
    assert client.get("/memo/").json() == {"first": "Summer sale", "second": "Summer sale"}


def test_client_ready(django_flagkit_server: FlagKitServer) -> None:
    """``client_ready`` is sent once the shared client has loaded its flags."""
    recorder = Recorder()
    client_ready.connect(recorder)
    try:
        shared = get_client()
        assert recorder.event.wait(5)
    finally:
        client_ready.disconnect(recorder)
    assert recorder.calls[0]["sender"] is shared
    assert shared.is_ready()


def test_client_error_for_a_rejected_key(
    django_flagkit_server: FlagKitServer, settings: Any
) -> None:
    """A rejected API key is reported through ``client_error`` with the error."""
    settings.FLAGKIT = live_settings(django_flagkit_server, API_KEY="sdk_wrong_key_000000")
    recorder = Recorder()
    client_error.connect(recorder)
    try:
        get_client()
        assert recorder.event.wait(5)
    finally:
        client_error.disconnect(recorder)
    error = recorder.calls[0]["error"]
    assert getattr(error, "code", "").startswith("AUTH")
    assert "sdk_wrong_key_000000" not in str(error)


def test_a_failing_receiver_is_logged_and_others_still_run(
    live: FlagKitServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver that raises is logged with its traceback; the next receiver still runs
    and the update is applied."""

    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    recorder = Recorder("max-items")
    flags_updated.connect(broken)
    flags_updated.connect(recorder)
    try:
        with caplog.at_level(logging.ERROR, logger="flagkit.django"):
            live.set_flag("max-items", 99)
            assert recorder.event.wait(5)
            wait_until(lambda: "raised RuntimeError" in caplog.text)
    finally:
        flags_updated.disconnect(broken)
        flags_updated.disconnect(recorder)
    record = next(r for r in caplog.records if "raised RuntimeError" in r.getMessage())
    assert record.name == "flagkit.django"
    assert record.exc_info is not None
    assert get_client().get_number_value("max-items", 0) == 99
