"""flagkit.web.request_flags: per-request memoised lookups shared by the web adapters."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from flagkit import EvaluationContext, EvaluationReason, StreamingOptions
from flagkit.client import FlagKitClient
from flagkit.testing import FlagKitServer
from flagkit.web.request_flags import (
    RequestFlags,
    check_flag_key,
    client_is_enabled,
    client_value,
    is_fallback,
    needs_context,
    parse_flag_key,
    same_kind,
    value_or_default,
)

FOR_ALICE = {  # on for user "alice" only (a target list), off for everyone else
    "flagType": "boolean",
    "value": False,
    "variations": [{"id": "on", "value": True}, {"id": "off", "value": False}],
    "targets": [{"variation": "on", "values": ["alice"]}],
    "fallthrough": {"variation": "off"},
}
FLAGS: list[dict[str, Any]] = [
    {"key": "dark-mode", "value": True, "flagType": "boolean"},
    {"key": "banner", "value": "Spring sale", "flagType": "string"},
    {"key": "max-items", "value": 10, "flagType": "number"},
    {"key": "for-alice", **FOR_ALICE},
]


QUIET: dict[str, Any] = {  # no streaming, no background polls or flushes during a test
    "streaming": StreamingOptions(enabled=False),
    "polling_interval": 60.0,
    "event_flush_interval": 60.0,
    "timeout": 2.0,
}


@pytest.fixture(scope="module")
def server() -> Iterator[FlagKitServer]:
    with FlagKitServer(flags=FLAGS) as srv:
        yield srv


@pytest.fixture
def client(server: FlagKitServer) -> Iterator[FlagKitClient]:
    with FlagKitClient(api_key=server.api_key, base_url=server.base_url, **QUIET) as c:
        c.initialize()
        yield c


class Factory:
    """A context factory that counts its calls."""

    def __init__(self, user_id: str | None = "alice") -> None:
        self.user_id = user_id
        self.calls = 0

    def __call__(self) -> EvaluationContext:
        self.calls += 1
        return EvaluationContext(user_id=self.user_id)


def test_is_enabled_evaluates_for_the_request_context_and_negates(client: FlagKitClient) -> None:
    """``is_enabled`` uses the factory's context for targeted flags; ``!key`` negates."""
    alice = RequestFlags(client, Factory("alice"))
    bob = RequestFlags(client, Factory("bob"))
    assert alice.is_enabled("for-alice") is True
    assert alice.is_enabled("!for-alice") is False
    assert bob.is_enabled("for-alice") is False
    assert bob.is_enabled("!for-alice") is True


