"""FlagKitProvider beyond the spec scenarios: parity with the client, reasons, metadata,
events from a real server, tracking, context mapping and lifecycle."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext as OFContext
from openfeature.event import EventDetails, ProviderEvent
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus
from openfeature.track import TrackingEventDetails

from flagkit import EvaluationContext, FlagKitClient
from flagkit.errors import ConfigurationError
from flagkit.openfeature import FlagKitProvider, to_flagkit_context, to_openfeature_context
from flagkit.server import FlagKitServer
from flagkit.types.config import StreamingOptions
from tests.support import wait_until

KEY = "sdk_provider_test_key"
BOOL = [{"id": "on", "value": True}, {"id": "off", "value": False}]
FLAGS: list[dict[str, Any]] = [
    {"key": "simple", "value": True},
    {"key": "count", "flagType": "number", "value": 3},
    {"key": "ratio", "flagType": "number", "value": 0.25},
    {
        "key": "rollout",
        "flagType": "boolean",
        "value": False,
        "variations": BOOL,
        "fallthrough": {
            "rollout": {
                "variations": [
                    {"variation": "on", "weight": 50000},
                    {"variation": "off", "weight": 50000},
                ]
            }
        },
        "metadata": {"owner": "growth", "ticket": 42},
    },
    {
        "key": "by-country",
        "flagType": "string",
        "value": "x",
        "variations": [{"id": "eu", "value": "eu"}, {"id": "world", "value": "world"}],
        "rules": [
            {
                "id": "eu-rule",
                "clauses": [{"attribute": "country", "op": "in", "values": ["DE", "AT"]}],
                "variation": "eu",
            },
            {
                "id": "pro-split",
                "clauses": [{"attribute": "plan", "op": "in", "values": ["pro"]}],
                "rollout": {"variations": [{"variation": "eu", "weight": 100000}]},
            },
        ],
        "fallthrough": {"variation": "world"},
    },
    {
        "key": "needs-rollout",
        "flagType": "boolean",
        "value": False,
        "variations": BOOL,
        "offVariation": "off",
        "prerequisites": [{"key": "by-country", "variation": "eu"}],
        "fallthrough": {"variation": "on"},
    },
    {"key": "off-flag", "value": "served-when-on", "flagType": "string", "enabled": False},
]


@pytest.fixture
def server() -> Iterator[FlagKitServer]:
    with FlagKitServer(flags=FLAGS, api_keys=KEY, heartbeat_interval=0.5) as running:
        yield running


def _options(server: FlagKitServer, **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "api_key": KEY,
        "base_url": server.base_url,
        "timeout": 2.0,
        "streaming": StreamingOptions(enabled=False),
        "event_flush_interval": 60.0,
    }
    options.update(extra)
    return options


def _provider(server: FlagKitServer, **extra: Any) -> FlagKitProvider:
    provider = FlagKitProvider(**_options(server, **extra))
    api.set_provider_and_wait(provider)
    return provider


def test_values_and_variants_equal_the_clients_for_generated_contexts(
    server: FlagKitServer,
) -> None:
    """For many contexts, every flag resolves through OpenFeature to exactly what the
    FlagKit client serves (value and variation id)."""
    provider = _provider(server)
    of = api.get_client()
    client = provider.client
    rng = random.Random(7)
    for i in range(300):
        attributes: dict[str, Any] = {"country": rng.choice(["DE", "AT", "NL", "US"])}
        if rng.random() < 0.5:
            attributes["plan"] = rng.choice(["pro", "free"])
        context = OFContext(targeting_key=f"user-{i}", attributes=attributes)
        flagkit_context = EvaluationContext(
            user_id=f"user-{i}",
            country=attributes["country"],
            custom={k: v for k, v in attributes.items() if k != "country"},
        )
        for key, getter in (
            ("rollout", of.get_boolean_details),
            ("by-country", of.get_string_details),
            ("needs-rollout", of.get_boolean_details),
        ):
            details = getter(key, None, context)  # type: ignore[operator]
            expected = client.evaluate(key, flagkit_context)
            assert (details.value, details.variant) == (expected.value, expected.variation_id)


def test_reasons_map_to_openfeature(server: FlagKitServer) -> None:
    """STATIC, SPLIT, TARGETING_MATCH, DEFAULT, DISABLED and the prerequisite reason."""
    _provider(server)
    of = api.get_client()
    de = OFContext("u-1", {"country": "DE"})
    assert of.get_boolean_details("simple", False).reason == Reason.STATIC
    assert of.get_boolean_details("rollout", False, OFContext("u-1")).reason == Reason.SPLIT
    assert of.get_string_details("by-country", "", de).reason == Reason.TARGETING_MATCH
    pro = OFContext("u-1", {"country": "US", "plan": "pro"})
    assert of.get_string_details("by-country", "", pro).reason == Reason.SPLIT
    assert of.get_string_details("by-country", "", OFContext("u-1")).reason == Reason.DEFAULT
    off = of.get_string_details("off-flag", "fallback")
    assert (off.value, off.reason) == ("fallback", Reason.DISABLED)
    prereq = of.get_boolean_details("needs-rollout", True, OFContext("u-1", {"country": "US"}))
    assert (prereq.value, prereq.reason, prereq.variant) == (False, "PREREQUISITE_FAILED", "off")


def test_numbers_convert_between_integer_and_float_and_types_are_checked(
    server: FlagKitServer,
) -> None:
    """An integer flag reads as float and the reverse when exact; a boolean flag is never
    an integer; nothing raises."""
    _provider(server)
    of = api.get_client()
    assert of.get_float_details("count", 0.0).value == 3.0
    assert type(of.get_float_details("count", 0.0).value) is float
    assert of.get_integer_details("count", 0).value == 3
    inexact = of.get_integer_details("ratio", 7)
    assert (inexact.value, inexact.error_code) == (7, ErrorCode.TYPE_MISMATCH)
    as_int = of.get_integer_details("simple", 5)
    assert (as_int.value, as_int.error_code, as_int.reason) == (
        5,
        ErrorCode.TYPE_MISMATCH,
        Reason.ERROR,
    )
    assert of.get_object_details("simple", {"a": 1}).error_code == ErrorCode.TYPE_MISMATCH
    missing = of.get_string_details("no-such-flag", "d")
    assert (missing.value, missing.error_code) == ("d", ErrorCode.FLAG_NOT_FOUND)


def test_flag_metadata_holds_the_flags_own_and_flagkits_keys(server: FlagKitServer) -> None:
    """``metadata`` of the flag, plus version/rule ids unless evaluation_metadata=False."""
    _provider(server)
    of = api.get_client()
    details = of.get_boolean_details("rollout", False, OFContext("u-1"))
    assert details.flag_metadata["owner"] == "growth" and details.flag_metadata["ticket"] == 42
    assert details.flag_metadata["flagkit.version"] >= 1
    rule = of.get_string_details("by-country", "", OFContext("u", {"country": "AT"}))
    assert rule.flag_metadata["flagkit.ruleId"] == "eu-rule"
    api.set_provider_and_wait(FlagKitProvider(**_options(server), evaluation_metadata=False))
    plain = api.get_client().get_boolean_details("simple", False)
    assert plain.flag_metadata == {}


def test_invalid_context_is_reported_not_raised(server: FlagKitServer) -> None:
    """A named field of the wrong type is INVALID_CONTEXT with the caller's default."""
    _provider(server)
    details = api.get_client().get_boolean_details("simple", False, OFContext("u", {"email": 5}))
    assert (details.value, details.error_code) == (False, ErrorCode.INVALID_CONTEXT)


