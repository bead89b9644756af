"""Dashboard security over plain HTTP: sign-in, session cookie, CSRF, read-only mode, the
Host check, escaping and where the admin token may (not) appear."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from flagkit.server import FlagKitServer
from tests.dashboard.conftest import TOKEN, Dashboard


def test_sign_in_sets_an_httponly_strict_cookie_that_is_not_the_token(
    anonymous: httpx.Client,
) -> None:
    """The session cookie is HttpOnly and SameSite=Strict and holds a random id."""
    response = anonymous.post("/dashboard/api/session", json={"token": TOKEN})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert TOKEN not in cookie and TOKEN not in response.text
    assert response.json()["signedIn"] is True and response.json()["csrf"]


def test_a_wrong_token_signs_nobody_in(anonymous: httpx.Client) -> None:
    """A wrong token is a 401 without a cookie; reading still needs a session."""
    response = anonymous.post("/dashboard/api/session", json={"token": TOKEN + "x"})
    assert response.status_code == 401 and "set-cookie" not in response.headers
    assert anonymous.get("/dashboard/api/flags").status_code == 401


@pytest.mark.parametrize(
    ("with_session", "headers", "status"),
    [
        (False, {}, 401),
        (True, {}, 403),
        (True, {"X-CSRF-Token": "not-the-token"}, 403),
        (True, {"X-CSRF-Token": "CSRF", "Origin": "http://evil.example"}, 403),
    ],
)
def test_no_change_without_session_and_csrf_token(
    server: FlagKitServer,
    dashboard: Dashboard,
    flags_file: Path,
    with_session: bool,
    headers: dict[str, str],
    status: int,
) -> None:
    """Every change needs the session cookie, its CSRF token and (when sent) our Origin;
    a refused change leaves the flag and the file untouched."""
    before = flags_file.read_bytes()
    version = server.get_flag("dark-mode")["version"]  # type: ignore[index]
    headers = {k: (dashboard.csrf if v == "CSRF" else v) for k, v in headers.items()}
    client = dashboard.http if with_session else httpx.Client(base_url=server.url)
    try:
        for method, path, body in (
            ("PATCH", "flags/dark-mode", {"enabled": False}),
            ("PUT", "flags/dark-mode", {"value": True}),
            ("POST", "flags/dark-mode/revert", {"version": 1}),
        ):
            response = client.request(method, "/dashboard/api/" + path, json=body, headers=headers)
            assert response.status_code == status, (method, path, response.text)
    finally:
        if not with_session:
            client.close()
    assert server.get_flag("dark-mode")["version"] == version  # type: ignore[index]
    assert flags_file.read_bytes() == before


def test_signing_out_ends_the_session(dashboard: Dashboard) -> None:
    """After sign-out the old cookie reads nothing and changes nothing."""
    cookie = dashboard.http.cookies.get("flagkit_dashboard")
    assert dashboard.change("DELETE", "session", None).status_code == 200
    dashboard.http.cookies.set("flagkit_dashboard", cookie or "")
    assert dashboard.http.get("/dashboard/api/flags").status_code == 401
    assert dashboard.change("PATCH", "flags/dark-mode", {"enabled": False}).status_code == 401


def test_readonly_view_needs_the_option_and_never_allows_changes(flags_file: Path) -> None:
    """``dashboard_readonly_open`` lets anyone read; changing still needs a session."""
    with (
        FlagKitServer(
            flags_file=flags_file, admin_token=TOKEN, dashboard_readonly_open=True
        ) as srv,
        httpx.Client(base_url=srv.url) as client,
    ):
        assert client.get("/dashboard/api/flags").status_code == 200
        assert client.get("/dashboard/api/session").json()["readonlyOpen"] is True
        response = client.patch("/dashboard/api/flags/dark-mode", json={"enabled": False})
        assert response.status_code == 401
    with pytest.raises(ValueError, match="dashboard_readonly_open"):
        FlagKitServer(dashboard_readonly_open="yes")  # type: ignore[arg-type]


def test_a_foreign_host_header_is_refused(server: FlagKitServer) -> None:
    """DNS rebinding: a request naming another host is refused, even the page itself."""
    with httpx.Client(base_url=server.url, headers={"Host": "evil.example"}) as client:
        assert client.get("/").status_code == 421
        assert client.post("/dashboard/api/session", json={"token": TOKEN}).status_code == 421


def test_pages_carry_a_strict_content_security_policy(anonymous: httpx.Client) -> None:
    """Only the server's own script and styles may run; nothing is loaded from elsewhere."""
    page = anonymous.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ("/dashboard/static/app.js", "/dashboard/static/app.css"):
        assert anonymous.get(asset).status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no external URL


def test_the_admin_token_never_appears_in_a_page_or_log(
    server: FlagKitServer, dashboard: Dashboard, caplog: pytest.LogCaptureFixture
) -> None:
    """Every page, asset and API answer, and every log line at DEBUG, lacks the token."""
    caplog.set_level(logging.DEBUG)
    dashboard.http.post("/dashboard/api/session", json={"token": TOKEN})  # a second sign-in
    bodies = [
        dashboard.http.get(path).text
        for path in (
            "/",
            "/dashboard/static/app.js",
            "/dashboard/static/app.css",
            "/dashboard/api/session",
            "/dashboard/api/flags",
            "/dashboard/api/flags/new-checkout",
            "/dashboard/api/events",
            "/dashboard/api/users",
            "/dashboard/api/usage",
        )
    ]
    bodies.append(dashboard.change("PATCH", "flags/dark-mode", {"enabled": False}).text)
    bodies.append(dashboard.change("POST", "explain", {"flag": "dark-mode", "context": {}}).text)
    assert all(TOKEN not in body for body in bodies)
    assert TOKEN not in caplog.text
    assert all(TOKEN not in json.dumps(r.body.decode("utf-8", "replace")) for r in server.requests)


def test_injected_markup_is_served_as_json_data_never_as_html(
    server: FlagKitServer, dashboard: Dashboard
) -> None:
    """Markup in values and rule descriptions comes back as JSON strings (the page shows
    them with textContent; tests/e2e checks the rendering); keys cannot hold markup."""
    payload = '<img src=x onerror="document.title=1"><script>alert(1)</script>'
    response = dashboard.change(
        "PATCH",
        "flags/welcome-message",
        {"value": payload},
    )
    assert response.status_code == 200
    listing = dashboard.http.get("/dashboard/api/flags")
    assert listing.headers["content-type"] == "application/json"
    assert listing.headers["x-content-type-options"] == "nosniff"
    assert payload in [f["value"] for f in listing.json()["flags"]]
    bad_key = dashboard.change("PUT", "flags/%3Cscript%3E", {"value": True})
    assert bad_key.status_code == 422 and bad_key.json()["field"] == "key"
