"""The inspection half of ``FlagKitServer``'s Python API, for tests: recorded events and
requests, injected faults and open streams.

:class:`~flagkit.server.app.FlagKitServer` inherits it and creates the parts it reads.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from flagkit.server.events import EventRecorder, event_type_of
from flagkit.server.faults import FaultInjector
from flagkit.server.requests_log import RecordedRequest, RequestLog
from flagkit.server.streaming import Broadcaster, TokenRegistry

__all__ = ["InspectionAPI"]


class InspectionAPI:
    """Read what the server received, make it misbehave, and drive its streams.

    All methods are thread-safe.
    """

    _events: EventRecorder
    _faults: FaultInjector
    _requests: RequestLog
    _broadcaster: Broadcaster
    _tokens: TokenRegistry

    # events ----------------------------------------------------------------------------------

    def events(
        self,
        event_type: str | None = None,
        *,
        session_id: str | None = None,
        environment_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Recorded events (oldest first, as received; copies), optionally filtered.

        ``event_type`` matches ``eventType`` (or Go's ``type``). At most ``max_events``
        are kept; duplicates (same ``eventId``/``id``) are recorded once.
        """
        out: list[dict[str, Any]] = []
        for _, event in self._events.entries():
            if event_type is not None and event_type_of(event) != event_type:
                continue
            if session_id is not None and event.get("sessionId") != session_id:
                continue
            if environment_id is not None and event.get("environmentId") != environment_id:
                continue
            out.append(copy.deepcopy(event))
        return out

    def wait_for_events(
        self, n: int = 1, timeout: float = 5.0, *, event_type: str | None = None
    ) -> list[dict[str, Any]]:
        """Wait until at least ``n`` events (of ``event_type``) are recorded; return them.

        Raises ``TimeoutError`` saying how many arrived when ``timeout`` seconds pass.
        """
        if event_type is None:
            reached = self._events.wait_for_total(n, timeout)
        else:
            reached = self._events.wait_for(
                lambda events: sum(1 for e in events if event_type_of(e) == event_type) >= n,
                timeout,
            )
        if not reached:
            got = self.events(event_type)
            kinds = sorted({str(event_type_of(e)) for e in self.events()})
            raise TimeoutError(
                f"expected {n} events{f' of type {event_type!r}' if event_type else ''}, "
                f"got {len(got)} within {timeout} s (types received: {kinds or 'none'})"
            )
        return self.events(event_type)

    def clear_events(self) -> None:
        """Forget recorded events, remembered ids and counters."""
        self._events.clear()

    @property
    def event_stats(self) -> dict[str, int]:
        """``{"total", "duplicates", "errors"}`` since the last clear."""
        return {
            "total": self._events.total,
            "duplicates": self._events.duplicates,
            "errors": self._events.errors,
        }

    # requests ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Requests received (admin API excluded), oldest first; bounded."""
        return self._requests.entries()

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """Requests to ``init``, ``updates``, ``events``, ``stream_token`` or ``stream``."""
        return self._requests.entries(endpoint)

    def wait_for_requests(
        self, endpoint: str | None = None, n: int = 1, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait for ``n`` requests to ``endpoint`` (None: any); raises TimeoutError."""
        return self._requests.wait_for(endpoint, n, timeout)

    def clear_requests(self) -> None:
        """Forget the request log."""
        self._requests.clear()

    # faults ------------------------------------------------------------------------------------

    def inject_fault(
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
        """Make the next requests to ``endpoint`` fail (see :mod:`flagkit.server.faults`).

        >>> server.inject_fault("init", statuses=[503, 503])   # two 503s, then normal
        ... # doctest: +SKIP
        >>> server.inject_fault("events", latency=0.5, count=1)  # doctest: +SKIP

        ``endpoint`` is ``init``, ``updates``, ``events``, ``stream_token`` or ``stream``.
        Replaces the endpoint's previous fault. Raises ``ValueError`` naming a bad argument.
        """
        self._faults.set(
            endpoint,
            statuses=statuses,
            latency=latency,
            drop=drop,
            malformed=malformed,
            count=count,
            retry_after=retry_after,
        )

    def clear_faults(self, endpoint: str | None = None) -> None:
        """Remove the fault of ``endpoint``, or all faults."""
        self._faults.clear(endpoint)

    def faults(self) -> list[dict[str, Any]]:
        """The active faults."""
        return self._faults.list()

    # streams ---------------------------------------------------------------------------------

    @property
    def stream_count(self) -> int:
        """Number of open SSE streams."""
        return self._broadcaster.count

    def wait_for_streams(self, n: int = 1, timeout: float = 5.0) -> None:
        """Wait until at least ``n`` SSE streams are open; raises TimeoutError."""
        if not self._broadcaster.wait_for_count(n, timeout):
            raise TimeoutError(
                f"expected {n} open streams, got {self.stream_count} within {timeout} s"
            )

    def publish_stream_event(self, event: str, data: object) -> int:
        """Send any SSE event to every open stream (e.g. ``error``); returns how many."""
        return self._broadcaster.publish(event, data)

    def disconnect_streams(self) -> int:
        """Close every open stream (clients see an end of stream); returns how many."""
        return self._broadcaster.disconnect_all()

    def expire_stream_tokens(self) -> None:
        """Invalidate every issued stream token (new connections get ``TOKEN_INVALID``)."""
        self._tokens.clear()