def test_configuration_changed_arrives_with_changed_keys_by_streaming(
    server: FlagKitServer,
) -> None:
    """A change through the admin API reaches OpenFeature handlers within a second, off
    the caller's thread."""
    provider = FlagKitProvider(**_options(server, streaming=StreamingOptions(enabled=True)))
    api.set_provider_and_wait(provider)
    wait_until(lambda: any("/sdk/stream" in r.path for r in server.requests), timeout=5)
    seen: list[tuple[list[str] | None, str]] = []
    done = threading.Event()

    def handler(details: EventDetails) -> None:
        seen.append((details.flags_changed, threading.current_thread().name))
        done.set()

    api.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, handler)
    try:
        server.set_flag("simple", False)
        assert done.wait(1.0), "no PROVIDER_CONFIGURATION_CHANGED within 1 s"
    finally:
        api.remove_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, handler)
    assert seen[0][0] == ["simple"]
    assert seen[0][1] != threading.current_thread().name
    assert api.get_client().get_boolean_value("simple", True) is False


def test_status_goes_stale_when_updates_fail_and_ready_when_they_recover(
    server: FlagKitServer,
) -> None:
    """Failing polls make the provider STALE; the next good poll makes it READY again."""
    provider = FlagKitProvider(**_options(server, polling_interval=0.2), status_interval=0.05)
    api.set_provider_and_wait(provider)
    of = api.get_client()
    server.inject_fault("updates", statuses=[503] * 1000)
    wait_until(lambda: of.get_provider_status() is ProviderStatus.STALE, timeout=5)
    assert of.get_boolean_value("simple", False) is True  # values still served
    server.clear_faults()
    wait_until(lambda: of.get_provider_status() is ProviderStatus.READY, timeout=5)


