"""The extension's set-up and lifecycle: config, per-app state, lazy client, many apps."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from flask import Flask

from flagkit import ConfigurationError
from flagkit.client import ClientState
from flagkit.testing import FlagKitServer
from flagkit_flask import FlagKit
from flagkit_flask.extension import FlagKitState, get_state
from tests.flask.conftest import AppFactory
from tests.flask.factory import FLAGS, flagkit


def _flagkit_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith("flagkit-")}


def test_import_has_no_side_effects() -> None:
    """Importing flagkit_flask starts no thread and creates no client (checked in a fresh
    interpreter)."""
    code = (
        "import threading, flagkit_flask, flagkit_flask.testing, flagkit_flask.cli;"
        "names = [t.name for t in threading.enumerate() if t.name != 'MainThread'];"
        "print(names)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_init_app_sets_defaults_and_creates_no_client(make_app: AppFactory) -> None:
    """init_app validates the config, shows the defaults in app.config and starts nothing."""
    before = _flagkit_threads()
    app = make_app({"FLAGKIT_TIMEOUT": "2.5"})
    state = app.extensions["flagkit"]
    assert isinstance(state, FlagKitState)
    assert state.peek_client() is None
    assert _flagkit_threads() == before
    assert state.options.timeout == 2.5
    assert state.options.polling_interval == 60.0
    # Defaults of options the app did not set are visible in app.config.
    assert app.config["FLAGKIT_CACHE_TTL"] == 300.0
    assert app.config["FLAGKIT_ANONYMOUS_COOKIE_NAME"] == "flagkit_anon"
    assert app.config["FLAGKIT_USER_ID_ATTRIBUTE"] == "id"


def test_client_created_and_started_on_first_request(make_app: AppFactory) -> None:
    """The first request creates the app's client and starts it in the background."""
    app = make_app()
    state: FlagKitState = app.extensions["flagkit"]
    assert state.peek_client() is None
    assert app.test_client().get("/").status_code == 200
    client = state.peek_client()
    assert client is not None
    assert client.state is not ClientState.NEW
    assert client.wait_for_ready(5)
    assert app.test_client().get("/is/beta").text == "on"


def test_client_created_on_first_evaluation_outside_a_request(make_app: AppFactory) -> None:
    """An evaluation in an app context (a CLI command, a job) creates and starts the
    client; without a user, targeted flags fall through."""
    app = make_app()
    with app.app_context():
        client = flagkit.client
        assert client is get_state(app).peek_client()
        assert client.wait_for_ready(5)
        assert flagkit.is_enabled("beta") is True
        assert flagkit.is_enabled("!beta") is False
        assert flagkit.value("banner-text", "default") == "Spring sale"
        assert flagkit.is_enabled("new-checkout") is False
        assert flagkit.context is None
        assert flagkit.all_flags()["banner-text"] == "Spring sale"


def test_init_app_twice_raises(make_app: AppFactory) -> None:
    """Registering FlagKit twice on one app is a RuntimeError."""
    app = make_app()
    with pytest.raises(RuntimeError, match="already been registered"):
        FlagKit().init_app(app)


def test_missing_init_app_raises_clear_error() -> None:
    """Using the extension on an app without init_app names the fix."""
    app = Flask("bare")
    with app.app_context(), pytest.raises(RuntimeError, match="did you call init_app"):
        flagkit.is_enabled("beta")
    with pytest.raises(RuntimeError, match="application context"):
        flagkit.is_enabled("beta")


def test_bad_value_names_the_config_key() -> None:
    """A bad FLAGKIT_* value raises ConfigurationError naming the app.config key."""
    app = Flask("bad")
    app.config.update(FLAGKIT_API_KEY="sdk_test_key_123456", FLAGKIT_POLLING_INTERVAL="soon")
    with pytest.raises(ConfigurationError, match=r"FLAGKIT_POLLING_INTERVAL"):
        FlagKit().init_app(app)
    assert "flagkit" not in app.extensions


def test_unknown_key_suggests_the_closest_one() -> None:
    """A typo in a FLAGKIT_* key raises with the closest known key."""
    app = Flask("typo")
    app.config.update(FLAGKIT_API_KEY="sdk_test_key_123456", FLAGKIT_POLING_INTERVAL=10)
    with pytest.raises(ConfigurationError, match="did you mean 'FLAGKIT_POLLING_INTERVAL'"):
        FlagKit().init_app(app)


