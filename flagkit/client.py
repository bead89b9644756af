"""``FlagKitClient``: the façade that wires the SDK's parts together (docs/architecture.md).

Each part is built once from the validated options:

- store (:mod:`flagkit.core.store`) holding the immutable snapshot (:mod:`flagkit.core.snapshot`)
  that lookups read without locking;
- data source (:mod:`flagkit.core.updates`): first load, retries, streaming and polling;
  writes the store and reports ``ready`` / ``failed`` / ``changed`` / ``error`` here;
- evaluation rules (:mod:`flagkit.core.evaluation`), context layers
  (:mod:`flagkit.core.context_manager`), the event queue, user callbacks on the
  ``flagkit-dispatch`` thread (:mod:`flagkit.core.dispatcher`), and fork handling
  (:mod:`flagkit.core.fork`).

>>> client = FlagKitClient(api_key="sdk_...", offline=True,               # doctest: +SKIP
...                        bootstrap={"dark-mode": True})
>>> client.initialize()                                                  # doctest: +SKIP
>>> client.get_boolean_value("dark-mode", default=False)                 # doctest: +SKIP
True
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, overload

from flagkit._version import __version__
from flagkit.core import fork
from flagkit.core.context_manager import ContextManager, ContextSource, build_context
from flagkit.core.dispatcher import Callbacks, Dispatcher
from flagkit.core.evaluation import (
    MISS,
    LazyContext,
    Outcome,
    coerce_context,
    evaluate_all,
    evaluate_safely,
    result_of,
    targeted_value,
    warn_once,
)
from flagkit.core.events import EventQueue
from flagkit.core.recording import LookupRecorder
from flagkit.core.snapshot import NEEDS_EVALUATION, FlagSnapshot
from flagkit.core.store import build_store
from flagkit.core.updates.source import ClientState, DataSource, UpdateSource
from flagkit.errors import AuthenticationError, ConfigurationError, FlagKitError
from flagkit.errors.flagkit_error import apply_error_sanitization
from flagkit.types.config import FlagKitOptions
from flagkit.types.context import EvaluationContext
from flagkit.types.events import EventQueueConfig, EventStats, FlushResult
from flagkit.types.flag import EvaluationReason, EvaluationResult, FlagState, FlagType
from flagkit.utils.logger import build_logger
from flagkit.utils.security import PiiChecker, find_pii
from flagkit.utils.signing import key_id

if TYPE_CHECKING:
    from flagkit.http.http_client import HttpClient

__all__ = ["ClientState", "FlagKitClient"]

_BOOLEAN: Final = FlagType.BOOLEAN
_STRING: Final = FlagType.STRING
_NUMBER: Final = FlagType.NUMBER
_JSON: Final = FlagType.JSON


class _Parts:
    """What the data source and the fork hook call on a client (kept off its public API)."""

    __slots__ = ("__weakref__", "_client")

    def __init__(self, client: FlagKitClient) -> None:
        self._client = client

    def source_ready(self) -> None:
        self._client._on_ready()

    def source_failed(self, error: FlagKitError) -> None:
        self._client._key_rejected = True

    def source_error(self, error: FlagKitError) -> None:
        self._client._callbacks.report_error(error)

    def source_changed(self, flags: list[FlagState] | None) -> None:
        self._client._on_changed(flags)

    def after_fork(self) -> None:
        self._client._after_fork()


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

    - ``initialize()`` — load now, blocking up to ``timeout`` (retrying a failed load with
      backoff meanwhile); raises ``AuthenticationError`` for a rejected key and the last
      error when the flags could not be loaded in time (the client then keeps retrying in
      the background and serves bootstrap, persisted and default values meanwhile); or
    - ``start()`` — load in the background, never raising for network faults; pair it with
      ``wait_for_ready(timeout)``.

    Flag lookups never raise: on any problem they return the caller's default with a reason.
    An unknown key (once flags are loaded) or a getter of the wrong type is logged once per
    process and key at WARNING. Configuration mistakes raise ``ConfigurationError`` at
    construction.

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
        self._lock = threading.Lock()
        self._closed = False
        self._ready_announced = False
        self._key_rejected = False
        self._http: HttpClient | None = None

        # Errors found while constructing (a rejected persisted cache) are reported to
        # on_error and the error listeners by the first start()/initialize(): construction
        # starts no thread, and a listener added right after construction still hears them.
        self._store, self._deferred_errors = build_store(options, self._logger)
        self._dispatcher = Dispatcher(self._logger.getChild("dispatch"))
        self._callbacks = Callbacks(
            self._dispatcher,
            options.on_ready,
            options.on_update,
            options.on_error,
            options.error_sanitization,
        )
        self._recorder = LookupRecorder(options, self._logger)
        self._hits = self._recorder.hits  # the typed getters' fast path reads it
        self._events = EventQueue(
            EventQueueConfig.from_options(options),
            sender=self._send_events,
            session_id=self._session_id,
            sdk_version=__version__,
            logger=self._logger.getChild("events"),
            on_error=self._callbacks.report_error,
            pii_check=lambda data, _kind: find_pii(data),  # the queue warns or refuses
            summary=self._recorder.summary,
        )
        self._recorder.attach(self._events.track_builtin)
        self._parts = _Parts(self)
        self._source = self._build_source(options)
        fork.register(self._parts)

    # ------------------------------------------------------------------------------------
    # construction helpers

    def _build_source(self, options: FlagKitOptions) -> UpdateSource:
        """The data source: direct, or through Redis when ``redis_url`` is set (fleet mode,
        docs/fleet.md; imported only then, so the ``redis`` package stays optional)."""
        if options.redis_url is None or options.offline:
            return DataSource(options, self._store, self._http_client, self._parts, self._logger)
        try:
            from flagkit.fleet import FleetSource
        except ImportError as exc:
            raise ConfigurationError(
                f"redis_url needs the redis package ({exc}); install flagkit[redis] "
                "(pip install 'flagkit[redis]') or unset redis_url",
                option="redis_url",
            ) from None
        return FleetSource(options, self._store, self._http_client, self._parts, self._logger)

    def _report_deferred_errors(self) -> None:
        """Hand the errors found at construction to ``on_error`` and the listeners (once)."""
        with self._lock:
            errors, self._deferred_errors = self._deferred_errors, []
        for error in errors:
            self._callbacks.report_error(error)

    def _http_client(self) -> HttpClient:
        http = self._http
        if http is None:
            from flagkit.http.http_client import HttpClient, HttpConfig

            options = self._options
            with self._lock:
                http = self._http
                if http is None:
                    http = HttpClient(
                        HttpConfig.from_options(options, __version__),
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
        return ClientState.CLOSED if self._closed else self._source.state

    @property
    def session_id(self) -> str:
        """The UUID4 sent with every event of this client."""
        return self._session_id

    @property
    def environment_id(self) -> str:
        """The environment id from ``/sdk/init`` (``""`` before the first load / offline)."""
        return self._source.environment_id

    @property
    def last_error(self) -> FlagKitError | None:
        """The most recent load/update error (``None`` after a success)."""
        return self._source.last_error

    @property
    def snapshot(self) -> FlagSnapshot:
        """The current immutable flag snapshot (read-only; for diagnostics and adapters)."""
        return self._store.snapshot

    @property
    def event_stats(self) -> EventStats:
        """Counters of the event pipeline: accepted, sent, dropped, persisted, recovered."""
        return self._events.stats

    @property
    def fleet_role(self) -> str | None:
        """In fleet mode (``redis_url``): ``"syncer"``, ``"reader"`` or ``"direct"`` (Redis
        unreachable, loading from the service); ``None`` without Redis (docs/fleet.md)."""
        role = getattr(self._source, "role", None)
        return role if isinstance(role, str) else None

    def is_ready(self) -> bool:
        """Whether flags are loaded from the server (or the client is offline and started).

        False before ``initialize()``/``start()``, while the first load is failing, after a
        rejected API key, and after ``close()``.
        """
        return not self._closed and self._source.state is ClientState.READY

    def is_in_key_rotation(self) -> bool:
        """Whether requests currently use the secondary API key after a 401 (§3.3)."""
        http = self._http
        return http.is_in_key_rotation() if http is not None else False

    def __repr__(self) -> str:
        return (
            f"FlagKitClient(key_id={key_id(self._options.api_key)!r}, "
            f"state={self.state.value!r}, flags={len(self._store.snapshot.entries)})"
        )

    # ------------------------------------------------------------------------------------
    # lifecycle

    def initialize(self) -> None:
        """Load the flags now; blocks at most ``timeout`` seconds.

        Offline: no network; the client is ready at once. Otherwise ``GET /sdk/init``,
        retried with backoff within one overall deadline of ``timeout`` seconds. On success
        the client is ready, updates start (streaming or polling) and ``on_ready`` runs.
        Calling it again once ready does nothing.

        Raises ``AuthenticationError`` when the key is rejected (no retries follow); the
        last error (e.g. a recoverable ``NetworkError``) when the flags could not be loaded
        within ``timeout`` — the client stays usable (bootstrap, persisted cache, defaults)
        and retries in the background; ``RuntimeError`` after ``close()``.
        """
        if self._closed:
            raise RuntimeError("this FlagKitClient is closed; create a new one")
        self._report_deferred_errors()
        self._events.start()
        try:
            self._source.initialize(self._options.timeout)
        except FlagKitError as error:
            # The caller sees the error under this client's own error_sanitization option.
            apply_error_sanitization(error, self._options.error_sanitization)
            raise

    def start(self) -> None:
        """Start loading in the background and return at once; never raises for network
        faults. Idempotent.

        Offline: ready at once. Use :meth:`wait_for_ready` to wait. Raises ``RuntimeError``
        after ``close()``.
        """
        if self._closed:
            raise RuntimeError("this FlagKitClient is closed; create a new one")
        if self._source.state is not ClientState.NEW:
            return
        self._report_deferred_errors()
        self._events.start()
        self._source.start()

    def wait_for_ready(self, timeout: float | None = None) -> bool:
        """Wait until the client is ready; returns whether it is.

        Starts the client (``start()``) if nothing has started it. ``timeout`` is in
        seconds; ``None`` waits about as long as one first-load attempt (the ``timeout``
        option plus a moment), so this never blocks forever. Returns False at once for a
        failed (rejected key) or closed client.
        """
        if self.is_ready():
            return True
        if self._closed:
            return False
        if self._source.state is ClientState.NEW:
            self.start()
        limit = self._options.timeout * 1.1 + 0.1 if timeout is None else timeout
        return self._source.wait_ready(limit) and not self._closed

    def refresh(self) -> bool:
        """Fetch changes from the server now (the first load if it has not happened).

        Returns whether the request succeeded; errors are logged, never raised. Does nothing
        (returns False) offline or after ``close()``.
        """
        if self._closed:
            return False
        return self._source.refresh(self._options.timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop background work, deliver pending events, persist the cache. Idempotent.

        Waits up to ``timeout`` seconds for the event flush. Evaluations keep working from
        the last snapshot afterwards; ``refresh()`` and ``track()`` do nothing. With a
        rejected API key nothing is sent.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._recorder.closed = True
        self._source.close()
        try:
            self._events.close(timeout)
        except Exception:
            self._logger.exception("closing the event queue failed")
        self._store.persist_logged(force=True)
        http = self._http
        if http is not None:
            try:
                http.close()
            except Exception:
                self._logger.exception("closing the HTTP client failed")
        self._dispatcher.close(timeout if timeout is not None else 2.0)
        fork.unregister(self._parts)

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
    # what the data source reports (through _Parts)

    def _on_ready(self) -> None:
        with self._lock:
            if self._ready_announced or self._closed:
                return
            # Taken together with the flag, so a listener added concurrently is called
            # exactly once (here or by add_ready_listener).
            self._ready_announced = True
            listeners = self._callbacks.ready.snapshot()
        environment_id = self._source.environment_id
        if environment_id:
            self._events.set_environment_id(environment_id)
        self._events.start()  # idempotent; refresh() may be what loaded a NEW client
        self._callbacks.notify_ready(listeners)

    def _on_changed(self, flags: list[FlagState] | None) -> None:
        self._store.persist_later(self._dispatcher.submit)
        if flags is not None:
            self._callbacks.notify_update(flags)

    def add_update_listener(self, fn: Callable[[list[FlagState]], None]) -> Callable[[], None]:
        """Call ``fn(changed_flags)`` after each update that changed something.

        The list holds the flags added or updated (empty when only deletions or segments
        changed). Runs on the ``flagkit-dispatch`` thread. Returns an unsubscribe function.
        """
        return self._callbacks.updates.add(fn)

    def add_ready_listener(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call ``fn()`` when the client becomes ready (at once, dispatched, if it already
        is). Runs on the ``flagkit-dispatch`` thread. Returns an unsubscribe function."""
        with self._lock:
            unsubscribe = self._callbacks.ready.add(fn)
            already = self._ready_announced and self.is_ready()
        if already:
            self._dispatcher.submit(fn)
        return unsubscribe

    def add_error_listener(self, fn: Callable[[Exception], None]) -> Callable[[], None]:
        """Call ``fn(error)`` on load/update errors (the first of each failing streak),
        event-storage errors and a rejected persisted flag cache (a ``StorageError`` found at
        construction, reported when ``start()``/``initialize()`` first runs). Runs on the
        ``flagkit-dispatch`` thread. Returns an unsubscribe function."""
        return self._callbacks.errors.add(fn)

    def wait_for_callbacks(self, timeout: float | None = 5.0) -> bool:
        """Block until every queued callback has run (for tests); returns False on timeout."""
        return self._dispatcher.wait_idle(timeout)

    # -- events ---------------------------------------------------------------------------

    def _send_events(self, events: list[dict[str, Any]]) -> None:
        if self._key_rejected:
            # The server rejected this key at the first load: sending with it again can only
            # be refused (and log a 401). Events stay persisted when persistence is on.
            raise AuthenticationError(
                "AUTH_INVALID_KEY", "the API key was rejected; events are not sent"
            )
        self._http_client().post_json("/sdk/events/batch", {"events": events})

    def track(self, event_type: str, data: Mapping[str, Any] | None = None) -> None:
        """Queue a custom event with the current context (private attributes stripped).

        >>> client.track("purchase", {"amount": 9.99})   # doctest: +SKIP

        Never blocks on I/O. Raises ``EventError`` for an invalid type or data (unless
        ``lenient_tracking``) and ``SecurityError`` for PII in strict mode. Does nothing
        after ``close()``.
        """
        if self._closed:
            self._logger.debug("track(%r) after close() ignored", event_type)
            return
        self._events.track(event_type, data, context=self._contexts.current())

    def flush(self, timeout: float | None = None) -> FlushResult:
        """Send queued events now; waits up to ``timeout`` seconds (``None``: until done).

        Returns a ``FlushResult(sent, pending, error)`` saying what could not be sent.
        """
        return self._events.flush(timeout)

    def _track_builtin(self, event_type: str, data: Mapping[str, Any] | None) -> None:
        if self._closed:
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
        ctx = coerce_context(context)
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
            # Fast path: a simple flag (or bootstrap value) of this type is one dict lookup;
            # it serves what the full rules (flagkit.core.evaluation) would serve.
            try:
                snapshot = self._store._snapshot
                value = snapshot.bools[key]
                if value is not NEEDS_EVALUATION and (
                    self._hits is None or self._recorder.count_fast(snapshot, key)
                ):
                    return value
                if self._hits is None:  # evaluation summaries count on the full path
                    value = targeted_value(snapshot, key, _BOOLEAN, self._contexts, context)
                    if value is not MISS:
                        return value  # type: ignore[no-any-return]
            except Exception:  # unknown, unhashable, hostile: the full path reports it
                pass
        return self._typed(key, default, context, _BOOLEAN, "get_boolean_value")  # type: ignore[no-any-return]

    def get_string_value(
        self, key: str, default: str = "", context: EvaluationContext | None = None
    ) -> str:
        """The string value of flag ``key`` (``default`` on any problem). Never raises."""
        if self._fast:
            try:
                snapshot = self._store._snapshot
                value = snapshot.strings[key]
                if value is not NEEDS_EVALUATION and (
                    self._hits is None or self._recorder.count_fast(snapshot, key)
                ):
                    return value
                if self._hits is None:  # evaluation summaries count on the full path
                    value = targeted_value(snapshot, key, _STRING, self._contexts, context)
                    if value is not MISS:
                        return value  # type: ignore[no-any-return]
            except Exception:  # unknown, unhashable, hostile: the full path reports it
                pass
        return self._typed(key, default, context, _STRING, "get_string_value")  # type: ignore[no-any-return]

    def get_number_value(
        self, key: str, default: float = 0.0, context: EvaluationContext | None = None
    ) -> float:
        """The number value of flag ``key`` as a float (``default``, unchanged, on any
        problem). Never raises."""
        if self._fast:
            try:
                snapshot = self._store._snapshot
                value = snapshot.numbers[key]
                if value is not NEEDS_EVALUATION and (
                    self._hits is None or self._recorder.count_fast(snapshot, key)
                ):
                    return value
                if self._hits is None:  # evaluation summaries count on the full path
                    value = targeted_value(snapshot, key, _NUMBER, self._contexts, context)
                    if value is not MISS:
                        return value  # type: ignore[no-any-return]
            except Exception:  # unknown, unhashable, hostile: the full path reports it
                pass
        return self._typed(key, default, context, _NUMBER, "get_number_value")  # type: ignore[no-any-return]

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
                snapshot = self._store._snapshot
                value = snapshot.jsons[key]
                if value is not NEEDS_EVALUATION and (
                    self._hits is None or self._recorder.count_fast(snapshot, key)
                ):
                    return value
                if self._hits is None:  # evaluation summaries count on the full path
                    value = targeted_value(snapshot, key, _JSON, self._contexts, context)
                    if value is not MISS:
                        return value  # type: ignore[no-any-return]
            except Exception:  # unknown, unhashable, hostile: the full path reports it
                pass
        return self._typed(key, default, context, _JSON, "get_json_value")  # type: ignore[no-any-return]

    def evaluate(
        self, key: str, context: EvaluationContext | None = None, *, default: Any = None
    ) -> EvaluationResult[Any]:
        """The full :class:`EvaluationResult` of flag ``key`` (value, reason, version, ids).

        >>> result = client.evaluate("dark-mode")   # doctest: +SKIP
        >>> result.value, result.reason

        No type check (any JSON value is returned); ``default`` (``None``) is served when
        the flag is missing or fails. Never raises.
        """
        outcome = self._lookup(key, default, LazyContext(self._contexts, context), None, "evaluate")
        return result_of(key, outcome)

    def evaluate_all(
        self, context: EvaluationContext | None = None
    ) -> dict[str, EvaluationResult[Any]]:
        """``{key: evaluate(key)}`` for every known flag (server, bootstrap, overrides).

        The context is merged once; evaluation jitter (if enabled) is applied once. Never
        raises.
        """
        if self._jitter.enabled:
            self._sleep_jitter()
        return evaluate_all(
            self.get_all_flag_keys(),
            overrides=self._overrides,
            snapshot=self._store._snapshot,
            context=LazyContext(self._contexts, context),
            logger=self._logger,
        )

    def has_flag(self, key: str) -> bool:
        """Whether ``key`` is a known flag (server, stale or fresh; bootstrap; override)."""
        try:
            return key in self._overrides or self._store.snapshot.has(key)
        except Exception:  # unhashable or hostile key
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

    def _typed(self, key: Any, default: Any, context: Any, expected: FlagType, getter: str) -> Any:
        return self._lookup(key, default, LazyContext(self._contexts, context), expected, getter)[0]

    def _lookup(
        self, key: Any, default: Any, context: LazyContext, expected: FlagType | None, getter: str
    ) -> Outcome:
        """The full rules for one lookup, with jitter and the warn-once log. Never raises."""
        if self._jitter.enabled:
            self._sleep_jitter()
        snapshot = self._store._snapshot
        outcome = evaluate_safely(
            key,
            default,
            expected,
            overrides=self._overrides,
            snapshot=snapshot,
            context=context,
            logger=self._logger,
        )
        self._recorder.record(key, outcome, snapshot, context)
        if outcome.error_code is not None and (
            outcome.reason is not EvaluationReason.FLAG_NOT_FOUND or self.is_ready()
        ):
            warn_once(self._logger, key, outcome, default, getter)
        return outcome

    def _sleep_jitter(self) -> None:
        jitter = self._jitter
        time.sleep(random.uniform(float(jitter.min_ms), float(jitter.max_ms)) / 1000.0)

    # ------------------------------------------------------------------------------------
    # fork

    def _after_fork(self) -> None:
        """Runs in a forked child (through :mod:`flagkit.core.fork`): fresh locks, threads
        and connections for this client."""
        self._lock = threading.Lock()
        # The parent's HTTP client (and its pooled sockets) belongs to the parent: the child
        # builds its own on first use, and leaves the parent's untouched.
        self._http = None
        self._store.after_fork()
        self._contexts.after_fork()
        self._callbacks.after_fork()
        self._recorder.after_fork()
        self._events.after_fork()
        self._source.after_fork()
        if not self._closed and self._source.state in (ClientState.STARTING, ClientState.READY):
            self._events.start()
