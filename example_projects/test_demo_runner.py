"""``run_demo.py`` (``make demo``): starts the server and both shops, stops them cleanly."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

RUNNER = Path(__file__).resolve().parent / "run_demo.py"
FLAGS_FILE = Path(__file__).resolve().parent / "flags.json"
API_KEY = "sdk_demo_key_123456"


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports that were free a moment ago (bound to port 0, then released)."""
    sockets = []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


class Output:
    """Collects a process's output lines on a thread; wait for a line matching a pattern."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._done = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    self._changed.notify_all()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """The first line matching ``pattern``; fails showing the output if the output ends
        or ``timeout`` seconds pass first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    found = regex.search(line)
                    if found:
                        return found
                left = deadline - time.monotonic()
                if left <= 0 or self._done:
                    pytest.fail(f"no line matching {pattern!r}; output:\n" + self.text())
                self._changed.wait(left)

    def text(self) -> str:
        """Everything read so far."""
        return "\n".join(self.lines)

    def join(self, timeout: float) -> None:
        """Wait for the end of the output."""
        self._thread.join(timeout)


def start_runner(*args: str, data_dir: Path) -> tuple[subprocess.Popen[str], Output]:
    """Start run_demo.py with ``args`` (output collected), databases in ``data_dir``."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("SERVER_PORT", "DJANGO_PORT", "FLASK_PORT")
    }
    process = subprocess.Popen(
        [sys.executable, str(RUNNER), "--data-dir", str(data_dir), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    return process, Output(process.stdout)


def port_open(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (zombies included)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def children_of(pid: int) -> set[int]:
    """Pids whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def fetch(url: str, headers: dict[str, str] | None = None) -> str:
    """GET ``url`` (must answer 200) and return the body."""
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        body: bytes = response.read()
    return body.decode()


@dataclass
class RunningDemo:
    """A demo started by the ``demo`` fixture."""

    process: subprocess.Popen[str]
    output: Output
    server_port: int
    django_port: int
    flask_port: int
    flags_file: Path


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[RunningDemo]:
    """A running demo on three free ports, serving a copy of flags.json (so a test may edit
    it); stopped with SIGINT at teardown if a test left it running."""
    flags_file = tmp_path / "flags.json"
    shutil.copy(FLAGS_FILE, flags_file)
    ports = free_ports(3)
    process, output = start_runner(
        "--server-port",
        str(ports[0]),
        "--django-port",
        str(ports[1]),
        "--flask-port",
        str(ports[2]),
        "--flags",
        str(flags_file),
        data_dir=tmp_path / "data",
    )
    try:
        yield RunningDemo(process, output, *ports, flags_file)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        output.join(5)


def test_demo_starts_all_three_serves_pages_and_stops_cleanly_on_ctrl_c(
    demo: RunningDemo,
) -> None:
    """The runner prepares the databases, brings up the server, the Django shop and the
    Flask shop on the given ports, and SIGINT stops every child before it exits with 0."""
    process, output = demo.process, demo.output
    ports = (demo.server_port, demo.django_port, demo.flask_port)
    output.wait_for(r"^\[demo\] ready$", timeout=90)
    pids = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"\[demo\] started (\w+) pid (\d+)", output.text())
    }
    assert set(pids) == {"server", "django", "flask"}
    assert set(pids.values()) <= children_of(process.pid)
    assert all(port_open(port) for port in ports)

    init = fetch(f"http://127.0.0.1:{demo.server_port}/api/v1/sdk/init", {"X-API-Key": API_KEY})
    assert '"welcome-message"' in init
    assert "Welcome to the FlagKit demo shop!" in fetch(f"http://127.0.0.1:{demo.django_port}/")
    assert "Welcome to the FlagKit demo shop!" in fetch(f"http://127.0.0.1:{demo.flask_port}/")
    banner = output.text()
    assert f"http://127.0.0.1:{demo.django_port}/" in banner and "alice" in banner

    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    output.join(5)
    assert "[demo] stopped (Ctrl-C)" in output.text()
    assert not [name for name, pid in pids.items() if pid_alive(pid)]
    assert not any(port_open(port) for port in ports)


