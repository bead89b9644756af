"""The ``FlagKit`` Flask extension: per-app clients, per-request contexts, memoised lookups.

``flagkit = FlagKit()`` at module level, ``flagkit.init_app(app)`` in the app factory
(see :mod:`flagkit_flask`). The extension object holds no app: each app's options,
client and request hooks live in its :class:`~flagkit_flask.state.FlagKitState`
(``app.extensions["flagkit"]``), which also describes the client's lifecycle.
``init_app`` adds the request hooks, the Jinja helpers (:mod:`flagkit_flask.templating`)
and the ``flask flagkit`` commands (:mod:`flagkit_flask.cli`); those modules build on
:mod:`flagkit_flask.state`, never on this one, so the package has no import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from flagkit_flask.cli import flagkit_cli
from flagkit_flask.conf import read_config
from flagkit_flask.context import ContextLoader
from flagkit_flask.decorators import guard_blueprint as _guard_blueprint
from flagkit_flask.state import EXTENSION_KEY, FlagKitState, RequestFlags, get_state
from flagkit_flask.templating import install

if TYPE_CHECKING:
    from flask import Blueprint, Flask

    from flagkit.client import FlagKitClient
    from flagkit.types.context import EvaluationContext
    from flagkit.types.flag import EvaluationResult

__all__ = ["EXTENSION_KEY", "FlagKit", "FlagKitState", "RequestFlags", "get_state"]

L = TypeVar("L", bound=ContextLoader)


class FlagKit:
    """The FlagKit Flask extension; one instance serves any number of apps.

    >>> flagkit = FlagKit()            # module level, e.g. in extensions.py
    >>> flagkit.init_app(app)          # in the app factory
    >>> flagkit.is_enabled("new-checkout")   # in a view: for the current user

    ``FlagKit(app)`` calls :meth:`init_app` at once. Each app gets its own client (never
    ``self.app``), created lazily. Thread-safe: all per-app state is in
    ``app.extensions["flagkit"]``, all per-request state on ``g._flagkit``.
    """

    def __init__(self, app: Flask | None = None) -> None:
        self._context_loader: ContextLoader | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Register FlagKit on ``app``: read and validate its ``FLAGKIT_*`` config, add the
        request hooks, the Jinja helpers and the ``flask flagkit`` commands.

        Reads ``FLAGKIT_<OPTION>`` for every :class:`~flagkit.FlagKitOptions` field
        (``FLAGKIT_API_KEY``, ``FLAGKIT_POLLING_INTERVAL``, ``FLAGKIT_STREAMING``, ...) and
        the adapter keys ``FLAGKIT_USER_ID_ATTRIBUTE``, ``FLAGKIT_COUNTRY_HEADER``,
        ``FLAGKIT_TRUST_PROXY_HEADERS``, ``FLAGKIT_IP_HEADER``,
        ``FLAGKIT_ANONYMOUS_COOKIE_NAME``, ``FLAGKIT_ANONYMOUS_COOKIE_MAX_AGE``; missing
        ones are set to their defaults with ``app.config.setdefault``. Creates no client,
        thread or connection.

        Raises ``RuntimeError`` if FlagKit is already registered on ``app``, and
        ``ConfigurationError`` naming the ``app.config`` key for a bad or unknown
        ``FLAGKIT_*`` value or a missing ``FLAGKIT_API_KEY`` (optional when
        ``FLAGKIT_OFFLINE`` is true).
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                "A 'FlagKit' instance has already been registered on this Flask app "
                f"({app.name!r}). Import and use that instance instead."
            )
        options, adapter = read_config(app.config)
        state = FlagKitState(self, app, options, adapter)
        app.extensions[EXTENSION_KEY] = state
        app.before_request(state.before_request)
        app.teardown_request(state.teardown_request)
        install(app)
        app.cli.add_command(flagkit_cli)

    # -- per-app access -------------------------------------------------------------------

    @property
    def client(self) -> FlagKitClient:
        """The current app's :class:`~flagkit.FlagKitClient` (created and started on first
        use). Raises ``RuntimeError("... did you call init_app?")`` when the app has none."""
        return get_state().client

    def get_client(self, app: Flask | None = None) -> FlagKitClient:
        """The client of ``app`` (default: ``current_app``), created and started on first use.

        Raises ``RuntimeError`` when FlagKit is not registered on the app.
        """
        return get_state(app).client

    def close(self, app: Flask | None = None, timeout: float | None = 5.0) -> None:
        """Close ``app``'s client (default: ``current_app``); the next use creates a new one.

        Clients are closed at process exit anyway; call this in tests and before forking
        yourself. Idempotent.
        """
        get_state(app).close(timeout)

    # -- the request context --------------------------------------------------------------

    def context_loader(self, fn: L) -> L:
        """Register ``fn(default_context) -> EvaluationContext | None`` to build contexts.

        >>> @flagkit.context_loader
        ... def load_context(default):
        ...     return dataclasses.replace(default, custom={**default.custom, "plan": g.plan})

        Called (in the request context) once per request, when a lookup first needs the
        context, with the context the default loader built; return it extended, a new one
        (to replace it), or None (evaluate without a user). Applies to every app of this
        extension. A loader that raises is logged and the request evaluates without a
        context. Returns ``fn`` unchanged.
        """
        if not callable(fn):
            raise TypeError(f"context_loader needs a callable, got {type(fn).__name__}")
        self._context_loader = fn
        return fn

    @property
    def context(self) -> EvaluationContext | None:
        """The current request's evaluation context (None outside a request)."""
        flags = get_state().request_flags()
        return flags.context if flags is not None else None

    # -- lookups --------------------------------------------------------------------------

    def is_enabled(self, key: str) -> bool:
        """Whether boolean flag ``key`` is on for the current user; ``"!key"`` negates.

        Memoised per request. Outside a request (app context only), evaluates without a
        user. Never raises for a missing flag or a fault (off). Raises ``RuntimeError``
        without an app context or ``init_app``.
        """
        return get_state().is_enabled(key)

    def value(self, key: str, default: Any = None) -> Any:
        """The value of flag ``key`` for the current user, or ``default`` when it is
        missing, failed, or (``default`` not None) of another kind. Memoised per request."""
        return get_state().value(key, default)

    def evaluate(self, key: str) -> EvaluationResult[Any]:
        """The full :class:`~flagkit.EvaluationResult` of ``key`` for the current user
        (value, reason, variation/rule ids). Memoised per request; never raises."""
        state = get_state()
        flags = state.request_flags()
        if flags is not None:
            return flags.evaluate(key)
        return state.client.evaluate(key)

    def all_flags(self) -> dict[str, Any]:
        """``{key: value}`` of every known flag for the current user."""
        state = get_state()
        flags = state.request_flags()
        if flags is not None:
            return flags.all()
        return {key: r.value for key, r in sorted(state.client.evaluate_all().items())}

    def track(self, event_type: str, data: Mapping[str, Any] | None = None) -> None:
        """Track an analytics event for the current user.

        Raises ``EventError`` for an invalid type or data (unless
        ``FLAGKIT_LENIENT_TRACKING``), ``RuntimeError`` without an app context.
        """
        state = get_state()
        flags = state.request_flags()
        if flags is not None:
            flags.track(event_type, data)
        else:
            state.client.track(event_type, data)

    # -- views ----------------------------------------------------------------------------

    def guard_blueprint(
        self,
        blueprint: Blueprint,
        key: str,
        *,
        redirect_to: str | None = None,
        status: int = 404,
    ) -> None:
        """Make every view of ``blueprint`` require flag ``key`` (``"!key"`` negates).

        >>> flagkit.guard_blueprint(beta_bp, "beta-area")

        Same as :func:`flagkit_flask.decorators.guard_blueprint`.
        """
        _guard_blueprint(blueprint, key, redirect_to=redirect_to, status=status)
