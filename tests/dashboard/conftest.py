"""Fixtures for the dashboard tests: a server on a copy of the demo's flags file, and an
httpx client signed in to its dashboard (real loopback HTTP)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from flagkit.server import FlagKitServer
from tests.support.clients import close_open_clients

ROOT = Path(__file__).resolve().parents[2]
DEMO_FLAGS = ROOT / "example_projects" / "flags.json"
TOKEN = "dashboard-test-admin-token-5f1c"


@dataclass
class Dashboard:
    """A signed-in dashboard client: ``http`` carries the session cookie, ``csrf`` the token
    every change must send."""

    http: httpx.Client
    csrf: str

    def change(self, method: str, path: str, body: object) -> httpx.Response:
        """A change request with the CSRF header."""
        return self.http.request(
            method, "/dashboard/api/" + path, json=body, headers={"X-CSRF-Token": self.csrf}
        )


@pytest.fixture(autouse=True)
def _close_loopback_clients() -> Iterator[None]:
    yield
    close_open_clients()


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    """A copy of example_projects/flags.json the server may rewrite."""
    path = tmp_path / "flags.json"
    shutil.copyfile(DEMO_FLAGS, path)
    return path


@pytest.fixture
def server(flags_file: Path) -> Iterator[FlagKitServer]:
    """A started server on :func:`flags_file` with a known admin token."""
    with FlagKitServer(flags_file=flags_file, admin_token=TOKEN, heartbeat_interval=30) as srv:
        yield srv


@pytest.fixture
def anonymous(server: FlagKitServer) -> Iterator[httpx.Client]:
    """An httpx client on the server's root, not signed in."""
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        yield client


@pytest.fixture
def dashboard(server: FlagKitServer) -> Iterator[Dashboard]:
    """A client signed in with the admin token."""
    with httpx.Client(base_url=server.url, timeout=5.0) as client:
        response = client.post("/dashboard/api/session", json={"token": TOKEN})
        assert response.status_code == 200, response.text
        yield Dashboard(client, response.json()["csrf"])
