"""Fault injection for the SDK endpoints: latency, forced statuses, drops, malformed bodies.

A fault is set per endpoint (``init``, ``updates``, ``events``, ``stream_token``,
``stream``) and applies to the next requests to it, before authentication:

1. ``latency`` seconds are waited first (interrupted when the server stops);
2. then, while ``statuses`` has entries, the next one is answered with the §2.4 error body;
3. otherwise ``drop`` closes the connection without any response;
4. otherwise ``malformed`` answers 200 with a body that is not valid JSON (for the stream:
   a broken ``data:`` line, then the normal stream);
5. otherwise the request is served normally (a latency-only fault).

A fault lasts for ``count`` requests; without ``count`` it lasts until its statuses are
used up, or until cleared when it has no statuses.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["ENDPOINTS", "FaultAction", "FaultInjector"]

ENDPOINTS: Final = ("init", "updates", "events", "stream_token", "stream")
_MAX_RETRY_AFTER: Final = 86_400


@dataclass(frozen=True)
class FaultAction:
    """What to do to one request (see the module docstring for the order)."""

    latency: float = 0.0
    status: int | None = None
    retry_after: float | None = None
    drop: bool = False
    malformed: bool = False


@dataclass
class _Fault:
    statuses: deque[int]
    latency: float
    drop: bool
    malformed: bool
    remaining: int | None
    retry_after: float | None

    def to_dict(self, endpoint: str) -> dict[str, Any]:
        return {
            "endpoint": endpoint,
            "statuses": list(self.statuses),
            "latency": self.latency,
            "drop": self.drop,
            "malformed": self.malformed,
            "count": self.remaining,
            "retryAfter": self.retry_after,
        }


class FaultInjector:
    """Per-endpoint faults. Thread-safe; :meth:`take` is cheap when no fault is set."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, _Fault] = {}

    def set(
        self,
        endpoint: str,
        *,
        statuses: Sequence[int] = (),
        latency: float = 0.0,
        drop: bool = False,
        malformed: bool = False,
        count: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Replace the fault of ``endpoint``; raises ``ValueError`` naming a bad argument."""
        if endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {', '.join(ENDPOINTS)}, got {endpoint!r}")
        if isinstance(statuses, (str, bytes)) or not isinstance(statuses, Sequence):
            raise ValueError(f"statuses must be a list of integers, got {statuses!r}")
        for status in statuses:
            if isinstance(status, bool) or not isinstance(status, int) or not 300 <= status <= 599:
                raise ValueError(f"statuses must be integers in 300..599, got {status!r}")
        if (
            isinstance(latency, bool)
            or not isinstance(latency, (int, float))
            or not 0 <= latency <= 600
        ):
            raise ValueError(f"latency must be a number of seconds in 0..600, got {latency!r}")
        if not isinstance(drop, bool):
            raise ValueError(f"drop must be a boolean, got {drop!r}")
        if not isinstance(malformed, bool):
            raise ValueError(f"malformed must be a boolean, got {malformed!r}")
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise ValueError(f"count must be an integer >= 1 or null, got {count!r}")
        if retry_after is not None and (
            isinstance(retry_after, bool)
            or not isinstance(retry_after, (int, float))
            or not 0 <= retry_after <= _MAX_RETRY_AFTER  # also refuses NaN
        ):
            raise ValueError(
                f"retry_after must be a number of seconds in 0..{_MAX_RETRY_AFTER}, "
                f"got {retry_after!r}"
            )
        remaining = count if count is not None else (len(statuses) or None)
        fault = _Fault(deque(statuses), float(latency), drop, malformed, remaining, retry_after)
        with self._lock:
            self._faults[endpoint] = fault

    def clear(self, endpoint: str | None = None) -> None:
        """Remove the fault of one endpoint, or every fault."""
        with self._lock:
            if endpoint is None:
                self._faults.clear()
            else:
                self._faults.pop(endpoint, None)

    def list(self) -> list[dict[str, Any]]:
        """The active faults as JSON-friendly dicts."""
        with self._lock:
            return [fault.to_dict(name) for name, fault in self._faults.items()]

    def take(self, endpoint: str) -> FaultAction | None:
        """Consume one application of the endpoint's fault; None when there is none."""
        if not self._faults:
            return None
        with self._lock:
            fault = self._faults.get(endpoint)
            if fault is None:
                return None
            status = fault.statuses.popleft() if fault.statuses else None
            action = FaultAction(
                latency=fault.latency,
                status=status,
                retry_after=fault.retry_after if status is not None else None,
                drop=status is None and fault.drop,
                malformed=status is None and not fault.drop and fault.malformed,
            )
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    del self._faults[endpoint]
            return action
