"""The listening socket of the local server: a bounded accept loop, one thread per connection.

At most ``max_connections`` connections are served at once; while that many are open the
server stops accepting and further clients wait in the listen backlog. When ``accept()``
fails for lack of resources (``EMFILE``: the open-file limit is reached), the loop backs
off until a connection closes or a short delay passes, instead of spinning. Stopping
wakes the loop at once (no polling), ends every open connection and joins the threads.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Final

from flagkit.server.context import ServerContext

__all__ = ["LocalHTTPServer"]

logger = logging.getLogger("flagkit.server")

_RESOURCE_ERRORS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
_MIN_BACKOFF: Final = 0.01
_MAX_BACKOFF: Final = 1.0


class LocalHTTPServer(HTTPServer):
    """An ``HTTPServer`` whose handlers read :attr:`context` (a :class:`ServerContext`).

    ``handler_class`` is :class:`flagkit.server.handler.RequestHandler`. Raises ``OSError``
    from the constructor when the address cannot be bound.
    """

    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        context: ServerContext,
        handler_class: type[BaseHTTPRequestHandler],
        *,
        ipv6: bool,
    ) -> None:
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self.context = context
        self._wake_r, self._wake_w = socket.socketpair()
        self._cond = threading.Condition(threading.Lock())
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._stopping = False
        self._thread: threading.Thread | None = None
        super().__init__(address, handler_class)  # closes itself (server_close) if bind fails
        self.socket.setblocking(False)  # accept() after select() must not block

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self.server_address[1])

    @property
    def connection_count(self) -> int:
        """Connections being served now."""
        with self._cond:
            return len(self._connections)

    def start(self) -> None:
        """Serve on a daemon thread named after the port."""
        self._thread = threading.Thread(
            target=self._accept_loop, name=f"flagkit-server-{self.port}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Stop accepting, end open connections (streams too), join threads within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        if self._thread is not None:
            self._thread.join(timeout)
        with self._cond:
            connections = dict(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.server_close()
        for thread in connections.values():
            thread.join(max(0.0, deadline - time.monotonic()))

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("unexpected error while serving %s", client_address)

    # accepting ---------------------------------------------------------------------------

    def _wait_for_slot(self, timeout: float | None = None) -> bool:
        """Wait until fewer than ``max_connections`` are open; False once stopping."""
        limit = self.context.limits.max_connections
        with self._cond:
            self._cond.wait_for(lambda: self._stopping or len(self._connections) < limit, timeout)
            return not self._stopping

    def _accept_loop(self) -> None:
        backoff = _MIN_BACKOFF
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while self._wait_for_slot():
                ready = selector.select()
                if any(key.fileobj is self._wake_r for key, _ in ready):
                    return
                try:
                    conn, address = self.socket.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                except OSError as exc:
                    if exc.errno not in _RESOURCE_ERRORS:
                        logger.warning("accept() failed: %s", exc)
                        continue
                    if backoff == _MIN_BACKOFF:
                        logger.warning(
                            "cannot accept connections (%s): pausing until one closes; "
                            "lower --max-connections below the open-file limit (ulimit -n)",
                            exc.strerror or exc,
                        )
                    # Wait for a connection to close (which frees a descriptor) or the delay.
                    self._wait_for_a_close(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
                    continue
                backoff = _MIN_BACKOFF
                self._serve_on_thread(conn, address)

    def _wait_for_a_close(self, timeout: float) -> None:
        """Wait until a connection closes (freeing a descriptor), stopping, or ``timeout``."""
        with self._cond:
            count = len(self._connections)
            self._cond.wait_for(lambda: self._stopping or len(self._connections) < count, timeout)

    def _serve_on_thread(self, conn: socket.socket, address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(conn, address),
            name="flagkit-server-conn",
            daemon=True,
        )
        with self._cond:
            self._connections[conn] = thread
        try:
            thread.start()
        except RuntimeError:  # no thread can be started now: refuse this connection
            logger.warning("cannot start a thread for a new connection; closing it")
            with self._cond:
                self._connections.pop(conn, None)
            self.shutdown_request(conn)

    def _serve_connection(self, conn: socket.socket, address: Any) -> None:
        try:
            self.finish_request(conn, address)
        except (ConnectionError, TimeoutError) as exc:  # the client went away or stalled
            logger.debug("connection from %s ended: %r", address, exc)
        except Exception:
            self.handle_error(conn, address)
        finally:
            self.shutdown_request(conn)
            with self._cond:
                self._connections.pop(conn, None)
                self._cond.notify_all()
