"""Never break the site: a broken context builder or user lookup (sync and ASGI paths),
an invalid FLAGKIT under a real WSGI server, and the first request's wait for the flags."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import AsyncClient, Client

from flagkit.testing import FlagKitServer
from flagkit_django import middleware
from tests.django import middleware_sub
from tests.django.conftest import live_settings
from tests.web.servers import dead_base_url, slow_server

ROOT = Path(__file__).resolve().parents[2]
ASYNC_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "tests.django.middleware_sub.CountingAuser",
    "flagkit_django.middleware.FlagKitMiddleware",
]


def broken_builder(request: Any, context: Any) -> Any:
    raise RuntimeError("the plan lookup is down")


@pytest.fixture
def counting(settings: Any) -> Iterator[list[str]]:
    """The async middleware chain with ``request.auser()`` calls recorded."""
    settings.MIDDLEWARE = ASYNC_MIDDLEWARE
    middleware_sub.auser_calls.clear()
    middleware_sub.CountingAuser.fail = False
    middleware._degraded_logged.clear()
    yield middleware_sub.auser_calls
    middleware_sub.CountingAuser.fail = False


def _get_all(paths: list[str]) -> list[tuple[int, bytes]]:
    async def run() -> list[tuple[int, bytes]]:
        client = AsyncClient()
        return [((r := await client.get(path)).status_code, r.content) for path in paths]

    return asyncio.run(run())


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("failure", ["context_builder", "auser"])
def test_async_path_degrades_to_an_anonymous_context_like_the_sync_path(
    live: FlagKitServer,
    settings: Any,
    counting: list[str],
    failure: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Under ASGI a raising CONTEXT_BUILDER or ``request.auser()`` no longer turns every
    request into a 500: the error is logged once and the request is evaluated as an
    anonymous visitor — exactly what the sync path does."""
    if failure == "context_builder":
        settings.FLAGKIT = live_settings(
            live, CONTEXT_BUILDER="tests.django.test_django_robustness.broken_builder"
        )
    else:
        middleware_sub.CountingAuser.fail = True
    with caplog.at_level(logging.ERROR, logger="flagkit.django"):
        results = _get_all(["/no-flags/", "/awhoami/", "/awhoami/"])
    assert [status for status, _ in results] == [200, 200, 200]
    report = json.loads(results[1][1])
    assert report["anonymous"] is True and report["user_id"] is None
    errors = [r for r in caplog.records if "evaluation context failed" in r.getMessage()]
    assert len(errors) == 1
    # The sync path degrades the same way.
    settings.MIDDLEWARE = ASYNC_MIDDLEWARE[:2] + ASYNC_MIDDLEWARE[3:]
    if failure == "context_builder":
        sync = Client().get("/whoami/")
        assert sync.status_code == 200 and json.loads(sync.content)["anonymous"] is True


@pytest.mark.django_db(transaction=True)
def test_async_path_loads_the_user_only_when_a_flag_has_targeting(
    settings: Any, counting: list[str]
) -> None:
    """With flags that have no targeting, an async request never loads its user; once a
    flag with targeting exists it is loaded before the view (the view's synchronous
    lookups cannot query the database from the event loop)."""
    with FlagKitServer(flags=[{"key": "new-checkout", "value": True}]) as server:
        settings.FLAGKIT = live_settings(server)
        assert [s for s, _ in _get_all(["/acheckout/", "/no-flags/"])] == [200, 200]
        # @flag_required on an async view prepares the context itself (one auser call).
        assert counting == ["/acheckout/"]
    counting.clear()
    targeted = {
        "key": "new-checkout",
        "flagType": "boolean",
        "value": False,
        "variations": [{"id": "on", "value": True}, {"id": "off", "value": False}],
        "targets": [{"variation": "on", "values": ["alice"]}],
        "fallthrough": {"variation": "on"},
    }
    with FlagKitServer(flags=[targeted]) as server:
        settings.FLAGKIT = live_settings(server)
        assert [s for s, _ in _get_all(["/no-flags/"])] == [200]
        assert counting == ["/no-flags/"]


