"""The server's web dashboard in headless Chromium: sign in, toggle, slider and explain,
the JSON editor's field errors, revert, the live event feed, experiments and usage, and
injected markup shown as text. Screenshots of each page go to .e2e/screenshots/."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from flagkit.server import FlagKitServer
from flagkit.types.config import StreamingOptions
from tests.support import wait_until
from tests.support.clients import close_open_clients, loopback_client

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-dashboard-token-9d2b"
DEMO_KEY = "sdk_demo_key_123456"
XSS = '<img src=x onerror="document.title=\'pwned\'"><script>document.title="pwned"</script>'


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    """A copy of the demo's flags file, rewritten by the dashboard."""
    path = tmp_path / "flags.json"
    shutil.copyfile(ROOT / "example_projects" / "flags.json", path)
    return path


@pytest.fixture
def server(flags_file: Path) -> Iterator[FlagKitServer]:
    """A local server on :func:`flags_file`; SDK clients made in the test are closed after."""
    with FlagKitServer(flags_file=flags_file, admin_token=TOKEN, heartbeat_interval=30) as srv:
        yield srv
        close_open_clients()


def sign_in(
    browser: webdriver.Chrome, server: FlagKitServer, wait_for: Callable[..., None]
) -> None:
    """Open the dashboard, type the admin token, wait for the flags list."""
    browser.get(server.dashboard_url)
    wait_for(lambda: browser.find_elements(By.ID, "token"), what="the sign-in form")
    browser.find_element(By.ID, "token").send_keys(TOKEN)
    browser.find_element(By.ID, "sign-in").click()
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#flags-table tbody tr"), what="flags")


def rollout_weight(server: FlagKitServer) -> int:
    """The weight of `on` in new-checkout's fallthrough rollout."""
    flag = server.get_flag("new-checkout")
    assert flag is not None
    return int(flag["fallthrough"]["rollout"]["variations"][0]["weight"])


def flag_in_file(path: Path, key: str) -> dict[str, Any]:
    """The flag ``key`` as written in the flags file."""
    return next(f for f in json.loads(path.read_text())["flags"] if f["key"] == key)  # type: ignore[no-any-return]


def test_sign_in_toggle_reaches_a_connected_client_within_a_second(
    browser: webdriver.Chrome,
    server: FlagKitServer,
    flags_file: Path,
    wait_for: Callable[..., None],
    screenshots: Path,
) -> None:
    """Signing in shows the flags; a toggle reaches a streaming SDK client within 1 s and
    is written to the flags file."""
    browser.get(server.dashboard_url)
    wait_for(lambda: browser.find_elements(By.ID, "token"), what="the sign-in form")
    browser.save_screenshot(str(screenshots / "dashboard-sign-in.png"))
    assert TOKEN not in browser.page_source
    sign_in(browser, server, wait_for)
    assert TOKEN not in browser.page_source
    client = loopback_client(
        server.base_url,
        api_key=DEMO_KEY,
        streaming=StreamingOptions(reconnect_interval=0.05, max_backoff=0.1),
        polling_interval=60.0,
    )
    assert client.wait_for_ready(5)
    wait_until(lambda: server.stream_count >= 1, message="the client's stream")
    assert client.get_boolean_value("maintenance-banner", True) is False
    toggle = browser.find_element(By.ID, "toggle-maintenance-banner")
    assert toggle.get_attribute("aria-pressed") == "false"
    toggle.send_keys(Keys.ENTER)  # keyboard-usable
    wait_for(
        lambda: (
            browser.find_element(By.ID, "toggle-maintenance-banner").get_attribute("aria-pressed")
            == "true"
        ),
        what="the toggle to show On",
    )
    wait_until(
        lambda: client.get_boolean_value("maintenance-banner", False) is True,
        timeout=1.0,
        message="the SDK client to see the change",
    )
    assert flag_in_file(flags_file, "maintenance-banner")["enabled"] is True
    browser.save_screenshot(str(screenshots / "dashboard-flags.png"))


