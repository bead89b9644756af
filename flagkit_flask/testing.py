"""Test helpers: force flag values for one app without touching a server.

``override_flags`` works as a context manager and as a decorator (sync or async test
functions)::

    from flagkit_flask.testing import override_flags

    def test_new_checkout(app):
        with override_flags(app, {"new-checkout": True, "banner-text": "Sale"}):
            assert b"Sale" in app.test_client().get("/").data

    @override_flags(None, {"new-checkout": False})     # None: current_app when entered
    def run_inside_app_context(): ...

For pytest, the ``flagkit_flags`` fixture of :mod:`flagkit_flask.pytest_plugin` (it needs
an ``app`` fixture, the pytest-flask convention)::

    def test_banner(app, flagkit_flags):
        flagkit_flags.set({"banner-text": "Sale"})
        assert b"Sale" in app.test_client().get("/").data

Overrides use the core client's overrides API (they win over everything, reason
``OVERRIDE``, no network), so every path sees them: ``flagkit.is_enabled``, templates,
decorators, plain ``flagkit.client`` lookups, the CLI. They are kept per app — another app
in the same process is unaffected — and applied to a client created later (before the
app's first request). Nested overrides merge (the inner wins) and leaving a block restores
the outer values exactly. The helpers own the client's overrides: do not mix them with
direct ``client.set_overrides`` calls.

Thread-safety: enter and leave overrides from the test's thread; lookups from other threads
see them.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from flagkit.testing.overrides import FlagOverrides as BaseFlagOverrides
from flagkit.testing.overrides import checked_flags
from flagkit_flask.state import FlagKitState, get_state

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["FlagOverrides", "override_flags"]

F = TypeVar("F", bound=Callable[..., Any])


class override_flags:
    """Force flag values of ``app`` (``None``: ``current_app`` when entered) for a block or
    a test function.

    >>> with override_flags(app, {"new-checkout": True}):
    ...     with app.test_request_context():
    ...         flagkit.is_enabled("new-checkout")
    True

    Raises ``TypeError`` for a non-mapping or a non-string key, and ``RuntimeError`` when
    entered for an app without ``init_app`` (or with ``None`` outside an app context).
    Re-entrant use of one instance is not supported (create one per block).
    """

    def __init__(self, app: Flask | None, flags: Mapping[str, Any]) -> None:
        self.app = app
        self.flags = checked_flags(flags)
        self._entered: tuple[FlagKitState, dict[str, Any]] | None = None

    def __enter__(self) -> None:
        state = get_state(self.app)
        layer = dict(self.flags)
        state.push_overrides(layer)
        self._entered = (state, layer)

    def __exit__(self, *exc_info: object) -> None:
        entered, self._entered = self._entered, None
        if entered is not None:
            state, layer = entered
            state.pop_overrides(layer)

    def _fresh(self) -> override_flags:
        return override_flags(self.app, self.flags)

    def __call__(self, fn: F) -> F:
        """Decorate a (sync or async) function: each call runs with the overrides."""
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self._fresh():
                    return await fn(*args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class FlagOverrides(BaseFlagOverrides):
    """What the ``flagkit_flags`` pytest fixture yields: overrides of one app for one test
    (``set``, ``[key] = value``, ``del``, ``clear``; see
    :class:`flagkit.testing.overrides.FlagOverrides`), removed by :meth:`close` when the
    test ends. Not thread-safe (use it from the test).
    """

    def __init__(self, app: Flask) -> None:
        self._state = get_state(app)
        super().__init__()

    def _push(self, layer: dict[str, Any]) -> None:
        self._state.push_overrides(layer)

    def _pop(self, layer: dict[str, Any]) -> None:
        self._state.pop_overrides(layer)

    def _refresh_client(self) -> None:
        self._state.apply_overrides()
