"""The Django demo shop against a local FlagKit server serving example_projects/flags.json."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from flagkit.testing import FlagKitServer
from flagkit_django.testing import override_flags

pytestmark = pytest.mark.django_db


def flag_row(html: str, key: str) -> str:
    """The text of the /flags/ table row of ``key`` (tags stripped)."""
    match = re.search(rf'<tr id="flag-{re.escape(key)}">(.*?)</tr>', html, re.S)
    assert match is not None, f"no row for {key}"
    return re.sub(r"<[^>]+>", " ", match.group(1)).replace("&quot;", '"')


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def test_seed_command_creates_the_three_demo_users_idempotently(demo_users: None) -> None:
    """seed_demo_users makes alice staff, bob a beta-group member and carol regular, and
    running it again neither duplicates nor breaks them."""
    call_command("seed_demo_users", stdout=StringIO())
    assert User.objects.count() == 3
    alice, bob, carol = (User.objects.get(username=n) for n in ("alice", "bob", "carol"))
    assert alice.is_staff and not bob.is_staff and not carol.is_staff
    assert list(bob.groups.values_list("name", flat=True)) == ["beta"]
    assert not carol.groups.exists() and carol.check_password("flagkit-demo")


def test_staff_tools_only_for_staff(
    shop_server: FlagKitServer, login: Callable[[str], Client]
) -> None:
    """The staff-only rule shows alice the staff link and page; carol gets neither (404)."""
    client = login("alice")
    assert 'id="staff-link"' in page(client, "/")
    assert "Staff tools" in page(client, "/staff/")
    client = login("carol")
    assert 'id="staff-link"' not in page(client, "/")
    assert client.get("/staff/").status_code == 404


def test_beta_dashboard_for_the_beta_segment_only(
    shop_server: FlagKitServer, login: Callable[[str], Client]
) -> None:
    """bob (beta group -> beta-testers segment) sees the beta dashboard; carol is sent home."""
    client = login("bob")
    assert 'id="beta-link"' in page(client, "/")
    assert 'id="beta-title"' in page(client, "/beta/")
    client = login("carol")
    response = client.get("/beta/")
    assert response.status_code == 302 and response["Location"] == "/"


def test_flags_page_shows_value_and_reason_for_the_current_user(
    shop_server: FlagKitServer, login: Callable[[str], Client]
) -> None:
    """/flags/ lists each flag's value, reason, variation and rule for the signed-in user."""
    html = page(login("alice"), "/flags/")
    assert re.search(
        r"staff-tools\s+true\s+RULE_MATCH\s+on\s+staff-only", flag_row(html, "staff-tools")
    )
    assert "99" in flag_row(html, "max-cart-items")
    assert "PREREQUISITE_FAILED" in flag_row(html, "one-click-buy")
    assert "FLAG_DISABLED" in flag_row(html, "maintenance-banner")
    assert "CACHED" in flag_row(html, "welcome-message")
    html = page(login("bob"), "/flags")  # without the slash too, as on the Flask site
    assert "SEGMENT_MATCH" in flag_row(html, "beta-dashboard")
    assert '"expressCheckout": true' in flag_row(html, "checkout-config")
    assert "&quot;userId&quot;: &quot;bob&quot;" in html  # USER_ID_ATTRIBUTE = "username"


def test_rollout_and_experiment_split_the_demo_users(
    shop_server: FlagKitServer, login: Callable[[str], Client]
) -> None:
    """carol is in the 30% new-checkout rollout, alice is not; the button-colour experiment
    gives the three users three different variations."""
    colors = {}
    for name in ("alice", "bob", "carol"):
        client = login(name)
        html = page(client, "/checkout/")
        colors[name] = re.search(r'id="place-order" class="btn (\w+)"', html).group(1)  # type: ignore[union-attr]
        assert ("New checkout" in html) is (name == "carol")
    assert colors == {"alice": "blue", "bob": "orange", "carol": "green"}


def test_cart_limit_comes_from_the_number_flag(
    shop_server: FlagKitServer, login: Callable[[str], Client]
) -> None:
    """carol may put 5 items in the cart (max-cart-items), bob 20 (beta segment)."""
    client = login("carol")
    for _ in range(6):
        response = client.post("/cart/add/rocket-socks/", follow=True)
    assert "Your cart is limited to 5 items." in response.content.decode()
    assert client.session["cart"] == ["rocket-socks"] * 5
    assert "up to 20 items" in page(login("bob"), "/cart/")


def test_checkout_tracks_a_purchase_event(
    shop_server: FlagKitServer, login: Callable[[str], Client]
) -> None:
    """Placing an order sends a 'purchase' event with the amount to the FlagKit server."""
    client = login("carol")
    client.post("/cart/add/rollout-hoodie/")
    response = client.post("/checkout/")
    assert response.status_code == 302
    (event,) = shop_server.wait_for_events(1, event_type="purchase")
    assert event["eventData"] == {
        "amount": 39.0,
        "currency": "EUR",
        "items": 1,
        "checkout": "new",
        "site": "django",
    }
    assert client.session["cart"] == []


def test_one_click_buy_needs_its_prerequisite(
    shop_server: FlagKitServer, login: Callable[[str], Client]
) -> None:
    """one-click-buy needs new-checkout: alice gets 404, carol buys (a purchase event)."""
    assert login("alice").post("/buy/flag-mug/").status_code == 404
    assert "Buy now" in page(login("carol"), "/")
    assert login("carol").post("/buy/flag-mug/").status_code == 302
    (event,) = shop_server.wait_for_events(1, event_type="purchase")
    assert event["eventData"]["checkout"] == "one-click"


def test_flag_change_reaches_pages_and_the_signal_receiver(
    shop_server: FlagKitServer,
    login: Callable[[str], Client],
    caplog: pytest.LogCaptureFixture,
    wait_until: Callable[..., bool],
) -> None:
    """A flag changed on the server is streamed to the shop: the next page load shows it,
    the flags_updated receiver logs it, and the staff page lists it."""
    caplog.set_level(logging.INFO, logger="shop.flags")
    client = login("alice")
    shop_server.set_flag("welcome-message", "Hello from a test")
    assert wait_until(lambda: "Hello from a test" in page(client, "/"))
    assert wait_until(lambda: "flag changed: welcome-message = 'Hello from a test'" in caplog.text)
    assert "welcome-message" in page(client, "/staff/")


def test_override_flags_lets_tests_force_a_flag(
    shop_server: FlagKitServer, login: Callable[[str], Client]
) -> None:
    """flagkit_django.testing.override_flags opens the staff page to carol inside the block."""
    client = login("carol")
    with override_flags({"staff-tools": True}):
        assert client.get("/staff/").status_code == 200
    assert client.get("/staff/").status_code == 404


def test_jinja2_page_uses_the_flagkit_helpers(shop_server: FlagKitServer, client: Client) -> None:
    """/about/ (Jinja2 backend) renders flag values through the flagkit global."""
    html = page(client, "/about/")
    assert "Welcome to the FlagKit demo shop!" in html
    assert "No maintenance planned." in html


def test_maintenance_banner_appears_when_the_flag_is_enabled(
    shop_server: FlagKitServer, client: Client, wait_until: Callable[..., bool], db: Any
) -> None:
    """maintenance-banner is disabled in flags.json (off variation); enabling it on the
    server shows the banner on the next load."""
    assert 'id="maintenance-banner"' not in page(client, "/")
    shop_server.set_flag("maintenance-banner", enabled=True)
    assert wait_until(lambda: 'id="maintenance-banner"' in page(client, "/"))
