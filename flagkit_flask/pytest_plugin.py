"""pytest fixture ``flagkit_flags``: flag overrides for the ``app`` fixture's app.

Enable it in your root ``conftest.py``::

    pytest_plugins = ["flagkit_flask.pytest_plugin"]

or import the fixture into any ``conftest.py``::

    from flagkit_flask.pytest_plugin import flagkit_flags  # noqa: F401

It needs an ``app`` fixture returning your Flask app (the pytest-flask convention)::

    @pytest.fixture
    def app():
        return create_app({"TESTING": True, "FLAGKIT_OFFLINE": True})

    def test_banner(app, flagkit_flags):
        flagkit_flags.set({"banner-text": "Sale"})
        assert b"Sale" in app.test_client().get("/").data

Overrides set through the fixture are removed when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from flask import Flask

    from flagkit_flask.testing import FlagOverrides

__all__ = ["flagkit_flags"]


@pytest.fixture
def flagkit_flags(app: Flask) -> Iterator[FlagOverrides]:
    """Flag overrides for ``app`` during one test (see
    :class:`flagkit_flask.testing.FlagOverrides`)."""
    from flagkit_flask.testing import FlagOverrides

    with FlagOverrides(app) as overrides:
        yield overrides
