"""Cache encryption (docs/protocol.md §12.2, §18 vectors) and the persisted flag cache, attacked."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from flagkit.errors import StorageError
from flagkit.storage import (
    EncryptedStorage,
    FileStorage,
    FlagCacheStore,
    MemoryStorage,
    create_flag_cache_store,
    derive_cache_key,
)

API_KEY = "sdk_test_key_123456"
OTHER_KEY = "sdk_other_key_987654"
VECTOR_KEY = "f1f8e20a58139a4927517cee05ac58aa95f8ab42d5b3385cf46dcb1e69d1e4cc"
VECTOR_BLOB = (
    '{"iv": "AAECAwQFBgcICQoL", "data": "RxVMxXEmXg==", "tag": "bJ5gD+0o4eGlEVN2/dObRw==", '
    '"version": 1}'
)
PAYLOAD: dict[str, Any] = {
    "flags": [{"key": "checkout", "value": True, "version": 3}],
    "serverTime": "2026-01-01T00:00:00Z",
}


@pytest.fixture(scope="module")
def cipher() -> EncryptedStorage:
    """One encrypting storage for the module (key derivation is deliberately slow)."""
    return EncryptedStorage(MemoryStorage(), API_KEY)


def _code(exc: pytest.ExceptionInfo[StorageError]) -> str:
    return exc.value.code


def _blob_fields(blob: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(blob)
    return parsed


def test_key_derivation_vector() -> None:
    """PBKDF2-HMAC-SHA256 of the §18 key gives the §18 AES key."""
    assert derive_cache_key(API_KEY).hex() == VECTOR_KEY


def test_encryption_vector(cipher: EncryptedStorage) -> None:
    """Encrypting {"a":1} with IV 00..0b yields exactly the §18 blob."""
    assert cipher.encrypt('{"a":1}', _iv=bytes(range(12))) == VECTOR_BLOB
    assert cipher.decrypt(VECTOR_BLOB) == '{"a":1}'


def test_go_form_is_read(cipher: EncryptedStorage) -> None:
    """The Go SDK's blob (tag appended to data, no tag field) decrypts to the same text."""
    fields = _blob_fields(VECTOR_BLOB)
    joined = base64.b64decode(fields["data"]) + base64.b64decode(fields["tag"])
    go_blob = json.dumps(
        {"iv": fields["iv"], "data": base64.b64encode(joined).decode(), "version": 1}
    )
    assert cipher.decrypt(go_blob) == '{"a":1}'


def test_round_trip_and_fresh_iv_per_write() -> None:
    """Values round-trip; the same value encrypts differently each time; no plaintext leaks."""
    inner = MemoryStorage()
    store = EncryptedStorage(inner, API_KEY)
    store.set("k", "top secret value")
    first = inner.get("k")
    store.set("k", "top secret value")
    second = inner.get("k")
    assert first is not None and second is not None and first != second
    assert _blob_fields(first)["iv"] != _blob_fields(second)["iv"]
    assert "secret" not in first and store.get("k") == "top secret value"
    assert store.get("missing") is None
    assert store.keys() == ["k"]
    store.delete("k")
    assert inner.get("k") is None


def test_key_is_derived_lazily_once_and_the_api_key_is_dropped() -> None:
    """No derivation at construction; one derived key for the instance; key never in repr."""
    store = EncryptedStorage(MemoryStorage(), API_KEY)
    assert store._aead is None
    store.set("a", "1")
    aead = store._aead
    store.set("b", "2")
    assert store.get("a") == "1" and store._aead is aead
    assert store._api_key is None
    assert API_KEY not in repr(store)


def _tamper(blob: str, field: str) -> str:
    fields = _blob_fields(blob)
    raw = bytearray(base64.b64decode(fields[field]))
    raw[0] ^= 0x01
    fields[field] = base64.b64encode(bytes(raw)).decode()
    return json.dumps(fields)


@pytest.mark.parametrize("field", ["iv", "data", "tag"])
def test_tampered_blob_fails_authentication(cipher: EncryptedStorage, field: str) -> None:
    """Flipping one bit of the IV, ciphertext or tag is detected (never garbage returned)."""
    blob = cipher.encrypt('{"flags": []}')
    with pytest.raises(StorageError) as info:
        cipher.decrypt(_tamper(blob, field))
    assert _code(info) == "SECURITY_DECRYPTION_FAILED"


def test_blob_from_another_key_is_rejected(cipher: EncryptedStorage) -> None:
    """A blob written under another API key (a foreign file) fails authentication."""
    foreign = EncryptedStorage(MemoryStorage(), OTHER_KEY).encrypt('{"flags": []}')
    with pytest.raises(StorageError) as info:
        cipher.decrypt(foreign)
    assert _code(info) == "SECURITY_DECRYPTION_FAILED"
    assert API_KEY not in str(info.value) and OTHER_KEY not in str(info.value)


