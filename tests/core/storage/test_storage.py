"""Plain storages: the Storage protocol, MemoryStorage and FileStorage on a real disk."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from flagkit.errors import StorageError
from flagkit.storage import FileStorage, MemoryStorage, Storage
from flagkit.storage.file_storage import _directory_problem

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Each plain storage, fresh."""
    if request.param == "memory":
        return MemoryStorage()
    return FileStorage(tmp_path / "store")


def test_implements_protocol(store: Storage) -> None:
    """Both classes satisfy the runtime-checkable Storage protocol."""
    assert isinstance(store, Storage)


def test_get_set_delete_keys_clear(store: Storage) -> None:
    """Values round-trip, are replaced, deleted, listed and cleared; missing keys are None."""
    assert store.get("a") is None
    assert store.keys() == []
    store.set("a", "1")
    store.set("a", "2")
    store.set("B.key/../x", "ünïcødé 😀")
    assert store.get("a") == "2"
    assert store.get("B.key/../x") == "ünïcødé 😀"
    assert sorted(store.keys()) == ["B.key/../x", "a"]
    store.delete("a")
    store.delete("a")  # deleting twice is fine
    assert store.get("a") is None
    store.clear()
    assert store.keys() == []


def test_non_string_values_are_rejected(store: Storage) -> None:
    """Storages hold text only; bytes or dicts are a TypeError."""
    with pytest.raises(TypeError):
        store.set("a", b"bytes")  # type: ignore[arg-type]


# --- FileStorage ----------------------------------------------------------------------------


def test_no_disk_access_until_first_write(tmp_path: Path) -> None:
    """Constructing, reading and listing create nothing; the first write makes the dir."""
    directory = tmp_path / "nested" / "cache"
    store = FileStorage(directory)
    assert store.get("k") is None and store.keys() == []
    assert not directory.exists()
    store.set("k", "v")
    assert directory.is_dir()


@posix_only
def test_created_directory_and_files_are_private(tmp_path: Path) -> None:
    """A directory we create is 0700 and every value file is 0600, whatever the umask."""
    old_umask = os.umask(0o022)
    try:
        store = FileStorage(tmp_path / "cache")
        store.set("flagkit_cache", "{}")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o700
    assert stat.S_IMODE(os.stat(store.path_for("flagkit_cache")).st_mode) == 0o600


@posix_only
def test_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    """A directory the user made is not chmod-ed (it may be shared on purpose)."""
    tmp_path.chmod(0o755)
    FileStorage(tmp_path).set("k", "v")
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


@posix_only
def test_world_writable_directory_is_refused(tmp_path: Path) -> None:
    """A directory anyone can write to (no sticky bit) is refused for reads and writes."""
    store = FileStorage(tmp_path)
    store.set("k", "v")
    tmp_path.chmod(0o777)
    try:
        with pytest.raises(StorageError) as read_info:
            store.get("k")
        with pytest.raises(StorageError) as write_info:
            store.set("k", "planted?")
    finally:
        tmp_path.chmod(0o700)
    assert read_info.value.code == "CACHE_READ_ERROR"
    assert write_info.value.code == "CACHE_WRITE_ERROR"
    assert store.get("k") == "v"


@pytest.mark.parametrize(
    ("uid", "mode", "problem"),
    [
        (1000, 0o40700, None),  # ours
        (0, 0o40755, None),  # root's
        (0, 0o41777, None),  # sticky and world-writable, like /tmp
        (1001, 0o40700, "is owned by another user"),  # e.g. pre-created in /tmp by someone
        (1000, 0o40777, "is writable by every user"),
    ],
)
def test_directory_trust_rule(uid: int, mode: int, problem: str | None) -> None:
    """Only directories of ours or root's, not world-writable without sticky bit, are used."""
    assert _directory_problem(uid, mode, euid=1000) == problem


