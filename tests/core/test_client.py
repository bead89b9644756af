"""FlagKitClient: evaluation semantics, context API, overrides, events and lifecycle."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from flagkit import (
    BootstrapConfig,
    BootstrapVerificationOptions,
    EvaluationContext,
    EvaluationJitterConfig,
    EvaluationReason,
    FlagKitOptions,
    SecurityError,
    StreamingOptions,
)
from flagkit.client import ClientState, FlagKitClient
from flagkit.errors import ErrorSanitizationConfig, NetworkError, get_sanitization_config
from flagkit.testing import FlagKitServer
from flagkit.utils.security import create_bootstrap_signature
from tests.support.fault_server import FaultServer, Reply

KEY = "sdk_test_key_123456"
TARGETED = {
    "flagType": "boolean",
    "variations": [{"id": "on", "value": True}, {"id": "off", "value": False}],
    "offVariation": "off",
    "rules": [
        {
            "id": "dutch",
            "clauses": [{"attribute": "country", "op": "in", "values": ["NL"]}],
            "variation": "on",
        },
        {
            "id": "pro",
            "clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
            "variation": "on",
        },
    ],
    "fallthrough": {"variation": "off"},
}
FLAGS: list[dict[str, Any]] = [
    {"key": "dark-mode", "value": True, "flagType": "boolean"},
    {"key": "welcome", "value": "Hello!", "flagType": "string"},
    {"key": "max-items", "value": 10, "flagType": "number"},
    {"key": "config", "value": {"theme": "dark"}, "flagType": "json"},
    {"key": "list-json", "value": [1, 2], "flagType": "json"},
    {"key": "off-simple", "value": "still served", "flagType": "string", "enabled": False},
    {"key": "beta", "value": False, **TARGETED},
    {"key": "beta-off", "value": True, "enabled": False, **TARGETED},
]


def quiet(**overrides: Any) -> dict[str, Any]:
    """Options for a test client: no streaming, slow polling, fast failure."""
    base: dict[str, Any] = {
        "streaming": StreamingOptions(enabled=False),
        "polling_interval": 60.0,
        "timeout": 2.0,
        "event_flush_interval": 60.0,
    }
    base.update(overrides)
    return base


@pytest.fixture(scope="module")
def server() -> Iterator[FlagKitServer]:
    with FlagKitServer(flags=FLAGS) as srv:
        yield srv


@pytest.fixture
def client(server: FlagKitServer) -> Iterator[FlagKitClient]:
    c = FlagKitClient(api_key=server.api_key, base_url=server.base_url, **quiet())
    c.initialize()
    yield c
    c.close()


def offline(**kwargs: Any) -> FlagKitClient:
    return FlagKitClient(api_key=KEY, offline=True, **kwargs)


# -- evaluation ----------------------------------------------------------------------------


def test_typed_getters_serve_the_server_values(client: FlagKitClient) -> None:
    """Each typed getter returns the server's value of its type."""
    assert client.get_boolean_value("dark-mode", default=False) is True
    assert client.get_string_value("welcome", default="x") == "Hello!"
    number = client.get_number_value("max-items", default=1)
    assert number == 10.0 and isinstance(number, float)
    assert client.get_json_value("config", default={}) == {"theme": "dark"}


def test_evaluate_reports_cached_with_version_and_enabled(client: FlagKitClient) -> None:
    """``evaluate`` gives the full result of a fresh server flag with reason CACHED."""
    result = client.evaluate("dark-mode")
    assert (result.flag_key, result.value, result.enabled, result.reason, result.version) == (
        "dark-mode",
        True,
        True,
        EvaluationReason.CACHED,
        1,
    )
    assert result.error_code is None


def test_unknown_flag_gives_the_default_with_flag_not_found(client: FlagKitClient) -> None:
    """A flag nobody knows serves the caller's default with FLAG_NOT_FOUND."""
    assert client.get_boolean_value("nope", default=True) is True
    result = client.evaluate("nope", default="d")
    assert (result.value, result.reason, result.error_code) == (
        "d",
        EvaluationReason.FLAG_NOT_FOUND,
        "EVAL_FLAG_NOT_FOUND",
    )


def test_type_mismatch_gives_the_default_with_evaluation_error(client: FlagKitClient) -> None:
    """Asking a string flag for a boolean gives the default and EVAL_TYPE_MISMATCH."""
    assert client.get_boolean_value("welcome", default=False) is False
    assert client.get_number_value("dark-mode", default=7) == 7
    assert client.get_string_value("max-items", default="d") == "d"
    result = client.evaluate("welcome")  # evaluate() has no expected type
    assert result.value == "Hello!" and result.reason is EvaluationReason.CACHED


