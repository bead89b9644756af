"""In-process storage: a dict behind a lock (nothing survives the process)."""

from __future__ import annotations

import threading

__all__ = ["MemoryStorage"]


class MemoryStorage:
    """A :class:`~flagkit.storage.Storage` kept in memory.

    >>> store = MemoryStorage()
    >>> store.set("flagkit_cache", "{}"); store.keys()
    ['flagkit_cache']

    Thread-safe.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data: dict[str, str] = {}

    def get(self, key: str) -> str | None:
        """The value stored under ``key``, or ``None``."""
        with self._lock:
            return self._data.get(key)

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``. Raises ``TypeError`` if either is not a string."""
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError("MemoryStorage keys and values must be strings")
        with self._lock:
            self._data[key] = value

    def delete(self, key: str) -> None:
        """Remove ``key`` if present."""
        with self._lock:
            self._data.pop(key, None)

    def keys(self) -> list[str]:
        """Every stored key."""
        with self._lock:
            return list(self._data)

    def clear(self) -> None:
        """Remove every key."""
        with self._lock:
            self._data.clear()

    def __repr__(self) -> str:
        return f"MemoryStorage(<{len(self._data)} keys>)"
