"""Wire payloads → flag states and store changes (docs/protocol.md §4.1 to §4.5).

Pure functions, no I/O and no state: the data source (:mod:`flagkit.core.updates.source`)
fetches, these parse, and the result is handed to :meth:`flagkit.core.store.FlagStore.apply`
as a :class:`StoreChange`. A malformed entry inside a payload is skipped with a warning; a
payload whose shape is wrong as a whole raises ``NetworkError``
(``NETWORK_INVALID_RESPONSE``) for a response, or ``ValueError``/``TypeError``/``KeyError``
for a stream event (the source logs and skips it).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flagkit._version import __version__
from flagkit.errors import NetworkError
from flagkit.types.flag import FlagState
from flagkit.utils.validators import is_valid_flag_key

__all__ = [
    "InitPayload",
    "StoreChange",
    "parse_deleted",
    "parse_flags",
    "parse_init",
    "parse_segments",
    "parse_stream_event",
    "parse_updates",
    "parse_version",
    "version_advice",
]


@dataclass(frozen=True, slots=True)
class StoreChange:
    """Keyword arguments for :meth:`FlagStore.apply` (only what a payload carried)."""

    full: list[FlagState] | None = None
    keep: set[str] = field(default_factory=set)
    upserts: list[FlagState] = field(default_factory=list)
    deletions: list[str] = field(default_factory=list)
    segments_full: list[dict[str, Any]] | None = None
    segment_upserts: list[dict[str, Any]] = field(default_factory=list)
    segment_deletions: list[str] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        """The arguments of ``FlagStore.apply``."""
        return {
            "full": self.full,
            "keep": self.keep,
            "upserts": self.upserts,
            "deletions": self.deletions,
            "segments_full": self.segments_full,
            "segment_upserts": self.segment_upserts,
            "segment_deletions": self.segment_deletions,
        }


@dataclass(frozen=True, slots=True)
class InitPayload:
    """A parsed ``/sdk/init`` answer (docs/protocol.md §4.2)."""

    change: StoreChange
    environment_id: str | None = None
    environment: str | None = None
    cursor: str | None = None
    polling_interval: float | None = None
    metadata: Mapping[str, Any] | None = None


def parse_flags(
    raw_flags: object, *, stream: bool, logger: logging.Logger
) -> tuple[list[FlagState], set[str]]:
    """Parse a wire ``flags`` array; returns the good flags and the keys of bad ones.

    A malformed entry is skipped with a warning (its key, when readable, is reported so a
    full replacement keeps the previous version of that flag). Raises ``TypeError`` when
    ``raw_flags`` is not a list.
    """
    if not isinstance(raw_flags, list):
        raise TypeError(f"'flags' must be a JSON array, got {type(raw_flags).__name__}")
    good: list[FlagState] = []
    bad: set[str] = set()
    # Equal strings repeated across flags (string values such as "control", timestamps of a
    # bulk change) are held once: the decoder makes a new object for every occurrence.
    strings: dict[str, str] = {}
    intern = strings.setdefault
    for index, item in enumerate(raw_flags):
        try:
            # The decoded payload is ours alone: the flag keeps its wire object as ``raw``
            # rather than a copy (one dict per flag, not two, for a large flag set).
            state = FlagState.from_dict(item, stream=stream, copy=False)
        except (KeyError, TypeError, ValueError) as exc:
            key = item.get("key") if isinstance(item, dict) else None
            if isinstance(key, str):
                bad.add(key)
            logger.warning("ignoring malformed flag #%d from the server: %s", index, exc)
            continue
        if not is_valid_flag_key(state.key):
            logger.warning("ignoring flag with an invalid key %r", state.key[:64])
            continue
        if state.last_modified:
            state.last_modified = item["lastModified"] = intern(
                state.last_modified, state.last_modified
            )
        value = state.value
        if value.__class__ is str:
            state.value = item["value"] = intern(value, value)
        good.append(state)
    return good, bad


def parse_segments(raw: object, *, logger: logging.Logger) -> list[dict[str, Any]]:
    """The segment objects of a wire ``segments`` array (entries without a str ``key`` are
    skipped with a warning). Raises ``TypeError`` when ``raw`` is not a list."""
    if not isinstance(raw, list):
        raise TypeError(f"'segments' must be a JSON array, got {type(raw).__name__}")
    out: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        if isinstance(item, dict) and isinstance(item.get("key"), str) and item["key"]:
            out.append(item)
        else:
            logger.warning("ignoring malformed segment #%d from the server", index)
    return out


def parse_deleted(raw: object) -> list[str]:
    """Keys of a deletion list: strings or ``{"key": ...}`` objects (others skipped)."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise TypeError(f"deletion list must be a JSON array, got {type(raw).__name__}")
    keys: list[str] = []
    for item in raw:
        if isinstance(item, str):
            keys.append(item)
        elif isinstance(item, dict) and isinstance(item.get("key"), str):
            keys.append(item["key"])
    return keys


def _optional_segments(raw: object, logger: logging.Logger) -> list[dict[str, Any]]:
    return parse_segments(raw, logger=logger) if raw is not None else []


