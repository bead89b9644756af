"""Fixtures of the Flask shop's tests: a local FlagKit server on ``flags.json`` and an app
per test (the app factory), its client pointed at that server with ``FLAGKIT_LOCAL_PORT``
exactly as ``make demo`` points it at port 8200."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_shop import create_app
from flask_shop.db import PASSWORD, init_db
from flask_shop.extensions import flagkit

from flagkit.testing import FlagKitServer
from flagkit_flask.pytest_plugin import flagkit_flags  # noqa: F401 - the documented way

FLAGS_FILE = Path(__file__).resolve().parent.parent / "flags.json"


@pytest.fixture
def shop_server() -> Iterator[FlagKitServer]:
    """A FlagKit server serving ``example_projects/flags.json`` on a free port."""
    with FlagKitServer(flags_file=FLAGS_FILE, heartbeat_interval=1.0) as server:
        yield server


@pytest.fixture
def app(shop_server: FlagKitServer, tmp_path: Path) -> Iterator[Flask]:
    """A shop app with its own SQLite file and demo users; its client has loaded the flags."""
    app = create_app(
        {
            "TESTING": True,
            "DATABASE": str(tmp_path / "flask_shop.sqlite3"),
            "FLAGKIT_LOCAL_PORT": shop_server.port,
            "FLAGKIT_EVENT_FLUSH_INTERVAL": 0.2,
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",  # fast: tests only
        }
    )
    with app.app_context():
        init_db()
    assert flagkit.get_client(app).wait_for_ready(5), "the shop's client did not load flags"
    yield app
    flagkit.close(app)


@pytest.fixture
def login(app: Flask) -> Callable[[str], FlaskClient]:
    """A new test client logged in as a demo user through the real log-in form."""

    def log_in(username: str) -> FlaskClient:
        client = app.test_client()
        response = client.post("/login", data={"username": username, "password": PASSWORD})
        assert response.status_code == 302, f"could not log in as {username}"
        return client

    return log_in


def _wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        if time.monotonic() >= deadline:
            return predicate()
        pause.wait(0.02)
    return True


@pytest.fixture
def wait_until() -> Callable[..., bool]:
    """``wait_until(predicate, timeout=5.0)``: poll until true or the deadline; the result."""
    return _wait_until
