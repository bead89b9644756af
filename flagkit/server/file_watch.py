"""Watching the flags file of the local server: read, validate, apply, keep the last good.

A save caught half-way is not reported: a changed file is read only once it has stopped
changing for one poll. Coarse modification times can hide an edit, so an unchanged file is
still re-hashed every few polls. A broken edit is logged and kept in :attr:`last_error`,
and the last good flags stay served.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Final

from flagkit.server.flags_file import (
    FlagsDocument,
    FlagsFileError,
    InvalidFieldError,
    parse_flags_bytes,
)

__all__ = ["FlagsFileWatcher"]

logger = logging.getLogger("flagkit.server")

_REHASH_EVERY: Final = 5


class FlagsFileWatcher:
    """Reads ``path`` and hands each new valid document to ``apply``.

    ``apply(document)`` returns the changed flag keys; it may raise
    :class:`InvalidFieldError` (e.g. a rule naming a segment that no longer exists),
    which is reported like a broken file.
    """

    def __init__(
        self, path: Path, apply: Callable[[FlagsDocument], list[str]], interval: float
    ) -> None:
        self.path = path
        self._apply = apply
        self._interval = interval
        self._lock = threading.Lock()
        self._signature: tuple[int, int, int] | None = None
        self._pending_signature: tuple[int, int, int] | None = None
        self._hash = b""
        self._missing_logged = False
        self._polls = 0
        self.last_error: FlagsFileError | None = None
        """The error of the last failed reload (None after a good one)."""

    def load(self) -> FlagsDocument:
        """Read and parse the file once (at start-up); raises :class:`FlagsFileError`."""
        data = self._read()
        document = parse_flags_bytes(data, str(self.path))
        self._hash = hashlib.sha256(data).digest()
        return document

    def _read(self) -> bytes:
        try:
            stat = self.path.stat()
            data = self.path.read_bytes()
        except OSError as exc:
            raise FlagsFileError(
                str(self.path), None, f"cannot read the file: {exc.strerror or exc}"
            ) from None
        self._signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        return data

    def reload(self) -> list[str]:
        """Re-read and apply the file now; returns the changed keys.

        Raises :class:`FlagsFileError` (also kept in :attr:`last_error`) when the file
        cannot be read or is invalid; the last good flags stay.
        """
        with self._lock:
            try:
                data = self._read()
                self._hash = hashlib.sha256(data).digest()
                changed = self._apply(parse_flags_bytes(data, str(self.path)))
            except InvalidFieldError as exc:
                error = FlagsFileError(str(self.path), None, exc.reason, exc.field)
                self.last_error = error
                raise error from None
            except FlagsFileError as exc:
                self.last_error = exc
                raise
            self._applied(changed)
            return changed

    def _applied(self, changed: list[str]) -> None:
        self.last_error = None
        logger.info(
            "flags file %s reloaded: %s",
            self.path,
            ", ".join(changed) + " changed" if changed else "no flag changed",
        )

    def run(self, stop: threading.Event) -> None:
        """Poll every ``interval`` seconds until ``stop`` is set (the watcher thread)."""
        while not stop.wait(self._interval):
            try:
                self.check()
            except Exception:
                logger.exception("flags file watcher: unexpected error (will retry)")

    def check(self) -> None:
        """One poll: apply the file if it changed and stopped changing."""
        self._polls += 1
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if not self._missing_logged:
                logger.warning("flags file %s is missing; keeping the last good flags", self.path)
                self._missing_logged = True
            return
        self._missing_logged = False
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if signature != self._signature:
            if signature != self._pending_signature:
                self._pending_signature = signature
                return
        elif self._polls % _REHASH_EVERY:
            return
        with self._lock:
            try:
                data = self.path.read_bytes()
            except OSError as exc:
                logger.warning("cannot read flags file %s: %s", self.path, exc)
                return
            self._signature = signature
            digest = hashlib.sha256(data).digest()
            if digest == self._hash:
                return
            self._hash = digest
            try:
                changed = self._apply(parse_flags_bytes(data, str(self.path)))
            except FlagsFileError as exc:
                self._failed(exc)
                return
            except InvalidFieldError as exc:
                self._failed(FlagsFileError(str(self.path), None, exc.reason, exc.field))
                return
            self._applied(changed)

    def _failed(self, error: FlagsFileError) -> None:
        # Log before publishing the error: whoever sees it can rely on the log line.
        logger.error("%s -- keeping the last good flags", error)
        self.last_error = error
