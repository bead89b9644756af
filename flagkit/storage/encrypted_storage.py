"""AES-256-GCM encryption around another storage (docs/protocol.md §12.2).

Key: PBKDF2-HMAC-SHA256 of the API key (salt ``FlagKit-v1-cache``, 100 000 iterations, 32
bytes). Value: the JSON text ``{"iv": b64, "data": b64(ciphertext), "tag": b64(tag),
"version": 1}`` with a fresh random 12-byte IV per write. The Go SDK's form (no ``tag``;
the tag is the last 16 bytes of ``data``) is read too.

This never degrades silently: a value that is not an
encrypted blob, has an unknown version, or fails authentication (tampered bytes, another
API key) raises :class:`~flagkit.errors.StorageError` instead of being returned as
plaintext or treated as missing, and an encryption failure raises instead of writing
plaintext. Legacy *plaintext* values are therefore rejected (``CACHE_CORRUPT``): for a cache
the safe reaction to "this is not what we wrote" is to refetch and overwrite it, and
accepting plaintext would let anyone who can write the file inject flag values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from flagkit.errors import StorageError
from flagkit.storage.storage import Storage

__all__ = ["EncryptedStorage", "derive_cache_key"]

KDF_SALT: Final = b"FlagKit-v1-cache"
KDF_ITERATIONS: Final = 100_000
KEY_BYTES: Final = 32
IV_BYTES: Final = 12
TAG_BYTES: Final = 16
FORMAT_VERSION: Final = 1


def derive_cache_key(api_key: str) -> bytes:
    """The AES-256 key for ``api_key`` (docs/protocol.md §12.2). Slow on purpose (~100 000 rounds).

    >>> derive_cache_key("sdk_test_key_123456").hex()[:16]
    'f1f8e20a58139a49'
    """
    if not isinstance(api_key, str) or not api_key:
        raise TypeError("api_key must be a non-empty string")
    return hashlib.pbkdf2_hmac(
        "sha256", api_key.encode("utf-8"), KDF_SALT, KDF_ITERATIONS, KEY_BYTES
    )


def _b64decode(value: object, field: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"field {field!r} is not a string")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"field {field!r} is not base64") from exc


def _corrupt(reason: str) -> StorageError:
    return StorageError("CACHE_CORRUPT", f"encrypted storage value rejected: {reason}")


class EncryptedStorage:
    """A :class:`~flagkit.storage.Storage` that encrypts every value before ``inner`` sees it.

    >>> from flagkit.storage import MemoryStorage
    >>> inner = MemoryStorage()
    >>> store = EncryptedStorage(inner, "sdk_test_key_123456")
    >>> store.set("k", "secret"); store.get("k"), "secret" in inner.get("k")
    ('secret', False)

    The key is derived from ``api_key`` on first use (PBKDF2 is slow) and kept for the life
    of the instance; the API key itself is not kept after that and never shown in reprs.
    Keys (names) are not encrypted. Associated data is not used (the §12.2 format has none),
    so a blob moved to another key name still decrypts; :class:`FlagCacheStore` records
    its key inside the encrypted payload to catch that.

    ``get`` raises :class:`~flagkit.errors.StorageError` with ``CACHE_CORRUPT`` (not an
    encrypted blob — including legacy plaintext —, bad base64, wrong IV/tag size, unsupported
    version, not UTF-8 after decryption) or ``SECURITY_DECRYPTION_FAILED`` (authentication
    failed: the blob was altered or written with another API key); ``set`` raises
    ``SECURITY_ENCRYPTION_FAILED`` if encryption fails, plus whatever ``inner`` raises.
    Thread-safe.
    """

    def __init__(self, inner: Storage, api_key: str) -> None:
        if not isinstance(api_key, str) or not api_key:
            raise TypeError("api_key must be a non-empty string")
        self._inner = inner
        self._api_key: str | None = api_key
        self._aead: AESGCM | None = None
        self._lock = threading.Lock()

    @property
    def inner(self) -> Storage:
        """The wrapped storage (holding ciphertext)."""
        return self._inner

    def _cipher(self) -> AESGCM:
        aead = self._aead
        if aead is not None:
            return aead
        with self._lock:  # derive once even if several threads arrive together
            if self._aead is None:
                assert self._api_key is not None
                self._aead = AESGCM(derive_cache_key(self._api_key))
                self._api_key = None
            return self._aead

    def encrypt(self, plaintext: str, *, _iv: bytes | None = None) -> str:
        """The §12.2 blob (JSON text) for ``plaintext``.

        ``_iv`` exists for the docs/protocol.md §18 test vector only; a reused IV under GCM breaks
        confidentiality and integrity, so never pass it elsewhere.
        """
        iv = os.urandom(IV_BYTES) if _iv is None else _iv
        try:
            sealed = self._cipher().encrypt(iv, plaintext.encode("utf-8"), None)
        except (ValueError, OverflowError, UnicodeEncodeError) as exc:
            raise StorageError("SECURITY_ENCRYPTION_FAILED", "could not encrypt value") from exc
        blob: dict[str, Any] = {
            "iv": base64.b64encode(iv).decode("ascii"),
            "data": base64.b64encode(sealed[:-TAG_BYTES]).decode("ascii"),
            "tag": base64.b64encode(sealed[-TAG_BYTES:]).decode("ascii"),
            "version": FORMAT_VERSION,
        }
        return json.dumps(blob)

    def decrypt(self, blob: str) -> str:
        """The plaintext of a §12.2 blob (Python or Go form). Raises ``StorageError``."""
        try:
            parsed = json.loads(blob)
        except (ValueError, TypeError, RecursionError) as exc:
            raise _corrupt("not an encrypted blob (plaintext or damaged JSON)") from exc
        if not isinstance(parsed, dict) or not {"iv", "data", "version"} <= parsed.keys():
            raise _corrupt("not an encrypted blob (plaintext or another format)")
        version = parsed["version"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise _corrupt("version is not an integer")
        if version != FORMAT_VERSION:
            raise _corrupt(f"unsupported version {version}")
        try:
            iv = _b64decode(parsed["iv"], "iv")
            data = _b64decode(parsed["data"], "data")
            if "tag" in parsed:
                tag = _b64decode(parsed["tag"], "tag")
            else:  # the Go SDK appends the tag to the ciphertext
                data, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
        except ValueError as exc:
            raise _corrupt(str(exc)) from exc
        if len(iv) != IV_BYTES:
            raise _corrupt(f"IV is {len(iv)} bytes, expected {IV_BYTES}")
        if len(tag) != TAG_BYTES:
            raise _corrupt(f"tag is {len(tag)} bytes, expected {TAG_BYTES}")
        try:
            plaintext = self._cipher().decrypt(iv, data + tag, None)
        except InvalidTag as exc:
            raise StorageError(
                "SECURITY_DECRYPTION_FAILED",
                "encrypted value failed authentication (altered, or written with another key)",
            ) from exc
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _corrupt("decrypted value is not UTF-8") from exc

    def get(self, key: str) -> str | None:
        """The decrypted value of ``key``, or ``None`` if ``inner`` has none."""
        blob = self._inner.get(key)
        return None if blob is None else self.decrypt(blob)

    def set(self, key: str, value: str) -> None:
        """Encrypt ``value`` with a fresh IV and store the blob under ``key``."""
        if not isinstance(value, str):
            raise TypeError(f"storage values must be strings, got {type(value).__name__}")
        self._inner.set(key, self.encrypt(value))

    def delete(self, key: str) -> None:
        """Remove ``key`` from ``inner``."""
        self._inner.delete(key)

    def keys(self) -> list[str]:
        """The keys of ``inner``."""
        return self._inner.keys()

    def clear(self) -> None:
        """Clear ``inner``."""
        self._inner.clear()

    def __repr__(self) -> str:
        return f"EncryptedStorage({self._inner!r})"
