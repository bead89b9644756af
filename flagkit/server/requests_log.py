"""A bounded log of the SDK requests the local server received (for tests to assert on)."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["Headers", "RecordedRequest", "RequestLog", "wait_for_matches"]

_T = TypeVar("_T")

_SECRET_HEADERS = frozenset({"x-api-key", "authorization", "x-signature"})


class Headers(Mapping[str, str]):
    """Request headers with case-insensitive lookup (``headers["x-api-key"]``).

    Iterates over the names as received; a repeated header keeps its last value.
    The repr masks ``X-API-Key``, ``Authorization`` and ``X-Signature``.
    """

    def __init__(self, items: Iterable[tuple[str, str]]) -> None:
        self._items = list(items)
        self._lookup = {name.lower(): value for name, value in self._items}

    def __getitem__(self, name: str) -> str:
        return self._lookup[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._lookup

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for name, _ in self._items:
            if name.lower() not in seen:
                seen.add(name.lower())
                yield name

    def __len__(self) -> int:
        return len(self._lookup)

    def __repr__(self) -> str:
        shown = {
            name: (value[:8] + "..." if name.lower() in _SECRET_HEADERS else value)
            for name, value in self._items
        }
        return f"Headers({shown!r})"


@dataclass
class RecordedRequest:
    """One request as received: method, path, query, headers, body and the status sent.

    ``endpoint`` is ``init``, ``updates``, ``events``, ``stream_token``, ``stream`` or
    None (any other path); ``query`` maps each parameter to its (form-decoded) value,
    ``raw_query`` is the query string exactly as sent. ``status`` is filled in once the
    response is sent (0 for a dropped connection, None while still in progress).
    """

    method: str
    path: str
    raw_query: str
    query: dict[str, str]
    headers: Headers = field(repr=False)
    body: bytes = field(repr=False)
    endpoint: str | None
    time: float = field(default_factory=time.time)
    status: int | None = None

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` if it is not JSON)."""
        return json.loads(self.body)


class RequestLog:
    """Thread-safe bounded log: at most ``max_requests`` entries and ``max_bytes`` of bodies."""

    def __init__(self, max_requests: int = 1000, max_bytes: int = 16 * 1024 * 1024) -> None:
        if max_requests < 1:
            raise ValueError(f"max_requests must be >= 1, got {max_requests!r}")
        self._cond = threading.Condition(threading.Lock())
        self._entries: deque[RecordedRequest] = deque()
        self._bytes = 0
        self._max_requests = max_requests
        self._max_bytes = max_bytes

    def append(self, request: RecordedRequest) -> RecordedRequest:
        """Add a request, evicting the oldest beyond the bounds; returns it."""
        with self._cond:
            self._entries.append(request)
            self._bytes += len(request.body)
            while len(self._entries) > 1 and (
                len(self._entries) > self._max_requests or self._bytes > self._max_bytes
            ):
                self._bytes -= len(self._entries.popleft().body)
            self._cond.notify_all()
        return request

    def entries(self, endpoint: str | None = None) -> list[RecordedRequest]:
        """The kept requests, oldest first, optionally only those to ``endpoint``."""
        with self._cond:
            if endpoint is None:
                return list(self._entries)
            return [r for r in self._entries if r.endpoint == endpoint]

    def clear(self) -> None:
        """Forget every request."""
        with self._cond:
            self._entries.clear()
            self._bytes = 0

    def wait_for(self, endpoint: str | None, n: int, timeout: float) -> list[RecordedRequest]:
        """Wait until at least ``n`` kept requests match ``endpoint``; raises TimeoutError."""
        reached, found = wait_for_matches(
            self._cond,
            lambda: [r for r in self._entries if endpoint is None or r.endpoint == endpoint],
            n,
            timeout,
        )
        if reached:
            return found
        raise TimeoutError(
            f"expected {n} requests to {endpoint or 'any endpoint'}, "
            f"got {len(found)} within {timeout} s"
        )


def wait_for_matches(
    cond: threading.Condition, matching: Callable[[], list[_T]], n: int, timeout: float
) -> tuple[bool, list[_T]]:
    """Wait on ``cond`` until ``matching()`` returns at least ``n`` items, or ``timeout`` s.

    Acquires ``cond`` itself; ``matching`` runs with it held (and again after each
    notification). Returns ``(reached, the last matching() result)``, so a caller can say
    how many it got on a timeout:

    >>> reached, found = wait_for_matches(cond, lambda: [r for r in log if r.ok], 2, 5.0)
    ... # doctest: +SKIP
    """
    found: list[_T] = []

    def enough() -> bool:
        nonlocal found
        found = matching()
        return len(found) >= n

    with cond:
        reached = cond.wait_for(enough, timeout)
    return reached, found
