"""``run_demo.py`` (``make demo``): starts the server and both shops, stops them cleanly.

Starting the demo costs seconds (databases, three processes), so the tests that need a
running demo share ONE start of ``make demo`` (a module-scoped fixture whose teardown
checks that Ctrl-C stops everything); one more start checks Ctrl-C during start-up with
SIGINT ignored by the parent shell. Ports are chosen by the runner (port 0) and read back
from its output: no test picks a port, releases it and hopes it is still free.
"""

from __future__ import annotations

import importlib.util
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


ROOT = Path(__file__).resolve().parents[1]
STARTED = re.compile(r"\[demo\] started (\w+) pid (\d+) port (\d+)")


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


def _ignore_sigint() -> None:  # pragma: no cover - runs in the child before exec
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_runner(
    *args: str, data_dir: Path, sigint_ignored: bool = False
) -> tuple[subprocess.Popen[str], Output]:
    """Start run_demo.py with ``args`` (output collected), databases in ``data_dir``;
    ``sigint_ignored`` starts it as a shell that ignores SIGINT would (SIG_IGN inherited)."""
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
        preexec_fn=_ignore_sigint if sigint_ignored else None,
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


def started(output: Output) -> dict[str, tuple[int, int]]:
    """``{name: (pid, port)}`` of the children the runner reported starting."""
    return {m.group(1): (int(m.group(2)), int(m.group(3))) for m in STARTED.finditer(output.text())}


@dataclass
class RunningDemo:
    """The demo started by ``make demo`` for this module."""

    process: subprocess.Popen[str]
    output: Output
    server_port: int
    django_port: int
    flask_port: int
    flags_file: Path
    pids: dict[str, int]
    data_dir: Path


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    """`make demo` itself (the README command) on ports the runner chooses, serving a copy
    of flags.json (a test may edit it), started with SIGINT ignored as a background script
    would. Its teardown is a test too: a Ctrl-C to the process group — what a terminal
    sends — stops every child and frees every port."""
    tmp = tmp_path_factory.mktemp("demo")
    flags_file = tmp / "flags.json"
    shutil.copy(FLAGS_FILE, flags_file)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS")},
        "DJANGO_SHOP_DB": str(tmp / "django_shop.sqlite3"),
        "FLASK_SHOP_DB": str(tmp / "flask_shop.sqlite3"),
        "DEMO_FLAGS": str(flags_file),
    }
    # BIN/STAMP: run the recipe with the interpreter running these tests (already set up),
    # so the test never builds or reinstalls a virtualenv.
    make_vars = [f"BIN={Path(sys.executable).parent}", "STAMP="]
    ports = ["SERVER_PORT=0", "DJANGO_PORT=0", "FLASK_PORT=0"]
    process = subprocess.Popen(
        ["make", "--no-print-directory", "demo", *make_vars, *ports],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        # As from a script or CI runner that ignores SIGINT: make and the runner inherit
        # SIG_IGN, and the Ctrl-C at teardown must still stop everything.
        preexec_fn=_ignore_sigint,
    )
    assert process.stdout is not None
    output = Output(process.stdout)
    try:
        output.wait_for(r"^\[demo\] ready$", timeout=120)
        children = started(output)
        assert set(children) == {"server", "django", "flask"}
        ports = [children[name][1] for name in ("server", "django", "flask")]
        pids = {name: pid for name, (pid, _port) in children.items()}
        yield RunningDemo(process, output, *ports, flags_file, pids, tmp)
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(30) == 0
        output.join(5)
        assert "[demo] stopped (Ctrl-C)" in output.text()
        assert not [name for name, pid in pids.items() if pid_alive(pid)]
        assert not any(port_open(port) for port in ports)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_make_demo_starts_all_three_as_children_of_the_runner(demo: RunningDemo) -> None:
    """The runner prepared the databases and brought up the server, the Django shop and
    the Flask shop, as its own children, on the ports it reports."""
    runners = children_of(demo.process.pid)  # make -> python run_demo.py
    assert len(runners) == 1
    assert set(demo.pids.values()) <= children_of(runners.pop())
    assert all(port_open(port) for port in (demo.server_port, demo.django_port, demo.flask_port))
    banner = demo.output.text()
    assert f"http://127.0.0.1:{demo.django_port}/" in banner and "alice" in banner