def test_keys_cannot_escape_the_directory(tmp_path: Path) -> None:
    """Path separators, dots and upper case are encoded into one file inside the directory."""
    directory = tmp_path / "cache"
    store = FileStorage(directory)
    for key in ("../escape", "..", ".hidden", "a/b\\c", "Flag", "flag", "%41"):
        store.set(key, key)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]
    names = sorted(p.name for p in directory.iterdir())
    assert all(not n.startswith(".") and "/" not in n and "\\" not in n for n in names)
    assert len(names) == 7  # "Flag" and "flag" do not collide on case-insensitive disks
    assert sorted(store.keys()) == sorted(
        ["../escape", "..", ".hidden", "a/b\\c", "Flag", "flag", "%41"]
    )
    assert store.get("Flag") == "Flag" and store.get("flag") == "flag"


def test_bad_keys_are_rejected(tmp_path: Path) -> None:
    """Empty and overlong keys raise ValueError."""
    store = FileStorage(tmp_path)
    with pytest.raises(ValueError):
        store.set("", "v")
    with pytest.raises(ValueError):
        store.set("x" * 300, "v")


def test_foreign_and_temporary_files_are_not_keys(tmp_path: Path) -> None:
    """Files the storage did not write (or half-written temp files) are not listed."""
    store = FileStorage(tmp_path)
    store.set("real", "1")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / ".tmp-abc").write_text("partial")
    (tmp_path / "UPPER.fkv").write_text("not canonical")
    assert store.keys() == ["real"]
    store.clear()
    assert (tmp_path / "notes.txt").exists()


def test_write_is_atomic_for_concurrent_readers(tmp_path: Path) -> None:
    """Readers racing a writer always see one complete value, never a mix or a gap."""
    store = FileStorage(tmp_path)
    values = ["A" * 200_000, "B" * 300_000]
    store.set("k", values[0])
    stop = threading.Event()
    seen: set[str] = set()
    problems: list[str] = []

    def read() -> None:
        while not stop.is_set():
            value = store.get("k")
            if value not in values:
                problems.append("torn or missing read")
                return
            seen.add(value[0])

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(40):
        store.set("k", values[i % 2])
    stop.set()
    reader.join()
    assert problems == []
    assert list(tmp_path.iterdir()) == [Path(store.path_for("k"))]  # no temp files left


def test_non_utf8_file_is_corrupt(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 text raise CACHE_CORRUPT instead of garbage."""
    store = FileStorage(tmp_path)
    store.set("k", "ok")
    Path(store.path_for("k")).write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(StorageError) as info:
        store.get("k")
    assert info.value.code == "CACHE_CORRUPT"


@posix_only
def test_symlink_planted_in_place_of_a_value_is_refused(tmp_path: Path) -> None:
    """A symbolic link at a key's path is not followed on read (CACHE_CORRUPT)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    store = FileStorage(tmp_path / "cache")
    store.set("k", "v")
    os.unlink(store.path_for("k"))
    os.symlink(secret, store.path_for("k"))
    with pytest.raises(StorageError) as info:
        store.get("k")
    assert info.value.code == "CACHE_CORRUPT"
    store.set("k", "new")  # a write replaces the link itself, not its target
    assert secret.read_text() == "do not read me"
    assert store.get("k") == "new"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_planted_in_place_of_a_value_does_not_block(tmp_path: Path) -> None:
    """A named pipe at a key's path is rejected at once instead of blocking the reader."""
    store = FileStorage(tmp_path)
    os.mkfifo(store.path_for("k"))
    with pytest.raises(StorageError) as info:
        store.get("k")
    assert info.value.code == "CACHE_CORRUPT"


def test_write_error_when_directory_is_a_file(tmp_path: Path) -> None:
    """If the storage path is an existing file, writing raises CACHE_WRITE_ERROR."""
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    with pytest.raises(StorageError) as info:
        FileStorage(blocker / "cache").set("k", "v")
    assert info.value.code == "CACHE_WRITE_ERROR" and info.value.recoverable
    assert str(tmp_path) not in str(info.value)


def test_repr_names_the_directory(tmp_path: Path) -> None:
    """The repr shows the directory (no values)."""
    store = FileStorage(tmp_path)
    store.set("k", "secret-value")
    assert str(tmp_path) in repr(store) and "secret-value" not in repr(store)
    assert "secret-value" not in repr(MemoryStorage())
