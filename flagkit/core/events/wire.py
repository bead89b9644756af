"""The event as it goes on the wire (``docs/protocol.md`` §10.2, §20.6) and in the log.

:class:`WireBuilder` turns what ``track()`` queued into the wire event: the protocol fields
in their documented order, an ``eventId`` (UUID4, used by the server to drop duplicates of an
at-least-once delivery), the ISO-8601 UTC timestamp, and the context with its private
attributes stripped. :class:`Pending` is the events thread's record of one event.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Final

from flagkit.core.events.counters import RateLimitedLog
from flagkit.core.events.log import RecoveredEvent
from flagkit.core.events.validation import Invalid, PiiWarner, json_copy
from flagkit.types.context import EvaluationContext

__all__ = ["EVENT_OVERHEAD", "Incoming", "Pending", "WireBuilder", "event_ids", "iso_time"]

EVENT_OVERHEAD: Final = 200  # estimated JSON of the fixed wire fields

#: What ``track()`` queues: ``(type, copied data, time.time(), context, estimated size)``.
Incoming = tuple[str, dict[str, Any] | None, float, EvaluationContext | None, int]


def iso_time(timestamp: float) -> str:
    """``datetime.fromtimestamp(timestamp, timezone.utc).isoformat()``, e.g.
    ``2025-03-01T12:00:00.123456+00:00`` (no fraction when it is zero), but cheaper: the
    text up to the seconds is computed once per second."""
    seconds = math.floor(timestamp)
    micros = round((timestamp - seconds) * 1_000_000)
    if micros >= 1_000_000:
        seconds += 1
        micros -= 1_000_000
    global _second
    cached_seconds, prefix = _second  # one tuple: consistent even across threads
    if cached_seconds != seconds:
        prefix = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (seconds, prefix)
    return f"{prefix}.{micros:06d}+00:00" if micros else f"{prefix}+00:00"


_second: tuple[int, str] = (-1, "")  # the last second formatted, and its text
_HEX: Final = "0123456789abcdef"
_VARIANT: Final = "89ab89ab89ab89ab"  # high nibble of byte 8 mapped to 10xx


def event_ids(count: int) -> list[str]:
    """``count`` random (version 4) UUIDs as strings, like ``str(uuid.uuid4())`` but cheaper.

    The same 122 random bits each from ``os.urandom`` (read once for the whole list); the
    version nibble is ``4`` and the variant bits are ``10``.
    """
    pool = os.urandom(16 * count).hex()
    ids = []
    for start in range(0, 32 * count, 32):
        h = pool[start : start + 32]
        ids.append(
            f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[_HEX.index(h[16])]}{h[17:20]}-{h[20:]}"
        )
    return ids


class Pending:
    """An event on the events thread: its wire form and bookkeeping."""

    __slots__ = ("event_id", "event_type", "persisted", "seq", "size", "timestamp_ms", "wire")

    def __init__(
        self,
        seq: int,
        event_id: str,
        event_type: str,
        timestamp_ms: int,
        wire: dict[str, Any],
        size: int,
        persisted: bool,
    ) -> None:
        self.seq = seq
        self.event_id = event_id
        self.event_type = event_type
        self.timestamp_ms = timestamp_ms
        self.wire = wire
        self.size = size
        self.persisted = persisted


class WireBuilder:
    """Builds wire events on the events thread (not thread-safe)."""

    def __init__(
        self,
        *,
        session_id: str,
        sdk_version: str,
        max_event_size: int,
        pii: PiiWarner | None,
        logger: logging.Logger,
        environment_id: Callable[[], str],
    ) -> None:
        self._session_id = session_id
        self._sdk_version = sdk_version
        self._max_event_size = max_event_size
        self._pii = pii
        self._environment_id = environment_id
        self._log_context = RateLimitedLog(logger, logging.WARNING)

    def build(self, taken: list[Incoming], first_seq: int, persisted: bool) -> list[Pending]:
        """The wire events of ``taken``, numbered from ``first_seq``.

        A context is serialised once per call even when many events share it (the same
        object, as the client passes its current context).
        """
        environment_id = self._environment_id()
        session_id = self._session_id
        sdk_version = self._sdk_version
        scan = self._pii.scan if self._pii is not None else None
        contexts: dict[int, tuple[dict[str, Any] | None, int]] = {}
        records: list[Pending] = []
        seq = first_seq
        ids = event_ids(len(taken))
        for (event_type, data, timestamp, context, size), event_id in zip(taken, ids, strict=True):
            wire: dict[str, Any] = {
                "eventType": event_type,
                "timestamp": iso_time(timestamp),
                "sdkVersion": sdk_version,
                "sdkLanguage": "python",
                "sessionId": session_id,
                "environmentId": environment_id,
            }
            if data:
                wire["eventData"] = data
                if scan is not None:
                    scan(data)
            wire["eventId"] = event_id
            if context is not None:
                known = contexts.get(id(context))
                if known is None:
                    known = contexts[id(context)] = self._context_dict(context)
                stripped, context_size = known
                if stripped:
                    wire["context"] = stripped
                    size += context_size
            records.append(
                Pending(
                    seq,
                    event_id,
                    event_type,
                    int(timestamp * 1000),
                    wire,
                    size + EVENT_OVERHEAD,
                    persisted,
                )
            )
            seq += 1
        return records

    def _context_dict(self, context: EvaluationContext) -> tuple[dict[str, Any] | None, int]:
        try:
            result, size = json_copy(context.to_dict(), self._max_event_size)
        except Exception as exc:  # a broken context costs only its own field
            reason = exc.describe("context") if isinstance(exc, Invalid) else repr(exc)
            self._log_context(
                "flagkit: an event's context cannot be sent and was left out: %s", reason
            )
            return None, 0
        return (result, size) if isinstance(result, dict) else (None, 0)

    def rebuild(self, recovered: RecoveredEvent, seq: int) -> Pending:
        """A :class:`Pending` for an event claimed from the log, keeping its ``eventId``."""
        wire = recovered.wire
        if wire is None or not isinstance(wire.get("eventType"), str):
            # The older record format keeps only type, data and time: rebuild around the id.
            wire = {
                "eventType": recovered.event_type,
                "timestamp": iso_time(recovered.timestamp_ms / 1000.0),
                "sdkVersion": self._sdk_version,
                "sdkLanguage": "python",
                "sessionId": self._session_id,
                "environmentId": self._environment_id(),
            }
            if recovered.data:
                wire["eventData"] = recovered.data
        wire["eventId"] = recovered.event_id
        return Pending(
            seq,
            recovered.event_id,
            recovered.event_type,
            recovered.timestamp_ms,
            wire,
            EVENT_OVERHEAD + recovered.size,
            True,
        )
