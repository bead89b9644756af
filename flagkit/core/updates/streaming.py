"""Flag updates over server-sent events: the SSE parser and the streaming state machine.

docs/protocol.md §4.5 (framing), §6 (client behaviour) and §20.1 (lines split on ``\\n``,
``\\r\\n``, ``\\r`` only — done by :meth:`flagkit.http.HttpClient.open_event_stream`).

:class:`StreamingManager` states::

    disconnected ─start()─▶ connecting ─2xx stream─▶ connected (failures reset at 1st event)
         ▲                     │   ▲                    │ failure (token/HTTP error, EOF,
         │ stop()              │   └── reconnecting ◀───┘ heartbeat timeout, error event)
         │                     ▼        (backoff min(reconnect_interval*2^(n-1), max_backoff))
         └─────────────── failed: n >= max_reconnect_attempts ─▶ on_fallback(reason);
                                  streaming is tried again after retry_after_fallback
                                  (never after SUBSCRIPTION_SUSPENDED / STREAMING_UNAVAILABLE)

Threads: ``flagkit-stream`` connects and reads (reads block, so it cannot watch the clock);
``flagkit-stream-monitor`` does the clock work while connected — the heartbeat deadline
(no ``heartbeat`` event for ``2 x heartbeat_interval`` is a failure) and the token refresh at
``0.8 x expiresIn`` (a failed refresh drops the connection and reconnects at once). Both are
daemons, sleep on events and end promptly on :meth:`StreamingManager.stop`, which shuts the
open stream's socket down from the calling thread.

Decisions where the protocol leaves room: a clean end of stream is a failure (§6.2);
the consecutive-failure count is reset once a connection delivers its first event (not on
the bare 2xx of §6.2.2), so a server that accepts streams and drops them at once still
escalates the backoff and ends in the polling fallback; ``TOKEN_EXPIRED``/``TOKEN_INVALID``
reconnect at once when the connection had delivered something, otherwise they count as a
failure (a server rejecting every token cannot make the client spin); unparsable JSON in a
data event is logged and skipped, while an unparsable ``error`` event is a failure.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from flagkit.errors import FlagKitError
from flagkit.http.sse import SseParser
from flagkit.types.config import StreamingOptions

if TYPE_CHECKING:
    from flagkit.http.http_client import EventStream, HttpClient

__all__ = [
    "CONNECTED",
    "CONNECTING",
    "DISCONNECTED",
    "FAILED",
    "RECONNECTING",
    "StreamingManager",
    "reconnect_delay",
]

DISCONNECTED: Final = "disconnected"
CONNECTING: Final = "connecting"
CONNECTED: Final = "connected"
RECONNECTING: Final = "reconnecting"
FAILED: Final = "failed"

_JOIN_TIMEOUT: Final = 2.0
_PERMANENT_CODES: Final = frozenset({"SUBSCRIPTION_SUSPENDED", "STREAMING_UNAVAILABLE"})
_TOKEN_CODES: Final = frozenset({"TOKEN_EXPIRED", "TOKEN_INVALID"})


def reconnect_delay(failures: int, options: StreamingOptions) -> float:
    """Seconds before reconnect attempt ``failures`` (1-based), docs/protocol.md §6.2.

    >>> [reconnect_delay(n, StreamingOptions()) for n in (1, 2, 3, 5)]
    [3.0, 6.0, 12.0, 30.0]
    """
    exponent = min(max(failures - 1, 0), 60)
    return float(min(options.reconnect_interval * 2**exponent, options.max_backoff))


# -- the state machine -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: Literal["failure", "reconnect", "permanent", "stopped"]
    reason: str = ""
    connected: bool = False


@dataclass(slots=True)
class _Connection:
    ident: int
    stream: EventStream
    last_heartbeat: float
    refresh_at: float | None
    received: bool = False
    abort: _Outcome | None = None


class StreamingManager:
    """Keep an SSE connection to ``/sdk/stream`` and report its events (docs/protocol.md §6).

    >>> manager = StreamingManager(http, StreamingOptions(), on_event=apply,   # doctest: +SKIP
    ...     on_connected=stop_polling, on_fallback=start_polling, logger=log)
    >>> manager.start(); ...; manager.stop()                                    # doctest: +SKIP

    ``on_event(name, data)`` gets every named event with JSON data except ``heartbeat`` and
    ``error`` (``flag_updated``, ``flag_deleted``, ``flags_reset``, ``segment_*``, ...);
    ``on_connected()`` runs after each successful (re)connection; ``on_fallback(reason)``
    when streaming gives up (the client should poll until ``on_connected`` again). Callbacks
    run on the ``flagkit-stream`` thread, never under a lock; one that raises is logged.

    Thread-safe; ``start()`` is idempotent and ``stop()`` returns promptly.
    """

    def __init__(
        self,
        http: HttpClient,
        options: StreamingOptions,
        *,
        on_event: Callable[[str, Any], None],
        on_connected: Callable[[], None],
        on_fallback: Callable[[str], None],
        logger: logging.Logger,
    ) -> None:
        self._http = http
        self._options = options
        self._on_event = on_event
        self._on_connected = on_connected
        self._on_fallback = on_fallback
        self._logger = logger
        self._lock = threading.Lock()
        self._state = DISCONNECTED
        self._stop = threading.Event()
        self._stop.set()  # not running until start()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._monitor: threading.Thread | None = None
        self._connection: _Connection | None = None
        self._next_ident = 0
        self._token: str | None = None
        self._last_error: str | None = None

    # -- public -------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``disconnected``, ``connecting``, ``connected``, ``reconnecting`` or ``failed``."""
        with self._lock:
            return self._state

    @property
    def running(self) -> bool:
        """Whether the ``flagkit-stream`` thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def last_error(self) -> str | None:
        """Why the last connection failed or ended, if one did."""
        with self._lock:
            return self._last_error

    def start(self) -> None:
        """Start the threads (idempotent; also restarts after :meth:`stop`)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and not self._stop.is_set():
                return
            stop = threading.Event()
            self._stop = stop
            self._wake = threading.Event()
            self._state = CONNECTING
            self._thread = threading.Thread(
                target=self._run, args=(stop,), name="flagkit-stream", daemon=True
            )
            self._monitor = threading.Thread(
                target=self._monitor_run, args=(stop,), name="flagkit-stream-monitor", daemon=True
            )
            thread, monitor = self._thread, self._monitor
        thread.start()
        monitor.start()

    def stop(self) -> None:
        """Close the stream and end both threads (waits at most a couple of seconds, only
        when a token request is in flight). Idempotent; callable from a callback."""
        with self._lock:
            self._stop.set()
            connection = self._connection
            threads = [t for t in (self._thread, self._monitor) if t is not None]
            self._state = DISCONNECTED
        self._wake.set()
        if connection is not None:
            connection.stream.close()
        current = threading.current_thread()
        for thread in threads:
            if thread is not current:
                thread.join(_JOIN_TIMEOUT)
                if thread.is_alive():
                    self._logger.debug("%s still finishing a request after stop()", thread.name)

    # -- stream thread ------------------------------------------------------------------

    def _set_state(self, stop: threading.Event, state: str) -> None:
        with self._lock:
            if not stop.is_set():
                self._state = state

    def _run(self, stop: threading.Event) -> None:
        failures = 0
        options = self._options
        while not stop.is_set():
            self._set_state(stop, CONNECTING)
            try:
                outcome = self._connect_once(stop)
            except Exception as exc:  # a bug must not kill streaming silently
                self._logger.exception("streaming connection crashed")
                outcome = _Outcome("failure", f"internal error: {exc!r}")
            if stop.is_set() or outcome.kind == "stopped":
                break
            with self._lock:
                self._last_error = outcome.reason
            if outcome.connected:
                failures = 0
            if outcome.kind == "reconnect":
                self._logger.info("event stream: %s; reconnecting", outcome.reason)
                continue
            if outcome.kind == "permanent":
                self._set_state(stop, FAILED)
                self._logger.error(
                    "streaming unavailable (%s); falling back to polling", outcome.reason
                )
                self._call(stop, self._on_fallback, outcome.reason)
                return
            failures += 1
            if failures >= options.max_reconnect_attempts:
                self._set_state(stop, FAILED)
                self._logger.warning(
                    "streaming failed %d times (last: %s); falling back to polling, "
                    "retrying streaming in %gs",
                    failures,
                    outcome.reason,
                    options.retry_after_fallback,
                )
                self._call(stop, self._on_fallback, outcome.reason)
                if stop.wait(options.retry_after_fallback):
                    break
                failures = 0
                continue
            delay = reconnect_delay(failures, options)
            self._set_state(stop, RECONNECTING)
            self._logger.warning(
                "event stream failed (%s); reconnect %d/%d in %.2fs",
                outcome.reason,
                failures,
                options.max_reconnect_attempts - 1,
                delay,
            )
            if stop.wait(delay):
                break

    def _connect_once(self, stop: threading.Event) -> _Outcome:
        try:
            token, expires_in = self._http.fetch_stream_token()
        except FlagKitError as error:
            return _Outcome("failure", f"stream token request failed: {error}")
        if stop.is_set():
            return _Outcome("stopped")
        connection: _Connection | None = None
        try:
            with self._http.open_event_stream(token) as stream:
                now = time.monotonic()
                with self._lock:
                    if stop.is_set():
                        stream.close()
                        return _Outcome("stopped")
                    self._next_ident += 1
                    self._token = token
                    connection = _Connection(
                        ident=self._next_ident,
                        stream=stream,
                        last_heartbeat=now,
                        refresh_at=now + 0.8 * expires_in if expires_in > 0 else None,
                    )
                    self._connection = connection
                    self._state = CONNECTED
                self._wake.set()
                self._logger.info("event stream connected")
                self._call(stop, self._on_connected)
                outcome = self._read(stop, connection)
        except FlagKitError as error:
            outcome = _Outcome("failure", f"event stream error: {error}")
        finally:
            with self._lock:
                if connection is not None and self._connection is connection:
                    self._connection = None
            self._wake.set()
        if stop.is_set():
            return _Outcome("stopped")
        if connection is None:
            return outcome
        with self._lock:
            aborted = connection.abort
            healthy = connection.received
        result = aborted or outcome
        return _Outcome(result.kind, result.reason, connected=healthy)

    def _read(self, stop: threading.Event, connection: _Connection) -> _Outcome:
        parser = SseParser()
        for line in connection.stream:
            event = parser.feed(line)
            if event is None:
                continue
            if event.event == "heartbeat":
                with self._lock:
                    connection.last_heartbeat = time.monotonic()
                    connection.received = True
                continue
            if event.event == "error":
                return self._error_event(event.data, connection)
            with self._lock:
                connection.received = True
            try:
                data = json.loads(event.data)
            except (ValueError, RecursionError):
                self._logger.warning("ignoring %r event with invalid JSON data", event.event)
                continue
            self._call(stop, self._on_event, event.event, data)
            if stop.is_set():
                return _Outcome("stopped")
        return _Outcome("failure", "the server ended the event stream")

    def _error_event(self, raw: str, connection: _Connection) -> _Outcome:
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("code"), str):
            return _Outcome("failure", f"unparsable error event: {raw[:100]!r}")
        code: str = payload["code"]
        message = payload.get("message")
        reason = f"{code}: {message}" if isinstance(message, str) and message else code
        if code in _PERMANENT_CODES:
            return _Outcome("permanent", reason)
        if code in _TOKEN_CODES:
            with self._lock:
                healthy = connection.received
            return _Outcome("reconnect" if healthy else "failure", reason)
        if code == "CONNECTION_LIMIT":
            self._logger.warning("event stream connection limit reached: %s", reason)
        return _Outcome("failure", reason)

    def _call(self, stop: threading.Event, fn: Callable[..., None], *args: Any) -> None:
        if stop.is_set():
            return
        try:
            fn(*args)
        except Exception:
            self._logger.exception("streaming callback %s raised", getattr(fn, "__name__", fn))

    # -- monitor thread -----------------------------------------------------------------

    def _monitor_run(self, stop: threading.Event) -> None:
        heartbeat_limit = 2 * self._options.heartbeat_interval
        while not stop.is_set():
            wake = self._wake
            wake.clear()
            last_heartbeat = 0.0
            refresh_at: float | None = None
            with self._lock:
                connection = self._connection
                if connection is not None:
                    last_heartbeat = connection.last_heartbeat
                    refresh_at = connection.refresh_at
            if connection is None:
                wake.wait()
                continue
            now = time.monotonic()
            if now - last_heartbeat >= heartbeat_limit:
                self._abort(
                    connection, _Outcome("failure", f"no heartbeat for {heartbeat_limit:g}s")
                )
                wake.wait()
                continue
            if refresh_at is not None and now >= refresh_at:
                self._refresh_token(stop, connection)
                continue
            until = last_heartbeat + heartbeat_limit
            if refresh_at is not None:
                until = min(until, refresh_at)
            wake.wait(max(until - now, 0.0))

    def _refresh_token(self, stop: threading.Event, connection: _Connection) -> None:
        with self._lock:
            connection.refresh_at = None
        try:
            token, expires_in = self._http.fetch_stream_token()
        except FlagKitError as error:
            if not stop.is_set():
                self._logger.warning("stream token refresh failed: %s; reconnecting", error)
                self._abort(connection, _Outcome("reconnect", f"token refresh failed: {error}"))
            return
        with self._lock:
            if self._connection is connection:
                self._token = token
                if expires_in > 0 and math.isfinite(expires_in):
                    connection.refresh_at = time.monotonic() + 0.8 * expires_in
        self._logger.debug("stream token refreshed")

    def _abort(self, connection: _Connection, outcome: _Outcome) -> None:
        with self._lock:
            if self._connection is not connection or connection.abort is not None:
                return
            connection.abort = outcome
        connection.stream.close()
