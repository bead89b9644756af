"""A real ``redis-server`` for the fleet tests and benchmarks, in a temp dir, on a free port.

``redis-server`` has no ``--port 0``: :class:`RedisServer` picks a port the OS says is
free, starts the server there, and reads its log; if the port was taken meanwhile (another
test run), it tries the next candidate. Nothing is saved to disk (``--save ''``,
``--appendonly no``). :meth:`stop` and :meth:`start` make an outage and end it on the same
port (an empty Redis comes back, as after a restart without persistence).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["RedisServer", "redis_server_binary"]


def redis_server_binary() -> str:
    """The ``redis-server`` path; raises with the way to install it."""
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError(
            "redis-server is not installed: run `make redis` (Debian's redis-server package)"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process; ``url`` is ``redis://127.0.0.1:<port>/0``."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="flagkit-redis-"))
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The URL clients connect to."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start (on the previous port after :meth:`stop`, else on a free one)."""
        for _attempt in range(20):
            port = self.port or _free_port()
            if self._launch(port, timeout):
                self.port = port
                return
            if self.port:  # our own port is taken now: wait for it to free up
                time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start; log in {self._dir}")

    def _launch(self, port: int, timeout: float) -> bool:
        log = self._dir / f"redis-{port}.log"
        log.write_text("")
        process = subprocess.Popen(
            [
                redis_server_binary(),
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(self._dir),
                "--save", "",
                "--appendonly", "no",
                "--logfile", str(log),
                "--daemonize", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if "Ready to accept connections" in text:
                self._process = process
                return True
            if process.poll() is not None or "Address already in use" in text:
                process.wait()
                return False
            time.sleep(0.02)
        process.kill()
        process.wait()
        return False

    def stop(self) -> None:
        """Kill the server (an outage: clients see refused connections)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def close(self) -> None:
        """Stop and remove the temp dir."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
