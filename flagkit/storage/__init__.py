"""Pluggable storage for the persisted flag cache.

``Storage`` is the protocol; ``MemoryStorage`` and ``FileStorage`` store strings,
``EncryptedStorage`` wraps either with AES-256-GCM (docs/protocol.md §12.2), and
``FlagCacheStore`` keeps one JSON payload (the last-known flags) in any of them.
"""

from flagkit.storage.encrypted_storage import EncryptedStorage, derive_cache_key
from flagkit.storage.file_storage import FileStorage
from flagkit.storage.flag_cache_store import (
    CACHE_FORMAT_VERSION,
    FlagCacheStore,
    create_flag_cache_store,
)
from flagkit.storage.memory_storage import MemoryStorage
from flagkit.storage.storage import Storage

__all__ = [
    "CACHE_FORMAT_VERSION",
    "EncryptedStorage",
    "FileStorage",
    "FlagCacheStore",
    "MemoryStorage",
    "Storage",
    "create_flag_cache_store",
    "derive_cache_key",
]
