"""Fixtures of the Flask tests: a loopback FlagKit server and a fresh app per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from flask import Flask

from flagkit.testing import FlagKitServer
from flagkit_flask import FlagKit
from flagkit_flask.extension import FlagKitState
from flagkit_flask.pytest_plugin import flagkit_flags  # noqa: F401 - the fixture under test
from tests.flask.factory import FLAGS, create_app, server_config

AppFactory = Callable[..., Flask]


@pytest.fixture
def server() -> Iterator[FlagKitServer]:
    """A started loopback server with the test flags."""
    with FlagKitServer(flags=FLAGS) as srv:
        yield srv


@pytest.fixture
def make_app(server: FlagKitServer) -> Iterator[AppFactory]:
    """Build apps on the module-level extension; close every client they created."""
    apps: list[Flask] = []

    def make(
        config: Mapping[str, Any] | None = None,
        *,
        extension: FlagKit | None = None,
        login: bool = False,
    ) -> Flask:
        base = server_config(server.base_url, server.api_key)
        app = create_app({**base, **(config or {})}, extension=extension, login=login)
        apps.append(app)
        return app

    yield make
    for app in apps:
        state = app.extensions.get("flagkit")
        if isinstance(state, FlagKitState):
            state.close(timeout=2.0)


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    """A fresh app whose client has loaded the test flags."""
    application = make_app()
    assert application.extensions["flagkit"].client.wait_for_ready(5)
    return application
