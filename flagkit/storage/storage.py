"""The ``Storage`` protocol: a small string key-value store the SDK persists data in."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Storage"]


@runtime_checkable
class Storage(Protocol):
    """A key-value store of strings (the seam for persisted cache data).

    >>> from flagkit.storage import MemoryStorage
    >>> store: Storage = MemoryStorage()
    >>> store.set("k", "v"); store.get("k")
    'v'

    Implementations: :class:`~flagkit.storage.MemoryStorage`,
    :class:`~flagkit.storage.FileStorage` and :class:`~flagkit.storage.EncryptedStorage`
    (which wraps another one). ``get`` returns ``None`` for a missing key; failures raise
    :class:`~flagkit.errors.StorageError` with a ``CACHE_*`` or ``SECURITY_*`` code.
    Implementations must be thread-safe.
    """

    def get(self, key: str) -> str | None:
        """The value stored under ``key``, or ``None``."""
        ...

    def set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``, replacing any previous value."""
        ...

    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""
        ...

    def keys(self) -> list[str]:
        """Every stored key, in no particular order."""
        ...

    def clear(self) -> None:
        """Remove every key."""
        ...
