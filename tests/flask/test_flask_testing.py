"""Test helpers: ``override_flags`` and the ``flagkit_flags`` fixture."""

from __future__ import annotations

import asyncio

import pytest
from flask import Flask

from flagkit_flask.extension import get_state
from flagkit_flask.testing import FlagOverrides, override_flags
from tests.flask.conftest import AppFactory


def test_context_manager_overrides_every_path(app: Flask) -> None:
    """Inside the block the extension, plain client calls, templates and decorators see the
    override (reason OVERRIDE); after it the server's values return."""
    web = app.test_client()
    with override_flags(app, {"new-checkout": True, "banner-text": "Sale"}):
        assert web.get("/is/new-checkout").text == "on"
        assert web.get("/plain/new-checkout").json == {"value": True, "reason": "OVERRIDE"}
        assert web.get("/checkout").status_code == 200
        assert web.get("/value/banner-text").json == {"value": "Sale"}
        template = "{% flag 'new-checkout' %}NEW{% endflag %}"
        assert web.get("/template", query_string={"t": template}).text == "NEW"
    assert web.get("/is/new-checkout").text == "off"
    assert web.get("/value/banner-text").json == {"value": "Spring sale"}


def test_overrides_apply_to_a_client_created_later(make_app: AppFactory) -> None:
    """Overrides set before the app's first request apply to the client created then,
    without waiting for the server."""
    app = make_app()
    assert get_state(app).peek_client() is None
    with override_flags(app, {"brand-new": "yes"}):
        assert app.test_client().get("/value/brand-new").json == {"value": "yes"}


def test_nested_overrides_restore_outer_values(app: Flask) -> None:
    """Nested blocks merge (inner wins) and leaving one restores the outer values."""
    client = get_state(app).client
    with override_flags(app, {"beta": False, "maintenance": True}):
        with override_flags(app, {"beta": True}):
            assert client.get_boolean_value("beta") is True
            assert client.get_boolean_value("maintenance") is True
        assert client.get_boolean_value("beta") is False
        assert client.get_boolean_value("maintenance") is True
    assert client.get_boolean_value("beta") is True
    assert client.get_boolean_value("maintenance") is False
    assert client.overrides == {}


def test_overrides_are_per_app(make_app: AppFactory) -> None:
    """Overriding one app leaves another app in the same process untouched."""
    first, second = make_app(), make_app()
    assert get_state(second).client.wait_for_ready(5)
    with override_flags(first, {"beta": False}):
        assert first.test_client().get("/is/beta").text == "off"
        assert second.test_client().get("/is/beta").text == "on"


def test_none_means_current_app(app: Flask) -> None:
    """override_flags(None, ...) uses the current app when entered."""
    with app.app_context(), override_flags(None, {"beta": False}):
        assert get_state(app).client.get_boolean_value("beta") is False
    assert get_state(app).client.get_boolean_value("beta") is True


def test_decorator_on_sync_and_async_functions(app: Flask) -> None:
    """As a decorator it applies for each call of a sync or async function only."""
    client = get_state(app).client

    @override_flags(app, {"beta": False})
    def check() -> bool:
        return client.get_boolean_value("beta")

    @override_flags(app, {"beta": False})
    async def acheck() -> bool:
        return client.get_boolean_value("beta")

    assert check() is False
    assert asyncio.run(acheck()) is False
    assert client.get_boolean_value("beta") is True
    assert check() is False  # reusable


def test_exception_inside_block_still_restores(app: Flask) -> None:
    """An exception leaving the block still removes the overrides."""
    client = get_state(app).client
    with pytest.raises(KeyError), override_flags(app, {"beta": False}):
        raise KeyError("boom")
    assert client.get_boolean_value("beta") is True


def test_bad_arguments() -> None:
    """A non-mapping or a non-string key is a TypeError; an app without init_app a
    RuntimeError when entered."""
    with pytest.raises(TypeError):
        override_flags(None, ["beta"])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        override_flags(None, {1: True})  # type: ignore[dict-item]
    with (
        pytest.raises(RuntimeError, match="did you call init_app"),
        override_flags(Flask("bare"), {"beta": True}),
    ):
        pass


def test_fixture_sets_and_clears(app: Flask, flagkit_flags: FlagOverrides) -> None:
    """The flagkit_flags fixture sets overrides for the app and can change or clear them."""
    web = app.test_client()
    flagkit_flags.set({"beta": False})
    flagkit_flags["banner-text"] = "Fixture sale"
    assert web.get("/is/beta").text == "off"
    assert web.get("/value/banner-text").json == {"value": "Fixture sale"}
    del flagkit_flags["beta"]
    assert web.get("/is/beta").text == "on"
    flagkit_flags.clear()
    assert web.get("/value/banner-text").json == {"value": "Spring sale"}
    flagkit_flags.set(maintenance=True)
    assert web.get("/is/maintenance").text == "on"


def test_fixture_cleanup(app: Flask) -> None:
    """FlagOverrides.close (the fixture's teardown) removes everything it set."""
    overrides = FlagOverrides(app)
    overrides.set({"beta": False})
    assert get_state(app).client.get_boolean_value("beta") is False
    overrides.close()
    overrides.close()  # idempotent
    assert get_state(app).client.get_boolean_value("beta") is True
