"""Who flags are evaluated for: Flask-Login, g.user, anonymous cookie, custom loaders."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from flask import Flask, g

from flagkit import EvaluationContext
from flagkit_flask import FlagKit
from flagkit_flask.extension import get_state
from tests.flask.conftest import AppFactory


def test_anonymous_visitor_gets_anonymous_context(app: Flask) -> None:
    """Without a user, the context is anonymous and a targeted rule for anonymous visitors
    matches."""
    web = app.test_client()
    context = web.get("/context", headers={"User-Agent": "pytest-agent"}).json
    assert context["anonymous"] is True
    assert "userId" not in context
    assert context["userAgent"] == "pytest-agent"
    assert context["ip"] == "127.0.0.1"
    assert web.get("/value/greeting").json == {"value": "hello visitor"}


def test_g_user_is_the_user(app: Flask) -> None:
    """A g.user set by the app (a mapping here) becomes the context's user."""
    web = app.test_client()
    context = web.get("/context", headers={"X-User": "alice"}).json
    assert context["userId"] == "alice"
    assert context["anonymous"] is False
    assert context["email"] == "alice@example.com"
    assert "userKey" not in context
    assert web.get("/is/new-checkout", headers={"X-User": "alice"}).text == "on"
    assert web.get("/is/new-checkout", headers={"X-User": "bob"}).text == "off"
    assert web.get("/value/greeting", headers={"X-User": "bob"}).json == {"value": "welcome back"}


def test_plain_client_call_in_a_view_sees_the_request_user(app: Flask) -> None:
    """Inside a request, a plain client.evaluate() evaluates for the current user."""
    web = app.test_client()
    alice = web.get("/plain/new-checkout", headers={"X-User": "alice"}).json
    assert alice == {"value": True, "reason": "TARGET_MATCH"}
    bob = web.get("/plain/new-checkout", headers={"X-User": "bob"}).json
    assert bob == {"value": False, "reason": "FALLTHROUGH"}


def test_async_view_sees_the_request_user(app: Flask) -> None:
    """An async view's plain client calls also see the request's user."""
    web = app.test_client()
    assert web.get("/async/new-checkout", headers={"X-User": "alice"}).json == {
        "value": True,
        "extension": True,
    }
    assert web.get("/async/new-checkout", headers={"X-User": "bob"}).json == {
        "value": False,
        "extension": False,
    }


def test_request_scope_does_not_leak_after_the_request(app: Flask) -> None:
    """After a request, the client has no scoped context and its global context is unset."""
    client = get_state(app).client
    app.test_client().get("/plain/new-checkout", headers={"X-User": "alice"})
    assert client.get_context() is None
    assert client.evaluate("new-checkout").value is False


def test_flask_login_current_user_wins(make_app: AppFactory) -> None:
    """With Flask-Login, the logged-in current_user is the context's user."""
    app = make_app(login=True)
    assert get_state(app).client.wait_for_ready(5)
    web = app.test_client()
    assert web.get("/context").json["anonymous"] is True
    assert web.post("/login/alice").status_code == 200
    context = web.get("/context").json
    assert context["userId"] == "alice"
    assert context["name"] == "Alice"
    assert web.get("/is/new-checkout").text == "on"
    # Flask-Login's user wins over g.user.
    assert web.get("/context", headers={"X-User": "bob"}).json["userId"] == "alice"
    web.post("/logout")
    assert web.get("/context").json["anonymous"] is True
    assert web.get("/is/new-checkout").text == "off"


def test_anonymous_key_is_sticky_through_a_signed_cookie(app: Flask) -> None:
    """An anonymous visitor gets a signed cookie on first evaluation and keeps the same key
    (and the same rollout bucket) on later requests."""
    web = app.test_client()
    first = web.get("/context").json
    cookie = web.get_cookie("flagkit_anon")
    assert cookie is not None
    assert cookie.http_only and cookie.same_site == "Lax"
    assert first["userKey"] in cookie.value  # signed: "<key>.<signature>"
    assert cookie.value != first["userKey"]
    for _ in range(3):
        assert web.get("/context").json["userKey"] == first["userKey"]
    expected = (
        get_state(app)
        .client.evaluate("rollout", EvaluationContext(user_key=first["userKey"], anonymous=True))
        .value
    )
    assert all(web.get("/is/rollout").text == ("on" if expected else "off") for _ in range(3))


