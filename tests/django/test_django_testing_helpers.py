"""``flagkit_django.testing.override_flags`` and the ``flagkit_flags`` pytest fixture."""

from __future__ import annotations

import asyncio
import unittest
from typing import Any

import pytest
from django.test import Client, SimpleTestCase, override_settings

from flagkit.testing import FlagKitServer
from flagkit.types.flag import EvaluationReason
from flagkit_django import get_client
from flagkit_django._engine import peek_client
from flagkit_django.testing import FlagOverrides, override_flags
from tests.django.conftest import live_settings


@pytest.fixture(autouse=True)
def offline(settings: Any) -> None:
    """Offline client with one bootstrap flag."""
    settings.FLAGKIT = {"OFFLINE": True, "BOOTSTRAP": {"new-checkout": True}}


def overrides_now() -> dict[str, Any]:
    client = peek_client()
    return dict(client.overrides) if client is not None else {}


def test_context_manager_nests_and_restores() -> None:
    """Nested blocks merge (inner wins) and leaving restores the outer values exactly."""
    client = get_client()
    with override_flags({"a": 1, "b": "x"}):
        assert overrides_now() == {"a": 1, "b": "x"}
        with override_flags({"b": "y", "c": True}):
            assert overrides_now() == {"a": 1, "b": "y", "c": True}
            result = client.evaluate("b")
            assert (result.value, result.reason) == ("y", EvaluationReason.OVERRIDE)
        assert overrides_now() == {"a": 1, "b": "x"}
    assert overrides_now() == {}
    assert client.get_boolean_value("new-checkout", False) is True


@override_flags({"new-checkout": False})
def test_function_decorator(client: Client) -> None:
    """As a decorator on a test function the overrides are active during the test."""
    assert client.get("/checkout/").status_code == 404


def test_decorated_function_leaves_nothing_behind() -> None:
    """A decorated function removes its overrides when it returns (or raises)."""

    @override_flags({"x": 1})
    def inner() -> dict[str, Any]:
        return overrides_now()

    @override_flags({"x": 2})
    def failing() -> None:
        raise RuntimeError("boom")

    assert inner() == {"x": 1}
    with pytest.raises(RuntimeError):
        failing()
    assert overrides_now() == {}


def test_async_function_decorator() -> None:
    """The decorator works on ``async def`` functions."""

    @override_flags({"new-checkout": False})
    async def inner() -> bool:
        return get_client().get_boolean_value("new-checkout", True)

    assert asyncio.run(inner()) is False
    assert get_client().get_boolean_value("new-checkout", False) is True


def test_testcase_class_decorator() -> None:
    """On a TestCase class every test sees the overrides, and nothing is left afterwards."""
    seen: list[bool] = []

    @override_flags({"new-checkout": False})
    class Decorated(SimpleTestCase):
        def test_one(self) -> None:
            """The class-level override is active."""
            seen.append(self.client.get("/checkout/").status_code == 404)

        def test_two(self) -> None:
            """A nested override wins inside its block, the class one comes back after."""
            with override_flags({"new-checkout": True}):
                seen.append(self.client.get("/checkout/").status_code == 200)
            seen.append(get_client().get_boolean_value("new-checkout", True) is False)

    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Decorated).run(result)
    assert result.errors == [] and result.failures == []
    assert seen == [True, True, True]
    assert overrides_now() == {}


def test_overrides_survive_a_client_rebuild(settings: Any) -> None:
    """A client rebuilt inside the block (new FLAGKIT) gets the active overrides too."""
    with override_flags({"feature": "on"}):
        first = get_client()
        with override_settings(FLAGKIT={"OFFLINE": True, "POLLING_INTERVAL": 60}):
            second = get_client()
            assert second is not first
            assert second.get_string_value("feature", "off") == "on"
    assert get_client().get_string_value("feature", "off") == "off"


def test_overrides_use_no_network(settings: Any) -> None:
    """Entering overrides creates the client without starting it: no request is sent."""
    with FlagKitServer(flags={"feature": False}) as server:
        settings.FLAGKIT = live_settings(server)
        with override_flags({"feature": True}):
            assert peek_client() is not None
            assert get_client(start=False).get_boolean_value("feature", False) is True
        assert server.requests == []


def test_override_flags_rejects_bad_input() -> None:
    """A non-mapping or a non-string key is a TypeError at once."""
    with pytest.raises(TypeError, match="mapping of flag key"):
        override_flags(["a"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="non-empty strings"):
        override_flags({1: True})  # type: ignore[dict-item]


def test_fixture(flagkit_flags: FlagOverrides, client: Client) -> None:
    """The ``flagkit_flags`` fixture sets, changes and removes overrides in a test."""
    flagkit_flags.set({"new-checkout": False})
    assert client.get("/checkout/").status_code == 404
    flagkit_flags["new-checkout"] = True
    flagkit_flags.set(banner="hi")
    assert overrides_now() == {"new-checkout": True, "banner": "hi"}
    del flagkit_flags["banner"]
    assert overrides_now() == {"new-checkout": True}
    flagkit_flags.clear()
    assert overrides_now() == {}


def test_fixture_teardown_removes_everything() -> None:
    """Closing the fixture's object removes its overrides, leaving outer ones in place."""
    with override_flags({"outer": 1}):
        helper = FlagOverrides()
        helper.set({"inner": 2, "outer": 3})
        assert overrides_now() == {"outer": 3, "inner": 2}
        helper.close()
        assert overrides_now() == {"outer": 1}
    assert overrides_now() == {}
