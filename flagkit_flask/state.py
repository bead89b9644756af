"""Per-app state of the Flask extension: the app's client, its request hooks and the
per-request memoised lookups (:class:`RequestFlags`, ``g._flagkit``).

Lifecycle of one app's client:

- ``init_app``: options validated, hooks registered — no client, thread or network;
- the app's first request (``before_request``) or first evaluation/``flagkit.client``,
  whichever is first: the client is created and started with the non-blocking
  ``start()``; an ``atexit`` hook to close it is registered at the same moment. The first
  requests wait up to ``FLAGKIT_START_WAIT`` seconds (default 2) for the first flags, so
  they do not serve defaults while the flags are loading (:mod:`flagkit.web.startup`);
- each request: ``before_request`` enters ``client.context_scope()`` with a lazy context
  (built only when a targeted flag or ``track()`` needs it), so plain client calls in the
  view evaluate for the current user; ``teardown_request`` leaves it; lookups through the
  extension are memoised on ``g._flagkit``;
- process exit (or ``FlagKit.close``): the client is closed.

This module is the layer the extension class (:mod:`flagkit_flask.extension`), the CLI,
the decorators, the Jinja helpers and the test helpers build on; it imports none of them.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask, after_this_request, current_app, g, has_app_context, has_request_context

from flagkit.types.context import EvaluationContext
from flagkit.web.overrides import OverrideStack
from flagkit.web.request_flags import RequestFlags as BaseRequestFlags
from flagkit.web.request_flags import client_is_enabled, client_value
from flagkit.web.startup import StartWait
from flagkit_flask import signals
from flagkit_flask.context import (
    AnonymousKey,
    ContextLoader,
    current_user_object,
    request_context,
    user_context,
)

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from flagkit.client import FlagKitClient
    from flagkit.types.config import FlagKitOptions
    from flagkit.types.flag import FlagState
    from flagkit_flask.conf import AdapterSettings

__all__ = ["EXTENSION_KEY", "FlagKitState", "RequestFlags", "get_state"]

logger = logging.getLogger("flagkit.flask")

#: The key of the per-app state in ``app.extensions``.
EXTENSION_KEY = "flagkit"

# The RequestFlags whose request scope is active in this thread/task (set by before_request).
_active: contextvars.ContextVar[RequestFlags | None] = contextvars.ContextVar(
    "flagkit_flask_request_flags", default=None
)


class _Extension(Protocol):
    """What the state needs of the ``FlagKit`` extension object: its context loader."""

    _context_loader: ContextLoader | None


class RequestFlags(BaseRequestFlags):
    """Flag lookups for one request and its user, memoised per request (``g._flagkit``).

    >>> flagkit.is_enabled("new-checkout")          # goes through g._flagkit
    True

    The :class:`~flagkit.EvaluationContext` is built (default loader, then the
    ``@flagkit.context_loader`` function) only when an evaluation needs it — a flag with
    targeting, ``track()``, or reading :attr:`context` (None if the loader returned None
    or failed). Each flag is evaluated at most once per request: later lookups of the same
    key return the same value even if an update arrives meanwhile. Lookups never raise.
    The lookups are :class:`flagkit.web.request_flags.RequestFlags`; this
    class adds the app's state, the request's user and the anonymous-key cookie. Not
    thread-safe: one instance per request.
    """

    __slots__ = ("_anonymous_key", "_built", "_scope", "_state", "_token")

    def __init__(self, state: FlagKitState, client: FlagKitClient) -> None:
        BaseRequestFlags.__init__(self, client)
        self._state = state
        self._built = False
        self._anonymous_key: AnonymousKey | None = None
        self._scope: contextlib.AbstractContextManager[None] | None = None
        self._token: contextvars.Token[RequestFlags | None] | None = None

    @property
    def state(self) -> FlagKitState:
        """The app's :class:`FlagKitState`."""
        return self._state

    # -- the context ----------------------------------------------------------------------

    def build_context(self) -> EvaluationContext | None:
        """Build the context once (the factory given to ``client.context_scope``).

        An anonymous visitor without a valid key cookie gets a new key, and the cookie is
        set on this request's response (``after_this_request``). A loader that raises is
        logged and gives no context.
        """
        if self._built:
            return self._context
        self._built = True
        try:
            self._context = self._load()
        except Exception:
            logger.exception("building the FlagKit evaluation context failed; using none")
            self._context = None
        return self._context

    scope_context = build_context

    def _load(self) -> EvaluationContext | None:
        state = self._state
        app = state.app
        settings = state.adapter
        if app is None or not has_request_context():
            return None
        user_part = user_context(current_user_object(app), settings)
        key = None
        if user_part.user_id is None:
            key = self._anonymous_key = AnonymousKey(app, settings)
            if key.is_new:
                after_this_request(self._set_cookie)
        context: EvaluationContext | None = request_context(user_part, settings, key)
        loader = state.extension._context_loader
        if loader is not None and context is not None:
            context = loader(context)
            if context is not None and not isinstance(context, EvaluationContext):
                raise TypeError(
                    "a @flagkit.context_loader function must return an EvaluationContext "
                    f"or None, got {type(context).__name__}"
                )
        return context

    # -- request lifecycle ----------------------------------------------------------------

    def enter(self) -> None:
        """Enter the client's context scope for this request (``before_request``)."""
        scope = self.client.context_scope(self.build_context)
        scope.__enter__()
        self._scope = scope
        self._token = _active.set(self)

    def exit(self) -> None:
        """Leave the scope entered by :meth:`enter` (``teardown_request``). Idempotent."""
        token, self._token = self._token, None
        scope, self._scope = self._scope, None
        try:
            if token is not None:
                _active.reset(token)
            if scope is not None:
                scope.__exit__(None, None, None)
        except (ValueError, RuntimeError):
            # Left from another context than it was entered in (a nested test context):
            # the scope dies with that context anyway.
            logger.debug("FlagKit request scope left from another context", exc_info=True)

    def _set_cookie(self, response: Response) -> Response:
        """Set the new anonymous-key cookie on ``response`` (an ``after_this_request``)."""
        key = self._anonymous_key
        if key is not None:
            key.apply(response, self._state.adapter)
        return response


