"""What a client records about its own lookups: exposures of experiment flags and
evaluation summaries (docs/events.md, "Exposures and evaluation summaries").

The client asks :class:`LookupRecorder` after each full lookup (:meth:`record`) and, on
the typed getters' fast path, to count a simple flag (:meth:`count_fast`). The events go
through the client's event queue; nothing here does I/O on the caller's thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from time import monotonic
from typing import Any, Final

from flagkit.core.evaluation import LazyContext, Outcome, safe_key
from flagkit.core.events.exposures import Exposures
from flagkit.core.events.summaries import EvaluationCounter
from flagkit.core.snapshot import FlagSnapshot
from flagkit.types.config import FlagKitOptions
from flagkit.types.flag import EvaluationReason

__all__ = ["LookupRecorder"]

# Reasons whose variation came from the flag's targeting: the lookups that expose a user
# to an experiment's variation.
_EXPOSED: Final = frozenset(
    {
        EvaluationReason.RULE_MATCH,
        EvaluationReason.SEGMENT_MATCH,
        EvaluationReason.TARGET_MATCH,
        EvaluationReason.FALLTHROUGH,
    }
)


class LookupRecorder:
    """Exposures (when the client is online, or ``record_exposures_offline``) and, with
    ``evaluation_summaries``, counts per (flag, variation, reason). Thread-safe."""

    __slots__ = ("_logger", "_may_expose", "closed", "counter", "exposures", "hits")

    def __init__(self, options: FlagKitOptions, logger: logging.Logger) -> None:
        # Summaries are never counted offline: nothing would carry them anywhere.
        self.counter = (
            EvaluationCounter() if options.evaluation_summaries and not options.offline else None
        )
        #: The fast path's counters (None: not counting), read by the typed getters.
        self.hits: dict[str, Iterator[int]] | None = (
            self.counter.fast if self.counter is not None else None
        )
        self.exposures: Exposures | None = None
        self._may_expose = not options.offline or options.record_exposures_offline
        self._logger = logger
        self.closed = False

    @property
    def summary(self) -> Callable[[], dict[str, Any] | None] | None:
        """What the event queue calls at each flush for the summary event (None: none)."""
        return self.counter.take if self.counter is not None else None

    def attach(self, track_builtin: Callable[..., Any]) -> None:
        """Send exposures through ``track_builtin`` (the event queue's)."""
        if self._may_expose:
            self.exposures = Exposures(track_builtin)

    def count_fast(self, snapshot: FlagSnapshot, key: str) -> bool:
        """Count a fast-path lookup as ``(key, null, CACHED)``, which is what the full rules
        say for a fresh server flag without targeting; False (not counted) for stale flags
        and bootstrap values: the full path counts those."""
        hits = self.hits
        if hits is None or monotonic() > snapshot.expires_at:
            return False
        if snapshot.bootstrap and key not in snapshot.entries:
            return False
        counter = hits.get(key)
        if counter is None:
            assert self.counter is not None
            counter = self.counter.fast_counter(key)
        next(counter)
        return True

    def record(
        self, key: Any, outcome: Outcome, snapshot: FlagSnapshot, context: LazyContext
    ) -> None:
        """After a full lookup: the exposure (an experiment flag whose variation came from
        its targeting) and the summary count. Never raises."""
        reason = outcome.reason
        if reason in _EXPOSED and self.exposures is not None and not self.closed:
            self._expose(key, outcome, snapshot, context)
        counter = self.counter
        if counter is not None and outcome.error_code != "EVAL_DEFAULT_USED":
            counter.count(safe_key(key), outcome.variation_id, reason.value)

    def _expose(
        self, key: str, outcome: Outcome, snapshot: FlagSnapshot, context: LazyContext
    ) -> None:
        try:
            entry = snapshot.entries.get(key)
            model = entry.model if entry is not None else None
            spec = model.spec if model is not None else None
            variation = outcome.variation_id
            if spec is None or spec.experiment is None or variation is None:
                return
            exposures = self.exposures
            if exposures is not None:
                exposures.record(key, variation, outcome.version, outcome.rule_id, context.get())
        except Exception:  # a lookup never raises
            self._logger.exception("recording an exposure of %s failed", safe_key(key))

    def after_fork(self) -> None:
        """In a forked child: the exposure memory's lock anew, the parent's counts gone."""
        if self.exposures is not None:
            self.exposures.after_fork()
        if self.counter is not None:
            self.counter.after_fork()
