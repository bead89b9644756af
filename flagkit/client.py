"""``FlagKitClient``: flag evaluation, updates, context and events in one object.

>>> from flagkit import FlagKitClient, FlagKitOptions
>>> client = FlagKitClient(FlagKitOptions(api_key="sdk_...", offline=True,
...                                       bootstrap={"dark-mode": True}))  # doctest: +SKIP
>>> client.initialize()                                                     # doctest: +SKIP
>>> client.get_boolean_value("dark-mode", default=False)                    # doctest: +SKIP
True

How the parts fit (ARCHITECTURE §1 to §5):

- **Store** (:mod:`flagkit.core.cache`): an immutable snapshot swapped atomically; lookups
  never lock. Sources at start, in order: bootstrap (verified), the persisted cache, the
  first load (``/sdk/init``), then live updates — SSE streaming
  (:mod:`flagkit.core.streaming`) with polling (:mod:`flagkit.core.polling_manager`) as
  the fallback.
- **Evaluation**: overrides (``OVERRIDE``) → the snapshot (``CACHED``, or the targeting
  evaluator's reason, or ``STALE_CACHE`` once the snapshot is older than ``cache_ttl``) →
  bootstrap (``BOOTSTRAP``) → the caller's default (``FLAG_NOT_FOUND``). A typed getter on
  a flag without targeting is one dict lookup (no result object, no context merge, no
  lock). Lookups never raise.
- **Context** (:mod:`flagkit.core.context_manager`): global → request scope
  (``context_scope``, on ``contextvars``) → per call.
- **Events** (:mod:`flagkit.core.events`): ``track()`` enqueues; a background thread
  batches and sends.
- **Callbacks** (:mod:`flagkit.core.dispatcher`): ``on_ready``/``on_update``/``on_error`` and
  listeners run on the ``flagkit-dispatch`` thread, never under a lock.
- **Lifecycle**: :class:`ClientState`; ``initialize()`` (blocking), ``start()``
  (background), ``close()`` (idempotent); a forked child restarts its background work by
  itself (``os.register_at_fork``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import hashlib
import logging
import math
import os
import random
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypeVar, overload

from flagkit._version import __version__
from flagkit.core.cache import (
    NEEDS_EVALUATION,
    FlagSnapshot,
    FlagStore,
    parse_flags,
    parse_segments,
)
from flagkit.core.context_manager import (
    ContextManager,
    ContextSource,
    build_context,
    context_from_mapping,
)
from flagkit.core.dispatcher import Dispatcher, Listeners
from flagkit.core.events import EventQueue
from flagkit.core.polling_manager import PollingManager
from flagkit.core.targeting import evaluate as evaluate_flag
from flagkit.errors import (
    FlagKitError,
    InitializationError,
    NetworkError,
    StorageError,
    configure_error_sanitization,
)
from flagkit.storage import FlagCacheStore, create_flag_cache_store
from flagkit.types.config import FlagKitOptions
from flagkit.types.context import EvaluationContext
from flagkit.types.events import EventQueueConfig, EventStats, FlushResult
from flagkit.types.flag import EvaluationReason, EvaluationResult, FlagState, FlagType
from flagkit.utils.logger import build_logger
from flagkit.utils.security import PiiChecker, apply_bootstrap_verification, find_pii
from flagkit.utils.signing import key_id
from flagkit.utils.validators import flag_key_problem, is_valid_flag_key

if TYPE_CHECKING:
    from flagkit.core.streaming import StreamingManager
    from flagkit.http.http_client import HttpClient

__all__ = ["ClientState", "FlagKitClient"]

T = TypeVar("T")

_BOOLEAN: Final = FlagType.BOOLEAN
_STRING: Final = FlagType.STRING
_NUMBER: Final = FlagType.NUMBER
_JSON: Final = FlagType.JSON

_R_OVERRIDE: Final = EvaluationReason.OVERRIDE
_R_CACHED: Final = EvaluationReason.CACHED
_R_STALE: Final = EvaluationReason.STALE_CACHE
_R_BOOTSTRAP: Final = EvaluationReason.BOOTSTRAP
_R_NOT_FOUND: Final = EvaluationReason.FLAG_NOT_FOUND
_R_DEFAULT: Final = EvaluationReason.DEFAULT
_R_ERROR: Final = EvaluationReason.EVALUATION_ERROR

_MIN_INTERVAL: Final = 0.01  # polling faster than 100/s is a mistake, not a setting
_FIRST_LOAD_RETRY: Final = 1.0  # first retry of a failed first load (then doubling)


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


class _Outcome(NamedTuple):
    value: Any
    enabled: bool
    reason: EvaluationReason
    version: int = 0
    variation_id: str | None = None
    rule_id: str | None = None
    segment_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class _LazyContext:
    """Resolves the merged context once, on first need, for one lookup or evaluate_all()."""

    __slots__ = ("_done", "_manager", "_per_call", "_value")

    def __init__(self, manager: ContextManager, per_call: object) -> None:
        self._manager = manager
        self._per_call = per_call
        self._done = False
        self._value: EvaluationContext | None = None

    def get(self) -> EvaluationContext | None:
        if not self._done:
            self._value = self._manager.resolve(_coerce_context(self._per_call))
            self._done = True
        return self._value


def _coerce_context(context: object) -> EvaluationContext | None:
    if context is None or isinstance(context, EvaluationContext):
        return context
    if isinstance(context, Mapping):
        return context_from_mapping(context)
    raise TypeError(
        f"context must be an EvaluationContext, a mapping or None, got {type(context).__name__}"
    )


def _matches(expected: FlagType, value: Any) -> bool:
    """Whether ``value`` has the Python type a getter of ``expected`` returns."""
    if expected is _BOOLEAN:
        return isinstance(value, bool)
    if expected is _STRING:
        return isinstance(value, str)
    if expected is _NUMBER:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        try:
            return math.isfinite(float(value))
        except OverflowError:
            return False
    return isinstance(value, dict)


def _safe_key(key: object) -> str:
    if isinstance(key, str):
        return key
    try:
        return repr(key)[:64]
    except Exception:
        return "<unprintable key>"


def _find_event_pii(data: Mapping[str, Any], data_type: str) -> list[str]:
    """PII findings for the event queue (which itself warns, or refuses in strict mode)."""
    return find_pii(data)


# -- fork safety -------------------------------------------------------------------------

_live_clients: weakref.WeakSet[FlagKitClient] = weakref.WeakSet()
_registry_lock = threading.Lock()
_fork_hook_installed = False


def _track_client(client: FlagKitClient) -> None:
    global _fork_hook_installed
    with _registry_lock:
        _live_clients.add(client)
        if not _fork_hook_installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_installed = True


def _untrack_client(client: FlagKitClient) -> None:
    with _registry_lock:
        _live_clients.discard(client)


def _after_fork_in_child() -> None:
    """Restart the background work of every live client in a freshly forked child."""
    global _registry_lock
    _registry_lock = threading.Lock()
    for client in list(_live_clients):
        try:
            client._after_fork_in_child()
        except Exception:  # one broken client must not stop the others
            logging.getLogger("flagkit").exception("restarting a client after fork failed")


class FlagKitClient:
    """A FlagKit client: evaluates flags locally from a snapshot kept current in the background.

    >>> client = FlagKitClient(api_key="sdk_...", local_port=8200)   # doctest: +SKIP
    >>> client.initialize()              # blocks until the flags are loaded (or raises)
    >>> client.get_boolean_value("dark-mode", default=False)
    >>> client.close()

    Build it from a :class:`FlagKitOptions` or from the same keywords. Construction does no
    network I/O and starts no thread (it applies the bootstrap and loads the persisted flag
    cache, if configured; a tampered, foreign or corrupt cache file is logged, ignored, and
    reported to ``on_error`` once the client starts). Then either:

    - ``initialize()`` — load now, blocking up to ``timeout``; raises
      ``AuthenticationError`` for a rejected key and a recoverable ``NetworkError`` when the
      server cannot be reached in time (the client then keeps retrying in the background and
      serves bootstrap, persisted and default values meanwhile); or
    - ``start()`` — load in the background, never raising for network faults; pair it with
      ``wait_for_ready(timeout)``.

    Flag lookups never raise: on any problem they return the caller's default with a reason.
    Configuration mistakes raise ``ConfigurationError`` at construction.

    Thread-safe: share one client across threads and asyncio tasks. Lookups take no lock.

    Raises ``ConfigurationError`` for bad options, ``SecurityError`` for a bootstrap that
    fails verification with ``on_failure="error"``.
    """

    def __init__(self, options: FlagKitOptions | None = None, **kwargs: Any) -> None:
        if options is None:
            options = FlagKitOptions(**kwargs)
        elif not isinstance(options, FlagKitOptions):
            raise TypeError(
                f"options must be a FlagKitOptions, got {type(options).__name__}; "
                "or pass the options as keywords"
            )
        elif kwargs:
            options = dataclasses.replace(options, **kwargs)
        self._options = options
        configure_error_sanitization(options.error_sanitization)
        self._logger = build_logger(
            options.logger,
            debug=options.debug,
            secrets=(options.api_key, options.secondary_api_key),
        )
        self._session_id = str(uuid.uuid4())
        self._pii = PiiChecker(strict=options.strict_pii_mode, logger=self._logger)
        self._contexts = ContextManager(self._logger)
        self._jitter = options.evaluation_jitter
        self._overrides: dict[str, Any] = {}
        self._fast = not self._jitter.enabled

        bootstrap = apply_bootstrap_verification(
            options.bootstrap, options.api_key, options.bootstrap_verification, self._logger
        )
        self._store = FlagStore(
            ttl=options.cache_ttl,
            logger=self._logger,
            bootstrap=self._clean_bootstrap(bootstrap or {}),
            persistence=self._build_persistence(),
        )

        self._lock = threading.Lock()
        self._state = ClientState.NEW
        self._ready = threading.Event()
        self._loaded = False
        self._loading_in_foreground = False
        self._last_error: FlagKitError | None = None
        self._error_streak = False
        self._cursor: str | None = None
        self._environment_id = ""
        self._server_interval: float | None = None
        self._catch_up = False
        self._persist_pending = False
        self._http: HttpClient | None = None
        self._poller: PollingManager | None = None
        self._streaming: StreamingManager | None = None

        self._dispatcher = Dispatcher(self._logger.getChild("dispatch"))
        self._update_listeners: Listeners[Callable[[list[FlagState]], None]] = Listeners()
        self._ready_listeners: Listeners[Callable[[], None]] = Listeners()
        self._error_listeners: Listeners[Callable[[Exception], None]] = Listeners()

        self._events = EventQueue(
            EventQueueConfig(
                batch_size=options.event_batch_size,
                flush_interval=options.event_flush_interval,
                max_queue_size=options.max_event_queue_size,
                lenient=options.lenient_tracking,
                offline=options.offline,
                strict_pii=options.strict_pii_mode,
                persist=options.persist_events,
                storage_path=options.event_storage_path,
                max_persisted_events=options.max_persisted_events,
                persistence_flush_interval_ms=options.persistence_flush_interval,
            ),
            sender=self._send_events,
            session_id=self._session_id,
            sdk_version=__version__,
            logger=self._logger.getChild("events"),
            on_error=self._report_error,
            pii_check=_find_event_pii,
        )

        # Errors found while constructing (a rejected persisted cache), reported to on_error
        # and the error listeners by the first start()/initialize(): construction starts no
        # thread, and a listener added right after construction still hears about them.
        self._deferred_errors: list[FlagKitError] = []
        self._load_persisted()
        _track_client(self)

    # ------------------------------------------------------------------------------------
    # construction helpers

    def _clean_bootstrap(self, flags: Mapping[str, Any]) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for key, value in flags.items():
            if is_valid_flag_key(key):
                clean[key] = value
            else:
                self._logger.warning("ignoring bootstrap value: %s", flag_key_problem(key))
        return clean

    def _build_persistence(self) -> FlagCacheStore | None:
        options = self._options
        if not (options.persist_cache or options.cache_storage_path or options.encrypt_cache):
            return None
        directory = options.cache_storage_path or os.path.join(
            tempfile.gettempdir(), "flagkit", "cache"
        )
        # The owner tag binds the file to this API key without revealing it.
        owner = hashlib.sha256(options.api_key.encode("utf-8")).hexdigest()[:16]
        return create_flag_cache_store(
            directory,
            api_key=options.api_key,
            storage_key=options.cache_storage_key,
            encrypt=options.encrypt_cache,
            owner=owner,
        )

    def _load_persisted(self) -> None:
        if self._store.persistence is None:
            return
        try:
            self._store.load_persisted()
        except StorageError as exc:
            self._logger.warning(
                "persisted flag cache rejected (%s); it will be replaced on the next save", exc
            )
            self._deferred_errors.append(exc)
        except Exception:
            self._logger.exception("could not load the persisted flag cache; ignoring it")

    def _report_deferred_errors(self) -> None:
        """Hand the errors found at construction to ``on_error`` and the listeners (once)."""
        with self._lock:
            errors, self._deferred_errors = self._deferred_errors, []
        for error in errors:
            self._report_error(error)

    def _http_client(self) -> HttpClient:
        http = self._http
        if http is None:
            from flagkit.http.http_client import HttpClient, HttpConfig

            options = self._options
            with self._lock:
                http = self._http
                if http is None:
                    http = HttpClient(
                        HttpConfig(
                            base_url=options.resolved_base_url,
                            api_key=options.api_key,
                            secondary_api_key=options.secondary_api_key,
                            key_rotation_grace_period=options.key_rotation_grace_period,
                            timeout=options.timeout,
                            retries=options.retries,
                            enable_request_signing=options.enable_request_signing,
                            retry=options.retry,
                            circuit_breaker=options.circuit_breaker,
                            sdk_version=__version__,
                        ),
                        logger=self._logger.getChild("http"),
                    )
                    self._http = http
        return http

    # ------------------------------------------------------------------------------------
    # public properties

    @property
    def options(self) -> FlagKitOptions:
        """The options this client was built with."""
        return self._options

    @property
    def state(self) -> ClientState:
        """The lifecycle state (:class:`ClientState`)."""
        return self._state

    @property
    def session_id(self) -> str:
        """The UUID4 sent with every event of this client."""
        return self._session_id

    @property
    def environment_id(self) -> str:
        """The environment id from ``/sdk/init`` (``""`` before the first load / offline)."""
        return self._environment_id

    @property
    def last_error(self) -> FlagKitError | None:
        """The most recent load/update error (``None`` after a success)."""
        return self._last_error

    @property
    def snapshot(self) -> FlagSnapshot:
        """The current immutable flag snapshot (read-only; for diagnostics and adapters)."""
        return self._store.snapshot

    @property
    def event_stats(self) -> EventStats:
        """Counters of the event pipeline: accepted, sent, dropped, persisted, recovered."""
        return self._events.stats

    def is_ready(self) -> bool:
        """Whether flags are loaded from the server (or the client is offline and started).

        False before ``initialize()``/``start()``, while the first load is failing, after a
        rejected API key, and after ``close()``.
        """
        return self._state is ClientState.READY

    def is_in_key_rotation(self) -> bool:
        """Whether requests currently use the secondary API key after a 401 (§3.3)."""
        http = self._http
        return http.is_in_key_rotation() if http is not None else False

    def __repr__(self) -> str:
        return (
            f"FlagKitClient(key_id={key_id(self._options.api_key)!r}, "
            f"state={self._state.value!r}, flags={len(self._store.snapshot.entries)})"
        )

    # ------------------------------------------------------------------------------------
    # lifecycle

    def initialize(self) -> None:
        """Load the flags now; blocks at most ``timeout`` seconds.

        Offline: no network; the client is ready at once. Otherwise ``GET /sdk/init``
        within one overall deadline of ``timeout`` seconds (retries included). On success
        the client is ready, updates start (streaming or polling) and ``on_ready`` runs.
        Calling it again once ready does nothing.

        Raises ``AuthenticationError`` when the key is rejected (no retries follow),
        a recoverable ``NetworkError`` when the server cannot be reached or answers garbage
        within ``timeout`` (the client stays usable — bootstrap, persisted cache, defaults —
        and retries in the background), ``InitializationError`` for anything else, and
        ``RuntimeError`` after ``close()``.
        """
        with self._lock:
            state = self._state
            if state is ClientState.CLOSED:
                raise RuntimeError("this FlagKitClient is closed; create a new one")
            if state is ClientState.READY:
                return
            background = self._poller is not None or self._loading_in_foreground
            if state is ClientState.FAILED and self._last_error is not None:
                raise self._last_error
            if not background and not self._options.offline:
                self._state = ClientState.STARTING
                self._loading_in_foreground = True
        self._report_deferred_errors()
        if self._options.offline:
            self._become_ready_offline()
            return
        if background:
            if self.wait_for_ready(self._options.timeout):
                return
            error = self._last_error
            if error is not None:
                raise error
            raise InitializationError(
                "INIT_TIMEOUT", f"flags not loaded within {self._options.timeout}s"
            )
        self._events.start()
        # Build the HTTP client (and pay httpx's one-time import) before the clock starts,
        # so a short ``timeout`` bounds the request and not the import.
        self._http_client()
        deadline = time.monotonic() + self._options.timeout
        try:
            self._load_init(deadline)
        except Exception as exc:
            error = self._as_flagkit_error(exc)
            self._first_load_failed(error)
            if error is exc:
                raise
            raise error from exc
        finally:
            with self._lock:
                self._loading_in_foreground = False
        self._first_load_succeeded()

    def start(self) -> None:
        """Start loading in the background and return at once; never raises for network
        faults. Idempotent.

        Offline: ready at once. Use :meth:`wait_for_ready` to wait. Raises ``RuntimeError``
        after ``close()``.
        """
        with self._lock:
            state = self._state
            if state is ClientState.CLOSED:
                raise RuntimeError("this FlagKitClient is closed; create a new one")
            if state is not ClientState.NEW:
                return
            if not self._options.offline:
                self._state = ClientState.STARTING
        self._report_deferred_errors()
        if self._options.offline:
            self._become_ready_offline()
            return
        self._events.start()
        self._start_poller(first_load=True)

    def wait_for_ready(self, timeout: float | None = None) -> bool:
        """Wait until the client is ready; returns whether it is.

        Starts the client (``start()``) if nothing has started it. ``timeout`` is in
        seconds; ``None`` waits about as long as one first-load attempt (the ``timeout``
        option plus a moment), so this never blocks forever. Returns False at once for a
        failed (rejected key) or closed client.
        """
        if self._state is ClientState.READY:
            return True
        if self._state is ClientState.NEW:
            self.start()
        if self._current_state() in (ClientState.FAILED, ClientState.CLOSED):
            return False
        limit = self._options.timeout * 1.1 + 0.1 if timeout is None else max(0.0, timeout)
        self._ready.wait(limit)  # set on READY, FAILED and CLOSED
        return self._current_state() is ClientState.READY

    def _current_state(self) -> ClientState:
        # A method call, so type checkers do not carry narrowing across other threads' writes.
        return self._state

    def refresh(self) -> bool:
        """Fetch changes from the server now (the first load if it has not happened).

        Returns whether the request succeeded; errors are logged, never raised. Does nothing
        (returns False) offline or after ``close()``.
        """
        if self._options.offline or self._state in (ClientState.CLOSED, ClientState.FAILED):
            return False
        deadline = time.monotonic() + self._options.timeout
        try:
            if not self._loaded:
                self._load_init(deadline)
                self._first_load_succeeded()
            else:
                self._poll_updates(deadline)
        except Exception as exc:
            error = self._as_flagkit_error(exc)
            self._last_error = error
            self._logger.warning("refresh failed: %s", error)
            return False
        return True

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop background work, deliver pending events, persist the cache. Idempotent.

        Waits up to ``timeout`` seconds for the event flush. Evaluations keep working from
        the last snapshot afterwards; ``refresh()`` and ``track()`` do nothing.
        """
        with self._lock:
            if self._state is ClientState.CLOSED:
                return
            self._state = ClientState.CLOSED
            poller, self._poller = self._poller, None
            streaming, self._streaming = self._streaming, None
        self._ready.set()  # wake waiters; is_ready() is now False
        if poller is not None:
            poller.stop()
        if streaming is not None:
            try:
                streaming.stop()
            except Exception:
                self._logger.exception("stopping the stream failed")
        try:
            self._events.close(timeout)
        except Exception:
            self._logger.exception("closing the event queue failed")
        self._persist(force=True)
        http = self._http
        if http is not None:
            try:
                http.close()
            except Exception:
                self._logger.exception("closing the HTTP client failed")
        self._dispatcher.close(timeout if timeout is not None else 2.0)
        _untrack_client(self)

    def __enter__(self) -> FlagKitClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------------------------
    # start-up internals

    def _become_ready_offline(self) -> None:
        with self._lock:
            if self._state is not ClientState.NEW and self._state is not ClientState.STARTING:
                return
            self._state = ClientState.READY
            listeners = self._ready_listeners.snapshot()
        self._events.start()
        self._ready.set()
        self._notify_ready(listeners)

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

    def _poll_interval(self) -> float:
        configured = float(self._options.polling_interval)
        server = self._server_interval
        interval = configured if server is None else max(configured, server)
        if interval < _MIN_INTERVAL:
            self._logger.debug("polling interval %.3fs raised to %.2fs", interval, _MIN_INTERVAL)
            interval = _MIN_INTERVAL
        return interval

    def _first_load_failed(self, error: FlagKitError) -> None:
        self._last_error = error
        self._error_streak = True  # background retries of this outage stay quiet
        self._report_error(error)
        if error.recoverable:
            self._logger.warning("first load failed (%s); retrying in the background", error)
            retry = min(self._poll_interval(), _FIRST_LOAD_RETRY)
            self._start_poller(first_load=True, initial_delay=retry)
        else:
            self._logger.error("first load failed (%s); not retrying", error)
            with self._lock:
                if self._state is not ClientState.CLOSED:
                    self._state = ClientState.FAILED
            self._ready.set()  # wake waiters: nothing more will happen

    def _first_load_succeeded(self) -> None:
        with self._lock:
            if self._loaded and self._state is ClientState.READY:
                return
            self._loaded = True
            if self._state is ClientState.CLOSED:
                return
            self._state = ClientState.READY
            listeners = self._ready_listeners.snapshot()
            self._last_error = None
            self._error_streak = False
            poller = self._poller
            start_streaming = self._streaming is None and self._options.streaming.enabled
        self._events.start()  # idempotent; refresh() may be what loaded a NEW client
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
        self._ready.set()
        self._notify_ready(listeners)

    def _start_streaming(self) -> None:
        from flagkit.core.streaming import StreamingManager

        manager = StreamingManager(
            self._http_client(),
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
        if streaming is None:
            return False
        try:
            return str(streaming.state).lower() == "connected"
        except Exception:
            return False

    def _tick(self) -> None:
        """One iteration of the updates loop (runs on ``flagkit-poller``)."""
        if self._state in (ClientState.CLOSED, ClientState.FAILED):
            return
        deadline = time.monotonic() + self._options.timeout
        if not self._loaded:
            try:
                self._load_init(deadline)
            except Exception as exc:
                error = self._as_flagkit_error(exc)
                self._background_failure(error)
                if not error.recoverable:
                    self._logger.error("first load failed (%s); not retrying", error)
                    with self._lock:
                        if self._current_state() is not ClientState.CLOSED:
                            self._state = ClientState.FAILED
                        poller = self._poller
                    self._ready.set()
                    if poller is not None:
                        poller.stop()
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
            error = self._as_flagkit_error(exc)
            self._background_failure(error)
            if error is exc:
                raise
            raise error from exc
        self._error_streak = False
        self._last_error = None

    def _background_failure(self, error: FlagKitError) -> None:
        """Record a background error; ``on_error`` hears the first of each failing streak."""
        self._last_error = error
        if not self._error_streak:
            self._error_streak = True
            self._report_error(error)

    def _load_init(self, deadline: float) -> None:
        """``GET /sdk/init`` and replace the snapshot (raises a ``FlagKitError``)."""
        data = self._http_client().get_json("/sdk/init", deadline=deadline)
        if "flags" not in data:
            raise NetworkError("NETWORK_INVALID_RESPONSE", "/sdk/init response has no 'flags'")
        try:
            states, bad = parse_flags(data["flags"], stream=False, logger=self._logger)
            raw_segments = data.get("segments")
            segments = (
                parse_segments(raw_segments, logger=self._logger)
                if raw_segments is not None
                else []
            )
        except TypeError as exc:
            raise NetworkError("NETWORK_INVALID_RESPONSE", f"/sdk/init: {exc}") from exc
        previous_source = self._store.snapshot.source
        changes = self._store.apply(full=states, keep=bad, segments_full=segments)

        environment_id = data.get("environmentId")
        if isinstance(environment_id, str):
            self._environment_id = environment_id
            self._events.set_environment_id(environment_id)
        server_time = data.get("serverTime")
        if isinstance(server_time, str) and server_time:
            self._cursor = server_time
        interval = data.get("pollingIntervalSeconds")
        if isinstance(interval, (int, float)) and not isinstance(interval, bool) and interval > 0:
            self._server_interval = float(interval)
        metadata = data.get("metadata")
        if isinstance(metadata, dict):
            self._version_advice(metadata)
        environment = data.get("environment")
        self._logger.info(
            "loaded %d flags%s",
            len(states),
            f" for environment {environment!r}" if isinstance(environment, str) else "",
        )
        self._schedule_persist()
        if previous_source != "empty" and changes:
            self._notify_update(changes.updated)

    def _poll_updates(self, deadline: float) -> None:
        """``GET /sdk/updates?since=cursor`` and apply the changes (raises a ``FlagKitError``)."""
        since = self._cursor
        if not since:
            since = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )
        data = self._http_client().get_json(
            "/sdk/updates", params={"since": since}, deadline=deadline
        )
        try:
            states, _bad = parse_flags(data.get("flags", []), stream=False, logger=self._logger)
            deleted = self._parse_deleted(data.get("deleted", data.get("deletedFlags")))
            raw_segments = data.get("segments")
            segments = (
                parse_segments(raw_segments, logger=self._logger)
                if raw_segments is not None
                else []
            )
            deleted_segments = self._parse_deleted(data.get("deletedSegments"))
        except TypeError as exc:
            raise NetworkError("NETWORK_INVALID_RESPONSE", f"/sdk/updates: {exc}") from exc
        changes = self._store.apply(
            upserts=states,
            deletions=deleted,
            segment_upserts=segments,
            segment_deletions=deleted_segments,
        )
        checked_at = data.get("checkedAt")
        if isinstance(checked_at, str) and checked_at:
            self._cursor = checked_at
        if changes:
            self._schedule_persist()
            self._notify_update(changes.updated)

    @staticmethod
    def _parse_deleted(raw: object) -> list[str]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise TypeError(f"deletion list must be a JSON array, got {type(raw).__name__}")
        keys: list[str] = []
        for item in raw:
            if isinstance(item, str):
                keys.append(item)
            elif isinstance(item, dict) and isinstance(item.get("key"), str):
                keys.append(item["key"])
        return keys

    def _version_advice(self, metadata: Mapping[str, Any]) -> None:
        """Log the server's SDK-version advice (PROTOCOL §4.2)."""
        warning = metadata.get("deprecationWarning")
        if isinstance(warning, str) and warning:
            self._logger.warning("FlagKit deprecation warning: %s", warning)
        current = _parse_version(__version__)
        if current is None:
            return
        minimum = _parse_version(metadata.get("sdkVersionMin"))
        recommended = _parse_version(metadata.get("sdkVersionRecommended"))
        latest = _parse_version(metadata.get("sdkVersionLatest"))
        if minimum is not None and current < minimum:
            self._logger.error(
                "SDK version %s is below the minimum supported version %s",
                __version__,
                metadata.get("sdkVersionMin"),
            )
        elif recommended is not None and current < recommended:
            self._logger.warning(
                "SDK version %s is below the recommended version %s",
                __version__,
                metadata.get("sdkVersionRecommended"),
            )
        elif latest is not None and current < latest:
            self._logger.info(
                "a newer SDK version is available: %s", metadata.get("sdkVersionLatest")
            )

    # -- streaming callbacks (on the streaming thread) ------------------------------------

    def _on_stream_event(self, name: str, data: Any) -> None:
        try:
            if name == "flag_updated":
                changes = self._store.apply(upserts=[FlagState.from_dict(data, stream=True)])
            elif name == "flag_deleted":
                key = data["key"] if isinstance(data, dict) else None
                if not isinstance(key, str):
                    raise TypeError("flag_deleted needs a string 'key'")
                changes = self._store.apply(deletions=[key])
            elif name == "flags_reset":
                states, bad = parse_flags(data, stream=True, logger=self._logger)
                changes = self._store.apply(full=states, keep=bad)
            elif name == "segment_updated":
                (segment,) = parse_segments([data], logger=self._logger)
                changes = self._store.apply(segment_upserts=[segment])
            elif name == "segment_deleted":
                key = data["key"] if isinstance(data, dict) else None
                if not isinstance(key, str):
                    raise TypeError("segment_deleted needs a string 'key'")
                changes = self._store.apply(segment_deletions=[key])
            elif name == "segments_reset":
                changes = self._store.apply(segments_full=parse_segments(data, logger=self._logger))
            else:
                self._logger.debug("ignoring stream event %r", name)
                return
        except (KeyError, TypeError, ValueError) as exc:
            self._logger.warning("ignoring malformed %r stream event: %s", name, exc)
            return
        if changes:
            self._schedule_persist()
            self._notify_update(changes.updated)

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

    # -- callbacks ------------------------------------------------------------------------

    def _notify_ready(self, listeners: tuple[Callable[[], None], ...]) -> None:
        # ``listeners`` was taken under the lock with the READY transition, so a listener
        # added concurrently is called exactly once (here or by add_ready_listener).
        callback = self._options.on_ready
        if callback is not None:
            self._dispatcher.submit(callback)
        for listener in listeners:
            self._dispatcher.submit(listener)

    def _notify_update(self, flags: list[FlagState]) -> None:
        callback = self._options.on_update
        if callback is not None:
            self._dispatcher.submit(callback, list(flags))
        for listener in self._update_listeners.snapshot():
            self._dispatcher.submit(listener, list(flags))

    def _report_error(self, error: Exception) -> None:
        callback = self._options.on_error
        if callback is not None:
            self._dispatcher.submit(callback, error)
        for listener in self._error_listeners.snapshot():
            self._dispatcher.submit(listener, error)

    def add_update_listener(self, fn: Callable[[list[FlagState]], None]) -> Callable[[], None]:
        """Call ``fn(changed_flags)`` after each update that changed something.

        The list holds the flags added or updated (empty when only deletions or segments
        changed). Runs on the ``flagkit-dispatch`` thread. Returns an unsubscribe function.
        """
        return self._update_listeners.add(fn)

    def add_ready_listener(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call ``fn()`` when the client becomes ready (at once, dispatched, if it already
        is). Runs on the ``flagkit-dispatch`` thread. Returns an unsubscribe function."""
        with self._lock:
            unsubscribe = self._ready_listeners.add(fn)
            already = self._state is ClientState.READY
        if already:
            self._dispatcher.submit(fn)
        return unsubscribe

    def add_error_listener(self, fn: Callable[[Exception], None]) -> Callable[[], None]:
        """Call ``fn(error)`` on load/update errors (the first of each failing streak),
        event-storage errors and a rejected persisted flag cache (a ``StorageError`` found at
        construction, reported when ``start()``/``initialize()`` first runs). Runs on the
        ``flagkit-dispatch`` thread. Returns an unsubscribe function."""
        return self._error_listeners.add(fn)

    def wait_for_callbacks(self, timeout: float | None = 5.0) -> bool:
        """Block until every queued callback has run (for tests); returns False on timeout."""
        return self._dispatcher.wait_idle(timeout)

    # -- persistence ----------------------------------------------------------------------

    def _schedule_persist(self) -> None:
        if self._store.persistence is None or self._persist_pending:
            return
        self._persist_pending = True
        self._dispatcher.submit(self._persist)

    def _persist(self, force: bool = False) -> None:
        self._persist_pending = False
        try:
            self._store.persist(force=force)
        except FlagKitError as exc:
            self._logger.warning("could not persist the flag cache: %s", exc)
        except Exception:
            self._logger.exception("could not persist the flag cache")

    # -- events ---------------------------------------------------------------------------

    def _send_events(self, events: list[dict[str, Any]]) -> None:
        self._http_client().post_json("/sdk/events/batch", {"events": events})

    def track(self, event_type: str, data: Mapping[str, Any] | None = None) -> None:
        """Queue a custom event with the current context (private attributes stripped).

        >>> client.track("purchase", {"amount": 9.99})   # doctest: +SKIP

        Never blocks on I/O. Raises ``EventError`` for an invalid type or data (unless
        ``lenient_tracking``) and ``SecurityError`` for PII in strict mode. Does nothing
        after ``close()``.
        """
        if self._state is ClientState.CLOSED:
            self._logger.debug("track(%r) after close() ignored", event_type)
            return
        self._events.track(event_type, data, context=self._contexts.current())

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Send queued events now; waits up to ``timeout`` seconds (``None``: until done).

        Returns a ``FlushResult(sent, pending, error)`` saying what could not be sent.
        """
        return self._events.flush(timeout)

    def _track_builtin(self, event_type: str, data: Mapping[str, Any] | None) -> None:
        if self._state is ClientState.CLOSED:
            return
        try:
            self._events.track(event_type, data, context=self._contexts.current())
        except FlagKitError as exc:
            self._logger.warning("built-in event %s not tracked: %s", event_type, exc)

    # ------------------------------------------------------------------------------------
    # context

    def set_context(self, context: EvaluationContext | Mapping[str, Any] | None) -> None:
        """Set the evaluation context (``None`` clears it).

        Outside :meth:`context_scope` this is the process-wide global context; inside one it
        changes only that scope (so a web request can never leak its user to others).
        PII in the context (by field name or value, except ``private_attributes``) is logged,
        or raises ``SecurityError`` with ``strict_pii_mode``, before anything changes.
        Raises ``TypeError`` for something that is not a context or mapping.
        """
        ctx = _coerce_context(context)
        if ctx is not None:
            self._pii.check_context(ctx)
        self._contexts.replace_current_layer(ctx)

    def get_context(self) -> EvaluationContext | None:
        """The current context: the global one merged with the active request scope."""
        return self._contexts.current()

    def clear_context(self) -> None:
        """Remove the context (the scope's, inside :meth:`context_scope`; else the global)."""
        self._contexts.replace_current_layer(None)

    def identify(self, user_id: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Make ``user_id`` the current user, keeping every attribute.

        >>> client.identify("user-123", {"plan": "premium", "email": "a@b.co"})  # doctest: +SKIP

        Known fields (email, name, country, ip, user_agent, user_key, anonymous, custom,
        private_attributes) go to their fields, everything else to ``custom``. The same user
        keeps its earlier attributes; a different user starts clean. Acts on the request
        scope inside :meth:`context_scope`, else on the global context. Tracks
        ``context.identified``. Raises ``TypeError`` for a non-str ``user_id`` or non-mapping
        attributes, and ``SecurityError`` for PII in strict mode (before any change).
        """
        if not isinstance(user_id, str) or not user_id:
            raise TypeError(f"user_id must be a non-empty str, got {user_id!r}")
        self._pii.check_context(build_context(user_id, attributes))
        self._contexts.identify(user_id, attributes)
        self._track_builtin("context.identified", {"userId": user_id})

    def reset(self) -> None:
        """Make the current user anonymous and track ``context.reset`` (scope-aware)."""
        self._contexts.reset()
        self._track_builtin("context.reset", None)

    def context_scope(self, context: ContextSource) -> contextlib.AbstractContextManager[None]:
        """Evaluate for ``context`` inside the ``with`` block, in this thread/task only.

        >>> with client.context_scope(EvaluationContext(user_id="u-1")):   # doctest: +SKIP
        ...     client.get_boolean_value("beta", False)

        The scope sits between the global context and per-call contexts. ``context`` may be
        a zero-argument callable, called at most once when a lookup first needs the context
        (web integrations pass a lazy ``request.user`` reader). Scopes nest; each thread and
        asyncio task has its own (``contextvars``). No PII check runs here.
        Raises ``TypeError`` for anything else.
        """
        return self._contexts.scope(context)

    # ------------------------------------------------------------------------------------
    # overrides (tests)

    def set_overrides(self, mapping: Mapping[str, Any]) -> None:
        """Force flag values instance-wide (tests): they win over everything, reason
        ``OVERRIDE``, no network. Adds to (and replaces) existing overrides."""
        if not isinstance(mapping, Mapping):
            raise TypeError(f"overrides must be a mapping, got {type(mapping).__name__}")
        for key in mapping:
            if not isinstance(key, str):
                raise TypeError(f"override keys must be str, got {key!r}")
        with self._lock:
            self._overrides = {**self._overrides, **mapping}
            self._fast = not self._jitter.enabled and not self._overrides

    def clear_overrides(self) -> None:
        """Remove every override."""
        with self._lock:
            self._overrides = {}
            self._fast = not self._jitter.enabled

    @contextlib.contextmanager
    def override_flags(self, mapping: Mapping[str, Any]) -> Iterator[None]:
        """Override flags inside a ``with`` block; the previous overrides come back after.

        >>> with client.override_flags({"new-checkout": True}):   # doctest: +SKIP
        ...     assert client.get_boolean_value("new-checkout", False)
        """
        with self._lock:
            previous = self._overrides
        self.set_overrides(mapping)
        try:
            yield
        finally:
            with self._lock:
                self._overrides = previous
                self._fast = not self._jitter.enabled and not previous

    @property
    def overrides(self) -> Mapping[str, Any]:
        """The active overrides (read-only copy)."""
        return dict(self._overrides)

    # ------------------------------------------------------------------------------------
    # evaluation

    def get_boolean_value(
        self, key: str, default: bool = False, context: EvaluationContext | None = None
    ) -> bool:
        """The boolean value of flag ``key`` (``default`` when absent, of another type, or
        on any error). Never raises.

        >>> client.get_boolean_value("dark-mode", default=False)   # doctest: +SKIP
        """
        if self._fast:
            try:
                value = self._store._snapshot.bools[key]
                if value is not NEEDS_EVALUATION:
                    return value
            except (KeyError, TypeError):  # unknown or unhashable: the full path reports it
                pass
        return self._typed(key, default, context, _BOOLEAN)  # type: ignore[no-any-return]

    def get_string_value(
        self, key: str, default: str = "", context: EvaluationContext | None = None
    ) -> str:
        """The string value of flag ``key`` (``default`` on any problem). Never raises."""
        if self._fast:
            try:
                value = self._store._snapshot.strings[key]
                if value is not NEEDS_EVALUATION:
                    return value
            except (KeyError, TypeError):  # unknown or unhashable: the full path reports it
                pass
        return self._typed(key, default, context, _STRING)  # type: ignore[no-any-return]

    def get_number_value(
        self, key: str, default: float = 0.0, context: EvaluationContext | None = None
    ) -> float:
        """The number value of flag ``key`` as a float (``default``, unchanged, on any
        problem). Never raises."""
        if self._fast:
            try:
                value = self._store._snapshot.numbers[key]
                if value is not NEEDS_EVALUATION:
                    return value
            except (KeyError, TypeError):  # unknown or unhashable: the full path reports it
                pass
        return self._typed(key, default, context, _NUMBER)  # type: ignore[no-any-return]

    @overload
    def get_json_value(
        self, key: str, default: dict[str, Any], context: EvaluationContext | None = None
    ) -> dict[str, Any]: ...

    @overload
    def get_json_value(
        self, key: str, default: None = None, context: EvaluationContext | None = None
    ) -> dict[str, Any] | None: ...

    def get_json_value(
        self,
        key: str,
        default: dict[str, Any] | None = None,
        context: EvaluationContext | None = None,
    ) -> dict[str, Any] | None:
        """The JSON-object value of flag ``key`` — dicts only: a JSON array, a scalar, or
        any problem gives ``default``. Never raises. Treat the dict as read-only (it is
        shared with other callers)."""
        if self._fast:
            try:
                value = self._store._snapshot.jsons[key]
                if value is not NEEDS_EVALUATION:
                    return value
            except (KeyError, TypeError):  # unknown or unhashable: the full path reports it
                pass
        return self._typed(key, default, context, _JSON)  # type: ignore[no-any-return]

    def evaluate(
        self, key: str, context: EvaluationContext | None = None, *, default: Any = None
    ) -> EvaluationResult[Any]:
        """The full :class:`EvaluationResult` of flag ``key`` (value, reason, version, ids).

        >>> result = client.evaluate("dark-mode")   # doctest: +SKIP
        >>> result.value, result.reason

        No type check (any JSON value is returned); ``default`` (``None``) is served when
        the flag is missing or fails. Never raises.
        """
        try:
            outcome = self._lookup(key, default, _LazyContext(self._contexts, context), None)
        except Exception as exc:
            self._logger.exception("evaluating %s failed; serving the default", _safe_key(key))
            outcome = _Outcome(
                default, False, _R_ERROR, error_code="INTERNAL_ERROR", error_message=str(exc)
            )
        return self._result(key, outcome)

    def evaluate_all(
        self, context: EvaluationContext | None = None
    ) -> dict[str, EvaluationResult[Any]]:
        """``{key: evaluate(key)}`` for every known flag (server, bootstrap, overrides).

        The context is merged once; evaluation jitter (if enabled) is applied once. Never
        raises.
        """
        try:
            if self._jitter.enabled:
                self._sleep_jitter()
            lazy = _LazyContext(self._contexts, context)
            snapshot = self._store._snapshot
            entries = snapshot.entries
            overrides = self._overrides
            now = datetime.now()
            plain = _R_CACHED if time.monotonic() <= snapshot.expires_at else _R_STALE
            out: dict[str, EvaluationResult[Any]] = {}
            for key in self.get_all_flag_keys():
                entry = entries.get(key)
                if entry is not None and entry.model is None and key not in overrides:
                    # The common case, inlined: a simple server flag.
                    out[key] = EvaluationResult(
                        key,
                        entry.value,
                        entry.enabled,
                        plain,
                        entry.version,
                        None,
                        None,
                        None,
                        now,
                    )
                    continue
                try:
                    outcome = self._lookup(key, None, lazy, None, jitter=False)
                except Exception as exc:
                    outcome = _Outcome(
                        None, False, _R_ERROR, error_code="INTERNAL_ERROR", error_message=str(exc)
                    )
                out[key] = self._result(key, outcome, now)
            return out
        except Exception:
            self._logger.exception("evaluate_all failed")
            return {}

    def has_flag(self, key: str) -> bool:
        """Whether ``key`` is a known flag (server, stale or fresh; bootstrap; override)."""
        try:
            return key in self._overrides or self._store.snapshot.has(key)
        except TypeError:
            return False

    def get_all_flag_keys(self) -> list[str]:
        """Every known flag key: server flags, then bootstrap-only keys, then overrides."""
        keys = self._store.snapshot.keys()
        overrides = self._overrides
        if overrides:
            known = set(keys)
            keys.extend(k for k in overrides if k not in known)
        return keys

    # -- evaluation internals -------------------------------------------------------------

    def _typed(self, key: Any, default: Any, context: Any, expected: FlagType) -> Any:
        if self._fast:
            # Second-fastest path: a targeted flag, evaluated without building an outcome.
            # Anything unusual (unknown key, odd context, stale snapshot) takes _lookup.
            try:
                snapshot = self._store._snapshot
                entry = snapshot.entries[key]
                model = entry.model
                if (
                    model is not None
                    and (context is None or type(context) is EvaluationContext)
                    and time.monotonic() <= snapshot.expires_at
                ):
                    decision = evaluate_flag(
                        model,
                        self._contexts.resolve(context),
                        flags=snapshot.models,
                        segments=snapshot.segments,
                    )
                    value = decision.value
                    if entry.flag_type is expected and _matches(expected, value):
                        return float(value) if expected is _NUMBER else value
                    return default
            except Exception:  # the full path below handles and logs it
                pass
        try:
            return self._lookup(key, default, _LazyContext(self._contexts, context), expected)[0]
        except Exception:
            self._logger.exception("evaluating %s failed; serving the default", _safe_key(key))
            return default

    def _sleep_jitter(self) -> None:
        jitter = self._jitter
        time.sleep(random.uniform(float(jitter.min_ms), float(jitter.max_ms)) / 1000.0)

    def _lookup(
        self,
        key: Any,
        default: Any,
        context: _LazyContext,
        expected: FlagType | None,
        *,
        jitter: bool = True,
    ) -> _Outcome:
        """The evaluation algorithm (PROTOCOL §8.1 with this SDK's targeting and overrides)."""
        if jitter and self._jitter.enabled:
            self._sleep_jitter()
        if not is_valid_flag_key(key):
            return _Outcome(
                default,
                False,
                _R_DEFAULT,
                error_code="EVAL_DEFAULT_USED",
                error_message=flag_key_problem(key),
            )
        overrides = self._overrides
        if key in overrides:
            value = overrides[key]
            if expected is not None:
                if not _matches(expected, value):
                    return _mismatch(default, 0, expected, value)
                if expected is _NUMBER:
                    value = float(value)
            return _Outcome(value, True, _R_OVERRIDE)

        snapshot = self._store._snapshot
        entry = snapshot.entries.get(key)
        if entry is not None:
            fresh = time.monotonic() <= snapshot.expires_at
            model = entry.model
            if model is None:
                value = entry.value
                outcome = _Outcome(
                    value, entry.enabled, _R_CACHED if fresh else _R_STALE, entry.version
                )
            else:
                try:
                    resolved = context.get()
                except Exception as exc:
                    return _Outcome(
                        default,
                        False,
                        _R_ERROR,
                        entry.version,
                        error_code="EVAL_INVALID_CONTEXT",
                        error_message=str(exc),
                    )
                decision = evaluate_flag(
                    model, resolved, flags=snapshot.models, segments=snapshot.segments
                )
                value = decision.value
                reason = decision.reason
                if not fresh and reason is not _R_ERROR:
                    reason = _R_STALE
                outcome = _Outcome(
                    value,
                    entry.enabled,
                    reason,
                    entry.version,
                    decision.variation_id,
                    decision.rule_id,
                    decision.segment_id,
                    "EVAL_RULE_ERROR" if decision.error else None,
                    decision.error,
                )
            if expected is not None:
                if entry.flag_type is not expected or not _matches(expected, value):
                    return _mismatch(default, entry.version, expected, value, entry.flag_type)
                if expected is _NUMBER:
                    outcome = outcome._replace(value=float(value))
            return outcome

        bootstrap = snapshot.bootstrap
        if key in bootstrap:
            value = bootstrap[key]
            if expected is not None:
                if not _matches(expected, value):
                    return _mismatch(default, 0, expected, value)
                if expected is _NUMBER:
                    value = float(value)
            return _Outcome(value, False, _R_BOOTSTRAP)
        return _Outcome(
            default,
            False,
            _R_NOT_FOUND,
            error_code="EVAL_FLAG_NOT_FOUND",
            error_message=f"flag {key!r} not found",
        )

    @staticmethod
    def _result(key: Any, outcome: _Outcome, now: datetime | None = None) -> EvaluationResult[Any]:
        return EvaluationResult(
            flag_key=_safe_key(key),
            timestamp=now if now is not None else datetime.now(),
            value=outcome.value,
            enabled=outcome.enabled,
            reason=outcome.reason,
            version=outcome.version,
            variation_id=outcome.variation_id,
            rule_id=outcome.rule_id,
            segment_id=outcome.segment_id,
            error_code=outcome.error_code,
            error_message=outcome.error_message,
        )

    # ------------------------------------------------------------------------------------
    # errors

    @staticmethod
    def _as_flagkit_error(exc: BaseException) -> FlagKitError:
        if isinstance(exc, FlagKitError):
            return exc
        return InitializationError("INIT_FAILED", f"{type(exc).__name__}: {exc}", cause=exc)

    # ------------------------------------------------------------------------------------
    # fork

    def _after_fork_in_child(self) -> None:
        """Runs in a forked child: fresh locks, connections and threads for this client."""
        self._lock = threading.Lock()
        self._ready = threading.Event()
        if self._state in (ClientState.READY, ClientState.CLOSED, ClientState.FAILED):
            self._ready.set()
        self._store.reset_after_fork()
        self._contexts.reset_after_fork()
        self._dispatcher.reset_after_fork()
        self._update_listeners.reset_after_fork()
        self._ready_listeners.reset_after_fork()
        self._error_listeners.reset_after_fork()
        self._persist_pending = False
        self._loading_in_foreground = False
        http = self._http
        if http is not None:
            http.reset_after_fork()
        self._events.after_fork()
        had_poller = self._poller is not None
        streaming = self._streaming
        # The parent's poller has no thread here; drop it without touching its lock.
        self._poller = None
        if streaming is not None:
            streaming.after_fork_in_child()  # forgets the parent's threads and connection
        if self._state in (ClientState.CLOSED, ClientState.FAILED, ClientState.NEW):
            return
        self._events.start()
        if not self._loaded:
            self._start_poller(first_load=True)
            return
        if streaming is not None:
            try:
                streaming.start()
            except Exception:
                self._logger.exception("could not restart streaming after fork; polling")
        if had_poller:
            self._catch_up = True
            self._start_poller(first_load=False)
            poller = self._poller
            if poller is not None:
                poller.wake()


def _mismatch(
    default: Any,
    version: int,
    expected: FlagType,
    value: Any,
    declared: FlagType | None = None,
) -> _Outcome:
    shown = declared.value if declared is not None else type(value).__name__
    return _Outcome(
        default,
        False,
        _R_ERROR,
        version,
        error_code="EVAL_TYPE_MISMATCH",
        error_message=f"flag is {shown}, a {expected.value} was asked for",
    )


def _parse_version(raw: object) -> tuple[int, int, int] | None:
    """``"v1.2.3-beta"`` → ``(1, 2, 3)``; ``None`` when unparsable (PROTOCOL §4.2)."""
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    parts = text.split(".")
    if len(parts) < 3:
        return None
    parts[2] = parts[2].split("-", 1)[0].split("+", 1)[0]
    try:
        numbers = [int(part) for part in parts[:3]]
    except ValueError:
        return None
    if any(n < 0 or n > 999_999_999 for n in numbers):
        return None
    return numbers[0], numbers[1], numbers[2]
