"""Engine lifecycle: lazy creation, start on the first request, rebuild on a settings
change, the FlagKit singleton, and a pre-fork master that never starts the engine."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from flagkit.client import ClientState
from flagkit.flagkit import FlagKit
from flagkit.testing import FlagKitServer
from flagkit_django import get_client
from flagkit_django._engine import peek_client
from flagkit_django.signals import client_ready
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_get_client_is_the_flagkit_singleton(settings: Any) -> None:
    """get_client() builds one started client and registers it as FlagKit's instance."""
    settings.FLAGKIT = {"OFFLINE": True}
    assert peek_client() is None
    client = get_client()
    assert FlagKit.get_instance() is client
    assert get_client() is client
    assert client.state is ClientState.READY


def test_first_request_starts_the_client(settings: Any, client: Client) -> None:
    """A request that evaluates nothing still starts the client (request_started)."""
    settings.FLAGKIT = {"OFFLINE": True}
    assert peek_client() is None
    client.get("/no-flags/")
    started = peek_client()
    assert started is not None
    assert started.state is ClientState.READY


def test_start_on_request_false_waits_for_the_first_evaluation(
    settings: Any, client: Client
) -> None:
    """With START_ON_REQUEST=False a request builds the client (for its scope) but only
    the first evaluation starts it."""
    settings.FLAGKIT = {"OFFLINE": True, "START_ON_REQUEST": False}
    client.get("/no-flags/")
    built = peek_client()
    assert built is not None
    assert built.state is ClientState.NEW
    client.get("/memo/")
    assert built.state is ClientState.READY


def test_settings_change_rebuilds_the_client(settings: Any) -> None:
    """override_settings(FLAGKIT=...) closes the old client and the next call builds anew."""
    settings.FLAGKIT = {"OFFLINE": True, "BOOTSTRAP": {"flag": "one"}}
    first = get_client()
    assert first.get_string_value("flag", "") == "one"
    with override_settings(FLAGKIT={"OFFLINE": True, "BOOTSTRAP": {"flag": "two"}}):
        assert first.state is ClientState.CLOSED
        second = get_client()
        assert second is not first
        assert second.get_string_value("flag", "") == "two"
    assert second.state is ClientState.CLOSED
    assert get_client().get_string_value("flag", "") == "one"


def test_other_settings_do_not_rebuild(settings: Any) -> None:
    """Changing an unrelated setting keeps the client."""
    settings.FLAGKIT = {"OFFLINE": True}
    client = get_client()
    with override_settings(TIME_ZONE="Europe/Amsterdam"):
        assert get_client() is client


@pytest.mark.parametrize(
    ("flagkit", "message"),
    [
        ({"POLLING_INTERVAL": 5}, r"FLAGKIT\['API_KEY'\]: api_key is required"),
        ({"API_KEY": "not-a-key"}, r"FLAGKIT\['API_KEY'\]: api_key must start with sdk_"),
        ({"OFFLINE": True, "RETRIES": "many"}, r"FLAGKIT\['RETRIES'\]"),
        ({"OFFLINE": True, "STREAMING": {"ENABLED": "maybe"}}, r"FLAGKIT\['STREAMING'\]"),
        ({"OFFLINE": True, "USER_ID_ATTRIBUTE": ""}, r"FLAGKIT\['USER_ID_ATTRIBUTE'\] must be"),
    ],
)
def test_bad_settings_raise_improperly_configured(
    settings: Any, flagkit: dict[str, Any], message: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Invalid FLAGKIT values raise ImproperlyConfigured naming the key from the settings
    readers (what the system checks run); the shared client instead logs the error and
    serves defaults, so no request fails."""
    settings.FLAGKIT = flagkit
    from flagkit_django import conf

    with pytest.raises(ImproperlyConfigured, match=message):
        conf.get_adapter_settings()
        conf.get_options()
    with caplog.at_level(logging.ERROR, logger="flagkit.django"):
        client = get_client()
    assert client.options.offline and client.get_boolean_value("anything", True) is True
    assert re.search(message, caplog.text) and "Hint:" in caplog.text
    assert "not-a-key" not in caplog.text


def test_unknown_keys_are_logged_and_ignored(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A typo is logged with a suggestion at runtime (check W001 reports it too)."""
    settings.FLAGKIT = {"OFFLINE": True, "POLING_INTERVAL": 5}
    get_client()
    assert (
        "FLAGKIT['POLING_INTERVAL'] is not a FlagKit setting and is ignored (did you mean "
        "'POLLING_INTERVAL'?)" in caplog.text
    )


def test_an_existing_factory_client_is_used_and_wired(settings: Any) -> None:
    """A client made with FlagKit.initialize() is the one the adapter uses (with signals)."""
    settings.FLAGKIT = {"OFFLINE": True}
    own = FlagKit.initialize(api_key="sdk_project_own_key", offline=True)
    received = []
    client_ready.connect(
        lambda sender, **kw: received.append(sender), weak=False, dispatch_uid="lifecycle-test"
    )
    try:
        assert get_client() is own
        wait_until(lambda: own in received)
    finally:
        client_ready.disconnect(dispatch_uid="lifecycle-test")


def test_ready_registers_without_side_effects() -> None:
    """AppConfig.ready() ran (receivers connected) yet created no client."""
    from django.core.signals import request_started, setting_changed

    from flagkit_django import _engine

    assert _engine.on_request_started in [r[1]() for r in request_started.receivers]
    assert _engine.on_setting_changed in [r[1]() for r in setting_changed.receivers]


def _read(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "the pre-fork script ended early"
    return json.loads(line)


def test_prefork_master_starts_nothing_and_workers_get_live_clients() -> None:
    """A master running check/migrate opens no connection and starts no thread; a forked
    worker starts its own client on its first request; a worker forked from a master with
    a started client gets a live one (it receives a server-side change)."""
    server = FlagKitServer(flags={"banner-text": "Spring sale"}, heartbeat_interval=1.0)
    with (
        server,
        subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("prefork_worker.py")),
                server.base_url,
                server.api_key,
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        ) as proc,
    ):
        try:
            master = _read(proc)
            assert master == {
                "step": "master",
                "pid": master["pid"],
                "threads": [],
                "client": False,
                "atexit_hook": False,
            }
            assert server.requests == []
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
            worker = _read(proc)
            assert worker["step"] == "worker"
            assert worker["pid"] != master["pid"]
            assert worker["client_before"] is False
            assert worker["ready"] is True
            assert worker["served"] == "Spring sale"
            assert "flagkit-events" in worker["threads"]
            after = _read(proc)
            assert after == {
                "step": "master-after",
                "pid": master["pid"],
                "worker_exit": 0,
                "client": False,
                "threads": [],
            }
            started = _read(proc)
            assert started["step"] == "master-started"
            assert started["atexit_hook"] is True
            assert "flagkit-events" in started["threads"]
            ready = _read(proc)
            assert ready["step"] == "worker2-ready"
            assert ready["same_object"] is True
            server.wait_for_streams(2, timeout=10)  # the master's stream and the worker's
            server.set_flag("banner-text", "Forked update")
            worker2 = _read(proc)
            assert worker2["updated"] is True
            assert worker2["value"] == "Forked update"
            assert _read(proc) == {"step": "done", "pid": master["pid"], "worker_exit": 0}
            assert proc.wait(10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
