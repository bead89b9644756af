"""Changing a flag from the dashboard: validate like the flags file, store, write back.

One path for every dashboard change (toggle, value, rollout slider, JSON editor, revert):

1. the whole state with the new flag is validated exactly like a flags file
   (:func:`~flagkit.server.flags_file.parse_flags_document`), and so is the flags file as
   it would be written; an error names the field and nothing is saved;
2. the flag is stored through the server's admin API (``set_flag(replace=True)``), which
   bumps its version and pushes ``flag_updated`` to every stream (docs/protocol.md §4.5);
3. the flags file is rewritten (:mod:`~flagkit.server.dashboard.writeback`) and reloaded
   through the file watcher's path, which finds the store already up to date.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from flagkit.server.context import ServerContext
from flagkit.server.dashboard.writeback import updated_text, writable, write_flag
from flagkit.server.flags_file import (
    FlagsFileError,
    InvalidFieldError,
    parse_flags_bytes,
    parse_flags_document,
)

__all__ = [
    "ChangeRejected",
    "apply_flag",
    "file_entry",
    "merged_change",
    "shaped_like_file",
    "written_flags",
]

logger = logging.getLogger("flagkit.server")

_SERVER_MANAGED: Final = frozenset({"version", "lastModified"})
_FLAG_PATH: Final = re.compile(r"flags\[(?:(\d+)|'((?:[^'\\]|\\.)*)')\]\.?")
_EDIT_LOCK: Final = threading.Lock()


@dataclass(frozen=True)
class ChangeRejected(Exception):
    """The change is invalid: ``field`` (relative to the flag when it is this flag's own
    field, else the document path) and ``reason``."""

    field: str
    reason: str


def _relative(field: str | None, index: int, key: str) -> str:
    if not field:
        return ""
    match = _FLAG_PATH.match(field)
    if match is not None and (match.group(1) == str(index) or match.group(2) == key):
        return field[match.end() :] or "(flag)"
    return field


def _file_text(path: Path | None) -> str | None:
    if path is None or writable(path) is not None:
        return None
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        logger.warning("dashboard: cannot read flags file %s: %s", path, exc)
        return None


def file_entry(path: Path | None, key: str) -> dict[str, Any] | None:
    """The flag's object as written in the (JSON) flags file, or None."""
    text = _file_text(path)
    if text is None:
        return None
    try:
        flags = json.loads(text).get("flags", [])
    except (ValueError, AttributeError):
        return None
    return next((f for f in flags if isinstance(f, dict) and f.get("key") == key), None)


def apply_flag(ctx: ServerContext, flag: Mapping[str, Any]) -> dict[str, Any]:
    """Validate, store and write back ``flag`` (a whole flag object with its ``key``).

    Returns ``{"flag": stored wire object, "written": bool, "notWritten": reason|None}``.
    Raises :class:`ChangeRejected` (nothing changed) when the flag or the file would be
    invalid.
    """
    key = flag.get("key")
    if not isinstance(key, str):
        raise ChangeRejected("key", "must be a string")
    wanted = {k: v for k, v in flag.items() if k not in _SERVER_MANAGED}
    with _EDIT_LOCK:
        flags: list[dict[str, Any]] = ctx.admin.flags()
        index = next((i for i, f in enumerate(flags) if f["key"] == key), len(flags))
        flags[index : index + 1] = [wanted]
        document = {"flags": flags, "segments": ctx.admin.segments()}
        try:
            parse_flags_document(json.dumps(document), "<dashboard>")
        except FlagsFileError as exc:
            raise ChangeRejected(_relative(exc.field, index, key), exc.reason) from None
        path = ctx.admin.flags_file
        why_not = writable(path)
        text = _file_text(path)
        new_text = None
        if text is not None and path is not None:
            new_text = updated_text(text, wanted)
            try:
                parse_flags_bytes(new_text.encode("utf-8"), str(path))
            except FlagsFileError as exc:
                file_index = next(
                    (i for i, f in enumerate(written_flags(new_text)) if f.get("key") == key), -1
                )
                raise ChangeRejected(_relative(exc.field, file_index, key), exc.reason) from None
        fields = {k: v for k, v in wanted.items() if k != "key"}
        try:
            stored = ctx.admin.set_flag(key, replace=True, **fields)
        except InvalidFieldError as exc:
            raise ChangeRejected(_relative(exc.field, index, key), exc.reason) from None
        if new_text is not None and path is not None:
            try:
                write_flag(path, new_text)
                ctx.admin.reload_flags_file()
            except (OSError, FlagsFileError) as exc:
                why_not = f"could not write the flags file: {exc}"
                logger.error("dashboard: %s", why_not)
                new_text = None
    return {"flag": stored, "written": new_text is not None, "notWritten": why_not}


def written_flags(text: str) -> list[dict[str, Any]]:
    """The flag objects of a flags file's text (empty when unreadable)."""
    try:
        flags = json.loads(text).get("flags", [])
    except (ValueError, AttributeError):
        return []
    return [f for f in flags if isinstance(f, dict)]


def shaped_like_file(ctx: ServerContext, flag: Mapping[str, Any]) -> dict[str, Any]:
    """``flag`` (a wire object) as the flags file writes it: the file's key order, and no
    ``enabled``/``flagType`` where the file leaves them to their defaults."""
    current = {k: v for k, v in flag.items() if k not in _SERVER_MANAGED}
    entry = file_entry(ctx.admin.flags_file, str(flag.get("key")))
    if entry is None:
        return current
    if "enabled" not in entry and current.get("enabled") is True:
        current.pop("enabled", None)
    if "flagType" not in entry:
        current.pop("flagType", None)  # inferred from the value again
    ordered = {k: current[k] for k in entry if k in current}
    ordered.update(current)
    return ordered


def merged_change(ctx: ServerContext, key: str, fields: Mapping[str, Any]) -> dict[str, Any] | None:
    """The flag ``key`` with ``fields`` changed, shaped like the file (see
    :func:`shaped_like_file`), or None when there is no such flag."""
    stored = ctx.admin.get_flag(key)
    if stored is None:
        return None
    if "flagType" in fields:
        return {**{k: v for k, v in stored.items() if k not in _SERVER_MANAGED}, **fields}
    return {**shaped_like_file(ctx, stored), **fields}
