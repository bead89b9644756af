"""Exposures through the Flask extension: the extension's lookups, templates and
``flag_required`` record ``$exposure`` for the request's user, and ``track()`` in the same
request carries the same user key, so conversions join exposures (docs/events.md). Real
server, real requests through the test client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from flagkit.testing import FlagKitServer
from flagkit_flask.extension import FlagKitState
from tests.flask.factory import FLAGS, create_app, flagkit, server_config

EXPERIMENT = {"control": "off", "metrics": [{"event": "purchase"}]}


@pytest.fixture
def server() -> Iterator[FlagKitServer]:
    flags = [
        {**flag, "experiment": EXPERIMENT} if flag["key"] in ("new-checkout", "rollout") else flag
        for flag in FLAGS
    ]
    with FlagKitServer(flags=flags) as running:
        yield running


@pytest.fixture
def app(server: FlagKitServer) -> Iterator[Flask]:
    application = create_app(server_config(server.base_url, server.api_key))

    @application.post("/buy")
    def buy() -> str:
        flagkit.track("purchase", {"amount": 30})
        return "bought"

    assert application.extensions["flagkit"].client.wait_for_ready(5)
    yield application
    state = application.extensions.get("flagkit")
    if isinstance(state, FlagKitState):
        state.close(timeout=2.0)


def events_of(app: Flask, server: FlagKitServer, event_type: str) -> list[dict[str, Any]]:
    assert app.extensions["flagkit"].client.flush(5).ok
    return [e for e in server.events() if e["eventType"] == event_type]


def test_requests_expose_the_user_and_track_joins(app: Flask, server: FlagKitServer) -> None:
    web = app.test_client()
    alice = {"X-User": "alice"}
    assert web.get("/checkout", headers=alice).data == b"new checkout"  # flag_required
    assert web.get("/is/rollout", headers=alice).status_code == 200  # extension lookup
    page = web.get("/template?t={{ flag('new-checkout') }}", headers={"X-User": "carol"})
    assert page.data == b"False"  # a template global, for another user
    assert web.post("/buy", headers=alice).data == b"bought"
    exposures = {
        (e["eventData"]["flagKey"], e["eventData"]["contextKey"]): e
        for e in events_of(app, server, "$exposure")
    }
    assert set(exposures) == {
        ("new-checkout", "alice"),
        ("rollout", "alice"),
        ("new-checkout", "carol"),
    }
    checkout = exposures["new-checkout", "alice"]["eventData"]
    assert checkout["variationId"] == "on" and checkout["ruleId"] is None  # a target
    assert exposures["new-checkout", "carol"]["eventData"]["variationId"] == "off"
    (purchase,) = events_of(app, server, "purchase")
    assert purchase["context"]["userId"] == "alice"
    assert exposures["rollout", "alice"]["context"]["userId"] == "alice"


def test_anonymous_visitors_are_exposed_under_their_anonymous_key(
    app: Flask, server: FlagKitServer
) -> None:
    web = app.test_client()
    assert web.get("/is/rollout").status_code == 200
    assert web.get("/is/rollout").status_code == 200  # same visitor (cookie): no new exposure
    (exposure,) = events_of(app, server, "$exposure")
    key = exposure["eventData"]["contextKey"]
    assert key and exposure["context"].get("userKey") == key
    assert "userId" not in exposure["context"]
