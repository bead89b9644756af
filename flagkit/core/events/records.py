"""The lines of the event log: writing them, and reading them back cheaply and safely.

See :mod:`flagkit.core.events.log` for the file format. Reading is the cost of compaction
and recovery, which replay the whole log, so the lines this SDK writes itself are
recognised by their exact shape without a JSON parse:

- a full record ``{"id":"<uuid>","type":...`` is kept as bytes and parsed only if it is
  still unsent once every status line is replayed (a sent record is never parsed);
- a status line ``{"id":"<uuid>","status":"sent","sentAt":<ms>}`` (or ``sending``,
  ``pending``, ``dropped``) is matched by a regular expression.

Any other line takes the general path: ``json.loads``, with every failure (torn, invalid
UTF-8, nested past the reader's recursion limit, not an object, no id) counted as
unreadable and skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = ["STATUSES", "UNSENT", "Entry", "dumps", "encoded_size", "owner_of", "read_entries"]

UNSENT: Final = frozenset({"pending", "sending"})
STATUSES: Final = frozenset({"pending", "sending", "sent", "dropped", "failed"})
_OWNER_RE: Final = re.compile(r"[A-Za-z0-9-]{1,64}")
_UUID: Final = rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_RECORD_RE: Final = re.compile(rb'\{"id":"(' + _UUID + rb')","type":')
_STATUS_RE: Final = re.compile(
    rb'\{"id":"('
    + _UUID
    + rb')","status":"(sending|sent|pending|dropped)"(?:,"sentAt":\d{1,16})?\}'
)
_SAFE_ID: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# Which fields of an entry status lines have set (the record's own values fill the rest).
_SET_STATUS: Final = 1
_SET_OWNER: Final = 2
_SET_RELEASED: Final = 4


def dumps(obj: object) -> str:
    """Compact ASCII JSON without ``NaN``: the form of every line."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def status_line(event_id: str, status: str, sent_at_ms: int | None = None) -> str:
    """``{"id": ..., "status": ...}`` (with ``sentAt`` when given); formatted directly for
    the UUID ids this SDK makes, through the JSON encoder for any other id."""
    if _SAFE_ID.fullmatch(event_id):
        if sent_at_ms is None:
            return f'{{"id":"{event_id}","status":"{status}"}}'
        return f'{{"id":"{event_id}","status":"{status}","sentAt":{int(sent_at_ms)}}}'
    line: dict[str, Any] = {"id": event_id, "status": status}
    if sent_at_ms is not None:
        line["sentAt"] = int(sent_at_ms)
    return dumps(line)


def owner_of(value: object) -> str | None:
    """An owner id, or ``None`` for anything odd: owner ids come from a shared file, and a
    path is built from them, which must never leave the directory."""
    if isinstance(value, str) and _OWNER_RE.fullmatch(value):
        return value
    return None


def _status_of(value: object) -> str | None:
    return value if isinstance(value, str) and value in STATUSES else None


def encoded_size(record: Mapping[str, Any]) -> int | None:
    """The JSON size of the record's event, or ``None`` if it cannot be sent: no string type,
    or an event the encoder refuses (the reader accepts ``NaN`` and deep nesting, the encoder
    of the HTTP body does not)."""
    if not isinstance(record.get("type"), str):
        return None
    try:
        return len(dumps(record.get("event"))) + len(dumps(record.get("data")))
    except (TypeError, ValueError, RecursionError):
        return None


class Entry:
    """One event of the log: its full record (parsed on demand) and the status, owner and
    hand-back that the lines after it set."""

    __slots__ = ("_raw", "_record", "_set", "event_id", "owner", "released_by", "status")

    def __init__(
        self, event_id: str, *, raw: bytes | None = None, record: dict[str, Any] | None = None
    ) -> None:
        self.event_id = event_id
        self._raw = raw
        self._record = record
        self._set = 0
        self.status = "pending"
        self.owner: str | None = None
        self.released_by: str | None = None
        if record is not None:
            self._fill(record)

    def _fill(self, record: dict[str, Any]) -> None:
        if not self._set & _SET_STATUS:
            self.status = _status_of(record.get("status")) or "pending"
        if not self._set & _SET_OWNER:
            self.owner = owner_of(record.get("owner"))
        if not self._set & _SET_RELEASED:
            released = record.get("releasedBy")
            self.released_by = released if isinstance(released, str) else None

    def update(self, status: str, line: Mapping[str, Any] | None = None) -> None:
        """Apply a status line (``line`` is the parsed line when it may set more)."""
        self.status = status
        self._set |= _SET_STATUS
        if line is None:
            return
        if "owner" in line:
            self.owner = owner_of(line["owner"])
            self._set |= _SET_OWNER
        if "releasedBy" in line:
            released = line["releasedBy"]
            self.released_by = released if isinstance(released, str) else None
            self._set |= _SET_RELEASED

    def load(self) -> bool:
        """Parse the full record if still needed; False if it turns out unreadable."""
        if self._record is None:
            try:
                record = json.loads(self._raw or b"")
            except (ValueError, RecursionError):
                return False
            if not isinstance(record, dict) or record.get("id") != self.event_id:
                return False
            self._record = record
            self._raw = None
            self._fill(record)
        return True

    def adopt(self, owner: str) -> bool:
        """Take ``owner`` as the owner of an unparsed record this instance wrote itself (no
        line changed its owner since), so it need not be parsed; False if that is unknown."""
        if self._record is not None or self._set & _SET_OWNER:
            return False
        self.owner = owner
        return True

    @property
    def raw_line(self) -> bytes | None:
        """The record's line as read, when nothing since changed it (so a rewrite can copy
        it as it is)."""
        return self._raw if self._record is None and not self._set else None

    @property
    def record(self) -> dict[str, Any]:
        """The full record; call :meth:`load` first."""
        assert self._record is not None
        return self._record

    @property
    def settled(self) -> bool:
        """Whether a status line already says how it ended (sent or dropped)."""
        return bool(self._set & _SET_STATUS) and self.status not in UNSENT


def read_entries(lines: Iterable[bytes]) -> tuple[dict[str, Entry], int]:
    """Replay the log's lines: the entries by id, and how many lines were unreadable."""
    entries: dict[str, Entry] = {}
    skipped = 0
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        if line.startswith(b'{"id":"'):
            match = _RECORD_RE.match(line)
            if match is not None:
                event_id = match.group(1).decode("ascii")
                entries[event_id] = Entry(event_id, raw=line)
                continue
            match = _STATUS_RE.fullmatch(line)
            if match is not None:
                entry = entries.get(match.group(1).decode("ascii"))
                if entry is not None:
                    entry.update(match.group(2).decode("ascii"))
                continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            # Torn, invalid UTF-8 (UnicodeDecodeError is a ValueError), or nested deeper
            # than the reader's recursion limit.
            skipped += 1
            continue
        event_id = obj.get("id") if isinstance(obj, dict) else None
        if not isinstance(event_id, str) or not event_id:
            skipped += 1
            continue
        if "type" in obj:
            entries[event_id] = Entry(event_id, record=obj)
            continue
        entry = entries.get(event_id)
        status = _status_of(obj.get("status"))
        if entry is not None and status is not None:
            entry.update(status, obj)
    return entries, skipped
