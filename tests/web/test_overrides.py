"""flagkit.testing.overrides: stacked overrides shared by the adapters' test helpers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from flagkit import EvaluationReason
from flagkit.client import FlagKitClient
from flagkit.testing.overrides import FlagOverrides, OverrideStack, checked_flags


@pytest.fixture
def client() -> Iterator[FlagKitClient]:
    c = FlagKitClient(api_key="sdk_test_key_123456", offline=True, bootstrap={"a": "boot"})
    yield c
    c.close()


class StackOverrides(FlagOverrides):
    """The fixture object over one stack and one client, as an adapter would wire it."""

    def __init__(self, stack: OverrideStack, client: FlagKitClient) -> None:
        super().__init__()
        self.stack = stack
        self.client = client

    def _push(self, layer: dict[str, Any]) -> None:
        self.stack.push(layer)
        self.stack.apply_to(self.client)

    def _pop(self, layer: dict[str, Any]) -> None:
        self.stack.remove(layer)
        self.stack.apply_to(self.client)

    def _refresh_client(self) -> None:
        self.stack.apply_to(self.client)


def test_inner_layers_win_and_removing_one_restores_the_outer_values(
    client: FlagKitClient,
) -> None:
    """Nested layers merge (inner wins); removing the inner restores the outer exactly and
    removing the last leaves the client's own values."""
    stack = OverrideStack()
    outer, inner = {"a": 1, "b": 1}, {"b": 2, "c": 3}
    stack.push(outer)
    stack.push(inner)
    stack.apply_to(client)
    assert [client.evaluate(k).value for k in "abc"] == [1, 2, 3]
    assert client.evaluate("a").reason is EvaluationReason.OVERRIDE
    stack.remove(inner)
    stack.apply_to(client)
    assert client.evaluate("b").value == 1
    assert client.evaluate("c").reason is EvaluationReason.FLAG_NOT_FOUND
    stack.remove(outer)
    stack.remove({"a": 1})  # not on the stack (identity): ignored
    stack.apply_to(client)
    assert len(stack) == 0
    assert client.evaluate("a").value == "boot"


def test_layers_are_held_by_identity(client: FlagKitClient) -> None:
    """Equal layers are distinct: removing one keeps the other; a layer changed in place is
    seen on the next apply."""
    stack = OverrideStack()
    first, second = {"a": 1}, {"a": 1}
    stack.push(first)
    stack.push(second)
    stack.remove(first)
    assert len(stack) == 1
    second["a"] = 5
    stack.apply_to(client)
    assert client.evaluate("a").value == 5


def test_flag_overrides_set_change_delete_and_close(client: FlagKitClient) -> None:
    """The fixture object's set/[]=/del/clear reach the client; closing removes them all."""
    stack = OverrideStack()
    with StackOverrides(stack, client) as overrides:
        overrides.set({"a": 1}, b=2)
        assert client.evaluate("b").value == 2
        overrides["c"] = 3
        del overrides["a"]
        assert client.evaluate("a").value == "boot"
        assert client.evaluate("c").value == 3
        overrides.clear()
        assert client.evaluate("b").reason is EvaluationReason.FLAG_NOT_FOUND
        overrides["a"] = 9
    assert len(stack) == 0
    assert client.evaluate("a").value == "boot"
    overrides.close()  # idempotent


def test_checked_flags_rejects_bad_input() -> None:
    """Only a mapping with non-empty string keys is accepted; a copy is returned."""
    original = {"a": 1}
    copied = checked_flags(original)
    assert copied == original and copied is not original
    with pytest.raises(TypeError, match="mapping of flag key"):
        checked_flags(["a"])
    with pytest.raises(TypeError, match="non-empty strings"):
        checked_flags({"": 1})
    with pytest.raises(TypeError, match="non-empty strings"):
        checked_flags({1: 1})