def test_every_process_serves_its_pages(demo: RunningDemo) -> None:
    """The server answers ``/sdk/init``; both shops serve their home page and the flags
    page under ``/flags`` and ``/flags/`` (the README's spelling)."""
    init = fetch(f"http://127.0.0.1:{demo.server_port}/api/v1/sdk/init", {"X-API-Key": API_KEY})
    assert '"welcome-message"' in init
    for port in (demo.django_port, demo.flask_port):
        assert "Welcome to the FlagKit demo shop!" in fetch(f"http://127.0.0.1:{port}/")
        for path in ("/flags", "/flags/"):
            assert "Evaluation context" in fetch(f"http://127.0.0.1:{port}{path}")


def test_editing_the_flags_file_changes_both_sites_on_the_next_load(demo: RunningDemo) -> None:
    """An edit of the flags file reaches both running shops (file watch, then streaming):
    reloading the page shows the new value within a few seconds."""
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


def test_ctrl_c_during_start_up_stops_the_children_even_with_sigint_ignored(
    demo: RunningDemo,
) -> None:
    """Started from a shell that ignores SIGINT (the runner inherits SIG_IGN), a Ctrl-C
    while the shops are still starting stops every child already started and exits with
    0, without printing the banner: the runner installs its own handlers. (A second runner
    on its own ports, reusing the shared demo's prepared databases to start faster.)"""
    process, output = start_runner(
        "--server-port",
        "0",
        "--django-port",
        "0",
        "--flask-port",
        "0",
        data_dir=demo.data_dir,
        sigint_ignored=True,
    )
    try:
        output.wait_for(r"^\[demo\] started flask pid \d+ port \d+$", timeout=90)
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output.join(5)
    pids = [pid for pid, _port in started(output).values()]
    assert len(pids) == 3
    assert not [pid for pid in pids if pid_alive(pid)]
    assert "FlagKit demo is running" not in output.text()
    assert "[demo] stopped (Ctrl-C)" in output.text()


def test_port_in_use_is_reported_in_one_line_and_nothing_starts(tmp_path: Path) -> None:
    """A busy port gives a one-line message naming it, the variable to change and a port
    to use instead; exit status 2, and no child process or database."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        process, output = start_runner(
            "--server-port",
            "0",
            "--django-port",
            str(taken),
            "--flask-port",
            "0",
            data_dir=tmp_path / "data",
        )
        assert process.wait(30) == 2
        output.join(5)
    lines = output.lines
    assert len(lines) == 1, lines
    assert f"port {taken} (Django) on 127.0.0.1 is already in use" in lines[0]
    suggested = int(re.search(r"make demo DJANGO_PORT=(\d+)", lines[0]).group(1))  # type: ignore[union-attr]
    assert suggested != taken
    assert not (tmp_path / "data").exists()


def test_the_suggested_port_is_free_and_not_another_services_port() -> None:
    """The advice never suggests a port another demo service is configured to use (it
    suggested the Flask port for Django before), nor a busy one."""
    spec = importlib.util.spec_from_file_location("run_demo", RUNNER)
    assert spec is not None and spec.loader is not None
    run_demo = importlib.util.module_from_spec(spec)
    sys.modules["run_demo"] = run_demo  # dataclasses look their module up while defining
    try:
        spec.loader.exec_module(run_demo)
    finally:
        del sys.modules["run_demo"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        others = {port, port + 1, port + 2}  # e.g. the Flask and server ports right above
        suggestion = run_demo.suggest_port("127.0.0.1", port, others)
        assert suggestion not in others
        assert run_demo.port_problem("127.0.0.1", suggestion) is None


def test_the_same_port_twice_is_refused(tmp_path: Path) -> None:
    """Giving two services one port is refused before anything starts."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        process, output = start_runner(
            "--server-port",
            str(port),
            "--django-port",
            str(port),
            "--flask-port",
            "0",
            data_dir=tmp_path,
        )
        assert process.wait(30) == 2
    output.join(5)
    assert "DJANGO_PORT=" in output.text() and "is also the FlagKit server port" in output.text()
