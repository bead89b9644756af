"""Event types: the event-queue configuration, flush results, counters and the wire shape.

The queue itself lives in :mod:`flagkit.core.events`; the event log in
:mod:`flagkit.core.events.log`. These are plain frozen dataclasses, safe to share
between threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypedDict

if TYPE_CHECKING:
    from flagkit.types.config import FlagKitOptions

__all__ = [
    "DEFAULT_MAX_BATCH_EVENTS",
    "DEFAULT_MAX_EVENT_SIZE",
    "EventQueueConfig",
    "EventStats",
    "FlushResult",
    "WireEvent",
]

#: Most events sent in one ``POST /sdk/events/batch`` (a bigger backlog is sent in several).
DEFAULT_MAX_BATCH_EVENTS: Final = 500
#: Largest accepted ``event_data``, as estimated compact-JSON characters (see ``docs/events.md``).
DEFAULT_MAX_EVENT_SIZE: Final = 32 * 1024


class WireEvent(TypedDict, total=False):
    """One event as sent in ``{"events": [...]}`` (``docs/protocol.md`` §10.2 and §20.6).

    ``eventData`` and ``context`` are omitted when empty; ``context`` never holds private
    attributes.
    """

    eventType: str
    timestamp: str
    sdkVersion: str
    sdkLanguage: str
    sessionId: str
    environmentId: str
    eventData: dict[str, Any]
    eventId: str
    context: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class EventQueueConfig:
    """How the event queue batches, bounds, persists and retries.

    >>> config = EventQueueConfig(batch_size=50, flush_interval=5.0, persist=True,
    ...                           storage_path="/var/lib/myapp/flagkit-events")

    The first ten fields mirror the ``FlagKitOptions`` event options (``event_batch_size``,
    ``event_flush_interval``, ``max_event_queue_size``, ``lenient_tracking``, ``offline``,
    ``strict_pii_mode``, ``persist_events``, ``event_storage_path``, ``max_persisted_events``,
    ``persistence_flush_interval``). The rest are internal tuning knobs with safe defaults:

    - ``max_batch_events``: most events per POST; a larger backlog goes in several POSTs.
    - ``max_event_size``: largest ``event_data`` (estimated compact-JSON characters).
    - ``retry_backoff_base`` / ``retry_backoff_max``: seconds between automatic re-sends of a
      failed batch (doubling, with jitter); ``flush()``/``close()`` try once at once.
    - ``recovery_interval``: seconds between scans of the shared event log for events left
      by processes that died (persistence only).
    - ``compaction_threshold_bytes``: log size that triggers a rewrite dropping sent records.

    Built from already-validated ``FlagKitOptions`` (and, for the tuning knobs, by tests and
    benchmarks): it does not validate again.
    """

    batch_size: int = 10
    flush_interval: float = 30.0
    max_queue_size: int = 1000
    lenient: bool = False
    offline: bool = False
    strict_pii: bool = False
    persist: bool = False
    storage_path: str | None = None
    max_persisted_events: int = 10000
    persistence_flush_interval_ms: int = 1000
    max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE
    retry_backoff_base: float = 1.0
    retry_backoff_max: float = 60.0
    recovery_interval: float = 30.0
    compaction_threshold_bytes: int = 4 * 1024 * 1024

    @classmethod
    def from_options(cls, options: FlagKitOptions) -> EventQueueConfig:
        """The queue settings of a client's (validated) options."""
        return cls(
            batch_size=options.event_batch_size,
            flush_interval=options.event_flush_interval,
            max_queue_size=options.max_event_queue_size,
            lenient=options.lenient_tracking,
            offline=options.offline,
            strict_pii=options.strict_pii_mode,
            persist=options.persist_events,
            storage_path=options.event_storage_path,
            max_persisted_events=options.max_persisted_events,
            persistence_flush_interval_ms=options.persistence_flush_interval,
        )


@dataclass(frozen=True, slots=True)
class FlushResult:
    """What a ``flush()`` or ``close()`` achieved.

    ``sent``: events delivered while the call ran. ``pending``: events still held (in memory,
    or on disk when persistence is on) when it returned. ``error``: why it stopped short (the
    send failure, or a timeout), ``None`` when nothing went wrong.

    >>> FlushResult(sent=3, pending=0, error=None).ok
    True
    """

    sent: int
    pending: int
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        """True when nothing is pending and no error occurred."""
        return self.pending == 0 and self.error is None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventStats:
    """A snapshot of the event counters since the queue was created (or since a fork).

    - ``accepted``: events that passed validation in ``track()``.
    - ``sent``: events the server acknowledged (recovered ones included).
    - ``dropped``: events given up: the queue was full, the queue closed without persistence,
      the disk cap was exceeded, or (lenient mode) invalid input.
    - ``persisted``: events written to the event log.
    - ``recovered``: events taken over from the log, left there by an earlier or dead process.
    - ``failed_batches``: POSTs that failed (their events were kept and retried).
    - ``rejected``: events given up because the server refused them for good: a batch
      answered with a permanent client error (400, 403 invalid signature, ...), or events
      that could not be sent because the API key was rejected (without persistence; with it
      they stay in the event log). Also counted in ``dropped``.
    - ``unreadable``: records of the event log that could not be read (a torn or corrupt
      line) or sent (e.g. a ``NaN`` in its data); skipped. Records among them that were
      events are also counted in ``dropped``.
    """

    accepted: int = 0
    sent: int = 0
    dropped: int = 0
    persisted: int = 0
    recovered: int = 0
    failed_batches: int = 0
    rejected: int = 0
    unreadable: int = 0