def test_rejected_key_is_fatal(server: FlagKitServer) -> None:
    """A key the server rejects makes the provider FATAL; lookups serve the default."""
    with pytest.raises(Exception, match="rejected"):
        api.set_provider_and_wait(FlagKitProvider(**_options(server, api_key="sdk_unknown_key")))
    of = api.get_client()
    assert of.get_provider_status() is ProviderStatus.FATAL
    details = of.get_boolean_details("simple", False)
    assert (details.value, details.error_code) == (False, ErrorCode.PROVIDER_FATAL)


def test_track_sends_the_event_with_value_attributes_and_context(server: FlagKitServer) -> None:
    """``track`` goes through FlagKit's event pipeline with the mapped context."""
    provider = _provider(server)
    api.get_client().track(
        "purchase",
        OFContext("buyer-1", {"country": "NL"}),
        TrackingEventDetails(value=19.5, attributes={"sku": "A-1"}),
    )
    provider.client.flush(timeout=5)
    events = [e for e in server.events() if e.get("eventType") == "purchase"]
    assert events, server.events()
    event = events[0]
    assert event["eventData"] == {"sku": "A-1", "value": 19.5}
    assert event["context"]["userId"] == "buyer-1" and event["context"]["country"] == "NL"


def test_shared_client_is_neither_started_nor_closed_by_the_provider(
    server: FlagKitServer,
) -> None:
    """Around an existing client the provider leaves its lifecycle to its owner."""
    client = FlagKitClient(**_options(server))
    try:
        client.initialize()
        provider = FlagKitProvider(client=client)
        api.set_provider_and_wait(provider)
        assert api.get_client().get_boolean_value("simple", False) is True
        api.shutdown()
        assert client.get_boolean_value("simple", False) is True
        assert client.state.value == "ready"
    finally:
        client.close()


def test_client_and_options_together_are_a_configuration_error(server: FlagKitServer) -> None:
    client = FlagKitClient(**_options(server))
    try:
        with pytest.raises(ConfigurationError, match="either client= or FlagKit options"):
            FlagKitProvider(client=client, api_key=KEY)
    finally:
        client.close()
    with pytest.raises(ConfigurationError, match="polling_interval"):
        FlagKitProvider(api_key=KEY, polling_interval=-1)


def test_context_mapping_both_directions() -> None:
    """Named fields, custom attributes, private attributes and anonymous keys survive a
    round trip."""
    ctx = EvaluationContext(
        user_id="u-1",
        email="a@example.com",
        country="NL",
        custom={"plan": "pro"},
        private_attributes=["email", "custom.plan"],
    )
    of = to_openfeature_context(ctx)
    assert of.targeting_key == "u-1"
    assert of.attributes["email"] == "a@example.com" and of.attributes["plan"] == "pro"
    assert to_flagkit_context(of) == ctx
    anonymous = EvaluationContext(user_key="anon-9", anonymous=True)
    assert to_openfeature_context(anonymous).targeting_key == "anon-9"
    assert to_flagkit_context(to_openfeature_context(anonymous)) == anonymous
    both = EvaluationContext(user_id="u-2", user_key="anon-2", anonymous=True)
    assert to_flagkit_context(to_openfeature_context(both)) == both
    mapped = to_flagkit_context(OFContext("k", {"user_agent": "UA", "userAgent": "UA"}))
    assert mapped is not None and mapped.user_agent == "UA"
    assert to_flagkit_context(OFContext()) is None
