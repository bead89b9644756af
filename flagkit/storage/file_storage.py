"""Storage on disk: one file per key in a private directory, replaced atomically."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import urllib.parse
from typing import Final

from flagkit.errors import StorageError

__all__ = ["FileStorage"]

_SUFFIX: Final = ".fkv"
_TEMP_PREFIX: Final = ".tmp-"
# Everything else (upper case too, for case-insensitive file systems; "." so no key can
# become ".." or a hidden file) is percent-encoded from its UTF-8 bytes.
_SAFE: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
_MAX_NAME_BYTES: Final = 240
_READ_FLAGS: Final = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)  # a planted symlink is refused, not followed
    | getattr(os, "O_NONBLOCK", 0)  # a planted FIFO cannot block the reader
    | getattr(os, "O_BINARY", 0)
)
_FULL_ERRNOS: Final = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})


def _file_name(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"storage key must be a non-empty string, got {key!r}")
    parts: list[str] = []
    for char in key:
        if char in _SAFE:
            parts.append(char)
        else:
            parts.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
    name = "".join(parts) + _SUFFIX
    if len(name) > _MAX_NAME_BYTES:
        raise ValueError(f"storage key is too long ({len(key)} characters)")
    return name


def _directory_problem(uid: int, mode: int, euid: int) -> str | None:
    """Why a directory with this owner and mode must not hold our data, or ``None``.

    Someone else's directory (not ours, not root's) or a world-writable one without the
    sticky bit lets another local user replace or plant files in it.
    """
    if uid not in (euid, 0):
        return "is owned by another user"
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        return "is writable by every user"
    return None


def _key_of(name: str) -> str | None:
    if not name.endswith(_SUFFIX) or name.startswith("."):
        return None
    try:
        key = urllib.parse.unquote(name[: -len(_SUFFIX)], errors="strict")
        return key if _file_name(key) == name else None
    except (UnicodeDecodeError, ValueError):
        return None


class FileStorage:
    """A :class:`~flagkit.storage.Storage` keeping each key in its own file.

    >>> import tempfile, os
    >>> store = FileStorage(os.path.join(tempfile.mkdtemp(), "cache"))
    >>> store.set("flagkit_cache", "{}"); store.get("flagkit_cache")
    '{}'

    - The directory is created on the first write (mode ``0700`` when we create it; an
      existing directory keeps its mode). Nothing touches the disk at construction.
    - Each value is written to a temporary file in the same directory (mode ``0600``),
      flushed and fsynced, then moved over the old file with ``os.replace``: a reader (even
      in another process) sees the old or the new value, never half of one.
    - A key maps to a file name by percent-encoding everything except ``a-z0-9_-``, so no
      key can escape the directory; files are named ``<key>.fkv``.
    - Reads refuse symbolic links and anything that is not a regular file (``CACHE_CORRUPT``).
    - On POSIX, an existing directory owned by another (non-root) user, or writable by
      everyone without the sticky bit, is refused for reads (``CACHE_READ_ERROR``) and
      writes (``CACHE_WRITE_ERROR``): another user could plant or swap files there (think of
      a directory pre-created in a shared ``/tmp``).

    Raises :class:`~flagkit.errors.StorageError`: ``CACHE_READ_ERROR``,
    ``CACHE_WRITE_ERROR``, ``CACHE_STORAGE_FULL`` (disk full), ``CACHE_CORRUPT`` (not UTF-8
    text, not a regular file). ``ValueError`` for an empty or over-long key. Thread-safe and
    safe across processes sharing the directory (last writer wins).
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._directory = os.path.abspath(os.fspath(directory))

    @property
    def directory(self) -> str:
        """The absolute path of the storage directory."""
        return self._directory

    def path_for(self, key: str) -> str:
        """The file that holds ``key`` (it may not exist)."""
        return os.path.join(self._directory, _file_name(key))

    def get(self, key: str) -> str | None:
        """The text stored under ``key``, or ``None`` if there is no such file."""
        path = self.path_for(key)
        problem = self._untrusted_directory()
        if problem:
            raise StorageError("CACHE_READ_ERROR", f"storage directory {problem}; refusing it")
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StorageError(
                    "CACHE_CORRUPT", f"storage key {key!r} is a symbolic link; refusing it"
                ) from exc
            raise StorageError(
                "CACHE_READ_ERROR", f"could not read storage key {key!r}: {exc.strerror}", cause=exc
            ) from exc
        try:
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    raise StorageError(
                        "CACHE_CORRUPT", f"storage key {key!r} is not a regular file"
                    )
                data = handle.read()
        except OSError as exc:
            raise StorageError(
                "CACHE_READ_ERROR", f"could not read storage key {key!r}: {exc.strerror}", cause=exc
            ) from exc
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StorageError(
                "CACHE_CORRUPT", f"storage key {key!r} does not hold UTF-8 text"
            ) from exc

    def set(self, key: str, value: str) -> None:
        """Atomically replace the file of ``key`` with ``value`` (UTF-8)."""
        if not isinstance(value, str):
            raise TypeError(f"storage values must be strings, got {type(value).__name__}")
        path = self.path_for(key)
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise StorageError(
                "CACHE_WRITE_ERROR", f"value for storage key {key!r} is not encodable as UTF-8"
            ) from exc
        try:
            self._ensure_directory()
            problem = self._untrusted_directory()
            if problem:
                raise StorageError("CACHE_WRITE_ERROR", f"storage directory {problem}; refusing it")
            fd, temp_path = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=self._directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    if hasattr(os, "fchmod"):
                        os.fchmod(handle.fileno(), 0o600)
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp_path, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp_path)
                raise
            self._sync_directory()
        except OSError as exc:
            code = "CACHE_STORAGE_FULL" if exc.errno in _FULL_ERRNOS else "CACHE_WRITE_ERROR"
            raise StorageError(
                code, f"could not write storage key {key!r}: {exc.strerror}", cause=exc
            ) from exc

    def delete(self, key: str) -> None:
        """Remove the file of ``key``; a missing file is not an error."""
        try:
            os.unlink(self.path_for(key))
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(
                "CACHE_WRITE_ERROR",
                f"could not delete storage key {key!r}: {exc.strerror}",
                cause=exc,
            ) from exc

    def keys(self) -> list[str]:
        """Every key with a file in the directory (temporary and foreign files are skipped)."""
        try:
            names = os.listdir(self._directory)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StorageError(
                "CACHE_READ_ERROR",
                f"could not list the storage directory: {exc.strerror}",
                cause=exc,
            ) from exc
        return [key for key in map(_key_of, names) if key is not None]

    def clear(self) -> None:
        """Remove every key's file (other files in the directory are left alone)."""
        for key in self.keys():
            self.delete(key)

    def _untrusted_directory(self) -> str | None:
        geteuid = getattr(os, "geteuid", None)
        if geteuid is None:  # no POSIX ownership to check
            return None
        try:
            info = os.stat(self._directory)
        except OSError:
            return None  # missing: nothing to read, and a write creates it privately
        return _directory_problem(info.st_uid, info.st_mode, geteuid())

    def _ensure_directory(self) -> None:
        if os.path.isdir(self._directory):
            return
        os.makedirs(os.path.dirname(self._directory), exist_ok=True)
        try:
            os.mkdir(self._directory, 0o700)
        except FileExistsError:
            return
        os.chmod(self._directory, 0o700)  # mkdir's mode is filtered by the umask

    def _sync_directory(self) -> None:
        """Make the rename durable (POSIX); best effort elsewhere."""
        if os.name != "posix":
            return
        try:
            fd = os.open(self._directory, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    def __repr__(self) -> str:
        return f"FileStorage({self._directory!r})"
