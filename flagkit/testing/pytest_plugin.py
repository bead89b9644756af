"""pytest plugin (entry point ``flagkit``): the ``flagkit_server`` fixture.

>>> def test_checkout(flagkit_server):                      # doctest: +SKIP
...     flagkit_server.set_flag("new-checkout", True)
...     client = FlagKitClient(api_key=flagkit_server.api_key,
...                            base_url=flagkit_server.base_url)

>>> @pytest.mark.flagkit_server(flags={"new-checkout": True})   # doctest: +SKIP
... def test_with_flags(flagkit_server): ...

The marker's keyword arguments go to :class:`flagkit.server.FlagKitServer`. Each test gets
its own server on a free port, stopped after the test. The server is imported only when a
test asks for the fixture, so loading this plugin costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from flagkit.server import FlagKitServer


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``flagkit_server`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        "flagkit_server(**kwargs): FlagKitServer arguments for the flagkit_server fixture",
    )


@pytest.fixture
def flagkit_server(request: pytest.FixtureRequest) -> Iterator[FlagKitServer]:
    """A started local FlagKit server (``flagkit.testing.FlagKitServer``) for one test."""
    from flagkit.server import FlagKitServer

    marker = request.node.get_closest_marker("flagkit_server")
    kwargs = dict(marker.kwargs) if marker is not None else {}
    with FlagKitServer(**kwargs) as server:
        yield server
