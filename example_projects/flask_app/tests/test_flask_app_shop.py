"""The Flask demo shop against a local FlagKit server serving example_projects/flags.json."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_shop.db import init_db

from flagkit.testing import FlagKitServer
from flagkit_flask.testing import FlagOverrides


def flag_row(html: str, key: str) -> str:
    """The text of the /flags table row of ``key`` (tags stripped)."""
    match = re.search(rf'<tr id="flag-{re.escape(key)}">(.*?)</tr>', html, re.S)
    assert match is not None, f"no row for {key}"
    return re.sub(r"<[^>]+>", " ", match.group(1)).replace("&#34;", '"')


def page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def test_init_db_seeds_the_three_demo_users_idempotently(app: Flask) -> None:
    """init-db makes alice staff, bob a beta-group member and carol regular; running it
    again keeps exactly three users."""
    runner = app.test_cli_runner()
    result = runner.invoke(args=["init-db"])
    assert "demo users ready: alice, bob, carol" in result.output
    with app.app_context():
        init_db()
    rows = sqlite3.connect(app.config["DATABASE"]).execute(
        "SELECT username, is_staff, groups FROM users ORDER BY username"
    )
    assert rows.fetchall() == [("alice", 1, ""), ("bob", 0, "beta"), ("carol", 0, "")]


def test_wrong_password_is_refused(app: Flask) -> None:
    """The log-in form rejects a wrong password and keeps the visitor anonymous."""
    client = app.test_client()
    response = client.post("/login", data={"username": "alice", "password": "nope"})
    assert response.status_code == 200 and "wrong password" in response.get_data(as_text=True)
    assert 'id="user"' not in page(client, "/")


def test_staff_tools_only_for_staff(login: Callable[[str], FlaskClient]) -> None:
    """The staff-only rule shows alice the staff link and page; carol gets neither (404)."""
    alice = login("alice")
    assert 'id="staff-link"' in page(alice, "/")
    assert "Staff tools" in page(alice, "/staff/")
    carol = login("carol")
    assert 'id="staff-link"' not in page(carol, "/")
    assert carol.get("/staff/").status_code == 404


def test_beta_dashboard_for_the_beta_segment_only(login: Callable[[str], FlaskClient]) -> None:
    """bob (group beta -> beta-testers segment, via the context loader) sees the beta
    dashboard; carol is sent home."""
    bob = login("bob")
    assert 'id="beta-link"' in page(bob, "/")
    assert 'id="beta-title"' in page(bob, "/beta")
    response = login("carol").get("/beta")
    assert response.status_code == 302 and response.headers["Location"] == "/"


def test_flags_page_shows_value_and_reason_for_the_current_user(
    login: Callable[[str], FlaskClient],
) -> None:
    """/flags lists each flag's value, reason, variation and rule for the signed-in user."""
    html = page(login("alice"), "/flags")
    assert re.search(
        r"staff-tools\s+true\s+RULE_MATCH\s+on\s+staff-only", flag_row(html, "staff-tools")
    )
    assert "PREREQUISITE_FAILED" in flag_row(html, "one-click-buy")
    assert "FLAG_DISABLED" in flag_row(html, "maintenance-banner")
    html = page(login("bob"), "/flags/")  # the README's spelling answers too
    assert "SEGMENT_MATCH" in flag_row(html, "max-cart-items")
    assert '"expressCheckout": true' in flag_row(html, "checkout-config")
    assert "&#34;userId&#34;: &#34;bob&#34;" in html  # FLAGKIT_USER_ID_ATTRIBUTE = "username"


def test_same_users_get_the_same_variations_as_on_the_django_site(
    login: Callable[[str], FlaskClient],
) -> None:
    """Bucketing by username gives each demo user the same rollout and experiment
    variations as the Django shop: only carol has the new checkout; colours differ."""
    colors = {}
    for name in ("alice", "bob", "carol"):
        html = page(login(name), "/checkout")
        colors[name] = re.search(r'id="place-order" class="btn (\w+)"', html).group(1)  # type: ignore[union-attr]
        assert ("New checkout" in html) is (name == "carol")
    assert colors == {"alice": "blue", "bob": "orange", "carol": "green"}


def test_cart_limit_comes_from_the_number_flag(login: Callable[[str], FlaskClient]) -> None:
    """carol may put 5 items in the cart (max-cart-items), bob 20 (beta segment)."""
    carol = login("carol")
    for _ in range(6):
        response = carol.post("/cart/add/rocket-socks", follow_redirects=True)
    assert "Your cart is limited to 5 items." in response.get_data(as_text=True)
    assert "up to 20 items" in page(login("bob"), "/cart")


def test_checkout_tracks_a_purchase_event(
    shop_server: FlagKitServer, login: Callable[[str], FlaskClient]
) -> None:
    """Placing an order sends a 'purchase' event with the amount to the FlagKit server."""
    carol = login("carol")
    carol.post("/cart/add/flag-mug")
    assert carol.post("/checkout").status_code == 302
    (event,) = shop_server.wait_for_events(1, event_type="purchase")
    assert event["eventData"] == {
        "amount": 12.0,
        "currency": "EUR",
        "items": 1,
        "checkout": "new",
        "site": "flask",
    }


def test_one_click_buy_needs_its_prerequisite(
    shop_server: FlagKitServer, login: Callable[[str], FlaskClient]
) -> None:
    """one-click-buy needs new-checkout: alice gets 404, carol buys (a purchase event)."""
    assert login("alice").post("/buy/flag-mug").status_code == 404
    carol = login("carol")
    assert "Buy now" in page(carol, "/")
    assert carol.post("/buy/flag-mug").status_code == 302
    (event,) = shop_server.wait_for_events(1, event_type="purchase")
    assert event["eventData"]["checkout"] == "one-click"


def test_flag_change_reaches_pages_and_the_signal_receiver(
    app: Flask,
    shop_server: FlagKitServer,
    login: Callable[[str], FlaskClient],
    caplog: pytest.LogCaptureFixture,
    wait_until: Callable[..., bool],
) -> None:
    """A flag changed on the server is streamed to the app: the next page load shows it,
    the flags_updated receiver logs it, and the staff page lists it."""
    caplog.set_level(logging.INFO, logger=app.logger.name)
    alice = login("alice")
    shop_server.set_flag("welcome-message", "Hello from a test")
    assert wait_until(lambda: "Hello from a test" in page(alice, "/"))
    assert wait_until(lambda: "flag changed: welcome-message = 'Hello from a test'" in caplog.text)
    assert "welcome-message" in page(alice, "/staff/")


def test_flagkit_flags_fixture_forces_a_flag(
    login: Callable[[str], FlaskClient], flagkit_flags: FlagOverrides
) -> None:
    """The flagkit_flags fixture (flagkit_flask.pytest_plugin) opens the staff page to carol."""
    carol = login("carol")
    assert carol.get("/staff/").status_code == 404
    flagkit_flags.set({"staff-tools": True})
    assert carol.get("/staff/").status_code == 200


def test_one_browser_switching_users_sees_each_users_flags(app: Flask) -> None:
    """Logging out and in as someone else in the same browser shows the new user's flags:
    the {% flag %} tag is evaluated per render, never baked into the cached template."""
    client = app.test_client()
    teasers = []
    for name in ("carol", "alice", "carol"):
        client.post("/login", data={"username": name, "password": "flagkit-demo"})
        teasers += re.findall(r'id="(new|classic)-checkout-teaser"', page(client, "/"))
        client.post("/logout")
    assert teasers == ["new", "classic", "new"]
