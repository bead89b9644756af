"""What the HTTP layer of the local server is given: state parts, limits and the admin API.

The request handlers never reach into :class:`~flagkit.server.app.FlagKitServer`: they are
built with one :class:`ServerContext`, which names every part they use. The admin
endpoints call the server's public Python API through the :class:`AdminAPI` protocol, so
the HTTP layer and the server class do not import each other.
"""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from flagkit.server.dashboard.state import DashboardState
from flagkit.server.events import EventRecorder
from flagkit.server.faults import FaultInjector
from flagkit.server.flags_file import EnvironmentInfo, FlagsFileError
from flagkit.server.requests_log import RequestLog
from flagkit.server.store import FlagStore
from flagkit.server.streaming import Broadcaster, TokenRegistry

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_REQUEST_TIMEOUT",
    "AdminAPI",
    "KeyRing",
    "Limits",
    "ServerContext",
]

DEFAULT_MAX_BODY_BYTES: Final = 5 * 1024 * 1024
DEFAULT_MAX_CONNECTIONS: Final = 256
DEFAULT_REQUEST_TIMEOUT: Final = 30.0


@dataclass(frozen=True)
class Limits:
    """Bounds on what one client can make the server hold.

    - ``max_body_bytes``: largest request body, with ``Content-Length`` or chunked (413).
    - ``max_connections``: connections served at once; more wait in the listen backlog.
    - ``request_timeout``: seconds to receive one whole request (request line, headers and
      body), counted from when the server starts waiting for it; then the connection ends.
    - ``heartbeat_interval``: seconds between SSE heartbeats.
    """

    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    heartbeat_interval: float = 15.0


class KeyRing:
    """The accepted API keys; replaced as a whole when the flags file changes. Thread-safe."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys: tuple[tuple[str, ...], tuple[bytes, ...]] = ((), ())
        self.replace(keys)

    def replace(self, keys: Sequence[str]) -> None:
        """Accept exactly ``keys`` from now on (one assignment: readers see old or new)."""
        self._keys = (tuple(keys), tuple(k.encode("utf-8") for k in keys))

    @property
    def keys(self) -> tuple[str, ...]:
        """The accepted keys, in order."""
        return self._keys[0]

    def accepts(self, key: str) -> bool:
        """Whether ``key`` is accepted; compares against every key in constant time."""
        given = key.encode("utf-8", "replace")
        matched = False
        for candidate in self._keys[1]:
            matched |= hmac.compare_digest(given, candidate)
        return matched


class AdminAPI(Protocol):
    """The public Python API of the server that the admin endpoints call."""

    @property
    def base_url(self) -> str: ...
    @property
    def environment(self) -> EnvironmentInfo: ...
    @property
    def flags_file(self) -> Path | None: ...
    @property
    def stream_count(self) -> int: ...

    @property
    def last_reload_error(self) -> FlagsFileError | None: ...

    def flags(self) -> list[dict[str, Any]]: ...
    def get_flag(self, key: str) -> dict[str, Any] | None: ...
    def set_flag(
        self, key: str, value: Any = ..., *, replace: bool = ..., version: int | None = ...,
        **fields: Any,
    ) -> dict[str, Any]: ...  # fmt: skip
    def delete_flag(self, key: str) -> bool: ...
    def segments(self) -> list[dict[str, Any]]: ...
    def get_segment(self, key: str) -> dict[str, Any] | None: ...
    def set_segment(self, key: str, /, **fields: Any) -> dict[str, Any]: ...
    def delete_segment(self, key: str) -> bool: ...
    def reset(
        self,
        flags: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = ...,
        segments: Sequence[Mapping[str, Any]] | None = ...,
        *,
        events: bool = ...,
        faults: bool = ...,
        requests: bool = ...,
    ) -> None: ...
    def clear_events(self) -> None: ...
    def reload_flags_file(self) -> list[str]: ...


@dataclass(frozen=True)
class ServerContext:
    """Everything a request handler may use. Every part is thread-safe."""

    store: FlagStore
    events: EventRecorder
    faults: FaultInjector
    tokens: TokenRegistry
    broadcaster: Broadcaster
    requests: RequestLog
    keys: KeyRing
    limits: Limits
    admin_token: str
    verify_signatures: bool
    stopping: threading.Event
    next_request_id: Callable[[], str]
    admin: AdminAPI
    dashboard: DashboardState | None = None