RequestFlags._active = _active


def _close_at_exit(ref: weakref.ReferenceType[FlagKitClient]) -> None:
    client = ref()
    if client is None:
        return
    try:
        client.close()
    except Exception:
        logger.exception("closing a FlagKit client at exit failed")


class FlagKitState:
    """What ``init_app`` stores in ``app.extensions["flagkit"]``: one app's options and client.

    Holds the validated options, the adapter settings, the lazily created client and the
    lock guarding its creation; the app itself only through a weak reference. Thread-safe.
    """

    def __init__(
        self,
        extension: _Extension,
        app: Flask,
        options: FlagKitOptions,
        adapter: AdapterSettings,
    ) -> None:
        self.extension = extension
        self.options = options
        self.adapter = adapter
        self.lock = threading.Lock()
        self.warned_no_secret = False
        self._app_ref = weakref.ref(app)
        self._client: FlagKitClient | None = None
        self._start_wait = StartWait(0.0)
        # Flag overrides (pushed by flagkit_flask.testing), put on every client created.
        self.overrides = OverrideStack()

    @property
    def app(self) -> Flask | None:
        """The app this state belongs to (None once it was garbage-collected)."""
        return self._app_ref()

    # -- the client -----------------------------------------------------------------------

    @property
    def client(self) -> FlagKitClient:
        """The app's client: created and started (non-blocking) on first access."""
        client = self._client
        if client is not None:
            return client
        return self._create_client()

    def peek_client(self) -> FlagKitClient | None:
        """The client if it was created, else None (never creates one)."""
        return self._client

    def _create_client(self) -> FlagKitClient:
        from flagkit.client import FlagKitClient

        with self.lock:
            client = self._client
            if client is not None:
                return client
            client = FlagKitClient(self.options)
            self._client = client
            self._start_wait = StartWait(self.adapter.start_wait)
            overrides = self.overrides
        # Act outside the lock: listeners, overrides and start() take the client's locks.
        logger.debug(
            "created the FlagKit client of app %r (%s)",
            getattr(self.app, "name", "?"),
            self.options.resolved_base_url,
        )
        self._wire(client)
        if len(overrides):
            overrides.apply_to(client)
        atexit.register(_close_at_exit, weakref.ref(client))
        client.start()
        return client

    def _wire(self, client: FlagKitClient) -> None:
        app_ref = self._app_ref

        def updated(flags: list[FlagState]) -> None:
            app = app_ref()
            if app is not None:
                signals.send_robustly(signals.flags_updated, app, flags=flags)

        def ready() -> None:
            app = app_ref()
            if app is not None:
                signals.send_robustly(signals.client_ready, app)

        def failed(error: Exception) -> None:
            app = app_ref()
            if app is not None:
                signals.send_robustly(signals.client_error, app, error=error)

        client.add_update_listener(updated)
        client.add_ready_listener(ready)
        client.add_error_listener(failed)

    def close(self, timeout: float | None = 5.0) -> None:
        """Close and forget the client (the next use creates a new one). Idempotent."""
        with self.lock:
            client, self._client = self._client, None
        if client is not None:
            client.close(timeout)

    # -- request hooks (registered by init_app) -------------------------------------------

    def before_request(self) -> None:
        """Start the client (first request), wait for the first flags (the first
        requests of a process, up to ``FLAGKIT_START_WAIT`` seconds) and enter this
        request's context scope."""
        client = self._client
        if client is None:
            client = self._create_client()
        if not self._start_wait.done:
            self._start_wait.wait(client)
        flags = RequestFlags(self, client)
        g._flagkit = flags
        # RequestFlags.enter(), inlined: this runs on every request.
        scope = client.context_scope(flags.build_context)
        scope.__enter__()
        flags._scope = scope
        flags._token = _active.set(flags)

    def teardown_request(self, exc: BaseException | None) -> None:
        """Leave the request's context scope."""
        flags = _active.get()
        if flags is None or flags._state is not self:
            flags = g.get("_flagkit")
        if flags is not None and flags._state is self:
            flags.exit()

    def request_flags(self) -> RequestFlags | None:
        """The current request's :class:`RequestFlags` for this app (created if a lookup
        comes before ``before_request``); None outside a request."""
        flags = _active.get()
        if flags is not None and flags._state is self:
            return flags
        if not has_request_context():
            return None
        flags = g.get("_flagkit")
        if flags is None or flags._state is not self:
            flags = RequestFlags(self, self.client)
            g._flagkit = flags
        return flags

    def is_enabled(self, key: str) -> bool:
        """Whether flag ``key`` (``"!key"`` negates) is on: for the current request's user
        (memoised), outside a request for no user. Never raises for lookups (off)."""
        flags = self.request_flags()
        if flags is not None:
            return flags.is_enabled(key)
        return client_is_enabled(lambda: self.client, key)

    def value(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` (as :meth:`is_enabled` finds the user), or ``default`` when
        it is missing, failed, or (``default`` not None) of another kind."""
        flags = self.request_flags()
        if flags is not None:
            return flags.value(key, default)
        return client_value(lambda: self.client, key, default)

    # -- overrides (pushed by flagkit_flask.testing) -------------------------------------

    def push_overrides(self, layer: dict[str, Any]) -> None:
        """Add an override layer (the inner layer wins) and apply it to the client."""
        self.overrides.push(layer)
        self.apply_overrides()

    def pop_overrides(self, layer: dict[str, Any]) -> None:
        """Remove ``layer`` (by identity), restoring the outer values exactly."""
        self.overrides.remove(layer)
        self.apply_overrides()

    def apply_overrides(self) -> None:
        """Put the merged override layers on the client (if it exists yet)."""
        client = self._client
        if client is not None:  # else applied when the client is created
            self.overrides.apply_to(client)


def get_state(app: Flask | None = None) -> FlagKitState:
    """The :class:`FlagKitState` of ``app`` (default: ``current_app``).

    Raises ``RuntimeError`` when the app has no FlagKit extension (or there is no app).
    """
    if app is None:
        if not has_app_context():
            raise RuntimeError(
                "FlagKit needs an application context here (or pass app=...); did you call "
                "init_app and are you inside a request or app.app_context()?"
            )
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    state = app.extensions.get(EXTENSION_KEY)
    if not isinstance(state, FlagKitState):
        raise RuntimeError(
            f"FlagKit is not registered on the Flask app {app.name!r}; did you call init_app?"
        )
    return state