INVALID_KEYS = ["!", "!!", "!!dark-mode", "!!nonexistent", "!!!dark-mode", ""]


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_an_invalid_key_is_off_everywhere_and_warned_once(
    client: FlagKitClient, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One ``!`` at most: a bare ``!``, ``!!x`` and an empty key are off in a request and
    outside one (never negated into on), and logged once per process at WARNING."""
    from flagkit.web import request_flags

    request_flags._warned_keys.discard(key)
    with caplog.at_level(logging.WARNING, logger="flagkit.web"):
        assert RequestFlags(client, Factory()).is_enabled(key) is False
        assert RequestFlags(client, Factory()).is_enabled(key) is False
        assert client_is_enabled(lambda: client, key) is False
    assert parse_flag_key(key) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and repr(key) in warnings[0].getMessage()
    with pytest.raises(ValueError, match="one '!' negates"):
        check_flag_key(key, "flag_required")


def test_one_negation_is_the_opposite_of_the_key(client: FlagKitClient) -> None:
    """``!key`` is exactly ``not key`` for on, off and missing flags, in and outside a
    request; ``parse_flag_key`` splits it."""
    flags = RequestFlags(client, Factory("bob"))
    for key in ("dark-mode", "for-alice", "nonexistent"):
        on = flags.is_enabled(key)
        assert flags.is_enabled("!" + key) is (not on)
        assert client_is_enabled(lambda: client, "!" + key) is (not on)
    assert parse_flag_key("!beta") == ("beta", True)
    assert parse_flag_key("beta") == ("beta", False)
    assert parse_flag_key(42) is None
    assert check_flag_key("!beta", "flag_required") == "!beta"


def test_needs_context_only_when_a_flag_has_targeting(server: FlagKitServer) -> None:
    """An async adapter loads the user only when a flag has targeting (or no flags are
    loaded yet)."""
    offline = FlagKitClient(api_key=server.api_key, offline=True)
    assert needs_context(offline) is True  # no flags: they may arrive any moment
    offline.close()
    with (
        FlagKitServer(flags=FLAGS[:3]) as plain,
        FlagKitClient(api_key=plain.api_key, base_url=plain.base_url, **QUIET) as simple,
    ):
        simple.initialize()
        assert needs_context(simple) is False
    with FlagKitClient(api_key=server.api_key, base_url=server.base_url, **QUIET) as targeted:
        targeted.initialize()
        assert needs_context(targeted) is True


def test_context_is_built_once_and_only_when_needed(client: FlagKitClient) -> None:
    """Simple flags never call the factory; targeted lookups and ``context`` call it once."""
    factory = Factory()
    flags = RequestFlags(client, factory)
    assert flags.is_enabled("dark-mode") is True
    assert flags.value("banner", "x") == "Spring sale"
    assert factory.calls == 0
    assert flags.is_enabled("for-alice") is True
    assert flags.evaluate("for-alice").value is True
    assert flags.context is not None and flags.context.user_id == "alice"
    assert factory.calls == 1


def test_each_flag_keeps_the_value_the_request_saw(client: FlagKitClient) -> None:
    """An update after a lookup does not change that flag for the same request; a new
    request sees it."""
    flags = RequestFlags(client, Factory())
    assert flags.is_enabled("dark-mode") is True
    assert flags.value("banner", "x") == "Spring sale"
    client.set_overrides({"dark-mode": False, "banner": "changed"})
    assert flags.is_enabled("dark-mode") is True
    assert flags.evaluate("dark-mode").value is True  # first read by is_enabled: kept
    assert flags.value("banner", "x") == "Spring sale"
    assert flags.all()["dark-mode"] is True
    fresh = RequestFlags(client, Factory())
    assert fresh.is_enabled("dark-mode") is False
    assert fresh.value("banner", "x") == "changed"


def test_value_returns_the_default_for_missing_mismatched_or_bad_keys(
    client: FlagKitClient,
) -> None:
    """``value`` gives the default for a missing flag, another kind, a non-string or empty
    key, and accepts str subclasses and ints for floats."""

    class Text(str):
        pass

    flags = RequestFlags(client, Factory())
    assert flags.value("missing", "dflt") == "dflt"
    assert flags.value("banner", 5) == 5
    assert flags.value("max-items", 1.5) == 10
    assert flags.value("dark-mode", 0) == 0
    assert flags.value("banner", Text("x")) == "Spring sale"
    assert flags.value("banner") == "Spring sale"
    assert flags.value(42, "d") == "d"  # type: ignore[arg-type]
    assert flags.value("", "d") == "d"
    assert flags.is_enabled(42) is False  # type: ignore[arg-type]
    assert flags.is_enabled(Text("dark-mode")) is True
    assert flags.is_enabled("banner") is False
    assert flags.is_enabled("!missing") is True


def test_all_lists_only_the_flags_the_client_knows(client: FlagKitClient) -> None:
    """``all`` gives every known flag for the request's user, not missing keys looked up."""
    flags = RequestFlags(client, Factory("alice"))
    assert flags.value("missing", "d") == "d"
    assert flags.all() == {
        "banner": "Spring sale",
        "dark-mode": True,
        "for-alice": True,
        "max-items": 10,
    }


def test_an_active_request_scope_is_used_instead_of_a_new_one(client: FlagKitClient) -> None:
    """While ``_active`` names the instance, lookups use the scope already entered; without
    it each lookup enters a scope for the instance's own context."""
    factory = Factory("bob")
    flags = RequestFlags(client, factory)
    token = RequestFlags._active.set(flags)
    try:
        with client.context_scope(EvaluationContext(user_id="alice")):
            assert flags.is_enabled("for-alice") is True
            assert flags.evaluate("for-alice").value is True
    finally:
        RequestFlags._active.reset(token)
    assert factory.calls == 0
    other = RequestFlags(client, Factory("bob"))
    with client.context_scope(EvaluationContext(user_id="alice")):
        assert other.is_enabled("for-alice") is False


def test_lookups_from_another_thread_use_the_request_context(client: FlagKitClient) -> None:
    """A thread started during the request (no scope there) still evaluates for its user."""
    flags = RequestFlags(client, Factory("alice"))
    seen: list[bool] = []
    worker = threading.Thread(target=lambda: seen.append(flags.is_enabled("for-alice")))
    worker.start()
    worker.join(10)
    assert seen == [True]


def test_a_failing_factory_makes_lookups_fall_back_without_raising(client: FlagKitClient) -> None:
    """A context factory that raises gives no context; lookups still answer."""

    def broken() -> EvaluationContext:
        raise RuntimeError("database down")

    flags = RequestFlags(client, broken)
    assert flags.is_enabled("for-alice") is False
    assert flags.is_enabled("dark-mode") is True


def test_track_sends_the_event_for_the_request_user(
    client: FlagKitClient, server: FlagKitServer
) -> None:
    """``track`` records the event with the request's context."""
    server.clear_events()
    RequestFlags(client, Factory("alice")).track("purchase", {"amount": 3})
    client.flush(5)
    events = server.wait_for_events(1, event_type="purchase", timeout=5)
    assert events[0]["eventData"] == {"amount": 3}
    assert events[0]["context"]["userId"] == "alice"


def test_repr_lists_the_evaluated_keys(client: FlagKitClient) -> None:
    """The repr names the class and the keys looked up, nothing else."""
    flags = RequestFlags(client)
    flags.is_enabled("dark-mode")
    flags.evaluate("banner")
    assert repr(flags) == "<RequestFlags evaluated=['banner', 'dark-mode']>"


def test_a_subclass_can_supply_the_client_lazily(client: FlagKitClient) -> None:
    """A subclass overriding ``client`` is asked for it on the first lookup only."""
    asked: list[int] = []

    class Lazy(RequestFlags):
        __slots__ = ()

        @property
        def client(self) -> FlagKitClient:
            if self._client is None:
                asked.append(1)
                self._client = client
            return self._client

    flags = Lazy(None)  # type: ignore[arg-type]
    assert flags.is_enabled("dark-mode") is True
    assert flags.value("banner", "x") == "Spring sale"
    assert flags.client is client
    assert asked == [1]
    with pytest.raises(RuntimeError, match="no client"):
        _ = RequestFlags(None).client  # type: ignore[arg-type]


def test_lookups_outside_a_request_use_the_scope_in_force(client: FlagKitClient) -> None:
    """``client_is_enabled``/``client_value`` evaluate with the context in scope, negate
    ``!key``, and never ask for a client for an unusable key."""
    asked: list[int] = []

    def get_client() -> FlagKitClient:
        asked.append(1)
        return client

    with client.context_scope(EvaluationContext(user_id="alice")):
        assert client_is_enabled(get_client, "for-alice") is True
        assert client_is_enabled(get_client, "!for-alice") is False
    assert client_value(get_client, "banner", "x") == "Spring sale"
    assert client_value(get_client, "banner", 1) == 1
    asked.clear()
    assert client_is_enabled(get_client, None) is False
    assert client_is_enabled(get_client, "!") is False
    assert client_value(get_client, "", "d") == "d"
    assert asked == []


def test_value_rules(client: FlagKitClient) -> None:
    """``same_kind`` groups numbers and str subclasses; fallbacks give the default."""
    assert same_kind(3, 1.5) and same_kind("a", "b") and same_kind({}, {"a": 1})
    assert not same_kind(True, 0) and not same_kind([1], (1,)) and not same_kind(None, "x")
    missing = client.evaluate("missing")
    assert missing.reason is EvaluationReason.FLAG_NOT_FOUND and is_fallback(missing)
    assert value_or_default(missing, "d") == "d"
    assert value_or_default(client.evaluate("max-items"), 0) == 10


def test_the_shared_web_modules_import_no_framework() -> None:
    """The core modules the adapters share load neither Django nor Flask, and the test
    helpers' module (loaded with pytest) loads no server and starts no thread."""
    code = (
        "import json, sys, threading\n"
        "import flagkit.testing.overrides\n"
        "cheap = {'server': 'flagkit.server' in sys.modules,\n"
        "         'threads': [t.name for t in threading.enumerate()]}\n"
        "import flagkit.web.request_flags, flagkit.web.context, flagkit.web.explain\n"
        "import flagkit.web.options, flagkit.web.startup, flagkit.web.overrides\n"
        "import flagkit.server.cli_runner\n"
        "print(json.dumps({**cheap, 'frameworks': sorted(m for m in sys.modules\n"
        "      if m.split('.')[0] in ('django', 'flask', 'werkzeug', 'jinja2'))}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == {"server": False, "threads": ["MainThread"], "frameworks": []}


def test_a_str_subclass_with_a_raising_hash_is_looked_up_as_its_text(
    client: FlagKitClient,
) -> None:
    """Lookups never raise: a ``str`` subclass whose ``__hash__`` raises is looked up as
    the plain string it holds."""

    class Hostile(str):
        def __hash__(self) -> int:
            raise RuntimeError("no hashing")

    flags = RequestFlags(client, Factory())
    assert flags.is_enabled(Hostile("dark-mode")) is True
    assert flags.is_enabled(Hostile("!dark-mode")) is False
    assert flags.value(Hostile("banner"), "x") == "Spring sale"
    assert flags.evaluate(Hostile("max-items")).value == 10
    assert parse_flag_key(Hostile("!!x")) is None