@pytest.mark.parametrize(
    "blob",
    [
        '{"flags": [{"key": "admin", "value": true}]}',  # legacy plaintext / injected
        "not json at all",
        '{"iv": "AAECAwQFBgcICQoL", "data": "RxVMxXEmXg==", "tag": "bJ5gD+0o4eGlE',  # truncated
        '["iv", "data", "tag"]',
        '{"iv": "AAECAwQFBgcICQoL", "data": "RxVMxXEmXg==", "tag": "x", "version": 1}',
        '{"iv": "AAEC", "data": "RxVMxXEmXg==", "tag": "bJ5gD+0o4eGlEVN2/dObRw==", "version": 1}',
        '{"iv": "AAECAwQFBgcICQoL", "data": "RxVMxXEmXg==", "tag": "bJ5gD+0o4eGlEVN2/dObRw==",'
        ' "version": 2}',
        '{"iv": "AAECAwQFBgcICQoL", "data": "RxVMxXEmXg==", "tag": "bJ5gD+0o4eGlEVN2/dObRw==",'
        ' "version": true}',
        '{"iv": "AAECAwQFBgcICQoL", "data": "Rx!!", "tag": "bJ5gD+0o4eGlEVN2/dObRw==",'
        ' "version": 1}',
        '{"iv": 7, "data": "RxVMxXEmXg==", "tag": "bJ5gD+0o4eGlEVN2/dObRw==", "version": 1}',
        '{"iv": "AAECAwQFBgcICQoL", "data": "AAAA", "version": 1}',  # Go form, too short
        "[" * 100_000,
    ],
    ids=[
        "plaintext", "not-json", "truncated", "array", "short-tag", "short-iv", "version-2",
        "version-bool", "bad-base64", "iv-not-string", "go-too-short", "deep-nesting",
    ],
)  # fmt: skip
def test_malformed_blobs_are_corrupt(cipher: EncryptedStorage, blob: str) -> None:
    """Anything that is not a well-formed version-1 blob raises CACHE_CORRUPT."""
    with pytest.raises(StorageError) as info:
        cipher.decrypt(blob)
    assert _code(info) == "CACHE_CORRUPT"


def test_constructor_rejects_empty_key() -> None:
    """An empty API key cannot derive a cache key."""
    with pytest.raises(TypeError):
        EncryptedStorage(MemoryStorage(), "")


# --- FlagCacheStore -------------------------------------------------------------------------


def test_cache_store_round_trip_in_memory() -> None:
    """save() then load() returns the payload; an empty storage loads None."""
    store = FlagCacheStore(MemoryStorage(), "flagkit_cache")
    assert store.load() is None
    store.save(PAYLOAD)
    assert store.load() == PAYLOAD
    assert isinstance(store.saved_at(), int)
    store.delete()
    assert store.load() is None and store.saved_at() is None


def test_cache_store_format(tmp_path: Path) -> None:
    """The stored JSON has a format version, the storage key and the payload."""
    storage = FileStorage(tmp_path)
    FlagCacheStore(storage, "flagkit_cache", owner="sdk_test").save(PAYLOAD)
    text = storage.get("flagkit_cache")
    assert text is not None
    envelope = json.loads(text)
    assert envelope["formatVersion"] == 1 and envelope["storageKey"] == "flagkit_cache"
    assert envelope["owner"] == "sdk_test" and envelope["payload"] == PAYLOAD


def test_encrypted_cache_survives_a_restart(tmp_path: Path) -> None:
    """A new store over the same directory and key reads the last-known flags back."""
    create_flag_cache_store(tmp_path, api_key=API_KEY, encrypt=True).save(PAYLOAD)
    raw = (tmp_path / "flagkit_cache.fkv").read_text()
    assert "checkout" not in raw and '"version": 1' in raw
    again = create_flag_cache_store(tmp_path, api_key=API_KEY, encrypt=True)
    assert again.load() == PAYLOAD


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"formatVersion": 1, "storageKey": "flagkit_cache", "payload": {"fl', "truncated"),
        ("[]", "not an object"),
        ('{"storageKey": "flagkit_cache", "payload": {}}', "no version"),
        ('{"formatVersion": 9, "storageKey": "flagkit_cache", "payload": {}}', "version"),
        ('{"formatVersion": 1, "storageKey": "flagkit_cache", "payload": []}', "payload"),
        ('{"formatVersion": 1, "payload": {}}', "no key"),
        (
            '{"formatVersion": 1, "storageKey": "flagkit_cache", "payload": {}, "owner": "x"}',
            "owner",
        ),
    ],
)
def test_cache_store_rejects_bad_content(text: str, reason: str) -> None:
    """Truncated JSON or a wrong shape/version/key/owner raises CACHE_CORRUPT."""
    storage = MemoryStorage()
    storage.set("flagkit_cache", text)
    with pytest.raises(StorageError) as info:
        FlagCacheStore(storage, "flagkit_cache", owner="sdk_test").load()
    assert _code(info) == "CACHE_CORRUPT", reason