def test_missing_api_key_raises_unless_offline() -> None:
    """FLAGKIT_API_KEY is required, except in offline mode."""
    app = Flask("nokey")
    with pytest.raises(ConfigurationError, match="FLAGKIT_API_KEY"):
        FlagKit().init_app(app)
    offline = Flask("offline")
    offline.config.update(FLAGKIT_OFFLINE=True, FLAGKIT_BOOTSTRAP={"beta": True})
    ext = FlagKit(offline)
    try:
        with offline.app_context():
            assert ext.is_enabled("beta") is True
    finally:
        ext.close(offline)


def test_bad_adapter_setting_raises() -> None:
    """An adapter-only key with a wrong type raises naming the key."""
    app = Flask("adapter")
    app.config.update(FLAGKIT_OFFLINE=True, FLAGKIT_ANONYMOUS_COOKIE_MAX_AGE=-1)
    with pytest.raises(ConfigurationError, match="FLAGKIT_ANONYMOUS_COOKIE_MAX_AGE"):
        FlagKit().init_app(app)


def test_api_key_never_in_state_repr(make_app: AppFactory, server: FlagKitServer) -> None:
    """The client's repr shows only the key id."""
    app = make_app()
    text = repr(get_state(app).client)
    assert server.api_key not in text
    assert server.api_key[:8] in text


def test_two_apps_with_different_keys_in_one_process(make_app: AppFactory) -> None:
    """One extension serves two apps, each with its own key, server and flags."""
    other_flags = [{**f, "value": "Winter sale"} if f["key"] == "banner-text" else f for f in FLAGS]
    with FlagKitServer(flags=other_flags, api_keys="sdk_other_app_key_99") as other:
        first = make_app()
        second = make_app({"FLAGKIT_API_KEY": other.api_key, "FLAGKIT_BASE_URL": other.base_url})
        assert get_state(first).client.wait_for_ready(5)
        assert get_state(second).client.wait_for_ready(5)
        assert get_state(first).client is not get_state(second).client
        assert first.test_client().get("/value/banner-text").json == {"value": "Spring sale"}
        assert second.test_client().get("/value/banner-text").json == {"value": "Winter sale"}
        init = other.requests_to("init")
        assert init and init[-1].headers.get("X-API-Key") == "sdk_other_app_key_99"
        get_state(second).close()


def test_close_discards_client_and_next_use_creates_a_new_one(app: Flask) -> None:
    """FlagKit.close() closes the app's client; the next request builds a fresh one."""
    state = get_state(app)
    old = state.client
    flagkit.close(app)
    assert old.state is ClientState.CLOSED
    assert state.peek_client() is None
    assert app.test_client().get("/").status_code == 200
    assert state.peek_client() is not None
    assert state.peek_client() is not old


def test_client_closed_at_process_exit(server: FlagKitServer, tmp_path: Path) -> None:
    """A process that never closes its client still delivers its queued events at exit
    (the atexit hook registered with the client closes it, which flushes); the event
    carries the request's user."""
    script = tmp_path / "exit_app.py"
    script.write_text(
        "import sys\n"
        "sys.path.insert(0, sys.argv[3])\n"
        "from tests.flask.factory import create_app, flagkit, server_config\n"
        "app = create_app(server_config(sys.argv[1], sys.argv[2],\n"
        "                 FLAGKIT_EVENT_FLUSH_INTERVAL=3600, FLAGKIT_EVENT_BATCH_SIZE=100))\n"
        "@app.get('/buy')\n"
        "def buy():\n"
        "    flagkit.track('purchase', {'amount': 3})\n"
        "    return 'ok'\n"
        "assert app.test_client().get('/buy', headers={'X-User': 'alice'}).text == 'ok'\n"
        "print('tracked', flush=True)\n"
    )
    root = str(Path(__file__).resolve().parents[2])
    out = subprocess.run(
        [sys.executable, str(script), server.base_url, server.api_key, root],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "tracked"
    events = server.wait_for_events(1, event_type="purchase", timeout=5)
    assert events[0]["eventData"] == {"amount": 3}
    # Tracked for the request's user; private attributes (email, ip) never leave.
    assert events[0]["context"]["userId"] == "alice"
    assert "email" not in events[0]["context"] and "ip" not in events[0]["context"]


def test_request_lookups_follow_the_shared_value_rules(app: Flask) -> None:
    """In a request, ``value`` accepts any str default (``Markup`` too) for a string flag,
    and ``all_flags`` lists the known flags only, not missing keys looked up before."""
    from markupsafe import Markup

    with app.test_request_context("/"):
        app.preprocess_request()
        assert flagkit.value("banner-text", Markup("<b>x</b>")) == "Spring sale"
        assert flagkit.value("banner-text", 5) == 5
        assert flagkit.value("no-such-flag", "d") == "d"
        flags = flagkit.all_flags()
        assert "no-such-flag" not in flags
        assert sorted(flags) == sorted(flag["key"] for flag in FLAGS)