def test_editing_the_flags_file_changes_both_sites_on_the_next_load(demo: RunningDemo) -> None:
    """An edit of the flags file reaches both running shops (file watch, then streaming):
    reloading the page shows the new value within a few seconds."""
    demo.output.wait_for(r"^\[demo\] ready$", timeout=90)
    document = json.loads(demo.flags_file.read_text())
    for flag in document["flags"]:
        if flag["key"] == "welcome-message":
            flag["value"] = "Edited in flags.json"
    demo.flags_file.write_text(json.dumps(document))
    for port in (demo.django_port, demo.flask_port):
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 10
        pause = threading.Event()
        while "Edited in flags.json" not in fetch(url):
            assert time.monotonic() < deadline, f"{url} still shows the old message"
            pause.wait(0.1)


def test_port_in_use_is_reported_in_one_line_and_nothing_starts(tmp_path: Path) -> None:
    """A busy port gives a one-line message naming it and the variable to change, exit
    status 2, and no child process or database."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        server_port, flask_port = free_ports(2)
        process, output = start_runner(
            "--server-port",
            str(server_port),
            "--django-port",
            str(taken),
            "--flask-port",
            str(flask_port),
            data_dir=tmp_path / "data",
        )
        assert process.wait(30) == 2
        output.join(5)
    lines = output.lines
    assert len(lines) == 1, lines
    assert f"port {taken} (Django) on 127.0.0.1 is already in use" in lines[0]
    assert "DJANGO_PORT=" in lines[0]
    assert not (tmp_path / "data").exists()


def test_the_same_port_twice_is_refused(tmp_path: Path) -> None:
    """Giving two services one port is refused before anything starts."""
    (port,) = free_ports(1)
    process, output = start_runner(
        "--server-port",
        str(port),
        "--django-port",
        str(port),
        "--flask-port",
        str(port + 1),
        data_dir=tmp_path,
    )
    assert process.wait(30) == 2
    output.join(5)
    assert "DJANGO_PORT=" in output.text() and "is also the FlagKit server port" in output.text()


def test_ctrl_c_during_start_up_stops_the_children_started_so_far(demo: RunningDemo) -> None:
    """SIGINT while the shops are still starting stops every child already started and
    exits with 0, without printing the banner."""
    demo.output.wait_for(r"^\[demo\] started flask pid \d+$", timeout=90)
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(30) == 0
    demo.output.join(5)
    text = demo.output.text()
    pids = [int(pid) for pid in re.findall(r"\[demo\] started \w+ pid (\d+)", text)]
    assert len(pids) == 3
    assert not [pid for pid in pids if pid_alive(pid)]
    assert "FlagKit demo is running" not in text


def test_make_demo_brings_up_all_three_and_ctrl_c_stops_them(tmp_path: Path) -> None:
    """`make demo` itself (the README command, on free ports given as make variables)
    serves a page from each of the three processes, and a Ctrl-C to its process group —
    what a terminal sends — stops every one of them."""
    root = Path(__file__).resolve().parents[1]
    server_port, django_port, flask_port = free_ports(3)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS")},
        "DJANGO_SHOP_DB": str(tmp_path / "django_shop.sqlite3"),
        "FLASK_SHOP_DB": str(tmp_path / "flask_shop.sqlite3"),
    }
    process = subprocess.Popen(
        [
            "make",
            "--no-print-directory",
            "demo",
            f"SERVER_PORT={server_port}",
            f"DJANGO_PORT={django_port}",
            f"FLASK_PORT={flask_port}",
        ],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    output = Output(process.stdout)
    try:
        output.wait_for(r"^\[demo\] ready$", timeout=120)
        pids = [int(m.group(1)) for m in re.finditer(r"started \w+ pid (\d+)", output.text())]
        assert len(pids) == 3
        init = fetch(f"http://127.0.0.1:{server_port}/api/v1/sdk/init", {"X-API-Key": API_KEY})
        assert '"welcome-message"' in init
        assert "Welcome to the FlagKit demo shop!" in fetch(f"http://127.0.0.1:{django_port}/")
        assert "Welcome to the FlagKit demo shop!" in fetch(f"http://127.0.0.1:{flask_port}/")
        os.killpg(process.pid, signal.SIGINT)
        process.wait(30)
        output.join(5)
        assert "[demo] stopped (Ctrl-C)" in output.text()
        assert not [pid for pid in pids if pid_alive(pid)]
        assert not any(port_open(port) for port in (server_port, django_port, flask_port))
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