def test_json_getter_returns_objects_only(client: FlagKitClient) -> None:
    """A JSON array is not a JSON object: ``get_json_value`` serves the default for it."""
    assert client.get_json_value("list-json", default={"d": 1}) == {"d": 1}
    assert client.get_json_value("list-json") is None
    assert client.evaluate("list-json").value == [1, 2]


def test_disabled_simple_flag_still_serves_its_value(client: FlagKitClient) -> None:
    """docs/protocol.md §8.1: a disabled flag without targeting serves the server's value."""
    assert client.get_string_value("off-simple", default="default") == "still served"
    assert client.evaluate("off-simple").enabled is False


def test_targeted_flag_uses_global_scope_and_call_contexts(client: FlagKitClient) -> None:
    """Targeting sees the merge of global, request-scoped and per-call contexts."""
    assert client.get_boolean_value("beta", default=True) is False  # fallthrough
    client.set_context(EvaluationContext(user_id="u1", country="NL"))
    assert client.evaluate("beta").reason is EvaluationReason.RULE_MATCH
    with client.context_scope(EvaluationContext(country="BE")):
        assert client.get_boolean_value("beta", default=True) is False
        per_call = EvaluationContext(custom={"plan": "pro"})
        result = client.evaluate("beta", per_call)
        assert (result.value, result.rule_id, result.variation_id) == (True, "pro", "on")
    assert client.get_boolean_value("beta", default=False) is True
    client.clear_context()


def test_targeted_disabled_flag_serves_its_off_variation(client: FlagKitClient) -> None:
    """A disabled targeted flag serves ``offVariation`` (FLAG_DISABLED); types are checked."""
    assert client.get_string_value("beta", "d", EvaluationContext(country="NL")) == "d"
    result = client.evaluate("beta-off", EvaluationContext(country="NL"))
    assert (result.value, result.reason, result.variation_id) == (
        False,
        EvaluationReason.FLAG_DISABLED,
        "off",
    )


def test_context_may_be_a_plain_dict(client: FlagKitClient) -> None:
    """A mapping is accepted as a per-call context."""
    assert client.get_boolean_value("beta", False, {"country": "NL"}) is True  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key", [None, 42, 3.5, ["list"], {"a": 1}, "", "has space", "x" * 300, object()]
)
def test_lookups_never_raise_for_bad_keys(client: FlagKitClient, key: Any) -> None:
    """Invalid keys (wrong type, unhashable, empty, too long, bad characters) give DEFAULT."""
    assert client.get_boolean_value(key, default=True) is True
    assert client.get_string_value(key, default="d") == "d"
    assert client.get_number_value(key, default=1.5) == 1.5
    assert client.get_json_value(key, default={"d": 1}) == {"d": 1}
    result = client.evaluate(key, default="d")
    assert result.value == "d" and result.reason is EvaluationReason.DEFAULT
    assert client.has_flag(key) is False


def test_lookups_never_raise_for_bad_defaults_or_contexts(client: FlagKitClient) -> None:
    """Odd defaults are returned as given; a broken context fails only targeted flags."""
    assert client.get_boolean_value("nope", default="not a bool") == "not a bool"  # type: ignore[arg-type]
    assert client.get_number_value("welcome", default=None) is None  # type: ignore[arg-type]
    broken: Any = object()
    assert client.get_boolean_value("dark-mode", False, broken) is True  # simple: unused
    result = client.evaluate("beta", broken, default="d")
    assert (result.value, result.reason, result.error_code) == (
        "d",
        EvaluationReason.EVALUATION_ERROR,
        "EVAL_INVALID_CONTEXT",
    )
    assert client.get_boolean_value("beta", default=True, context=broken) is True


def test_lazy_scope_is_built_only_for_targeted_flags(client: FlagKitClient) -> None:
    """A callable scope is not called for simple flags, and once for targeted ones."""
    calls: list[int] = []

    def build() -> EvaluationContext:
        calls.append(1)
        return EvaluationContext(country="NL")

    with client.context_scope(build):
        assert client.get_boolean_value("dark-mode", False) is True
        assert calls == []
        assert client.get_boolean_value("beta", False) is True
        assert client.get_boolean_value("beta", False) is True
    assert calls == [1]


