"""Exposures through the Django adapter: request flags, template tags and decorators record
``$exposure`` for the logged-in user, and ``track()`` in the same request carries the same
user key, so conversions join exposures (docs/events.md). Real server, real requests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from flagkit.testing import FlagKitServer
from flagkit_django import get_client
from flagkit_django._engine import reset_client
from tests.django.conftest import live_settings
from tests.django.flagdefs import FLAGS, ON_OFF

EXPERIMENT = {"control": "off", "metrics": [{"event": "checkout_clicked"}]}


def experiment_flags() -> list[dict[str, Any]]:
    """The test project's flags, with staff-feature, rollout-50 and new-checkout as
    experiments (new-checkout served "on" by its fallthrough)."""
    flags: list[dict[str, Any]] = []
    for flag in FLAGS:
        if flag["key"] in ("staff-feature", "rollout-50"):
            flag = {**flag, "experiment": EXPERIMENT}
        elif flag["key"] == "new-checkout":
            flag = {
                **flag,
                "variations": ON_OFF,
                "fallthrough": {"variation": "on"},
                "experiment": EXPERIMENT,
            }
        flags.append(flag)
    return flags


@pytest.fixture
def server(settings: Any) -> Iterator[FlagKitServer]:
    with FlagKitServer(flags=experiment_flags()) as running:
        settings.FLAGKIT = live_settings(running, STREAMING={"ENABLED": False})
        try:
            assert get_client().wait_for_ready(5)
            yield running
        finally:
            reset_client()


def exposures(server: FlagKitServer) -> dict[str, dict[str, Any]]:
    assert get_client().flush(5).ok
    return {e["eventData"]["flagKey"]: e for e in server.events() if e["eventType"] == "$exposure"}


def test_views_templates_and_decorators_expose_the_logged_in_user(
    server: FlagKitServer, client: Client, users: dict[str, User]
) -> None:
    staff = users["staff"]
    client.force_login(staff)
    assert client.get("/whoami/").status_code == 200  # request.flags: rollout-50
    assert client.get("/tags/").status_code == 200  # {% flag "staff-feature" %}
    assert client.get("/checkout/").content == b"new checkout"  # @flag_required
    assert client.get("/track/").content == b"tracked"
    got = exposures(server)
    assert set(got) == {"rollout-50", "staff-feature", "new-checkout"}
    user_id = str(staff.pk)
    for event in got.values():
        assert event["eventData"]["contextKey"] == user_id
        assert event["context"]["userId"] == user_id
    assert got["staff-feature"]["eventData"]["variationId"] == "on"
    assert got["staff-feature"]["eventData"]["ruleId"] == "staff-only"
    assert got["new-checkout"]["eventData"]["ruleId"] is None
    (clicked,) = [e for e in server.events() if e["eventType"] == "checkout_clicked"]
    assert clicked["context"]["userId"] == user_id  # the conversion joins the exposures


def test_a_second_request_of_the_same_user_records_nothing_new(
    server: FlagKitServer, client: Client, users: dict[str, User]
) -> None:
    client.force_login(users["regular"])
    client.get("/checkout/")
    client.get("/checkout/")
    assert get_client().flush(5).ok
    events = [e for e in server.events() if e["eventType"] == "$exposure"]
    assert len(events) == 1
