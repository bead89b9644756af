"""Fixtures for the whole suite: every test ends without a default ``FlagKit`` client.

Areas add their own fixtures in ``tests/<area>/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from flagkit.flagkit import _reset_default_client


@pytest.fixture(autouse=True)
def _reset_flagkit_singleton() -> Iterator[None]:
    """Close and forget the ``FlagKit`` default client after each test."""
    yield
    _reset_default_client()
