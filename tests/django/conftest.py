"""Fixtures of the Django tests: a loopback FlagKit server wired into ``settings.FLAGKIT``,
users, and a clean adapter state around every test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Group, User

from flagkit.testing import FlagKitServer
from flagkit_django import conf
from flagkit_django._engine import reset_client
from flagkit_django.pytest_plugin import flagkit_flags  # noqa: F401 - the documented way
from tests.django.flagdefs import FLAGS


@pytest.fixture(autouse=True)
def _clean_flagkit_django() -> Iterator[None]:
    """Every test starts and ends without a shared client or cached options."""
    conf.clear_cache()
    reset_client()
    yield
    reset_client()
    conf.clear_cache()


def live_settings(server: FlagKitServer, **extra: Any) -> dict[str, Any]:
    """A FLAGKIT dict pointing at ``server`` with tiny intervals (streaming on)."""
    return {
        "API_KEY": server.api_key,
        "BASE_URL": server.base_url,
        "POLLING_INTERVAL": 0.2,
        "EVENT_FLUSH_INTERVAL": 0.2,
        "TIMEOUT": 2,
        **extra,
    }


def reconfigure(settings: Any, server: FlagKitServer, **extra: Any) -> None:
    """Point FLAGKIT at ``server`` with ``extra`` keys and wait for the rebuilt client."""
    from flagkit_django import get_client

    settings.FLAGKIT = live_settings(server, **extra)
    assert get_client().wait_for_ready(5), "the rebuilt client did not load the flags"


@pytest.fixture
def django_flagkit_server(settings: Any) -> Iterator[FlagKitServer]:
    """A loopback FlagKit server serving ``FLAGS``, with ``settings.FLAGKIT`` pointing at it.

    The shared client is closed before the server stops.
    """
    with FlagKitServer(flags=FLAGS, heartbeat_interval=1.0) as server:
        settings.FLAGKIT = live_settings(server)
        try:
            yield server
        finally:
            reset_client()


@pytest.fixture
def users(db: None) -> dict[str, User]:
    """A regular user, a staff user and a beta-group member."""
    beta = Group.objects.create(name="beta")
    Group.objects.create(name="alpha")
    regular = User.objects.create_user(
        "regular", email="regular@example.com", password="pw", first_name="Reg", last_name="Ular"
    )
    staff = User.objects.create_user("staff", email="staff@example.com", password="pw")
    staff.is_staff = True
    staff.save()
    tester = User.objects.create_user("tester", email="tester@example.com", password="pw")
    tester.groups.add(beta)
    tester.groups.add(Group.objects.get(name="alpha"))
    return {"regular": regular, "staff": staff, "tester": tester}


@pytest.fixture
def live(django_flagkit_server: FlagKitServer) -> FlagKitServer:
    """``django_flagkit_server`` with the shared client started and its flags loaded."""
    from flagkit_django import get_client

    assert get_client().wait_for_ready(5), "the client did not load the test flags"
    return django_flagkit_server
