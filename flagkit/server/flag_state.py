"""Changing the served flags and segments: validate, store, push to open streams.

Every change takes one lock, is validated (targeting references such as rules naming
segments or prerequisites naming flags must still resolve) and is then stored and
published as stream events
(docs/protocol.md §4.5): ``flag_updated``/``flag_deleted``, ``segment_updated``/
``segment_deleted``, and ``flags_reset``/``segments_reset`` for a reset.

Changing one flag costs in proportion to the flags it touches, not to all flags: it is
validated together with the flags and segments it references (its prerequisites,
transitively, for cycles) and the flags that name it as a prerequisite, found through an
index kept with the store. Only when that check fails is everything validated again, so
the error reported is always the one a full check gives.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from flagkit.server.flags_file import (
    FlagsDocument,
    InvalidFieldError,
    check_targeting,
    normalize_flag,
    normalize_segment,
)
from flagkit.server.store import FlagStore, same_flag_content
from flagkit.server.streaming import Broadcaster

__all__ = ["FlagState"]


class FlagState:
    """The store plus the rules for changing it. Thread-safe."""

    def __init__(self, store: FlagStore, broadcaster: Broadcaster) -> None:
        self.store = store
        self.broadcaster = broadcaster
        self._lock = threading.RLock()
        self._dependents: dict[str, set[str]] = {}  # flag key -> keys naming it a prerequisite

    # single changes ----------------------------------------------------------------------

    def set_flag(
        self, raw: Mapping[str, Any], *, replace: bool, version: int | None
    ) -> dict[str, Any]:
        """Validate ``raw`` (merged over the stored flag unless ``replace``), store, push."""
        key = raw["key"]
        with self._lock:
            previous = None if replace else self.store.get_flag(key)
            flag = normalize_flag(raw, f"flags[{key!r}]", previous=previous)
            self._check_flag(flag)
            wire = self._put(flag, version=version)
            self.broadcaster.publish("flag_updated", wire)
        return wire

    def delete_flag(self, key: str) -> bool:
        """Delete and push ``flag_deleted``; False if absent."""
        with self._lock:
            deleted = self._delete(key)
            if deleted:
                self.broadcaster.publish("flag_deleted", {"key": key})
        return deleted

    def set_segment(self, key: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Validate, store and push ``segment_updated``."""
        with self._lock:
            segment = normalize_segment({**fields, "key": key}, f"segments[{key!r}]")
            self._check_candidate(segment=segment)
            stored = self.store.put_segment(segment)
            self.broadcaster.publish("segment_updated", stored)
        return stored

    def delete_segment(self, key: str) -> bool:
        """Delete and push ``segment_deleted``; False if absent."""
        with self._lock:
            deleted = self.store.delete_segment(key)
            if deleted:
                self.broadcaster.publish("segment_deleted", {"key": key})
        return deleted

    # the prerequisite index and the check of one flag ------------------------------------

    def _put(self, flag: Mapping[str, Any], *, version: int | None = None) -> dict[str, Any]:
        previous = self.store.get_flag(flag["key"])
        wire = self.store.put_flag(flag, version=version)
        self._index(previous, wire)
        return wire

    def _delete(self, key: str) -> bool:
        previous = self.store.get_flag(key)
        deleted = self.store.delete_flag(key)
        if deleted:
            self._index(previous, None)
        return deleted

    def _index(self, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> None:
        """Keep :attr:`_dependents` right after ``old`` was replaced by ``new`` (same key)."""
        changed = new if new is not None else old
        if changed is None:
            return
        key: str = changed["key"]
        for prerequisite in _prerequisite_keys(old) - _prerequisite_keys(new):
            dependents = self._dependents.get(prerequisite)
            if dependents is not None:
                dependents.discard(key)
                if not dependents:
                    del self._dependents[prerequisite]
        for prerequisite in _prerequisite_keys(new) - _prerequisite_keys(old):
            self._dependents.setdefault(prerequisite, set()).add(key)

    def _check_flag(self, flag: dict[str, Any]) -> None:
        """Validate storing ``flag``: first with what it touches, else everything."""
        flags: dict[str, Mapping[str, Any]] = {flag["key"]: flag}
        todo: list[Mapping[str, Any]] = [flag]
        for dependent in self._dependents.get(flag["key"], ()):
            stored = self.store.get_flag(dependent)
            if stored is not None and dependent not in flags:
                flags[dependent] = stored
                todo.append(stored)
        while todo:
            for prerequisite in _prerequisite_keys(todo.pop()):
                stored = self.store.get_flag(prerequisite)
                if stored is not None and prerequisite not in flags:
                    flags[prerequisite] = stored
                    todo.append(stored)
        segment_keys = set().union(*(_segment_keys(f) for f in flags.values()))
        segments = [s for s in map(self.store.get_segment, segment_keys) if s is not None]
        try:
            check_targeting({"flags": list(flags.values()), "segments": segments})
        except InvalidFieldError:
            self._check_candidate(flag=flag)  # the full check names the problem
            raise

    def _check_candidate(
        self, *, flag: dict[str, Any] | None = None, segment: dict[str, Any] | None = None
    ) -> None:
        """Validate the whole state as it would be with ``flag``/``segment`` stored."""
        flags = list(self.store.flags())
        segments = list(self.store.segments())
        for items, new in ((flags, flag), (segments, segment)):
            if new is not None:
                index = next((i for i, f in enumerate(items) if f["key"] == new["key"]), None)
                if index is None:
                    items.append(new)
                else:
                    items[index] = new
        try:
            check_targeting({"flags": flags, "segments": segments})
        except InvalidFieldError as exc:
            # Name the object by key: its index in this candidate list means nothing to callers.
            match = re.match(r"(flags|segments)\[(\d+)\]", exc.field)
            if match is None:
                raise
            items = flags if match.group(1) == "flags" else segments
            key = items[int(match.group(2))]["key"]
            field = f"{match.group(1)}[{key!r}]{exc.field[match.end() :]}"
            raise InvalidFieldError(field, exc.reason) from exc

    # whole states ------------------------------------------------------------------------

    def load(self, flags: Iterable[dict[str, Any]], segments: Iterable[dict[str, Any]]) -> None:
        """Store the initial flags and segments (nothing is published)."""
        with self._lock:
            for segment in segments:
                self.store.put_segment(segment)
            for flag in flags:
                self._put(flag)

    def reset(self, flags: list[dict[str, Any]], segments: list[dict[str, Any]]) -> None:
        """Hold exactly ``flags`` and ``segments``; push ``flags_reset`` (``segments_reset``).

        Unchanged flags keep their version; changed ones get a new one.
        """
        check_targeting({"flags": flags, "segments": segments})
        with self._lock:
            segments_changed = self._apply_segments(segments, self.store.segments())
            self._apply_flags(flags, self.store.flags(), publish=False)
            self.broadcaster.publish("flags_reset", self.store.flags())
            if segments_changed:
                self.broadcaster.publish("segments_reset", self.store.segments())

    def apply_file(self, new: FlagsDocument, old: FlagsDocument) -> list[str]:
        """Apply what changed between two versions of the flags file; returns changed keys.

        Flags the file did not change keep any value set through the admin API; flags
        removed from the file are deleted. Raises :class:`InvalidFieldError` (nothing
        changed) when the result would not be valid.
        """
        with self._lock:
            check_targeting(
                {
                    "flags": _merged(self.store.flags(), new.flags, old.flags),
                    "segments": _merged(self.store.segments(), new.segments, old.segments),
                }
            )
            old_segments = {s["key"]: s for s in old.segments}
            for segment in new.segments:
                if old_segments.get(segment["key"]) != segment:
                    stored = self.store.put_segment(segment)
                    self.broadcaster.publish("segment_updated", stored)
            new_segment_keys = {s["key"] for s in new.segments}
            for key in old_segments:
                if key not in new_segment_keys and self.store.delete_segment(key):
                    self.broadcaster.publish("segment_deleted", {"key": key})
            return self._apply_flags(new.flags, old.flags, publish=True)

    def _apply_flags(
        self,
        new: Iterable[dict[str, Any]],
        old: Iterable[Mapping[str, Any]],
        *,
        publish: bool,
    ) -> list[str]:
        """Make the store hold ``new`` instead of ``old``; returns the changed keys."""
        old_by_key = {f["key"]: f for f in old}
        changed: list[str] = []
        new_keys = set()
        for flag in new:
            new_keys.add(flag["key"])
            if flag["key"] in old_by_key and same_flag_content(flag, old_by_key[flag["key"]]):
                continue
            if same_flag_content(flag, self.store.get_flag(flag["key"])):
                continue
            wire = self._put(flag)
            changed.append(flag["key"])
            if publish:
                self.broadcaster.publish("flag_updated", wire)
        for key in old_by_key:
            if key not in new_keys and self._delete(key):
                changed.append(key)
                if publish:
                    self.broadcaster.publish("flag_deleted", {"key": key})
        return changed

    def _apply_segments(
        self, new: Iterable[dict[str, Any]], old: Iterable[Mapping[str, Any]]
    ) -> bool:
        old_by_key = {s["key"]: s for s in old}
        changed = False
        new_keys = set()
        for segment in new:
            new_keys.add(segment["key"])
            if segment == old_by_key.get(segment["key"]) and segment == self.store.get_segment(
                segment["key"]
            ):
                continue
            self.store.put_segment(segment)
            changed = True
        for key in old_by_key:
            if key not in new_keys and self.store.delete_segment(key):
                changed = True
        return changed


def _merged(
    current: list[dict[str, Any]],
    new_file: Sequence[dict[str, Any]],
    old_file: Sequence[dict[str, Any]],
) -> list[dict[str, Any]]:
    """What the store will hold after applying a new file (for validation)."""
    removed = {f["key"] for f in old_file} - {f["key"] for f in new_file}
    by_key = {f["key"]: f for f in current if f["key"] not in removed}
    by_key.update((f["key"], f) for f in new_file)
    return list(by_key.values())


def _prerequisite_keys(flag: Mapping[str, Any] | None) -> set[str]:
    """The flag keys ``flag`` names as prerequisites (anything malformed is skipped)."""
    entries = flag.get("prerequisites") if flag is not None else None
    if not isinstance(entries, list):
        return set()
    return {e["key"] for e in entries if isinstance(e, dict) and isinstance(e.get("key"), str)}


def _segment_keys(flag: Mapping[str, Any]) -> set[str]:
    """The segment keys the rules of ``flag`` name (``segments`` and ``segmentMatch``)."""
    keys: set[str] = set()
    rules = flag.get("rules")
    for rule in rules if isinstance(rules, list) else ():
        if not isinstance(rule, dict):
            continue
        names = rule.get("segments")
        if isinstance(names, list):
            keys.update(k for k in names if isinstance(k, str))
        clauses = rule.get("clauses")
        for clause in clauses if isinstance(clauses, list) else ():
            if isinstance(clause, dict) and clause.get("op") == "segmentMatch":
                values = clause.get("values")
                if isinstance(values, list):
                    keys.update(k for k in values if isinstance(k, str))
    return keys
