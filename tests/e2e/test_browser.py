"""End to end in headless Chromium: the demo's two shops, log-ins and a live flag change."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

from selenium import webdriver
from selenium.webdriver.common.by import By

PASSWORD = "flagkit-demo"


def log_in(
    browser: webdriver.Chrome,
    login_url: str,
    username: str,
    wait_for: Callable[..., None],
) -> None:
    """Sign in through the site's real log-in form; wait until the page says so."""
    browser.get(login_url)
    browser.find_element(By.ID, "id_username").send_keys(username)
    browser.find_element(By.ID, "id_password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login-submit").click()
    wait_for(
        lambda: f"Signed in as {username}" in browser.find_element(By.TAG_NAME, "body").text,
        what=f"{username} to be signed in",
    )


def log_out(browser: webdriver.Chrome, wait_for: Callable[..., None]) -> None:
    """Press the log-out button; wait for the anonymous page."""
    browser.find_element(By.ID, "logout").click()
    wait_for(lambda: browser.find_elements(By.ID, "login-link"), what="the log-in link")


def nav_ids(browser: webdriver.Chrome) -> set[str]:
    """The ids of the navigation links on the current page."""
    return {a.get_attribute("id") or "" for a in browser.find_elements(By.CSS_SELECTOR, "nav a")}


def reason_of(browser: webdriver.Chrome, key: str) -> str:
    """The reason column of ``key`` on the current /flags page."""
    return browser.find_element(By.CSS_SELECTOR, f"#flag-{key} .reason").text


def test_django_shop_shows_staff_and_beta_users_different_flags(
    browser: webdriver.Chrome, demo: Any, wait_for: Callable[..., None]
) -> None:
    """On the Django shop, alice (staff) gets the staff tools and not the beta dashboard,
    bob (beta tester) the reverse; the flags page gives the reasons."""
    log_in(browser, demo.django_url + "/accounts/login/", "alice", wait_for)
    links = nav_ids(browser)
    assert "staff-link" in links and "beta-link" not in links
    browser.find_element(By.ID, "staff-link").click()
    wait_for(lambda: browser.find_elements(By.ID, "staff-title"), what="the staff page")
    browser.get(demo.django_url + "/flags/")
    assert reason_of(browser, "staff-tools") == "RULE_MATCH"
    log_out(browser, wait_for)

    log_in(browser, demo.django_url + "/accounts/login/", "bob", wait_for)
    links = nav_ids(browser)
    assert "beta-link" in links and "staff-link" not in links
    browser.get(demo.django_url + "/flags/")
    assert reason_of(browser, "beta-dashboard") == "SEGMENT_MATCH"
    assert reason_of(browser, "staff-tools") == "FALLTHROUGH"


def test_flask_shop_gives_the_rollout_to_carol_only(
    browser: webdriver.Chrome, demo: Any, wait_for: Callable[..., None]
) -> None:
    """On the Flask shop, carol is in the 30% new-checkout rollout (so one-click buying
    is offered) and alice is not."""
    log_in(browser, demo.flask_url + "/login", "carol", wait_for)
    assert browser.find_elements(By.ID, "new-checkout-teaser")
    assert any(b.text == "Buy now" for b in browser.find_elements(By.TAG_NAME, "button"))
    log_out(browser, wait_for)

    log_in(browser, demo.flask_url + "/login", "alice", wait_for)
    assert browser.find_elements(By.ID, "classic-checkout-teaser")
    assert not any(b.text == "Buy now" for b in browser.find_elements(By.TAG_NAME, "button"))
    assert "staff-link" in nav_ids(browser)


def test_a_flag_changed_on_the_local_server_shows_on_reload(
    browser: webdriver.Chrome, demo: Any, wait_for: Callable[..., None]
) -> None:
    """`flagkit flags set` on the local server changes both open shops on their next load
    (the change is streamed to each site's client)."""
    pages = [demo.django_url + "/", demo.flask_url + "/"]
    for url in pages:
        browser.get(url)
        assert browser.find_element(By.ID, "welcome").text == "Welcome to the FlagKit demo shop!"
        assert not browser.find_elements(By.ID, "maintenance-banner")

    message = "Hello from the browser test"
    for args in (["welcome-message", message], ["maintenance-banner", "--enabled"]):
        subprocess.run(
            [sys.executable, "-m", "flagkit", "flags", "set", *args, "--url", demo.server_url],
            env={"FLAGKIT_ADMIN_TOKEN": demo.admin_token, "PATH": ""},
            check=True,
            capture_output=True,
        )

    for url in pages:

        def updated(url: str = url) -> bool:
            browser.get(url)  # a reload: the page is rendered again by the site
            welcome = browser.find_element(By.ID, "welcome").text
            return welcome == message and bool(browser.find_elements(By.ID, "maintenance-banner"))

        wait_for(updated, timeout=10, what=f"the change on {url}")
