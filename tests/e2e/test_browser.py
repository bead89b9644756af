"""End to end in headless Chromium: the demo's two shops, log-ins and a live flag change."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
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


def _rgb(css: str) -> tuple[float, float, float, float]:
    """``rgb(r, g, b)`` / ``rgba(r, g, b, a)`` as numbers (alpha 1 when absent)."""
    numbers = [float(n) for n in re.findall(r"[\d.]+", css)]
    return (numbers[0], numbers[1], numbers[2], numbers[3] if len(numbers) > 3 else 1.0)


def _luminance(rgb: tuple[float, float, float, float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2])


def contrast(foreground: str, background: str) -> float:
    """The WCAG contrast ratio of two CSS colours (a transparent background is white)."""
    back = _rgb(background)
    if back[3] == 0:
        back = (255.0, 255.0, 255.0, 1.0)
    lighter, darker = sorted((_luminance(_rgb(foreground)), _luminance(back)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def set_flag(demo: Any, *args: str) -> None:
    """``flagkit flags set ARGS`` against the demo's server (the documented CLI)."""
    subprocess.run(
        [sys.executable, "-m", "flagkit", "flags", "set", *args, "--url", demo.server_url],
        env={"FLAGKIT_ADMIN_TOKEN": demo.admin_token, "PATH": ""},
        check=True,
        capture_output=True,
    )


def test_both_shops_are_readable_with_dark_mode_on_and_off(
    browser: webdriver.Chrome, demo: Any, wait_for: Callable[..., None], screenshots: Path
) -> None:
    """Each shop's flags page, dark mode off then on: every nav link has a contrast of at
    least 4.5:1 with the page (WCAG AA), and the "Evaluation context" box does not
    overflow. A screenshot of each page is saved as an artifact."""
    sites = {"django": demo.django_url + "/flags/", "flask": demo.flask_url + "/flags"}
    try:
        for dark in (False, True):
            set_flag(demo, "dark-mode", "true" if dark else "false")
            for name, url in sites.items():

                def themed(url: str = url, dark: bool = dark) -> bool:
                    browser.get(url)
                    body = browser.find_element(By.TAG_NAME, "body")
                    return ("dark" in (body.get_attribute("class") or "").split()) is dark

                wait_for(themed, timeout=10, what=f"dark mode {'on' if dark else 'off'} on {url}")
                browser.save_screenshot(
                    str(screenshots / f"{name}-flags-{'dark' if dark else 'light'}.png")
                )
                background = browser.execute_script(
                    "return getComputedStyle(document.body).backgroundColor"
                )
                for link in browser.find_elements(By.CSS_SELECTOR, "nav a"):
                    color = link.value_of_css_property("color")
                    ratio = contrast(color, background)
                    assert ratio >= 4.5, (name, dark, link.text, color, background, ratio)
                box = browser.find_element(By.ID, "context")
                overflow = browser.execute_script(
                    "const el = arguments[0], main = el.closest('main') || document.body;"
                    "return [el.scrollWidth - el.clientWidth,"
                    " el.getBoundingClientRect().right - main.getBoundingClientRect().right];",
                    box,
                )
                assert overflow[0] <= 1 and overflow[1] <= 1, (name, dark, overflow)
    finally:
        set_flag(demo, "dark-mode", "false")
