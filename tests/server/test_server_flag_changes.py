"""One flag change is checked against what it touches: prerequisites both ways, cycles and
segments still refuse a bad change, with the same error a check of every flag gives."""

from __future__ import annotations

from typing import Any

import pytest

from flagkit.server import FlagKitServer, InvalidFieldError

ON_OFF = [{"id": "on", "value": True}, {"id": "off", "value": False}]


def targeted(**fields: Any) -> dict[str, Any]:
    """The fields of a targeted boolean flag (without its key)."""
    return {"value": False, "variations": ON_OFF, **fields}


@pytest.fixture
def server() -> FlagKitServer:
    """Not started: the Python API alone. ``child`` needs ``parent`` to serve ``on``."""
    flags = [
        {"key": "parent", **targeted(fallthrough={"variation": "on"})},
        {"key": "child", **targeted(prerequisites=[{"key": "parent", "variation": "on"}])},
        {"key": "plain", "value": 1},
        *({"key": f"other-{i}", "value": i} for i in range(50)),
    ]
    segments = [{"key": "staff", "included": ["u1"]}]
    return FlagKitServer(flags, segments=segments)


def test_removing_a_variation_a_dependent_needs_is_refused(server: FlagKitServer) -> None:
    variations = [{"id": "yes", "value": True}, {"id": "no", "value": False}]
    with pytest.raises(InvalidFieldError) as info:
        server.set_flag("parent", variations=variations, fallthrough={"variation": "yes"})
    assert info.value.field == "flags['child'].prerequisites[0].variation"
    assert "has no variation 'on'" in info.value.reason
    assert server.get_flag("parent")["variations"] == ON_OFF  # type: ignore[index]


def test_a_dependent_index_follows_changes(server: FlagKitServer) -> None:
    """Once child no longer needs parent, parent may drop its variations; a flag that
    starts needing plain (no variations) is refused."""
    server.set_flag("child", False, replace=True)
    assert server.set_flag("parent", True, replace=True)["value"] is True
    needs_plain = targeted(prerequisites=[{"key": "plain", "variation": "on"}])
    with pytest.raises(InvalidFieldError, match="has no variation 'on'"):
        server.set_flag("child", replace=True, **needs_plain)


def test_a_prerequisite_cycle_is_refused(server: FlagKitServer) -> None:
    with pytest.raises(InvalidFieldError, match="prerequisite cycle"):
        server.set_flag("parent", prerequisites=[{"key": "child", "variation": "on"}])


def test_a_longer_cycle_through_stored_flags_is_refused(server: FlagKitServer) -> None:
    server.set_flag("grandchild", **targeted(prerequisites=[{"key": "child", "variation": "on"}]))
    with pytest.raises(InvalidFieldError, match="prerequisite cycle: parent -> grandchild"):
        server.set_flag("parent", prerequisites=[{"key": "grandchild", "variation": "on"}])


def test_rules_must_name_existing_segments_and_prerequisites_existing_flags(
    server: FlagKitServer,
) -> None:
    rule = {"id": "r", "clauses": [{"op": "segmentMatch", "values": ["staff"]}], "variation": "on"}
    assert server.set_flag("parent", rules=[rule])["rules"] == [rule]
    missing = {**rule, "clauses": [{"op": "segmentMatch", "values": ["nobody"]}]}
    with pytest.raises(InvalidFieldError, match="unknown segment 'nobody'"):
        server.set_flag("parent", rules=[missing])
    ghost = targeted(prerequisites=[{"key": "ghost", "variation": "on"}])
    with pytest.raises(InvalidFieldError, match="unknown flag 'ghost'"):
        server.set_flag("plain", replace=True, **ghost)
