"""Fixtures for the core tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.clients import close_open_clients


@pytest.fixture(autouse=True)
def _close_loopback_clients() -> Iterator[None]:
    """Close every client a test made with ``loopback_client``, even when the test failed."""
    yield
    close_open_clients()