def test_rollout_slider_moves_the_share_of_users_in_explain(
    browser: webdriver.Chrome,
    server: FlagKitServer,
    wait_for: Callable[..., None],
    screenshots: Path,
) -> None:
    """Moving new-checkout's slider from 30% to 80% (keyboard) makes explain show about 80%
    of sample users served `on`."""
    sign_in(browser, server, wait_for)
    slider = browser.find_element(By.ID, "rollout-new-checkout")
    assert slider.get_attribute("value") == "30"
    for percent in (40, 50, 60, 70, 80):
        # Page Up moves it by 10 and saves; the row is redrawn with the slider still focused.
        target = slider if percent == 40 else browser.switch_to.active_element
        assert target.get_attribute("id") == "rollout-new-checkout"
        target.send_keys(Keys.PAGE_UP)
        version = percent // 10 - 2  # 40% is the first change: version 2
        wait_for(
            lambda v=version: f"(version {v};" in browser.find_element(By.ID, "status").text,  # type: ignore[misc]
            what=f"the {percent}% rollout to be saved",
        )
        assert rollout_weight(server) == percent * 1000
    wait_for(
        lambda: browser.find_element(By.ID, "rollout-out-new-checkout").text == "80% on",
        what="the slider to show 80%",
    )
    browser.get(server.dashboard_url + "#/explain/new-checkout")
    wait_for(lambda: browser.find_elements(By.ID, "explain-submit"), what="the explain form")
    context = browser.find_element(By.ID, "explain-context")
    context.clear()
    context.send_keys('{"userId": "carol", "country": "NL"}')
    browser.find_element(By.ID, "explain-submit").click()
    wait_for(lambda: browser.find_elements(By.ID, "distribution"), what="the distribution")
    share = browser.find_element(By.CSS_SELECTOR, '#distribution tr[data-variation="on"] .share')
    assert 75.0 <= float(share.text.rstrip("%")) <= 85.0
    assert browser.find_element(By.ID, "explain-reason").text == "FALLTHROUGH"
    browser.save_screenshot(str(screenshots / "dashboard-explain.png"))


def test_invalid_json_shows_the_field_error_and_saves_nothing(
    browser: webdriver.Chrome,
    server: FlagKitServer,
    flags_file: Path,
    wait_for: Callable[..., None],
    screenshots: Path,
) -> None:
    """A wrong value type in the editor is reported at `value`; the flag and file stay."""
    before = flags_file.read_bytes()
    sign_in(browser, server, wait_for)
    browser.get(server.dashboard_url + "#/flag/dark-mode")
    wait_for(lambda: browser.find_elements(By.ID, "flag-json"), what="the editor")
    editor = browser.find_element(By.ID, "flag-json")
    editor.clear()
    editor.send_keys('{"key": "dark-mode", "flagType": "boolean", "value": "yes"}')
    browser.find_element(By.ID, "save-json").click()
    error = browser.find_element(By.ID, "json-error")
    wait_for(lambda: error.text, what="the field error")
    assert error.text.startswith("value: must be a boolean") and "nothing saved" in error.text
    assert editor.get_attribute("aria-invalid") == "true"
    editor.clear()
    editor.send_keys('{"key": "dark-mode", "value": tru')
    browser.find_element(By.ID, "save-json").click()
    wait_for(lambda: "JSON syntax" in error.text, what="the syntax error")
    assert server.get_flag("dark-mode")["version"] == 1  # type: ignore[index]
    assert flags_file.read_bytes() == before
    browser.save_screenshot(str(screenshots / "dashboard-flag-invalid.png"))


def test_revert_a_version_from_the_history(
    browser: webdriver.Chrome,
    server: FlagKitServer,
    flags_file: Path,
    wait_for: Callable[..., None],
    screenshots: Path,
) -> None:
    """Two changes show in the history with diffs; reverting to version 1 serves and
    writes the original value again."""
    server.set_flag("welcome-message", "Second")
    server.set_flag("welcome-message", "Third")
    sign_in(browser, server, wait_for)
    browser.get(server.dashboard_url + "#/flag/welcome-message")
    wait_for(lambda: browser.find_elements(By.ID, "revert-1"), what="the history")
    assert '+  "value": "Third",' in browser.find_element(By.ID, "version-3").text
    browser.save_screenshot(str(screenshots / "dashboard-flag.png"))
    browser.find_element(By.ID, "revert-1").click()
    original = "Welcome to the FlagKit demo shop!"
    wait_until(
        lambda: server.get_flag("welcome-message")["value"] == original,  # type: ignore[index]
        message="the revert",
    )
    assert server.get_flag("welcome-message")["version"] == 4  # type: ignore[index]
    assert flag_in_file(flags_file, "welcome-message")["value"] == original
    wait_for(lambda: browser.find_elements(By.ID, "version-4"), what="version 4 in the history")


