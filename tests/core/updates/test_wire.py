"""Wire payloads → store changes: /sdk/init, /sdk/updates, stream events, version advice."""

from __future__ import annotations

import logging

import pytest

from flagkit import NetworkError, StreamingOptions
from flagkit.client import FlagKitClient
from flagkit.core.updates.wire import (
    parse_init,
    parse_stream_event,
    parse_updates,
    parse_version,
)
from flagkit.testing import FlagKitServer

LOG = logging.getLogger("flagkit.test")
FLAG = {"key": "a", "value": True, "enabled": True, "flagType": "boolean", "version": 2}


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("1.2.3", (1, 2, 3)),
        ("v1.2.3-beta.1", (1, 2, 3)),
        ("V10.0.7+build", (10, 0, 7)),
        ("1.2", None),
        ("a.b.c", None),
        ("-1.0.0", None),
        (123, None),
    ],
)
def test_parse_version(raw: object, parsed: tuple[int, int, int] | None) -> None:
    """SDK-version advice accepts v-prefixed, pre-release and build forms; others are None."""
    assert parse_version(raw) == parsed


def test_parse_init_reads_every_field_and_tolerates_wrong_types() -> None:
    """Known fields are read; a field of the wrong type is ignored, not fatal."""
    payload = parse_init(
        {
            "flags": [FLAG, {"key": "broken"}],
            "segments": [{"key": "s"}],
            "environmentId": "env-1",
            "serverTime": "2025-01-01T00:00:00Z",
            "pollingIntervalSeconds": 30,
            "metadata": "not a dict",
            "environment": 7,
        },
        LOG,
    )
    assert [f.key for f in payload.change.full or []] == ["a"]
    assert payload.change.keep == {"broken"}
    assert payload.change.segments_full == [{"key": "s"}]
    assert (payload.environment_id, payload.cursor, payload.polling_interval) == (
        "env-1",
        "2025-01-01T00:00:00Z",
        30.0,
    )
    assert payload.metadata is None and payload.environment is None


@pytest.mark.parametrize("body", [{}, {"flags": {}}, {"flags": [], "segments": "x"}])
def test_parse_init_refuses_a_wrong_shape(body: dict[str, object]) -> None:
    """No flags array (or a segments field that is no array): an invalid response."""
    with pytest.raises(NetworkError) as info:
        parse_init(body, LOG)
    assert info.value.code == "NETWORK_INVALID_RESPONSE"


def test_parse_updates_reads_changes_deletions_and_the_cursor() -> None:
    """Both deletion spellings are understood; checkedAt becomes the next cursor."""
    change, cursor = parse_updates(
        {"flags": [FLAG], "deletedFlags": ["b", {"key": "c"}, 5], "checkedAt": "T1"}, LOG
    )
    assert [f.key for f in change.upserts] == ["a"]
    assert change.deletions == ["b", "c"]
    assert cursor == "T1"
    with pytest.raises(NetworkError):
        parse_updates({"deleted": "b"}, LOG)


def test_parse_stream_event_maps_each_event_to_a_store_change() -> None:
    """Each named event becomes the matching change; unknown events are None."""
    assert [f.key for f in parse_stream_event("flag_updated", FLAG, LOG).upserts] == ["a"]  # type: ignore[union-attr]
    assert parse_stream_event("flag_deleted", {"key": "a"}, LOG).deletions == ["a"]  # type: ignore[union-attr]
    reset = parse_stream_event("flags_reset", [FLAG], LOG)
    assert reset is not None and [f.key for f in reset.full or []] == ["a"]
    segment = parse_stream_event("segment_updated", {"key": "s"}, LOG)
    assert segment is not None and segment.segment_upserts == [{"key": "s"}]
    gone = parse_stream_event("segment_deleted", {"key": "s"}, LOG)
    assert gone is not None and gone.segment_deletions == ["s"]
    assert parse_stream_event("something_new", {}, LOG) is None
    for name, data in [
        ("flag_updated", "x"),
        ("flag_deleted", {}),
        ("segment_updated", {}),
        ("segments_reset", {}),
    ]:
        with pytest.raises((KeyError, TypeError, ValueError)):
            parse_stream_event(name, data, LOG)


@pytest.mark.parametrize(
    ("metadata", "level", "text"),
    [
        ({"sdkVersionMin": "99.0.0"}, logging.ERROR, "below the minimum"),
        ({"sdkVersionRecommended": "99.0.0"}, logging.WARNING, "below the recommended"),
        ({"sdkVersionLatest": "99.0.0"}, logging.INFO, "newer SDK version"),
        ({"deprecationWarning": "v1 ends in May"}, logging.WARNING, "v1 ends in May"),
    ],
)
def test_version_advice_from_init_is_logged(
    metadata: dict[str, str], level: int, text: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's SDK-version advice in /sdk/init metadata reaches the log at its level."""
    with FlagKitServer(flags={"a": True}, metadata=metadata) as server:
        client = FlagKitClient(
            api_key=server.api_key,
            base_url=server.base_url,
            streaming=StreamingOptions(enabled=False),
            enable_polling=False,
            event_flush_interval=60.0,
        )
        with caplog.at_level(logging.INFO, logger="flagkit"):
            client.initialize()
        client.close()
    assert [r for r in caplog.records if r.levelno == level and text in r.getMessage()]
