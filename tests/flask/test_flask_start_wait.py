"""``FLAGKIT_START_WAIT``: an app's first requests wait (bounded) for the first flags."""

from __future__ import annotations

import time

import pytest
from flask import Flask

from flagkit.errors import ConfigurationError
from flagkit_flask.extension import FlagKitState
from tests.flask.factory import create_app, server_config
from tests.web.servers import dead_base_url, slow_server


def _close(app: Flask) -> None:
    state = app.extensions["flagkit"]
    assert isinstance(state, FlagKitState)
    state.close(timeout=2.0)


def test_first_request_waits_for_a_slow_server() -> None:
    """The server answers the first load after 0.5 s: the app's first request waits for
    it, so ``@flag_required`` lets it through instead of a 404 flicker."""
    with slow_server() as server:
        app = create_app(server_config(server.base_url, "sdk_slow_server_key"))
        try:
            assert app.config["FLAGKIT_START_WAIT"] == 2.0  # the default
            assert app.test_client().get("/checkout").status_code == 200
        finally:
            _close(app)


def test_zero_keeps_the_old_behaviour() -> None:
    """``FLAGKIT_START_WAIT = 0``: the first request does not wait and serves defaults."""
    with slow_server() as server:
        config = server_config(server.base_url, "sdk_slow_server_key", FLAGKIT_START_WAIT=0)
        app = create_app(config)
        try:
            assert app.test_client().get("/checkout").status_code == 404
        finally:
            _close(app)


def test_a_dead_server_delays_only_the_first_request() -> None:
    """With the server down only the first request waits (up to the bound); later ones
    serve defaults at once."""
    app = create_app(server_config(dead_base_url(), "sdk_dead_server_key", FLAGKIT_START_WAIT=0.5))
    try:
        client = app.test_client()
        started = time.monotonic()
        assert client.get("/checkout").status_code == 404
        assert time.monotonic() - started >= 0.4
        started = time.monotonic()
        assert client.get("/checkout").status_code == 404
        assert client.get("/").status_code == 200
        assert time.monotonic() - started < 0.4
    finally:
        _close(app)


@pytest.mark.parametrize("bad", [-1, "2", True, 61, float("nan")])
def test_a_bad_start_wait_names_the_key_and_the_allowed_values(bad: object) -> None:
    """``init_app`` fails fast naming the config key and what it allows."""
    with pytest.raises(ConfigurationError, match=r"FLAGKIT_START_WAIT'\] must be a number"):
        create_app({"FLAGKIT_OFFLINE": True, "FLAGKIT_START_WAIT": bad})