def test_no_cookie_without_an_evaluation_for_the_visitor(app: Flask) -> None:
    """A request that never evaluates for its user sets no cookie; nor does a simple flag."""
    web = app.test_client()
    web.get("/")
    web.get("/is/beta")  # a simple flag needs no context
    assert web.get_cookie("flagkit_anon") is None


def test_tampered_cookie_gets_a_new_key(app: Flask) -> None:
    """A cookie with a bad signature is ignored and replaced."""
    web = app.test_client()
    web.set_cookie("flagkit_anon", "0123456789abcdef0123456789abcdef.forged")
    context = web.get("/context").json
    assert context["userKey"] != "0123456789abcdef0123456789abcdef"
    cookie = web.get_cookie("flagkit_anon")
    assert cookie is not None and cookie.value.startswith(context["userKey"])


def test_users_get_no_anonymous_cookie(app: Flask) -> None:
    """A known user's request does not set the anonymous-key cookie."""
    web = app.test_client()
    web.get("/context", headers={"X-User": "alice"})
    assert web.get_cookie("flagkit_anon") is None


def test_no_secret_key_means_no_cookie_and_a_warning(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Without SECRET_KEY anonymous visitors get a key per request and a warning is logged."""
    app = make_app({"SECRET_KEY": None})
    web = app.test_client()
    with caplog.at_level(logging.WARNING, logger="flagkit.flask"):
        first = web.get("/context").json["userKey"]
        second = web.get("/context").json["userKey"]
    assert first != second
    assert web.get_cookie("flagkit_anon") is None
    assert [r for r in caplog.records if "SECRET_KEY" in r.getMessage()]


def test_country_and_proxy_headers(make_app: AppFactory) -> None:
    """COUNTRY_HEADER feeds country (Django-style name accepted) and TRUST_PROXY_HEADERS
    takes the IP from X-Forwarded-For."""
    app = make_app(
        {"FLAGKIT_COUNTRY_HEADER": "HTTP_CF_IPCOUNTRY", "FLAGKIT_TRUST_PROXY_HEADERS": True}
    )
    assert get_state(app).client.wait_for_ready(5)
    web = app.test_client()
    headers = {"CF-IPCountry": "nl", "X-Forwarded-For": "203.0.113.9, 10.0.0.1", "X-User": "zed"}
    context = web.get("/context", headers=headers).json
    assert context["country"] == "NL"
    assert context["ip"] == "203.0.113.9"
    assert web.get("/evaluate/new-checkout", headers=headers).json["rule"] == "nl"


def test_proxy_headers_ignored_by_default(app: Flask) -> None:
    """Without TRUST_PROXY_HEADERS a visitor cannot choose their IP."""
    context = app.test_client().get("/context", headers={"X-Forwarded-For": "203.0.113.9"}).json
    assert context["ip"] == "127.0.0.1"


def test_context_loader_extends_the_default(make_app: AppFactory) -> None:
    """A @context_loader receives the default context and may extend it."""
    ext = FlagKit()
    calls: list[EvaluationContext] = []

    @ext.context_loader
    def load(default: EvaluationContext) -> EvaluationContext:
        calls.append(default)
        plan = "pro" if g.get("user") and g.user["id"].startswith("pro-") else "free"
        return dataclasses.replace(default, custom={**default.custom, "plan": plan})

    app = make_app(extension=ext)
    assert get_state(app).client.wait_for_ready(5)
    web = app.test_client()
    assert web.get("/evaluate/new-checkout", headers={"X-User": "pro-1"}).json["rule"] == "pro"
    assert web.get("/is/new-checkout", headers={"X-User": "free-1"}).text == "off"
    context = web.get("/context", headers={"X-User": "pro-2"}).json
    assert context["userId"] == "pro-2" and context["custom"]["plan"] == "pro"
    assert all(c.user_id in ("pro-1", "free-1", "pro-2") for c in calls)


def test_context_loader_can_replace_the_context(make_app: AppFactory) -> None:
    """A loader may return a brand-new context (or None for no user)."""
    ext = FlagKit()

    @ext.context_loader
    def load(default: EvaluationContext) -> EvaluationContext | None:
        user = g.get("user")
        return EvaluationContext(user_id="alice") if user else None

    app = make_app(extension=ext)
    assert get_state(app).client.wait_for_ready(5)
    web = app.test_client()
    assert web.get("/context", headers={"X-User": "someone"}).json == {"userId": "alice"}
    assert web.get("/is/new-checkout", headers={"X-User": "someone"}).text == "on"
    assert web.get("/context").json is None
    assert web.get("/evaluate/new-checkout").json["reason"] == "FALLTHROUGH"


def test_failing_context_loader_is_logged_and_lookups_still_work(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A loader that raises is logged; the request evaluates without a context."""
    ext = FlagKit()

    @ext.context_loader
    def load(default: EvaluationContext) -> EvaluationContext:
        raise LookupError("profile service down")

    app = make_app(extension=ext)
    assert get_state(app).client.wait_for_ready(5)
    with caplog.at_level(logging.ERROR, logger="flagkit.flask"):
        response = app.test_client().get("/is/new-checkout", headers={"X-User": "alice"})
    assert response.status_code == 200 and response.text == "off"
    assert any("profile service down" in (r.exc_text or "") for r in caplog.records)


def test_context_is_built_lazily_once_per_request(make_app: AppFactory) -> None:
    """Simple flags never build the context; targeted lookups build it once per request."""
    ext = FlagKit()
    built: list[str | None] = []

    @ext.context_loader
    def load(default: EvaluationContext) -> EvaluationContext:
        built.append(default.user_id)
        return default

    app = make_app(extension=ext)
    assert get_state(app).client.wait_for_ready(5)
    web = app.test_client()
    web.get("/is/beta", headers={"X-User": "u1"})
    assert built == []
    web.get(
        "/template?t={{ flag('new-checkout') }}{{ flag_value('greeting') }}",
        headers={"X-User": "u2"},
    )
    assert built == ["u2"]


def test_lookups_are_memoised_per_request(app: Flask) -> None:
    """Within a request a flag keeps the value first seen, even if it changes meanwhile;
    the next request sees the new value."""
    web = app.test_client()
    body = web.get("/memo/banner-text").json
    assert body["first"] == body["second"] == "Spring sale"
    assert body["plain"] == "changed mid-request"
    assert web.get("/value/banner-text").json == {"value": "changed mid-request"}


def test_client_context_is_the_request_user_during_the_request_only(app: Flask) -> None:
    """client.get_context() reports the request's user inside the request, nothing after."""
    client = get_state(app).client
    seen: list[str | None] = []

    @app.get("/client-context")
    def client_context() -> str:
        ctx = client.get_context()
        seen.append(None if ctx is None else ctx.user_id)
        return "ok"

    app.test_client().get("/client-context", headers={"X-User": "carol"})
    assert seen == ["carol"]
    assert client.get_context() is None


def test_request_flags_sets_every_slot_it_inherits(app: Flask) -> None:
    """The adapter's inlined ``__init__`` sets every slot of the core class and its own."""
    from flagkit_flask import RequestFlags

    state = get_state(app)
    flags = RequestFlags(state, state.client)
    names = [name for cls in type(flags).__mro__ for name in getattr(cls, "__slots__", ())]
    assert "_bools" in names and "_state" in names
    for name in names:
        getattr(flags, name)  # AttributeError if the slot was never set
