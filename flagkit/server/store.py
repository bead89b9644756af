"""The versioned flag and segment store of the local server.

Every stored flag is a complete FlagState wire object (docs/protocol.md §4.1, §17.3) that
is never mutated after it is stored (a change stores a new dict), so readers may hold references
without a lock. Versions are monotonic per key for the life of the store, across deletes
and resets, so clients that ignore non-newer versions (§20.2) always accept a change.
Times come from one strictly increasing clock, so a cursor taken from a snapshot never
equals the time of a later change.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flagkit.server._time import format_micros, now_micros

__all__ = ["Changes", "FlagStore", "Snapshot", "same_flag_content"]

_MANAGED = ("version", "lastModified")


def _canonical(obj: object) -> str:
    # Compare via JSON text: in Python True == 1 == 1.0, which must count as a change.
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def same_flag_content(normalized: Mapping[str, Any], stored: Mapping[str, Any] | None) -> bool:
    """True if a normalized flag equals a stored one, ignoring version and lastModified."""
    if stored is None:
        return False
    content = {k: v for k, v in stored.items() if k not in _MANAGED}
    return _canonical(content) == _canonical(dict(normalized))


@dataclass(frozen=True)
class Snapshot:
    """Everything, at one instant: all flags, all segments and that instant (µs)."""

    flags: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    time_us: int

    @property
    def server_time(self) -> str:
        """The snapshot instant as ISO-8601 UTC with ``Z``."""
        return format_micros(self.time_us)


@dataclass(frozen=True)
class Changes:
    """What changed at or after a cursor, and the instant of the answer (µs)."""

    flags: list[dict[str, Any]]
    segments: list[dict[str, Any]]
    deleted_flags: list[str]
    deleted_segments: list[str]
    time_us: int


class FlagStore:
    """Flags and segments with versions, modification times and tombstones.

    Thread-safe: every method takes the internal lock briefly; no method calls out.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flags: dict[str, dict[str, Any]] = {}
        self._flag_times: dict[str, int] = {}
        self._versions: dict[str, int] = {}
        self._flag_tombstones: dict[str, int] = {}
        self._segments: dict[str, dict[str, Any]] = {}
        self._segment_times: dict[str, int] = {}
        self._segment_tombstones: dict[str, int] = {}
        self._last_tick = 0

    def _tick(self) -> int:
        now = now_micros()
        if now <= self._last_tick:
            now = self._last_tick + 1
        self._last_tick = now
        return now

    # flags -----------------------------------------------------------------------------

    def put_flag(self, flag: Mapping[str, Any], *, version: int | None = None) -> dict[str, Any]:
        """Store a normalized flag with the next (or given) version; return its wire object."""
        key = flag["key"]
        with self._lock:
            moment = self._tick()
            new_version = self._versions.get(key, 0) + 1 if version is None else version
            wire: dict[str, Any] = {
                "key": key,
                "value": flag["value"],
                "enabled": flag["enabled"],
                "version": new_version,
                "flagType": flag["flagType"],
                "lastModified": format_micros(moment),
            }
            for name, extra in flag.items():
                if name not in wire:
                    wire[name] = extra
            self._flags[key] = wire
            self._flag_times[key] = moment
            self._versions[key] = new_version
            self._flag_tombstones.pop(key, None)
        return wire

    def delete_flag(self, key: str) -> bool:
        """Remove a flag (remembering when, for ``/sdk/updates``); False if it was absent."""
        with self._lock:
            if self._flags.pop(key, None) is None:
                return False
            self._flag_times.pop(key, None)
            self._flag_tombstones[key] = self._tick()
        return True

    def get_flag(self, key: str) -> dict[str, Any] | None:
        """The stored wire object of a flag, or None. Do not mutate it."""
        with self._lock:
            return self._flags.get(key)

    def flags(self) -> list[dict[str, Any]]:
        """All flags (wire objects, in insertion order). Do not mutate them."""
        with self._lock:
            return list(self._flags.values())

    # segments ----------------------------------------------------------------------------

    def put_segment(self, segment: Mapping[str, Any]) -> dict[str, Any]:
        """Store a segment object untouched (a copy); return it."""
        stored = dict(segment)
        with self._lock:
            self._segments[stored["key"]] = stored
            self._segment_times[stored["key"]] = self._tick()
            self._segment_tombstones.pop(stored["key"], None)
        return stored

    def delete_segment(self, key: str) -> bool:
        """Remove a segment; False if it was absent."""
        with self._lock:
            if self._segments.pop(key, None) is None:
                return False
            self._segment_times.pop(key, None)
            self._segment_tombstones[key] = self._tick()
        return True

    def get_segment(self, key: str) -> dict[str, Any] | None:
        """The stored segment object, or None. Do not mutate it."""
        with self._lock:
            return self._segments.get(key)

    def segments(self) -> list[dict[str, Any]]:
        """All segments in insertion order. Do not mutate them."""
        with self._lock:
            return list(self._segments.values())

    # reads for the SDK endpoints ---------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """All flags and segments plus the instant they were read (for ``serverTime``)."""
        with self._lock:
            return Snapshot(list(self._flags.values()), list(self._segments.values()), self._tick())

    def changes_since(self, since_us: int | None) -> Changes:
        """Flags/segments with modification time >= ``since_us`` (None: all), and deletions."""
        with self._lock:
            moment = self._tick()
            if since_us is None:
                return Changes(
                    list(self._flags.values()), list(self._segments.values()), [], [], moment
                )
            times = self._flag_times
            seg_times = self._segment_times
            return Changes(
                [f for k, f in self._flags.items() if times[k] >= since_us],
                [s for k, s in self._segments.items() if seg_times[k] >= since_us],
                [k for k, t in self._flag_tombstones.items() if t >= since_us],
                [k for k, t in self._segment_tombstones.items() if t >= since_us],
                moment,
            )
