"""The persisted flag cache: last-known flags saved through a :class:`Storage`.

A client saves what it fetched so that a restart with the server unreachable still serves
the last-known values. The stored text is JSON::

    {"formatVersion": 1, "storageKey": "flagkit_cache", "owner": "sdk_abcd",
     "savedAt": 1700000000000, "payload": {...}}

``storageKey`` (and ``owner``, when given) are checked on load, so a file copied or
swapped from another key — which AES-GCM without associated data cannot notice — is
rejected rather than served.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Final

from flagkit.errors import StorageError
from flagkit.storage.encrypted_storage import EncryptedStorage
from flagkit.storage.file_storage import FileStorage
from flagkit.storage.storage import Storage

__all__ = ["CACHE_FORMAT_VERSION", "FlagCacheStore", "create_flag_cache_store"]

CACHE_FORMAT_VERSION: Final = 1


def _corrupt(key: str, reason: str) -> StorageError:
    return StorageError("CACHE_CORRUPT", f"persisted flag cache {key!r} rejected: {reason}")


class FlagCacheStore:
    """Save and load one JSON payload (the client's flag snapshot) under ``key``.

    >>> from flagkit.storage import MemoryStorage
    >>> store = FlagCacheStore(MemoryStorage(), "flagkit_cache")
    >>> store.save({"flags": [{"key": "a", "value": True}]})
    >>> store.load()
    {'flags': [{'key': 'a', 'value': True}]}

    ``owner`` (optional, e.g. the API key id) is written with the payload and must match on
    load, so one environment never serves another's cache from a shared directory.

    ``load`` returns ``None`` when nothing is stored and raises
    :class:`~flagkit.errors.StorageError` when something is stored but unusable:
    ``CACHE_CORRUPT`` (bad JSON, wrong shape, unknown format version, another key or owner),
    ``SECURITY_DECRYPTION_FAILED`` (from :class:`EncryptedStorage`: tampered or foreign),
    ``CACHE_READ_ERROR``. The caller reports it, ignores the file and overwrites it with
    its next :meth:`save`. ``save`` raises ``CACHE_WRITE_ERROR`` for a payload JSON cannot
    hold (NaN included) plus the storage's errors. Thread-safe if the storage is.
    """

    def __init__(self, storage: Storage, key: str, *, owner: str | None = None) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError(f"cache storage key must be a non-empty string, got {key!r}")
        self._storage = storage
        self._key = key
        self._owner = owner

    @property
    def key(self) -> str:
        """The storage key the payload lives under."""
        return self._key

    @property
    def storage(self) -> Storage:
        """The underlying storage."""
        return self._storage

    def save(self, payload: dict[str, Any]) -> None:
        """Replace the stored payload."""
        if not isinstance(payload, dict):
            raise TypeError(f"payload must be a dict, got {type(payload).__name__}")
        envelope: dict[str, Any] = {
            "formatVersion": CACHE_FORMAT_VERSION,
            "storageKey": self._key,
            "savedAt": time.time_ns() // 1_000_000,
            "payload": payload,
        }
        if self._owner is not None:
            envelope["owner"] = self._owner
        try:
            text = json.dumps(envelope, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            raise StorageError(
                "CACHE_WRITE_ERROR", f"flag cache payload is not JSON-serialisable: {exc}"
            ) from exc
        self._storage.set(self._key, text)

    def load(self) -> dict[str, Any] | None:
        """The stored payload, or ``None`` if there is none."""
        text = self._storage.get(self._key)
        if text is None:
            return None
        try:
            envelope = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise _corrupt(self._key, "not valid JSON") from exc
        if not isinstance(envelope, dict):
            raise _corrupt(self._key, "not a JSON object")
        version = envelope.get("formatVersion")
        if isinstance(version, bool) or not isinstance(version, int):
            raise _corrupt(self._key, "no format version")
        if version != CACHE_FORMAT_VERSION:
            raise _corrupt(self._key, f"unsupported format version {version}")
        if envelope.get("storageKey") != self._key:
            raise _corrupt(self._key, "it was saved under another key")
        if self._owner is not None and envelope.get("owner") != self._owner:
            raise _corrupt(self._key, "it belongs to another API key")
        payload = envelope.get("payload")
        if not isinstance(payload, dict):
            raise _corrupt(self._key, "payload is not a JSON object")
        return payload

    def saved_at(self) -> int | None:
        """When the stored payload was saved (epoch ms), or ``None``; never raises."""
        try:
            text = self._storage.get(self._key)
            envelope = json.loads(text) if text is not None else None
        except (StorageError, ValueError, RecursionError):
            return None
        value = envelope.get("savedAt") if isinstance(envelope, dict) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def delete(self) -> None:
        """Remove the stored payload."""
        self._storage.delete(self._key)

    def __repr__(self) -> str:
        return f"FlagCacheStore({self._storage!r}, key={self._key!r})"


def create_flag_cache_store(
    directory: str | os.PathLike[str],
    *,
    api_key: str,
    storage_key: str = "flagkit_cache",
    encrypt: bool = False,
    owner: str | None = None,
) -> FlagCacheStore:
    """A :class:`FlagCacheStore` on disk, AES-256-GCM encrypted when ``encrypt``.

    >>> import tempfile
    >>> store = create_flag_cache_store(tempfile.mkdtemp(), api_key="sdk_test_key_123456",
    ...                                 encrypt=True)

    This is what a client builds from ``cache_storage_path``, ``cache_storage_key`` and
    ``encrypt_cache``. Touches no file until the first save/load. The key derivation for
    ``encrypt`` also happens then.
    """
    storage: Storage = FileStorage(directory)
    if encrypt:
        storage = EncryptedStorage(storage, api_key)
    return FlagCacheStore(storage, storage_key, owner=owner)
