"""What the server keeps for its dashboard: sessions, flag history, the read-only switch."""

from __future__ import annotations

from dataclasses import dataclass, field

from flagkit.server.dashboard.history import FlagHistory
from flagkit.server.dashboard.sessions import SessionStore

__all__ = ["DashboardState"]


@dataclass(frozen=True)
class DashboardState:
    """The dashboard's state; ``readonly_open``: reading needs no sign-in
    (``--dashboard-readonly-open``). Every part is thread-safe."""

    readonly_open: bool = False
    sessions: SessionStore = field(default_factory=SessionStore)
    history: FlagHistory = field(default_factory=FlagHistory)