def _serve_wsgi(settings_module: str, flagkit: dict[str, Any]) -> tuple[subprocess.Popen[str], int]:
    """A real WSGI server (wsgiref) in a subprocess running the test project with
    ``FLAGKIT = flagkit`` and no system checks; it binds port 0 and reports its port."""
    code = (
        "import json, os, sys\n"
        "import django\n"
        "from django.conf import settings\n"
        "django.setup()\n"
        "settings.FLAGKIT = json.loads(os.environ['TEST_FLAGKIT'])\n"
        "from wsgiref.simple_server import make_server, WSGIRequestHandler\n"
        "from django.core.wsgi import get_wsgi_application\n"
        "class Quiet(WSGIRequestHandler):\n"
        "    def log_message(self, *args): pass\n"
        "server = make_server('127.0.0.1', 0, get_wsgi_application(), handler_class=Quiet)\n"
        "print('PORT', server.server_port, flush=True)\n"
        "server.serve_forever()\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": settings_module,
        "TEST_FLAGKIT": json.dumps(flagkit),
    }
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("PORT "), line + (process.stderr.read() if process.stderr else "")
    return process, int(line.split()[1])


PAGES = ["/checkout/", "/no-flags/", "/tags/", "/checkout/"]


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.mark.parametrize(
    ("flagkit", "named"),
    [
        ({"POLLING_INTERVAL": 5}, "FLAGKIT['API_KEY']"),
        ({"API_KEY": "sdk_wsgi_test_key", "TIMEOUT": "soon"}, "FLAGKIT['TIMEOUT']"),
        ({"OFFLINE": True, "START_WAIT": -1}, "FLAGKIT['START_WAIT']"),
    ],
)
def test_invalid_flagkit_under_a_real_wsgi_server_serves_defaults(
    flagkit: dict[str, Any], named: str
) -> None:
    """No system checks run under a WSGI server: every page still answers (no bare 500),
    flags serve defaults, and the error is logged once at ERROR with an inline hint."""
    process, port = _serve_wsgi("tests.django.settings", flagkit)
    try:
        statuses = [_status(f"http://127.0.0.1:{port}{path}") for path in PAGES]
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=10)
    # @flag_required serves the default (off: 404), every other page answers: no 500.
    assert statuses == [404, 200, 200, 404], err
    errors = [line for line in err.splitlines() if "FlagKit is not configured" in line]
    assert len(errors) == 1, err
    assert named in errors[0] and "Hint:" in errors[0] and "docs/" not in errors[0]
    assert "Traceback" not in err


def test_first_request_waits_for_a_slow_server(settings: Any, client: Client) -> None:
    """START_WAIT: a worker's first request waits for the first load (the server answers
    after 0.5 s), so ``@flag_required`` already lets it through."""
    with slow_server() as server:
        settings.FLAGKIT = {
            "API_KEY": "sdk_slow_server_key",
            "BASE_URL": server.base_url,
            "STREAMING": {"ENABLED": False},
            "START_WAIT": 5,
        }
        assert client.get("/checkout/").status_code == 200


def test_first_request_waits_once_for_a_dead_server(settings: Any, client: Client) -> None:
    """With the server down only the first request waits (up to START_WAIT); the next
    ones serve defaults at once."""
    settings.FLAGKIT = {
        "API_KEY": "sdk_dead_server_key",
        "BASE_URL": dead_base_url(),
        "STREAMING": {"ENABLED": False},
        "START_WAIT": 0.5,
    }
    started = time.monotonic()
    assert client.get("/checkout/").status_code == 404
    assert time.monotonic() - started >= 0.4
    started = time.monotonic()
    assert client.get("/checkout/").status_code == 404
    assert client.get("/no-flags/").status_code == 200
    assert time.monotonic() - started < 0.4
