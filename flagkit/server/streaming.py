"""Server-Sent Events for the local server: stream tokens, frames and the broadcaster.

Frames follow docs/protocol.md §4.5 and §20.1: an ``event:`` line, one ``data:`` line of
ASCII-only JSON (non-ASCII escaped, so no Unicode line separator can split it) and a blank
line.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
import time
from collections.abc import Callable
from typing import Final, Literal

__all__ = ["Broadcaster", "Subscriber", "TokenRegistry", "encode_frame"]

_QUEUE_LIMIT: Final = 10_000


def encode_frame(event: str, data: object) -> bytes:
    """One SSE frame: ``event: NAME\\ndata: {one-line ASCII JSON}\\n\\n``."""
    payload = json.dumps(data, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return f"event: {event}\ndata: {payload}\n\n".encode("ascii")


class Subscriber:
    """One open stream: a bounded queue of encoded frames (``None`` means "close")."""

    def __init__(self) -> None:
        self.frames: queue.Queue[bytes | None] = queue.Queue(_QUEUE_LIMIT)
        self.closed = False

    def offer(self, frame: bytes | None) -> None:
        """Queue a frame without blocking; a subscriber too slow to keep up is closed."""
        try:
            self.frames.put_nowait(frame)
        except queue.Full:
            self.closed = True


class Broadcaster:
    """Fans frames out to every open stream. Thread-safe; publishing never blocks."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._subscribers: set[Subscriber] = set()
        self._closed = False
        self._taps: tuple[Callable[[str, object], None], ...] = ()

    def add_tap(self, tap: Callable[[str, object], None]) -> None:
        """Also call ``tap(event, data)`` for every published event (not a stream: it is
        not counted and never closed). Taps run on the publisher's thread and must not
        block or raise."""
        with self._cond:
            self._taps = (*self._taps, tap)

    def subscribe(self) -> Subscriber | None:
        """Register a new stream; None once the broadcaster is closed."""
        subscriber = Subscriber()
        with self._cond:
            if self._closed:
                return None
            self._subscribers.add(subscriber)
            self._cond.notify_all()
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        """Forget a stream (idempotent)."""
        with self._cond:
            self._subscribers.discard(subscriber)
            self._cond.notify_all()

    def publish(self, event: str, data: object) -> int:
        """Send one event to every stream; returns how many streams it was queued for."""
        frame = encode_frame(event, data)
        with self._cond:
            targets = list(self._subscribers)
            taps = self._taps
        for tap in taps:
            tap(event, data)
        for subscriber in targets:
            subscriber.offer(frame)
        return len(targets)

    @property
    def count(self) -> int:
        """Number of open streams."""
        with self._cond:
            return len(self._subscribers)

    def wait_for_count(self, n: int, timeout: float) -> bool:
        """Wait until at least ``n`` streams are open; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._subscribers) >= n, timeout)

    def disconnect_all(self) -> int:
        """End every open stream (clients see the connection close); returns how many."""
        with self._cond:
            targets = list(self._subscribers)
            self._subscribers.clear()
            self._cond.notify_all()
        for subscriber in targets:
            subscriber.closed = True
            subscriber.offer(None)
        return len(targets)

    def close(self) -> None:
        """Tell every stream to end and refuse new ones."""
        with self._cond:
            self._closed = True  # subscribe() refuses from here on
        self.disconnect_all()


class TokenRegistry:
    """Short-lived, URL-safe stream tokens (docs/protocol.md §4.4). Thread-safe."""

    def __init__(self, ttl: float) -> None:
        if ttl <= 0:
            raise ValueError(f"token_ttl must be > 0 seconds, got {ttl!r}")
        self.ttl = ttl
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}

    def issue(self) -> str:
        """A new token valid for ``ttl`` seconds."""
        token = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            if len(self._tokens) > 1000:  # forget long-expired tokens now and then
                horizon = now - self.ttl
                self._tokens = {t: exp for t, exp in self._tokens.items() if exp > horizon}
            self._tokens[token] = now + self.ttl
        return token

    def check(self, token: str) -> Literal["ok", "expired", "invalid"]:
        """Whether ``token`` was issued here and is still valid."""
        with self._lock:
            expires = self._tokens.get(token)
        if expires is None:
            return "invalid"
        return "ok" if time.monotonic() < expires else "expired"

    def clear(self) -> None:
        """Invalidate every token."""
        with self._lock:
            self._tokens.clear()