def test_tracked_event_appears_in_the_live_feed(
    browser: webdriver.Chrome,
    server: FlagKitServer,
    wait_for: Callable[..., None],
    screenshots: Path,
) -> None:
    """An event tracked by an SDK client shows in the open feed; the user filter keeps it."""
    sign_in(browser, server, wait_for)
    browser.get(server.dashboard_url + "#/events")
    wait_for(
        lambda: browser.find_element(By.ID, "event-feed").get_attribute("data-live") == "true",
        what="the live feed to connect",
    )
    client = loopback_client(server.base_url, api_key=DEMO_KEY)
    assert client.wait_for_ready(5)
    client.identify("dana")
    client.track("purchase", {"amount": 12.5, "note": XSS})
    client.flush(5)
    selector = '#event-feed li[data-type="purchase"]'
    wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, selector), what="the purchase event")
    browser.find_element(By.ID, "filter-user").send_keys("dana")
    browser.find_element(By.ID, "filter-type").send_keys("purchase")
    items = browser.find_elements(By.CSS_SELECTOR, "#event-feed li")
    assert len(items) == 1 and "12.5" in items[0].text
    assert json.dumps(XSS) in items[0].text  # shown as JSON text, never as markup
    assert browser.title != "pwned" and not browser.find_elements(By.CSS_SELECTOR, "img[src=x]")
    browser.save_screenshot(str(screenshots / "dashboard-events.png"))


def test_experiments_and_usage_pages(
    browser: webdriver.Chrome,
    server: FlagKitServer,
    wait_for: Callable[..., None],
    screenshots: Path,
) -> None:
    """After simulated traffic (40 users of an SDK client see checkout-button-color, a
    third of them buy) the experiments page shows the sample-ratio check first, a chart
    and a row per variation; the usage page counts an SDK's evaluation summary and lists
    cleanup candidates."""
    client = loopback_client(server.base_url, api_key=DEMO_KEY)
    assert client.wait_for_ready(5)
    for i in range(40):
        client.identify(f"sim-{i}")
        client.get_string_value("checkout-button-color", "blue")  # records the exposure
        if i % 3 == 0:
            client.track("purchase", {"amount": 10 + i})
    assert client.flush(5).error is None
    summary = {
        "eventType": "$evaluation_summary",
        "timestamp": "2026-01-01T00:00:00Z",
        "sessionId": "s-1",
        "eventId": "e-usage-1",
        "eventData": {
            "startDate": "2026-01-01T00:00:00Z",
            "endDate": "2099-01-01T00:00:00Z",
            "counts": [
                {"flagKey": "dark-mode", "variationId": None, "reason": "CACHED", "count": 25},
                {
                    "flagKey": "new-checkout",
                    "variationId": "on",
                    "reason": "FALLTHROUGH",
                    "count": 4,
                },
            ],
        },
    }
    response = httpx.post(
        server.base_url + "/sdk/events/batch",
        json={"events": [summary]},
        headers={"X-API-Key": DEMO_KEY},
    )
    assert response.status_code < 300
    sign_in(browser, server, wait_for)
    browser.get(server.dashboard_url + "#/experiments")
    wait_for(
        lambda: (
            browser.find_elements(By.ID, "no-experiments")
            or browser.find_elements(By.CSS_SELECTOR, ".experiment-block")
        ),
        what="the experiments page",
    )
    browser.save_screenshot(str(screenshots / "dashboard-experiments.png"))
    browser.get(server.dashboard_url + "#/usage")
    wait_for(lambda: browser.find_elements(By.ID, "usage-table"), what="the usage page")
    row = browser.find_element(
        By.CSS_SELECTOR, '#usage-table tr[data-key="dark-mode"] .evaluations'
    )
    assert row.text == "25"
    assert browser.find_elements(By.CSS_SELECTOR, '#cleanup li[data-key="dark-mode"]')
    browser.save_screenshot(str(screenshots / "dashboard-usage.png"))


def test_injected_markup_in_values_and_rules_is_shown_as_text(
    browser: webdriver.Chrome,
    server: FlagKitServer,
    wait_for: Callable[..., None],
    screenshots: Path,
) -> None:
    """Markup in a flag value and a rule description is displayed literally, never run."""
    server.set_flag("welcome-message", XSS)
    server.set_flag(
        "staff-tools",
        rules=[
            {
                "id": "staff",
                "description": XSS,
                "clauses": [{"attribute": "custom.isStaff", "op": "in", "values": [True]}],
                "variation": "on",
            }
        ],
    )
    sign_in(browser, server, wait_for)
    # A simple string flag's value sits in its edit box, as the box's text.
    assert browser.find_element(By.ID, "value-welcome-message").get_attribute("value") == XSS
    browser.get(server.dashboard_url + "#/flag/staff-tools")
    wait_for(lambda: browser.find_elements(By.ID, "flag-words"), what="the flag page")
    assert XSS in browser.find_element(By.ID, "flag-words").text
    assert browser.title != "pwned"
    assert not browser.find_elements(By.CSS_SELECTOR, "main img, main script")
    # A phone-sized window still shows the flag page (stacked layout).
    browser.set_window_size(390, 844)
    browser.get(server.dashboard_url + "#/flags")
    wait_for(lambda: browser.find_elements(By.ID, "flags-table"), what="the flags page")
    browser.save_screenshot(str(screenshots / "dashboard-phone.png"))