def test_evaluate_all_covers_server_bootstrap_and_overrides(server: FlagKitServer) -> None:
    """``evaluate_all`` returns a result for every key the client knows."""
    with FlagKitClient(
        api_key=server.api_key, base_url=server.base_url, bootstrap={"boot-only": 1}, **quiet()
    ) as c:
        c.initialize()
        c.set_overrides({"forced": "x"})
        results = c.evaluate_all(EvaluationContext(country="NL"))
        assert set(results) == {f["key"] for f in FLAGS} | {"boot-only", "forced"}
        assert results["beta"].value is True
        assert results["boot-only"].reason is EvaluationReason.BOOTSTRAP
        assert results["forced"].reason is EvaluationReason.OVERRIDE
        assert set(c.get_all_flag_keys()) == set(results)


def test_stale_flags_report_stale_cache_and_are_type_checked(server: FlagKitServer) -> None:
    """With ``cache_ttl=0`` flags are stale: same values, STALE_CACHE, still type-checked."""
    with FlagKitClient(
        api_key=server.api_key, base_url=server.base_url, **quiet(cache_ttl=0.0)
    ) as c:
        c.initialize()
        result = c.evaluate("dark-mode")
        assert (result.value, result.reason) == (True, EvaluationReason.STALE_CACHE)
        assert c.get_boolean_value("dark-mode", False) is True
        mismatch = c.get_number_value("welcome", default=3.0)
        assert mismatch == 3.0
        assert c.evaluate("beta", EvaluationContext(country="NL")).reason is (
            EvaluationReason.STALE_CACHE
        )


def test_bootstrap_serves_until_the_server_has_the_flag() -> None:
    """Bootstrap values are served with reason BOOTSTRAP (and typed like any flag)."""
    c = offline(bootstrap={"feature-flag": True, "n": 2, "obj": {"a": 1}})
    c.initialize()
    assert c.get_boolean_value("feature-flag", default=False) is True
    assert c.get_number_value("n") == 2.0
    assert c.get_json_value("obj") == {"a": 1}
    assert c.get_string_value("feature-flag", default="d") == "d"
    result = c.evaluate("feature-flag")
    assert (result.reason, result.enabled) == (EvaluationReason.BOOTSTRAP, False)
    assert c.has_flag("feature-flag") and not c.has_flag("other")
    c.close()


def test_jitter_takes_the_slow_path_with_the_same_answers() -> None:
    """With evaluation jitter on, getters still return the right values."""
    c = offline(
        bootstrap={"a": True, "s": "x"},
        evaluation_jitter=EvaluationJitterConfig(enabled=True, min_ms=0, max_ms=1),
    )
    assert c.get_boolean_value("a", False) is True
    assert c.get_string_value("s", "") == "x"
    assert c.get_boolean_value("s", False) is False
    assert set(c.evaluate_all()) == {"a", "s"}
    c.close()


# -- overrides -------------------------------------------------------------------------------


def test_overrides_win_over_everything_and_come_back_off(client: FlagKitClient) -> None:
    """Overrides beat server values with reason OVERRIDE; clearing restores the server's."""
    client.set_overrides({"dark-mode": False, "new-thing": "on"})
    assert client.get_boolean_value("dark-mode", default=True) is False
    assert client.evaluate("dark-mode").reason is EvaluationReason.OVERRIDE
    assert client.has_flag("new-thing")
    assert client.get_boolean_value("new-thing", default=False) is False  # wrong type
    client.clear_overrides()
    assert client.get_boolean_value("dark-mode", default=False) is True
    assert not client.has_flag("new-thing")


def test_override_flags_context_manager_nests_and_restores(client: FlagKitClient) -> None:
    """``override_flags`` restores the previous overrides on exit, even on error."""
    with client.override_flags({"dark-mode": False}):
        with pytest.raises(RuntimeError), client.override_flags({"welcome": "hi"}):
            assert client.get_string_value("welcome") == "hi"
            assert client.get_boolean_value("dark-mode", True) is False
            raise RuntimeError("boom")
        assert client.get_string_value("welcome") == "Hello!"
        assert client.get_boolean_value("dark-mode", True) is False
    assert client.get_boolean_value("dark-mode", False) is True
    with pytest.raises(TypeError):
        client.set_overrides({1: True})  # type: ignore[dict-item]


# -- offline ---------------------------------------------------------------------------------


def test_offline_makes_no_network_call_at_all() -> None:
    """Offline: ready at once, and init/refresh/track/flush/close send nothing."""
    ready = threading.Event()
    with FaultServer() as fault:
        c = FlagKitClient(
            api_key=KEY,
            base_url=fault.base_url,
            offline=True,
            bootstrap={"feature-flag": True},
            on_ready=ready.set,
        )
        assert not c.is_ready()
        c.initialize()
        assert c.is_ready() and ready.wait(5)
        assert c.refresh() is False
        c.track("clicked", {"a": 1})
        c.flush(timeout=1)
        assert c.get_boolean_value("feature-flag", default=False) is True
        c.close()
        assert fault.requests() == []