def test_cache_store_rejects_unserialisable_payload() -> None:
    """A payload JSON cannot hold (NaN, objects) raises CACHE_WRITE_ERROR and stores nothing."""
    storage = MemoryStorage()
    store = FlagCacheStore(storage, "flagkit_cache")
    for payload in ({"x": float("nan")}, {"x": object()}):
        with pytest.raises(StorageError) as info:
            store.save(payload)
        assert _code(info) == "CACHE_WRITE_ERROR"
    assert storage.keys() == []


def test_tampered_encrypted_file_is_rejected_then_replaced(tmp_path: Path) -> None:
    """A bit flipped on disk is reported on load; the next save overwrites it cleanly."""
    store = create_flag_cache_store(tmp_path, api_key=API_KEY, encrypt=True)
    store.save(PAYLOAD)
    path = tmp_path / "flagkit_cache.fkv"
    path.write_text(_tamper(path.read_text(), "data"))
    with pytest.raises(StorageError) as info:
        store.load()
    assert _code(info) == "SECURITY_DECRYPTION_FAILED"
    store.save({"flags": []})
    assert store.load() == {"flags": []}


def test_truncated_encrypted_file_is_corrupt(tmp_path: Path) -> None:
    """A half-written (truncated) encrypted file is CACHE_CORRUPT, not a crash."""
    store = create_flag_cache_store(tmp_path, api_key=API_KEY, encrypt=True)
    store.save(PAYLOAD)
    path = tmp_path / "flagkit_cache.fkv"
    path.write_text(path.read_text()[:40])
    with pytest.raises(StorageError) as info:
        store.load()
    assert _code(info) == "CACHE_CORRUPT"


def test_foreign_encrypted_file_is_rejected(tmp_path: Path) -> None:
    """A cache file written with another API key cannot be read with ours."""
    mine, theirs = tmp_path / "mine", tmp_path / "theirs"
    create_flag_cache_store(theirs, api_key=OTHER_KEY, encrypt=True).save({"evil": True})
    mine.mkdir()
    shutil.copy(theirs / "flagkit_cache.fkv", mine / "flagkit_cache.fkv")
    with pytest.raises(StorageError) as info:
        create_flag_cache_store(mine, api_key=API_KEY, encrypt=True).load()
    assert _code(info) == "SECURITY_DECRYPTION_FAILED"


def test_plaintext_file_is_rejected_when_encryption_is_on(tmp_path: Path) -> None:
    """An unencrypted cache (legacy, or written by an attacker) is refused, not served."""
    create_flag_cache_store(tmp_path, api_key=API_KEY, encrypt=False).save({"evil": True})
    with pytest.raises(StorageError) as info:
        create_flag_cache_store(tmp_path, api_key=API_KEY, encrypt=True).load()
    assert _code(info) == "CACHE_CORRUPT"


def test_swapped_encrypted_files_are_rejected(tmp_path: Path) -> None:
    """Two valid encrypted files swapped between keys are caught by the stored key name."""
    staging = create_flag_cache_store(
        tmp_path, api_key=API_KEY, storage_key="staging", encrypt=True
    )
    live = create_flag_cache_store(tmp_path, api_key=API_KEY, storage_key="live", encrypt=True)
    staging.save({"flags": [{"key": "debug", "value": True}]})
    live.save(PAYLOAD)
    a, b = tmp_path / "staging.fkv", tmp_path / "live.fkv"
    a_text, b_text = a.read_text(), b.read_text()
    a.write_text(b_text)
    b.write_text(a_text)
    for store in (staging, live):
        with pytest.raises(StorageError) as info:
            store.load()
        assert _code(info) == "CACHE_CORRUPT"
        assert "another key" in str(info.value)


def test_owner_mismatch_is_rejected_for_plain_files(tmp_path: Path) -> None:
    """Unencrypted caches of two environments in one directory are not confused."""
    create_flag_cache_store(tmp_path, api_key=API_KEY, owner="sdk_envA").save(PAYLOAD)
    with pytest.raises(StorageError) as info:
        create_flag_cache_store(tmp_path, api_key=API_KEY, owner="sdk_envB").load()
    assert _code(info) == "CACHE_CORRUPT"


def test_cache_store_rejects_bad_arguments() -> None:
    """An empty storage key or a non-dict payload is a programming error."""
    with pytest.raises(ValueError):
        FlagCacheStore(MemoryStorage(), "")
    with pytest.raises(TypeError):
        FlagCacheStore(MemoryStorage(), "k").save([1, 2])  # type: ignore[arg-type]
