"""Fixtures for the HTTP-layer tests: a scripted loopback server per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.fault_server import FaultServer


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """A started :class:`FaultServer`, closed after the test."""
    with FaultServer() as fault:
        yield fault
