"""The data source: loads the flags, keeps them current, and writes the store.

:class:`DataSource` owns everything about getting flags from the server:

- the **first load** (``GET /sdk/init``): in the foreground (:meth:`DataSource.initialize`,
  retried with backoff until its deadline) or in the background (:meth:`DataSource.start`);
  a first load that fails for any reason but a rejected API key is retried in the
  background, with backoff, until it succeeds. Only an ``AuthenticationError`` that is not
  recoverable (401/403: the key is rejected) is permanent: the source is then ``FAILED``;
- **updates** after it: SSE streaming (:mod:`~flagkit.core.updates.streaming`) with polling
  of ``GET /sdk/updates?since=cursor`` (:mod:`~flagkit.core.updates.polling`) as the
  fallback; a healthy stream renews the snapshot's freshness, a (re)connected one triggers
  one catch-up poll for what changed while it was not listening;
- the **cursor** and the server's polling-interval and SDK-version advice.

Payloads are parsed by :mod:`~flagkit.core.updates.wire` and applied to the
:class:`~flagkit.core.store.FlagStore` here; the owner (the client) hears only
``ready`` / ``failed`` / ``changed`` / ``error`` through :class:`SourceListener`, called
with no lock held. Nothing calls back into the owner to parse or apply.

States (:class:`ClientState`)::

    NEW ─start()/initialize()─▶ STARTING ─first load─▶ READY
                                   │  (retried with backoff; any failure but a rejected key)
                                   └─ rejected key ─▶ FAILED       any ─close()─▶ CLOSED
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Final, Protocol

from flagkit.core.store import FlagStore
from flagkit.core.updates.polling import PollingManager
from flagkit.core.updates.wire import (
    parse_init,
    parse_stream_event,
    parse_updates,
    version_advice,
)
from flagkit.errors import (
    AuthenticationError,
    CircuitOpenError,
    FlagKitError,
    InitializationError,
)
from flagkit.types.config import FlagKitOptions
from flagkit.types.flag import FlagState

if TYPE_CHECKING:
    from flagkit.core.updates.streaming import StreamingManager
    from flagkit.http.http_client import HttpClient

__all__ = [
    "ClientState",
    "DataSource",
    "ReadyWait",
    "SourceListener",
    "UpdateSource",
    "as_flagkit_error",
    "is_permanent",
]

_MIN_INTERVAL: Final = 0.01  # polling faster than 100/s is a mistake, not a setting
_FIRST_LOAD_RETRY: Final = 1.0  # first background retry of a failed first load (then doubling)
_FOREGROUND_RETRY: Final = 0.1  # first retry inside initialize()'s deadline (then doubling)


class ClientState(str, enum.Enum):
    """Where a client is in its life.

    ``NEW`` (constructed, nothing started) → ``STARTING`` (first load in progress or being
    retried) → ``READY`` (flags loaded, or offline) → ``CLOSED``. ``FAILED`` means the
    first load failed for a reason retrying cannot fix (a rejected API key): the client
    serves bootstrap, persisted and default values and does not retry.
    """

    NEW = "new"
    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    CLOSED = "closed"


class SourceListener(Protocol):
    """What a :class:`DataSource` tells its owner. Called with no source lock held."""

    def source_ready(self) -> None:
        """The first load succeeded (or the source is offline): the store holds flags."""

    def source_failed(self, error: FlagKitError) -> None:
        """The first load failed for good (a rejected API key)."""

    def source_error(self, error: FlagKitError) -> None:
        """A load or update failed: the first error of each failing streak."""

    def source_changed(self, flags: list[FlagState] | None) -> None:
        """The store was written. ``flags`` are the flags added or updated (``None`` for
        the first load, which is announced by :meth:`source_ready` instead)."""


class UpdateSource(Protocol):
    """What the client drives: a :class:`DataSource`, or the fleet mode's source
    (``flagkit.fleet``, when ``redis_url`` is set) that wraps one."""

    @property
    def state(self) -> ClientState:
        """The lifecycle state."""

    @property
    def last_error(self) -> FlagKitError | None:
        """The most recent load/update error."""

    @property
    def environment_id(self) -> str:
        """The environment id (``""`` before the first load)."""

    def start(self) -> None:
        """Begin loading in the background."""

    def initialize(self, timeout: float) -> None:
        """Load now, within ``timeout`` seconds."""

    def wait_ready(self, timeout: float) -> bool:
        """Wait for READY."""

    def refresh(self, timeout: float) -> bool:
        """Fetch changes now."""

    def close(self) -> None:
        """Stop. Idempotent."""

    def after_fork(self) -> None:
        """Restart in a forked child."""


def as_flagkit_error(exc: BaseException) -> FlagKitError:
    """``exc`` itself when it is a ``FlagKitError``, else wrapped in ``INIT_FAILED``."""
    if isinstance(exc, FlagKitError):
        return exc
    return InitializationError("INIT_FAILED", f"{type(exc).__name__}: {exc}", cause=exc)


def is_permanent(error: FlagKitError) -> bool:
    """Whether retrying the first load cannot help: the server rejected the API key.

    Decided on the error class, not on ``recoverable`` alone: a 404, 408, 400, 409, 425 or
    a redirect at start is a passing fault of a server being deployed, not a verdict.
    """
    return isinstance(error, AuthenticationError) and not error.recoverable


def _retried_by_http(error: FlagKitError) -> bool:
    """Whether the HTTP client already retried ``error`` with backoff within the deadline
    (recoverable network and server faults), or says not to send at all (circuit open):
    retrying those again here would only trip the circuit breaker sooner."""
    # Imported here: flagkit.http pulls in httpx, which a client that never loads over the
    # network (offline, tests) does not need to import.
    from flagkit.http.responses import retried_within_call

    return isinstance(error, CircuitOpenError) or (
        error.recoverable
        and not isinstance(error, AuthenticationError)
        and retried_within_call(error)
    )


class ReadyWait:
    """The wait for READY that every update source offers: ``_state`` and the ``_ready``
    event (set on READY, FAILED and CLOSED) are the source's own."""

    _state: ClientState
    _ready: threading.Event

    def wait_ready(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for READY; False at once when FAILED or CLOSED."""
        if self._state is ClientState.READY:
            return True
        if self._current() in (ClientState.FAILED, ClientState.CLOSED):
            return False
        self._ready.wait(max(0.0, timeout))
        return self._current() is ClientState.READY

    def _current(self) -> ClientState:
        # A method call, so type checkers do not carry narrowing across other threads' writes.
        return self._state


class DataSource(ReadyWait):
    """Loads flags into ``store`` and keeps them current; see the module docstring.

    >>> source = DataSource(options, store, http_factory, listener, logger)  # doctest: +SKIP
    >>> source.initialize()        # or start(); then wait_ready(timeout)

    ``http`` builds (once) the shared :class:`~flagkit.http.HttpClient`; it is called only
    when a request is about to be made, so an offline source never imports httpx.
    Thread-safe.
    """

    def __init__(
        self,
        options: FlagKitOptions,
        store: FlagStore,
        http: Callable[[], HttpClient],
        listener: SourceListener,
        logger: logging.Logger,
    ) -> None:
        self._options = options
        self._store = store
        self._http = http
        self._listener = listener
        self._logger = logger
        self._lock = threading.Lock()
        self._ready = threading.Event()  # set on READY, FAILED and CLOSED
        self._state = ClientState.NEW
        self._loaded = False
        self._foreground = False
        self._last_error: FlagKitError | None = None
        self._error_streak = False
        self._cursor: str | None = None
        self._environment_id = ""
        self._server_interval: float | None = None
        self._catch_up = False
        self._poller: PollingManager | None = None
        self._streaming: StreamingManager | None = None

    # -- state ----------------------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The lifecycle state."""
        return self._state

    @property
    def last_error(self) -> FlagKitError | None:
        """The most recent load/update error (``None`` after a success)."""
        return self._last_error

    @property
    def environment_id(self) -> str:
        """The environment id from ``/sdk/init`` (``""`` before the first load / offline)."""
        return self._environment_id

    @property
    def cursor(self) -> str | None:
        """The ``since`` of the next ``/sdk/updates`` request."""
        return self._cursor

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Begin the first load in the background (idempotent; no-op once started)."""
        with self._lock:
            if self._state is not ClientState.NEW:
                return
            self._state = ClientState.STARTING
        if self._options.offline:
            self._become_ready()
            return
        self._start_poller(first_load=True)

    def initialize(self, timeout: float) -> None:
        """Load the flags now, retrying with backoff for up to ``timeout`` seconds.

        Returns once READY. Raises the ``AuthenticationError`` of a rejected key (the
        source is then FAILED), the last error when the deadline passed (loading goes on in
        the background), ``InitializationError`` (``INIT_TIMEOUT``) when another thread's
        load did not finish in time, and ``RuntimeError`` after :meth:`close`.
        """
        with self._lock:
            state = self._state
            if state is ClientState.CLOSED:
                raise RuntimeError("this FlagKitClient is closed; create a new one")
            if state is ClientState.READY:
                return
            if state is ClientState.FAILED and self._last_error is not None:
                raise self._last_error
            background = self._poller is not None or self._foreground
            if not background:
                self._state = ClientState.STARTING
                self._foreground = not self._options.offline
        if self._options.offline:
            self._become_ready()
            return
        if background:
            if self.wait_ready(timeout):
                return
            error = self._last_error
            if error is not None:
                raise error
            raise InitializationError("INIT_TIMEOUT", f"flags not loaded within {timeout}s")
        # Build the HTTP client (and pay httpx's one-time import) before the clock starts,
        # so a short ``timeout`` bounds the requests and not the import.
        self._http()
        deadline = time.monotonic() + timeout
        try:
            self._first_load_with_retries(deadline)
        except Exception as exc:
            error = as_flagkit_error(exc)
            self._first_load_failed(error)
            if error is exc:
                raise
            raise error from exc
        finally:
            with self._lock:
                self._foreground = False
        self._first_load_succeeded()

    def refresh(self, timeout: float) -> bool:
        """Fetch changes now (the first load if it has not happened); returns whether the
        request succeeded. Errors are logged, never raised."""
        if self._options.offline or self._state in (ClientState.CLOSED, ClientState.FAILED):
            return False
        deadline = time.monotonic() + timeout
        try:
            if not self._loaded:
                self._load_init(deadline)
                self._first_load_succeeded()
            else:
                self._poll_updates(deadline)
        except Exception as exc:
            error = as_flagkit_error(exc)
            self._last_error = error
            self._logger.warning("refresh failed: %s", error)
            return False
        return True

    def close(self) -> None:
        """Stop polling and streaming; wake every waiter. Idempotent."""
        with self._lock:
            self._state = ClientState.CLOSED
            poller, self._poller = self._poller, None
            streaming, self._streaming = self._streaming, None
        self._ready.set()
        if poller is not None:
            poller.stop()
        if streaming is not None:
            try:
                streaming.stop()
            except Exception:
                self._logger.exception("stopping the stream failed")

    def after_fork(self) -> None:
        """In a forked child: fresh lock and event; polling and streaming restarted on new
        threads. The parent's poller and stream (threads, connection) are dropped untouched:
        they belong to the parent."""
        self._lock = threading.Lock()
        self._ready = threading.Event()
        state = self._state
        if state in (ClientState.READY, ClientState.CLOSED, ClientState.FAILED):
            self._ready.set()
        self._foreground = False
        had_poller = self._poller is not None
        had_stream = self._streaming is not None
        self._poller = None
        self._streaming = None
        if state in (ClientState.CLOSED, ClientState.FAILED, ClientState.NEW):
            return
        if not self._loaded:
            self._start_poller(first_load=True)
            return
        if had_stream:
            self._start_streaming()
        if had_poller:
            self._catch_up = True
            self._start_poller(first_load=False)
            poller = self._poller
            if poller is not None:
                poller.wake()

    # -- first load -----------------------------------------------------------------------

    def _first_load_with_retries(self, deadline: float) -> None:
        delay = _FOREGROUND_RETRY
        while True:
            try:
                self._load_init(deadline)
                return
            except Exception as exc:
                error = as_flagkit_error(exc)
                remaining = deadline - time.monotonic()
                if isinstance(error.retry_after, (int, float)) and error.retry_after > 0:
                    delay = max(delay, float(error.retry_after))  # the server asked us to wait
                if (
                    is_permanent(error)
                    or _retried_by_http(error)
                    or remaining <= delay
                    or self._state is ClientState.CLOSED
                ):
                    raise
                self._logger.info("first load failed (%s); retrying in %.2fs", error, delay)
                if self._ready.wait(delay):  # set by close(), or by a refresh() that loaded
                    if self._current() is ClientState.READY:
                        return
                    raise
                delay = min(delay * 2.0, 2.0)

    def _first_load_failed(self, error: FlagKitError) -> None:
        self._last_error = error
        self._error_streak = True  # background retries of this outage stay quiet
        self._listener.source_error(error)
        if not is_permanent(error):
            self._logger.warning("first load failed (%s); retrying in the background", error)
            retry = min(self._poll_interval(), _FIRST_LOAD_RETRY)
            self._start_poller(first_load=True, initial_delay=retry)
            return
        self._fail(error)

    def _fail(self, error: FlagKitError) -> None:
        self._logger.error("first load failed (%s); not retrying", error)
        with self._lock:
            if self._state is ClientState.CLOSED:
                return
            self._state = ClientState.FAILED
            poller, self._poller = self._poller, None
        self._ready.set()  # wake waiters: nothing more will happen
        if poller is not None:
            poller.stop()
        self._listener.source_failed(error)

    def _first_load_succeeded(self) -> None:
        with self._lock:
            if self._loaded and self._state is ClientState.READY:
                return
            self._loaded = True
            if self._state is ClientState.CLOSED:
                return
            self._last_error = None
            self._error_streak = False
            poller = self._poller
            start_streaming = self._streaming is None and self._options.streaming.enabled
        if start_streaming:
            self._start_streaming()
        keep_updating = self._options.enable_polling or self._options.streaming.enabled
        if poller is not None:
            if keep_updating:
                poller.set_interval(self._poll_interval())
            else:  # the loop only existed for the first load
                with self._lock:
                    self._poller = None
                poller.stop()
        elif keep_updating:
            self._start_poller(first_load=False)
        self._become_ready()

    def _become_ready(self) -> None:
        with self._lock:
            if self._state is not ClientState.STARTING and self._state is not ClientState.NEW:
                return
            self._state = ClientState.READY
        self._ready.set()
        self._listener.source_ready()

    # -- loops ----------------------------------------------------------------------------

    def _poll_interval(self) -> float:
        configured = float(self._options.polling_interval)
        server = self._server_interval
        interval = configured if server is None else max(configured, server)
        return max(interval, _MIN_INTERVAL)

    def _start_poller(self, *, first_load: bool, initial_delay: float | None = None) -> None:
        """Create and start the updates loop.

        With ``first_load`` the loop first (re)tries ``/sdk/init`` — at once unless
        ``initial_delay`` says otherwise — backing off from 1 s (or the polling interval,
        if shorter); after it succeeds the base interval becomes the polling interval.
        """
        interval = self._poll_interval()
        if first_load:
            interval = min(interval, _FIRST_LOAD_RETRY)
            if initial_delay is None:
                initial_delay = 0.0
        poller = PollingManager(
            self._tick,
            interval=interval,
            logger=self._logger.getChild("poller"),
            initial_delay=initial_delay,
        )
        with self._lock:
            if self._state is ClientState.CLOSED or self._poller is not None:
                return
            self._poller = poller
        poller.start()

    def _start_streaming(self) -> None:
        from flagkit.core.updates.streaming import StreamingManager

        manager = StreamingManager(
            self._http(),
            self._options.streaming,
            on_event=self._on_stream_event,
            on_connected=self._on_stream_connected,
            on_fallback=self._on_stream_fallback,
            logger=self._logger.getChild("streaming"),
        )
        with self._lock:
            if self._state is ClientState.CLOSED or self._streaming is not None:
                return
            self._streaming = manager
        try:
            manager.start()
        except Exception:
            self._logger.exception("could not start streaming; polling instead")

    def _streaming_connected(self) -> bool:
        streaming = self._streaming
        return streaming is not None and streaming.state == "connected"

    def _tick(self) -> None:
        """One iteration of the updates loop (runs on ``flagkit-poller``); raising makes
        the loop back off."""
        if self._state in (ClientState.CLOSED, ClientState.FAILED):
            return
        deadline = time.monotonic() + self._options.timeout
        if not self._loaded:
            try:
                self._load_init(deadline)
            except Exception as exc:
                error = as_flagkit_error(exc)
                self._background_failure(error)
                if is_permanent(error):
                    self._fail(error)
                    return
                if error is exc:
                    raise
                raise error from exc
            self._first_load_succeeded()
            return
        catch_up = self._catch_up
        if self._streaming_connected() and not catch_up:
            self._store.renew()  # the stream is healthy: the flags are current
            return
        if not self._options.enable_polling and not catch_up:
            return
        self._catch_up = False
        try:
            self._poll_updates(deadline)
        except Exception as exc:
            if catch_up:
                self._catch_up = True  # still owed: try again next tick
            error = as_flagkit_error(exc)
            self._background_failure(error)
            if error is exc:
                raise
            raise error from exc
        self._error_streak = False
        self._last_error = None

    def _background_failure(self, error: FlagKitError) -> None:
        """Record a background error; the listener hears the first of each failing streak."""
        self._last_error = error
        if not self._error_streak:
            self._error_streak = True
            self._listener.source_error(error)

    # -- requests -------------------------------------------------------------------------

    def _load_init(self, deadline: float) -> None:
        """``GET /sdk/init`` and replace the store's flags (raises a ``FlagKitError``)."""
        data = self._http().get_json("/sdk/init", deadline=deadline)
        payload = parse_init(data, self._logger)
        previous_source = self._store.snapshot.source
        changes = self._store.apply(**payload.change.as_kwargs())
        if payload.environment_id is not None:
            self._environment_id = payload.environment_id
        if payload.cursor is not None:
            self._cursor = payload.cursor
        if payload.polling_interval is not None:
            self._server_interval = payload.polling_interval
        if payload.metadata is not None:
            version_advice(payload.metadata, self._logger)
        self._logger.info(
            "loaded %d flags%s",
            len(payload.change.full or ()),
            f" for environment {payload.environment!r}" if payload.environment else "",
        )
        # A reload over server data is an update; the very first load is announced as ready.
        self._listener.source_changed(
            changes.updated if previous_source != "empty" and changes else None
        )

    def _poll_updates(self, deadline: float) -> None:
        """``GET /sdk/updates?since=cursor`` and apply the changes (raises a ``FlagKitError``)."""
        since = self._cursor
        if not since:
            since = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
        data = self._http().get_json("/sdk/updates", params={"since": since}, deadline=deadline)
        change, cursor = parse_updates(data, self._logger)
        changes = self._store.apply(**change.as_kwargs())
        if cursor is not None:
            self._cursor = cursor
        if changes:
            self._listener.source_changed(changes.updated)

    # -- streaming callbacks (on the flagkit-stream thread) -------------------------------

    def _on_stream_event(self, name: str, data: object) -> None:
        try:
            change = parse_stream_event(name, data, self._logger)
        except (KeyError, TypeError, ValueError) as exc:
            self._logger.warning("ignoring malformed %r stream event: %s", name, exc)
            return
        if change is None:
            self._logger.debug("ignoring stream event %r", name)
            return
        changes = self._store.apply(**change.as_kwargs())
        if changes:
            self._listener.source_changed(changes.updated)

    def _on_stream_connected(self) -> None:
        self._logger.info("streaming connected")
        self._catch_up = True  # fetch what changed while the stream was not listening
        poller = self._poller
        if poller is not None:
            poller.wake()

    def _on_stream_fallback(self, reason: str) -> None:
        if self._options.enable_polling:
            self._logger.warning("streaming unavailable (%s); polling instead", reason)
        else:
            self._logger.warning(
                "streaming unavailable (%s) and enable_polling=False: flags are not updated "
                "until the stream comes back",
                reason,
            )
        poller = self._poller
        if poller is not None:
            poller.wake()
