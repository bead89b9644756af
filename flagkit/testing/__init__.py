"""Helpers for testing applications that use FlagKit (and for FlagKit's own tests).

``FlagKitServer`` runs the local FlagKit server in-process on a free port:

>>> from flagkit.testing import FlagKitServer
>>> with FlagKitServer(flags={"new-checkout": True}) as server:        # doctest: +SKIP
...     client = FlagKitClient(api_key=server.api_key, base_url=server.base_url)
...     server.set_flag("new-checkout", False)      # pushed to open streams
...     server.wait_for_events(1, event_type="purchase")
...     server.inject_fault("init", statuses=[503, 503])

With pytest, the ``flagkit_server`` fixture (this package's plugin, registered
automatically) yields a started server; ``@pytest.mark.flagkit_server(flags={...})``
passes constructor arguments to it.

Importing this package is cheap: the server module loads on first use of a name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flagkit.server import (
        FlagKitServer,
        FlagsFileError,
        InvalidFieldError,
        RecordedRequest,
    )

__all__ = ["FlagKitServer", "FlagsFileError", "InvalidFieldError", "RecordedRequest"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        import flagkit.server

        return getattr(flagkit.server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
