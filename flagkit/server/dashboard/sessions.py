"""Dashboard sign-in: sessions behind an HttpOnly, SameSite=Strict cookie, with CSRF tokens.

A session is created by posting the admin token; the cookie holds a random session id
(never the token). Every change must carry the session's CSRF token in the
``X-CSRF-Token`` header. Sessions live in memory: a restart signs everyone out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final

__all__ = ["COOKIE_NAME", "Session", "SessionStore"]

COOKIE_NAME: Final = "flagkit_dashboard"
_MAX_SESSIONS: Final = 64
_LIFETIME_SECONDS: Final = 12 * 3600.0


@dataclass(frozen=True)
class Session:
    """One signed-in browser: its cookie id, CSRF token and expiry (monotonic seconds)."""

    id: str
    csrf: str
    expires: float

    def __repr__(self) -> str:  # never show the secrets
        return "Session(<redacted>)"

    def csrf_matches(self, given: str) -> bool:
        """Whether ``given`` is this session's CSRF token (constant-time)."""
        return hmac.compare_digest(given.encode("utf-8", "replace"), self.csrf.encode("ascii"))


class SessionStore:
    """The open sessions (at most 64; the oldest is dropped first). Thread-safe."""

    def __init__(self, lifetime: float = _LIFETIME_SECONDS) -> None:
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lifetime = lifetime

    def create(self) -> Session:
        """A new session."""
        session = Session(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.monotonic() + self._lifetime
        )
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > _MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None (unknown or expired)."""
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if session.expires <= time.monotonic():
                del self._sessions[session_id]
                return None
            return session

    def end(self, session_id: str | None) -> None:
        """Sign out (idempotent)."""
        if session_id:
            with self._lock:
                self._sessions.pop(session_id, None)
