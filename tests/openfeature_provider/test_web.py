"""The provider around a web integration's client: ``api.get_client()`` inside a view
evaluates for the request's user (the FlagKit middleware / request hooks set the
client's request scope), as docs/openfeature.md shows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from openfeature import api

from flagkit import EvaluationContext
from flagkit.openfeature import FlagKitProvider
from flagkit.server import FlagKitServer
from flagkit_flask import FlagKit

KEY = "sdk_openfeature_web_key"
ON_OFF = [{"id": "on", "value": True}, {"id": "off", "value": False}]
FLAGS: list[dict[str, Any]] = [
    {
        "key": "staff-checkout",
        "flagType": "boolean",
        "value": False,
        "variations": ON_OFF,
        "rules": [
            {
                "id": "staff",
                "clauses": [{"attribute": "is_staff", "op": "in", "values": [True]}],
                "variation": "on",
            }
        ],
        "fallthrough": {"variation": "off"},
    }
]


@pytest.fixture
def server() -> Iterator[FlagKitServer]:
    with FlagKitServer(flags=FLAGS, api_keys=KEY) as running:
        yield running


@pytest.mark.django_db
@pytest.mark.urls("tests.openfeature_provider.django_urls")
def test_django_view_evaluates_for_the_logged_in_user(
    server: FlagKitServer, settings: Any, client: Any
) -> None:
    """With the provider around flagkit_django's client, a view's OpenFeature lookup
    follows request.user: staff get the new checkout, others the old one."""
    from django.contrib.auth.models import User

    from flagkit_django import conf, get_client
    from flagkit_django._engine import reset_client

    settings.FLAGKIT = {"API_KEY": KEY, "BASE_URL": server.base_url, "TIMEOUT": 2}
    conf.clear_cache()
    reset_client()
    try:
        api.set_provider_and_wait(FlagKitProvider(client=get_client()))
        staff = User.objects.create_user("staffer", is_staff=True)
        regular = User.objects.create_user("regular")
        client.force_login(staff)
        assert client.get("/checkout/").content == b"new"
        client.force_login(regular)
        assert client.get("/checkout/").content == b"old"
        client.logout()
        assert client.get("/checkout/").content == b"old"
    finally:
        api.shutdown()
        reset_client()
        conf.clear_cache()


def test_flask_view_evaluates_for_the_request_context(server: FlagKitServer) -> None:
    """With the provider around the Flask extension's client, a view's OpenFeature lookup
    uses the context the extension builds for the request (here from a context loader)."""
    extension = FlagKit()
    app = Flask(__name__)
    app.config.update(FLAGKIT_API_KEY=KEY, FLAGKIT_BASE_URL=server.base_url, FLAGKIT_TIMEOUT=2)
    extension.init_app(app)

    @extension.context_loader
    def load(default: EvaluationContext) -> EvaluationContext:
        from flask import request

        staff = request.headers.get("X-Staff") == "1"
        return EvaluationContext(user_id="u-1", custom={"is_staff": staff})

    @app.route("/checkout")
    def checkout() -> str:
        return "new" if api.get_client().get_boolean_value("staff-checkout", False) else "old"

    with app.app_context():
        flagkit_client = extension.get_client(app)
    try:
        api.set_provider_and_wait(FlagKitProvider(client=flagkit_client))
        web = app.test_client()
        assert web.get("/checkout", headers={"X-Staff": "1"}).text == "new"
        assert web.get("/checkout").text == "old"
    finally:
        api.shutdown()
        flagkit_client.close()
