"""Test helpers: force flag values without a server.

``override_flags`` works as a decorator on test functions (sync or async) and on
``TestCase`` classes (each test runs with the overrides), and as a context manager::

    from flagkit_django.testing import override_flags

    @override_flags({"new-checkout": True, "banner-text": "Sale"})
    class CheckoutTests(TestCase):
        def test_new_checkout(self): ...

    def test_old_checkout(client):
        with override_flags({"new-checkout": False}):
            response = client.get("/checkout/")

For pytest, the ``flagkit_flags`` fixture (:mod:`flagkit_django.pytest_plugin`)::

    def test_banner(client, flagkit_flags):
        flagkit_flags.set({"banner-text": "Sale"})
        assert b"Sale" in client.get("/").content

Overrides are applied with the core client's overrides API (instance-wide, they win over
everything, reason ``OVERRIDE``, no network), so every path — ``request.flags``, template
tags, decorators, a plain ``get_client()`` lookup — sees them. Nested overrides merge (the
inner wins) and leaving a block restores the outer values exactly; a client rebuilt inside
a block (``override_settings(FLAGKIT=...)``) gets them too. Nothing leaks into the next
test. Use offline settings in tests (``FLAGKIT = {"API_KEY": ..., "OFFLINE": True}``) so
the client itself never touches the network.

Thread-safety: enter and leave overrides from the test's thread; lookups from other
threads (e.g. a live server) see them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.test.utils import TestContextDecorator

from flagkit.testing.overrides import FlagOverrides as BaseFlagOverrides
from flagkit.testing.overrides import checked_flags
from flagkit_django import _engine

__all__ = ["FlagOverrides", "override_flags"]


def _push(layer: dict[str, Any]) -> None:
    # The adapter owns the override stack and puts it on every client it wires.
    _engine.overrides.push(layer)
    _engine.apply_overrides()


def _pop(layer: dict[str, Any]) -> None:
    _engine.overrides.remove(layer)
    client = _engine.peek_client()
    if client is not None:
        _engine.overrides.apply_to(client)


class override_flags(TestContextDecorator):  # type: ignore[misc]
    """Force flag values for a block, a test function or every test of a ``TestCase``.

    >>> with override_flags({"new-checkout": True}):
    ...     get_client().get_boolean_value("new-checkout", False)
    True

    Raises ``TypeError`` for a non-mapping or a non-string key.
    """

    def __init__(self, flags: Mapping[str, Any]) -> None:
        self.flags = checked_flags(flags)
        self._layer: dict[str, Any] | None = None
        super().__init__()

    def enable(self) -> None:
        """Apply the overrides (entering the block / starting the test)."""
        layer = dict(self.flags)
        self._layer = layer
        _push(layer)

    def disable(self) -> None:
        """Remove the overrides, restoring the outer values."""
        if self._layer is not None:
            _pop(self._layer)
            self._layer = None


class FlagOverrides(BaseFlagOverrides):
    """What the ``flagkit_flags`` pytest fixture yields: overrides for one test (``set``,
    ``[key] = value``, ``del``, ``clear``; see
    :class:`flagkit.testing.overrides.FlagOverrides`), removed when the test ends. Not
    thread-safe (use from the test).
    """

    def _push(self, layer: dict[str, Any]) -> None:
        _push(layer)

    def _pop(self, layer: dict[str, Any]) -> None:
        _pop(layer)

    def _refresh_client(self) -> None:
        _engine.apply_overrides()
