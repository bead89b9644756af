"""Running the local server from a command line, for ``flagkit serve``,
``manage.py flagkit_serve`` and ``flask flagkit serve``.

>>> server = start_server(host="127.0.0.1", port=8200, flags_file="flags.json")  # doctest: +SKIP
>>> serve_until_interrupted(server, lambda: print(f"listening on {server.base_url}"))
... # returns after Ctrl-C or SIGTERM                                            # doctest: +SKIP

Each command parses its own options and prints its own banner; starting the server with
one-line errors and serving in the foreground until interrupted are done here once.
"""

from __future__ import annotations

import errno
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flagkit.server.app import FlagKitServer

__all__ = ["ServeError", "serve_until_interrupted", "start_server", "wait_until_interrupted"]


class ServeError(Exception):
    """The server could not be created or started; ``str()`` is a one-line reason (an
    invalid flags file, a bad argument, a port that cannot be listened on)."""


def start_server(*, host: str, port: int, **options: Any) -> FlagKitServer:
    """Create and start a :class:`~flagkit.server.FlagKitServer` on ``host``:``port``.

    ``options`` are the other ``FlagKitServer`` keyword arguments (``flags_file``,
    ``api_keys``, ``admin_token``, ...). Raises :class:`ServeError` for an invalid flags
    file (``"invalid flags file: ..."``), an invalid argument, a port in use (``"port 8200
    on 127.0.0.1 is already in use; choose another with --port"``) or any other failure to
    listen.
    """
    from flagkit.server.app import FlagKitServer
    from flagkit.server.flags_file import FlagsFileError

    try:
        server = FlagKitServer(host=host, port=port, **options)
    except FlagsFileError as exc:
        raise ServeError(f"invalid flags file: {exc}") from None
    except ValueError as exc:
        raise ServeError(str(exc)) from None
    try:
        server.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            message = f"port {port} on {host} is already in use; choose another with --port"
        else:
            message = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise ServeError(message) from None
    return server


def wait_until_interrupted(
    ready: Callable[[], object] | None = None, *, poll_interval: float = 1.0
) -> None:
    """Block the calling thread until Ctrl-C (``SIGINT``) or ``SIGTERM``.

    ``ready`` is called once both are handled: print the banner there, so whoever reads it
    may stop the process at once. Called from the main thread (where Python delivers
    signals), it installs its own handlers for both signals, so Ctrl-C stops it even when
    the process was started with ``SIGINT`` ignored (a background job of a shell script, some
    CI runners); the previous handlers are restored on return. From another thread only a
    ``KeyboardInterrupt`` raised in it ends the wait.
    """
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():

        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        if ready is not None:
            ready()
        while not stop.wait(poll_interval):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def serve_until_interrupted(
    server: FlagKitServer, ready: Callable[[], object] | None = None
) -> None:
    """Serve in the foreground until Ctrl-C or ``SIGTERM``, then stop ``server``; ``ready``
    as for :func:`wait_until_interrupted` (the banner)."""
    try:
        wait_until_interrupted(ready)
    finally:
        server.stop()