# -- bootstrap verification ------------------------------------------------------------------


def test_signed_bootstrap_is_verified() -> None:
    """A correctly signed bootstrap is used; a forged one follows ``on_failure``."""
    good = create_bootstrap_signature({"a": True}, KEY)
    assert offline(bootstrap=good).get_boolean_value("a", False) is True

    forged = BootstrapConfig(flags={"a": True}, signature="0" * 64, timestamp=good.timestamp)
    with pytest.raises(SecurityError) as info:
        offline(
            bootstrap=forged,
            bootstrap_verification=BootstrapVerificationOptions(on_failure="error"),
        )
    assert info.value.code == "SECURITY_BOOTSTRAP_VERIFICATION_FAILED"
    ignored = offline(
        bootstrap=forged, bootstrap_verification=BootstrapVerificationOptions(on_failure="ignore")
    )
    assert ignored.get_boolean_value("a", False) is False and not ignored.has_flag("a")
    warned = offline(bootstrap=forged)
    assert warned.get_boolean_value("a", False) is True


# -- context API -----------------------------------------------------------------------------


def test_context_api_set_get_clear(client: FlagKitClient) -> None:
    """``set_context``/``get_context``/``clear_context`` manage the global context."""
    ctx = EvaluationContext(user_id="u1", country="NL")
    client.set_context(ctx)
    assert client.get_context() == ctx
    client.clear_context()
    assert client.get_context() is None
    with pytest.raises(TypeError):
        client.set_context(42)  # type: ignore[arg-type]


def test_set_context_inside_a_scope_never_writes_the_global_context(
    client: FlagKitClient,
) -> None:
    """Web code calling ``set_context`` inside a request scope changes only that scope."""
    with client.context_scope(EvaluationContext(user_id="request-user")):
        client.set_context(EvaluationContext(user_id="someone-else"))
        current = client.get_context()
        assert current is not None and current.user_id == "someone-else"
    assert client.get_context() is None


def test_identify_keeps_attributes_and_tracks_an_event(server: FlagKitServer) -> None:
    """``identify`` keeps every attribute and sends ``context.identified``."""
    with FlagKitClient(api_key=server.api_key, base_url=server.base_url, **quiet()) as c:
        c.initialize()
        c.identify("user-123", {"plan": "pro", "country": "NL"})
        ctx = c.get_context()
        assert ctx is not None
        assert (ctx.user_id, ctx.country, ctx.custom) == ("user-123", "NL", {"plan": "pro"})
        assert c.get_boolean_value("beta", False) is True
        c.reset()
        assert c.get_context() == EvaluationContext(anonymous=True)
        c.flush(timeout=5)
        sid = c.session_id
    identified = server.events("context.identified", session_id=sid)
    assert [e["eventData"] for e in identified] == [{"userId": "user-123"}]
    assert len(server.events("context.reset", session_id=sid)) == 1


def test_strict_pii_mode_refuses_pii_before_any_change() -> None:
    """With ``strict_pii_mode`` PII raises SecurityError and the context is unchanged."""
    c = offline(strict_pii_mode=True)
    with pytest.raises(SecurityError):
        c.identify("user-123", {"email": "user@example.com"})
    assert c.get_context() is None
    with pytest.raises(SecurityError):
        c.set_context(EvaluationContext(user_id="u", custom={"phone": "+31 6 1234 5678"}))
    c.set_context(
        EvaluationContext(user_id="u", email="u@example.com", private_attributes=["email"])
    )
    assert c.get_context() is not None
    with pytest.raises(SecurityError):
        c.track("signup", {"email": "u@example.com"})
    c.close()


def test_track_attaches_the_context_without_private_attributes(server: FlagKitServer) -> None:
    """Tracked events carry the current context, private attributes stripped."""
    with FlagKitClient(api_key=server.api_key, base_url=server.base_url, **quiet()) as c:
        c.initialize()
        with c.context_scope(
            EvaluationContext(
                user_id="u-9", email="u9@example.com", country="NL", private_attributes=["email"]
            )
        ):
            c.track("purchase", {"amount": 9.5})
        result = c.flush(timeout=5)
        assert result.sent >= 1 and result.error is None
        assert c.event_stats.sent >= 1
        sid = c.session_id
    [event] = server.events("purchase", session_id=sid)
    assert event["eventData"] == {"amount": 9.5}
    assert event["environmentId"] == server.environment.id
    wire = repr(event)
    assert "u-9" in wire and "NL" in wire and "u9@example.com" not in wire


