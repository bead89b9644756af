"""``@flag_required`` on sync, async and class-based views, and blueprint guards."""

from __future__ import annotations

import pytest
from flask import Flask

from flagkit_flask import flag_guard, flag_required


def test_flag_required_runs_the_view_when_on(app: Flask) -> None:
    """A sync view guarded by a targeted flag runs for a user who has it on."""
    response = app.test_client().get("/checkout", headers={"X-User": "alice"})
    assert response.status_code == 200
    assert response.text == "new checkout"


def test_flag_required_aborts_404_when_off(app: Flask) -> None:
    """When the flag is off for the user the view does not run: 404."""
    assert app.test_client().get("/checkout", headers={"X-User": "bob"}).status_code == 404
    assert app.test_client().get("/checkout").status_code == 404


def test_flag_required_on_async_views(app: Flask) -> None:
    """The decorator guards async views the same way."""
    web = app.test_client()
    on = web.get("/checkout-async", headers={"X-User": "alice"})
    assert on.status_code == 200 and on.text == "new checkout (async)"
    assert web.get("/checkout-async", headers={"X-User": "bob"}).status_code == 404


def test_negated_key(app: Flask) -> None:
    """``!key`` lets the view run only when the flag is off."""
    web = app.test_client()
    assert web.get("/old-checkout", headers={"X-User": "bob"}).text == "old checkout"
    assert web.get("/old-checkout", headers={"X-User": "alice"}).status_code == 404


def test_redirect_to_endpoint_or_url(app: Flask) -> None:
    """redirect_to redirects to an endpoint's URL or to a literal URL when off."""
    web = app.test_client()
    response = web.get("/redirected", headers={"X-User": "bob"})
    assert response.status_code == 302 and response.location == "/"
    assert web.get("/redirected", headers={"X-User": "alice"}).text == "new checkout"
    response = web.get("/redirected-url")
    assert response.status_code == 302 and response.location == "/status"


def test_custom_status(app: Flask) -> None:
    """status= chooses the error status."""
    assert app.test_client().get("/forbidden").status_code == 403


def test_class_based_view(app: Flask) -> None:
    """flag_required works in a MethodView's decorators list."""
    web = app.test_client()
    assert web.get("/checkout-view", headers={"X-User": "alice"}).text == "class-based checkout"
    assert web.get("/checkout-view", headers={"X-User": "bob"}).status_code == 404


def test_blueprint_guard(app: Flask) -> None:
    """guard_blueprint admits requests to a blueprint only while its flag is on."""
    web = app.test_client()
    assert web.get("/beta/").text == "beta home"
    response = web.get("/closed/")
    assert response.status_code == 302 and response.location == "/"


def test_blueprint_guard_follows_flag_changes(app: Flask) -> None:
    """The blueprint guard is evaluated per request, so a changed flag takes effect."""
    from flagkit_flask.testing import override_flags

    web = app.test_client()
    with override_flags(app, {"beta": False}):
        assert web.get("/beta/").status_code == 404
    assert web.get("/beta/").status_code == 200


def test_wraps_keeps_name_and_doc() -> None:
    """The decorator keeps the view's name and docstring."""

    @flag_required("x")
    def my_view() -> str:
        """Docs."""
        return "x"

    assert my_view.__name__ == "my_view"
    assert my_view.__doc__ == "Docs."


@pytest.mark.parametrize(
    ("key", "status"), [("", 404), ("!", 404), (None, 404), ("x", 200), ("x", True)]
)
def test_bad_arguments_raise_at_decoration(key: object, status: object) -> None:
    """An empty key or a non-error status raises ValueError when decorating."""
    with pytest.raises(ValueError):
        flag_required(key, status=status)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        flag_guard(key, status=status)  # type: ignore[arg-type]


def test_guard_outside_a_request_is_an_error(app: Flask) -> None:
    """A decorated view called outside a request raises a clear RuntimeError."""

    @flag_required("beta")
    def view() -> str:
        return "x"

    with app.app_context(), pytest.raises(RuntimeError, match="inside a request"):
        view()