def parse_init(data: Mapping[str, Any], logger: logging.Logger) -> InitPayload:
    """Parse an ``/sdk/init`` answer. Raises ``NetworkError`` for a wrong shape."""
    if "flags" not in data:
        raise NetworkError("NETWORK_INVALID_RESPONSE", "/sdk/init response has no 'flags'")
    try:
        states, bad = parse_flags(data["flags"], stream=False, logger=logger)
        segments = _optional_segments(data.get("segments"), logger)
    except TypeError as exc:
        raise NetworkError("NETWORK_INVALID_RESPONSE", f"/sdk/init: {exc}") from exc
    environment_id = data.get("environmentId")
    environment = data.get("environment")
    server_time = data.get("serverTime")
    interval = data.get("pollingIntervalSeconds")
    metadata = data.get("metadata")
    return InitPayload(
        change=StoreChange(full=states, keep=bad, segments_full=segments),
        environment_id=environment_id if isinstance(environment_id, str) else None,
        environment=environment if isinstance(environment, str) else None,
        cursor=server_time if isinstance(server_time, str) and server_time else None,
        polling_interval=(
            float(interval)
            if isinstance(interval, (int, float))
            and not isinstance(interval, bool)
            and interval > 0
            else None
        ),
        metadata=metadata if isinstance(metadata, dict) else None,
    )


def parse_updates(
    data: Mapping[str, Any], logger: logging.Logger
) -> tuple[StoreChange, str | None]:
    """Parse an ``/sdk/updates`` answer: the change and the next cursor (``checkedAt``).

    Raises ``NetworkError`` for a wrong shape.
    """
    try:
        states, _bad = parse_flags(data.get("flags", []), stream=False, logger=logger)
        deleted = parse_deleted(data.get("deleted", data.get("deletedFlags")))
        segments = _optional_segments(data.get("segments"), logger)
        deleted_segments = parse_deleted(data.get("deletedSegments"))
    except TypeError as exc:
        raise NetworkError("NETWORK_INVALID_RESPONSE", f"/sdk/updates: {exc}") from exc
    checked_at = data.get("checkedAt")
    change = StoreChange(
        upserts=states,
        deletions=deleted,
        segment_upserts=segments,
        segment_deletions=deleted_segments,
    )
    return change, checked_at if isinstance(checked_at, str) and checked_at else None


def _event_key(name: str, data: object) -> str:
    key = data.get("key") if isinstance(data, dict) else None
    if not isinstance(key, str):
        raise TypeError(f"{name} needs a string 'key'")
    return key


def parse_stream_event(name: str, data: object, logger: logging.Logger) -> StoreChange | None:
    """The store change a named stream event carries (docs/protocol.md §4.5); ``None`` for
    an event this SDK does not know (ignored). Raises ``KeyError``/``TypeError``/
    ``ValueError`` for a malformed event."""
    if name == "flag_updated":
        if not isinstance(data, dict):
            raise TypeError(f"flag_updated needs a flag object, got {type(data).__name__}")
        return StoreChange(upserts=[FlagState.from_dict(data, stream=True)])
    if name == "flag_deleted":
        return StoreChange(deletions=[_event_key(name, data)])
    if name == "flags_reset":
        states, bad = parse_flags(data, stream=True, logger=logger)
        return StoreChange(full=states, keep=bad)
    if name == "segment_updated":
        segments = parse_segments([data], logger=logger)
        if not segments:
            raise ValueError("segment_updated needs a segment object with a 'key'")
        return StoreChange(segment_upserts=segments)
    if name == "segment_deleted":
        return StoreChange(segment_deletions=[_event_key(name, data)])
    if name == "segments_reset":
        return StoreChange(segments_full=parse_segments(data, logger=logger))
    return None


def parse_version(raw: object) -> tuple[int, int, int] | None:
    """``"v1.2.3-beta"`` → ``(1, 2, 3)``; ``None`` when unparsable (docs/protocol.md §4.2)."""
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    parts = text.split(".")
    if len(parts) < 3:
        return None
    parts[2] = parts[2].split("-", 1)[0].split("+", 1)[0]
    try:
        numbers = [int(part) for part in parts[:3]]
    except ValueError:
        return None
    if any(n < 0 or n > 999_999_999 for n in numbers):
        return None
    return numbers[0], numbers[1], numbers[2]


def version_advice(metadata: Mapping[str, Any], logger: logging.Logger) -> None:
    """Log the server's SDK-version advice from ``/sdk/init`` metadata (docs/protocol.md §4.2)."""
    warning = metadata.get("deprecationWarning")
    if isinstance(warning, str) and warning:
        logger.warning("FlagKit deprecation warning: %s", warning)
    current = parse_version(__version__)
    if current is None:
        return
    minimum = parse_version(metadata.get("sdkVersionMin"))
    recommended = parse_version(metadata.get("sdkVersionRecommended"))
    latest = parse_version(metadata.get("sdkVersionLatest"))
    if minimum is not None and current < minimum:
        logger.error(
            "SDK version %s is below the minimum supported version %s",
            __version__,
            metadata.get("sdkVersionMin"),
        )
    elif recommended is not None and current < recommended:
        logger.warning(
            "SDK version %s is below the recommended version %s",
            __version__,
            metadata.get("sdkVersionRecommended"),
        )
    elif latest is not None and current < latest:
        logger.info("a newer SDK version is available: %s", metadata.get("sdkVersionLatest"))