# -- callbacks -------------------------------------------------------------------------------


def test_callbacks_run_on_the_dispatch_thread_and_a_raising_one_is_contained(
    server: FlagKitServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``on_ready`` and listeners run on ``flagkit-dispatch``; a raising one is only logged."""
    threads: list[str] = []
    done = threading.Event()

    def bad() -> None:
        raise RuntimeError("user bug")

    c = FlagKitClient(api_key=server.api_key, base_url=server.base_url, on_ready=bad, **quiet())
    c.add_ready_listener(lambda: threads.append(threading.current_thread().name))
    unsubscribe = c.add_ready_listener(lambda: threads.append("unsubscribed"))
    unsubscribe()
    c.add_ready_listener(done.set)
    with caplog.at_level(logging.ERROR, logger="flagkit"):
        c.initialize()
        assert done.wait(5)
        assert c.wait_for_callbacks(5)
    assert threads == ["flagkit-dispatch"]
    assert any(
        "user bug" in r.getMessage() or (r.exc_info and "user bug" in str(r.exc_info[1]))
        for r in caplog.records
    )
    assert c.get_boolean_value("dark-mode", False) is True
    late: list[int] = []
    c.add_ready_listener(lambda: late.append(1))  # already ready: called at once
    assert c.wait_for_callbacks(5) and late == [1]
    c.close()


# -- lifecycle -------------------------------------------------------------------------------


def test_lifecycle_states_and_idempotent_close(server: FlagKitServer) -> None:
    """NEW -> READY -> CLOSED; close twice is fine; lookups keep working after close."""
    c = FlagKitClient(api_key=server.api_key, base_url=server.base_url, **quiet())
    assert c.state is ClientState.NEW and not c.is_ready()
    c.initialize()
    c.initialize()  # idempotent
    c.start()  # no-op once ready
    assert c.state is ClientState.READY and c.is_ready() and c.wait_for_ready(0)
    c.close()
    c.close()
    assert c.state is ClientState.CLOSED and not c.is_ready()
    assert c.get_boolean_value("dark-mode", False) is True
    assert c.refresh() is False
    c.track("ignored")
    with pytest.raises(RuntimeError):
        c.initialize()
    with pytest.raises(RuntimeError):
        c.start()


def test_context_manager_closes_the_client(server: FlagKitServer) -> None:
    """``with FlagKitClient(options) as client`` closes it on exit (README sample)."""
    options = FlagKitOptions(api_key=server.api_key, base_url=server.base_url, **quiet())
    with FlagKitClient(options) as c:
        c.initialize()
        assert c.is_ready()
    assert c.state is ClientState.CLOSED


def test_options_and_keywords_are_both_accepted() -> None:
    """A client takes a FlagKitOptions, keywords, or options plus keyword overrides."""
    options = FlagKitOptions(api_key=KEY, offline=True)
    assert FlagKitClient(options).options is options
    assert FlagKitClient(options, cache_ttl=5.0).options.cache_ttl == 5.0
    assert FlagKitClient(api_key=KEY, offline=True).options.offline
    with pytest.raises(TypeError):
        FlagKitClient({"api_key": KEY})  # type: ignore[arg-type]
    assert "sdk_test_key_123456" not in repr(FlagKitClient(options))


def test_error_sanitization_is_per_client() -> None:
    """Each client's ``error_sanitization`` shapes the errors it raises; the process-wide
    default is left alone. The failed request itself (method and server URL) is named
    either way."""
    before = get_sanitization_config()
    detail = "cannot open /var/lib/flagkit/flags.db for ops@example.com"
    messages = {}
    with FaultServer() as fault:
        fault.set_default("GET", "/sdk/init", Reply.error(400, message=detail))
        for enabled in (True, False):
            client = FlagKitClient(
                api_key=KEY,
                base_url=fault.base_url,
                timeout=0.5,
                retries=0,
                error_sanitization=ErrorSanitizationConfig(enabled=enabled),
            )
            try:
                with pytest.raises(NetworkError) as caught:
                    client.initialize()
                messages[enabled] = str(caught.value)
            finally:
                client.close(timeout=1)
    assert detail in messages[False]
    assert "[PATH]" in messages[True] and "[EMAIL]" in messages[True]
    assert "ops@example.com" not in messages[True]
    for message in messages.values():
        assert f"GET {fault.base_url}/sdk/init failed" in message
    assert get_sanitization_config() is before
