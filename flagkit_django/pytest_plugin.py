"""pytest plugin providing the ``flagkit_flags`` fixture.

Enable it in your root ``conftest.py``::

    pytest_plugins = ["flagkit_django.pytest_plugin"]

or import the fixture into any ``conftest.py``::

    from flagkit_django.pytest_plugin import flagkit_flags  # noqa: F401

Then::

    def test_banner(client, flagkit_flags):
        flagkit_flags.set({"banner-text": "Sale"})
        assert b"Sale" in client.get("/").content

Overrides set through the fixture are removed when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from flagkit_django.testing import FlagOverrides

__all__ = ["flagkit_flags"]


@pytest.fixture
def flagkit_flags() -> Iterator[FlagOverrides]:
    """Flag overrides for one test (see :class:`flagkit_django.testing.FlagOverrides`)."""
    from flagkit_django.testing import FlagOverrides

    with FlagOverrides() as overrides:
        yield overrides
