"""Received analytics events: validation, de-duplication by id, bounded memory, JSONL log.

Events are kept exactly as received (both dialects of docs/protocol.md §10.2). An event
whose
``eventId`` (or Go-dialect ``id``) was already recorded is counted as a duplicate and not
recorded again (§20.6), so clients may deliver at least once. Malformed events are counted
(§20.7) and skipped. The hot path validates outside the lock and takes it once per batch.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["BatchResult", "EventRecorder", "event_type_of"]

logger = logging.getLogger("flagkit.server")


def event_type_of(event: dict[str, Any]) -> Any:
    """The event type in either dialect (``eventType`` or Go's ``type``)."""
    value = event.get("eventType")
    return event.get("type") if value is None else value


@dataclass(frozen=True)
class BatchResult:
    """Outcome of one batch: newly recorded, duplicates skipped, malformed skipped."""

    recorded: int
    duplicates: int
    errors: int


class EventRecorder:
    """Thread-safe store of received events.

    ``max_events`` bounds the events kept in memory (oldest dropped first; counters keep
    totals); ``dedup_window`` bounds how many recent ids are remembered for
    de-duplication. With ``log_path`` each recorded event is appended to that file as one
    JSON line (opened lazily, flushed per batch, closed by :meth:`close`).
    """

    def __init__(
        self,
        *,
        max_events: int = 10_000,
        dedup_window: int = 100_000,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be >= 1, got {max_events!r}")
        if dedup_window < 1:
            raise ValueError(f"dedup_window must be >= 1, got {dedup_window!r}")
        self._cond = threading.Condition(threading.Lock())
        self._events: deque[tuple[int, dict[str, Any]]] = deque(maxlen=max_events)
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        self._dedup_window = dedup_window
        self._seq = 0
        self._duplicates = 0
        self._errors = 0
        self._log_path = Path(log_path) if log_path is not None else None
        self._log_lock = threading.Lock()
        self._log_file: IO[str] | None = None

    # writing ---------------------------------------------------------------------------

    def record_batch(self, events: list[Any]) -> BatchResult:
        """Validate and record a batch; returns the counts for the response body."""
        valid: list[tuple[str | None, dict[str, Any]]] = []
        errors = 0
        for event in events:
            if type(event) is not dict:
                errors += 1
                continue
            etype = event.get("eventType")
            if etype is None:
                etype = event.get("type")
            if type(etype) is not str or not etype:
                errors += 1
                continue
            data = event.get("eventData")
            if data is not None and type(data) is not dict:
                errors += 1
                continue
            data = event.get("data")
            if data is not None and type(data) is not dict:
                errors += 1
                continue
            event_id = event.get("eventId")
            if event_id is None:
                event_id = event.get("id")
            valid.append((event_id if type(event_id) is str and event_id else None, event))
        accepted: list[dict[str, Any]] = []
        with self._cond:
            seen = self._seen
            for event_id, event in valid:
                if event_id is not None:
                    if event_id in seen:
                        continue
                    seen.add(event_id)
                    self._seen_order.append(event_id)
                self._seq += 1
                self._events.append((self._seq, event))
                accepted.append(event)
            while len(self._seen_order) > self._dedup_window:
                seen.discard(self._seen_order.popleft())
            duplicates = len(valid) - len(accepted)
            self._duplicates += duplicates
            self._errors += errors
            if accepted:
                self._cond.notify_all()
        if accepted and self._log_path is not None:
            self._append_log(accepted)
        return BatchResult(len(accepted), duplicates, errors)

    def _append_log(self, events: list[dict[str, Any]]) -> None:
        lines = "".join(
            json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in events
        )
        with self._log_lock:
            try:
                if self._log_file is None:
                    assert self._log_path is not None
                    self._log_file = self._log_path.open(
                        "a", encoding="utf-8", errors="backslashreplace"
                    )
                self._log_file.write(lines)
                self._log_file.flush()
            except OSError:
                logger.exception("cannot append events to %s", self._log_path)

    def clear(self) -> None:
        """Forget every recorded event, remembered id and counter."""
        with self._cond:
            self._events.clear()
            self._seen.clear()
            self._seen_order.clear()
            self._seq = 0
            self._duplicates = 0
            self._errors = 0

    def close(self) -> None:
        """Close the JSONL log file (it is reopened if more events arrive)."""
        with self._log_lock:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    # reading ---------------------------------------------------------------------------

    @property
    def total(self) -> int:
        """Events recorded since the last clear (including ones no longer kept in memory)."""
        with self._cond:
            return self._seq

    @property
    def duplicates(self) -> int:
        """Duplicate events skipped since the last clear."""
        with self._cond:
            return self._duplicates

    @property
    def errors(self) -> int:
        """Malformed events skipped since the last clear."""
        with self._cond:
            return self._errors

    def entries(self, *, after: int = 0) -> list[tuple[int, dict[str, Any]]]:
        """Kept events with sequence number > ``after``, as ``(seq, event)`` pairs."""
        with self._cond:
            if after <= 0:
                return list(self._events)
            return [entry for entry in self._events if entry[0] > after]

    def wait_for(
        self, predicate: Callable[[Iterable[dict[str, Any]]], bool], timeout: float
    ) -> bool:
        """Wait until ``predicate(kept events)`` holds; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(e for _, e in self._events), timeout)

    def wait_for_total(self, n: int, timeout: float) -> bool:
        """Wait until at least ``n`` events were recorded since the last clear."""
        with self._cond:
            return self._cond.wait_for(lambda: self._seq >= n, timeout)
