"""Exposure events: who saw which variation of an experiment flag (``docs/events.md``).

The client calls :meth:`Exposures.record` after a lookup of an experiment flag whose
variation came from the flag's targeting (a rule, a segment, an individual target or the
fallthrough; not an off flag, an override, an error or stale flags). One ``$exposure``
event is queued per process per ``(context key, flag key, variation id)``: a bounded LRU
memory of :data:`EXPOSURE_MEMORY` entries drops the least recently seen triple first, so
a process serving many users may record an exposure of a long-unseen user again (the
server counts users, not events, so a repeat is harmless).

On the caller's thread this costs one LRU check under a short lock and, for a new triple,
one append to the event queue's inbox; the wire event is built on the events thread.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Final

from flagkit.types.context import EvaluationContext

__all__ = ["EXPOSURE_EVENT", "EXPOSURE_MEMORY", "Exposures", "context_key"]

#: The reserved event type of an exposure (``track()`` refuses ``$``-prefixed types).
EXPOSURE_EVENT: Final = "$exposure"
#: How many ``(context key, flag key, variation id)`` triples a process remembers.
EXPOSURE_MEMORY: Final = 10_000

Emit = Callable[[str, Mapping[str, Any], EvaluationContext | None], None]


def context_key(context: EvaluationContext | None) -> str | None:
    """The key an exposure is recorded under: ``user_id``, else ``user_key`` (the
    anonymous visitor's key), else None (no exposure)."""
    if context is None:
        return None
    key = context.user_id or context.user_key
    return key if isinstance(key, str) and key else None


class Exposures:
    """Deduplicates exposures and hands new ones to ``emit`` (the event queue).

    Thread-safe: the LRU is guarded by a lock held only for the check.
    """

    __slots__ = ("_emit", "_limit", "_lock", "_seen")

    def __init__(self, emit: Emit, *, limit: int = EXPOSURE_MEMORY) -> None:
        self._emit = emit
        self._limit = limit
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def record(
        self,
        flag_key: str,
        variation_id: str,
        version: int,
        rule_id: str | None,
        context: EvaluationContext | None,
    ) -> bool:
        """Queue the exposure unless this triple was recorded recently; returns whether
        an event was queued. Never raises for a context without a key (returns False)."""
        key = context_key(context)
        if key is None:
            return False
        marker = (key, flag_key, variation_id)
        seen = self._seen
        with self._lock:
            if marker in seen:
                seen.move_to_end(marker)
                return False
            seen[marker] = None
            if len(seen) > self._limit:
                seen.popitem(last=False)
        self._emit(
            EXPOSURE_EVENT,
            {
                "flagKey": flag_key,
                "variationId": variation_id,
                "flagVersion": version,
                "ruleId": rule_id,
                "contextKey": key,
            },
            context,
        )
        return True

    def after_fork(self) -> None:
        """In a forked child: a fresh lock (the memory is kept: those were recorded)."""
        self._lock = threading.Lock()
