"""Fixtures of the Django shop's tests: a local FlagKit server on ``flags.json`` and the
demo users.

Each test that asks for ``shop_server`` gets its own server on a free port, and
``settings.FLAGKIT["LOCAL_PORT"]`` points the shop at it, exactly as ``make demo`` points
it at port 8200.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from flagkit.testing import FlagKitServer
from flagkit_django import get_client

FLAGS_FILE = Path(__file__).resolve().parent.parent / "flags.json"
PASSWORD = "flagkit-demo"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Tests hash the demo passwords with a fast hasher (the real one takes ~1 s each)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def shop_server(settings: Any) -> Iterator[FlagKitServer]:
    """A FlagKit server serving ``example_projects/flags.json``; the shop's client uses it."""
    original = settings.FLAGKIT
    with FlagKitServer(flags_file=FLAGS_FILE, heartbeat_interval=1.0) as server:
        settings.FLAGKIT = {**original, "LOCAL_PORT": server.port, "EVENT_FLUSH_INTERVAL": 0.2}
        assert get_client().wait_for_ready(5), "the shop's FlagKit client did not load flags"
        try:
            yield server
        finally:
            # Changing FLAGKIT closes the shared client before the server goes away.
            settings.FLAGKIT = original


@pytest.fixture
def demo_users(db: None) -> None:
    """The demo users alice (staff), bob (beta) and carol, seeded by the management command."""
    call_command("seed_demo_users", stdout=StringIO())


@pytest.fixture
def login(client: Client, demo_users: None) -> Callable[[str], Client]:
    """Log the test client in as a demo user through the real log-in form."""

    def log_in(username: str) -> Client:
        response = client.post("/accounts/login/", {"username": username, "password": PASSWORD})
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
