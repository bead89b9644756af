"""Version history of flags, for the dashboard's flag page (diff and revert).

Fed by the broadcaster's tap (:meth:`flagkit.server.streaming.Broadcaster.add_tap`), so it
sees every change whatever made it: the admin API, the flags file, the Python API or the
dashboard. In memory, at most 50 versions per flag; a restart starts a new history.
"""

from __future__ import annotations

import copy
import difflib
import json
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["FlagHistory", "Version", "flag_text"]

_MAX_VERSIONS: Final = 50
_SERVER_MANAGED: Final = frozenset({"version", "lastModified"})


def flag_text(flag: Mapping[str, Any]) -> str:
    """A flag's editable JSON (without version/lastModified), indented by 2."""
    shown = {k: v for k, v in flag.items() if k not in _SERVER_MANAGED}
    return json.dumps(shown, indent=2, ensure_ascii=False)


@dataclass(frozen=True)
class Version:
    """One stored version of a flag (``flag`` is None for a deletion)."""

    version: int
    time: float
    flag: dict[str, Any] | None


class FlagHistory:
    """Versions of every flag, oldest first. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._versions: dict[str, deque[Version]] = {}

    def seed(self, flags: Iterable[Mapping[str, Any]]) -> None:
        """Record the flags held at start-up."""
        for flag in flags:
            self._add(flag)

    def tap(self, event: str, data: object) -> None:
        """Broadcaster tap: record ``flag_updated``, ``flag_deleted`` and ``flags_reset``."""
        if event == "flag_updated" and isinstance(data, Mapping):
            self._add(data)
        elif event == "flags_reset" and isinstance(data, list):
            for flag in data:
                if isinstance(flag, Mapping):
                    self._add(flag)
        elif event == "flag_deleted" and isinstance(data, Mapping):
            key = data.get("key")
            with self._lock:
                versions = self._versions.get(key) if isinstance(key, str) else None
                if versions and versions[-1].flag is not None:
                    versions.append(Version(versions[-1].version, time.time(), None))

    def _add(self, flag: Mapping[str, Any]) -> None:
        key, version = flag.get("key"), flag.get("version")
        if not isinstance(key, str) or not isinstance(version, int):
            return
        with self._lock:
            versions = self._versions.setdefault(key, deque(maxlen=_MAX_VERSIONS))
            if versions and versions[-1].version == version and versions[-1].flag is not None:
                return  # a reset that left this flag unchanged
            versions.append(Version(version, time.time(), copy.deepcopy(dict(flag))))

    def versions(self, key: str) -> list[Version]:
        """The versions of ``key``, oldest first."""
        with self._lock:
            return list(self._versions.get(key, ()))

    def find(self, key: str, version: int) -> Version | None:
        """The stored ``version`` of ``key`` (not a deletion), or None."""
        return next(
            (v for v in self.versions(key) if v.version == version and v.flag is not None), None
        )

    def described(self, key: str) -> list[dict[str, Any]]:
        """Newest first, each with a unified diff against the version before it."""
        out: list[dict[str, Any]] = []
        previous = ""
        for entry in self.versions(key):
            text = flag_text(entry.flag) if entry.flag is not None else ""
            diff = list(
                difflib.unified_diff(
                    previous.splitlines(), text.splitlines(), "before", "after", lineterm="", n=2
                )
            )[2:]  # drop the ---/+++ header lines
            out.append(
                {
                    "version": entry.version,
                    "time": entry.time,
                    "deleted": entry.flag is None,
                    "flag": entry.flag,
                    "diff": diff,
                }
            )
            previous = text
        out.reverse()
        return out
