"""Run the FlagKit demo: the local FlagKit server, the Django shop and the Flask shop together.

``make demo`` runs this file with the project's ``.venv`` Python::

    python example_projects/run_demo.py [--server-port 8200] [--django-port 8000]
                                        [--flask-port 5000] [--host 127.0.0.1]
                                        [--data-dir DIR] [--admin-token TOKEN]

Ports also come from the environment: ``SERVER_PORT``, ``DJANGO_PORT``, ``FLASK_PORT``
(so ``make demo DJANGO_PORT=8001`` and ``DJANGO_PORT=8001 make demo`` both work). Port 0
means "any free port": the runner picks one just before starting that child and reports
it (``[demo] started NAME pid PID port PORT``), so scripts and tests never pick ports
themselves.

Steps: check that the three ports are free (a port in use is reported in one line with
a free port to use instead, one that no other demo service uses, and nothing starts; exit
status 2); prepare both SQLite databases and the demo users
(``manage.py migrate`` + ``manage.py seed_demo_users``, ``flask init-db``); start
``flagkit serve`` on ``example_projects/flags.json``, the Django shop (``runserver
--noreload``) and the Flask shop (``flask run``) as child processes; wait until each port
answers; print the URLs and the demo log-ins; then stay in the foreground. Ctrl-C (SIGINT)
or SIGTERM stops all three children — the runner installs its own handlers for both, so
this holds even when it was started from a shell that ignores SIGINT (a background job,
some CI runners) (SIGTERM, then SIGKILL after a grace period) and waits
for them; if a child dies on its own, the others are stopped too and the exit status is 1.

Children's output is copied to this process's stdout, each line prefixed with the child's
name. A line ``[demo] started NAME pid PID port PORT`` is printed for each child (the demo
tests read it to find the ports and to check that every child is gone after the stop).

Standard library only, so it runs before anything else is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

HERE = Path(__file__).resolve().parent
FLAGS_FILE = HERE / "flags.json"
DJANGO_DIR = HERE / "django_shop"
FLASK_DIR = HERE / "flask_app"

DEMO_API_KEY = "sdk_demo_key_123456"
DEFAULT_ADMIN_TOKEN = "demo-admin-token"  # local demo only; the server listens on loopback
DEMO_PASSWORD = "flagkit-demo"
DEMO_USERS = (
    ("alice", "staff: sees the staff tools, 99 cart items"),
    ("bob", "beta tester: sees the beta dashboard and express checkout"),
    ("carol", "regular customer: in the 30% rollout of the new checkout"),
)

STARTUP_TIMEOUT = 60.0  # seconds for each child to open its port
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL

_print_lock = threading.Lock()


def say(message: str) -> None:
    """Print one ``[demo]`` line (thread-safe, flushed at once)."""
    with _print_lock:
        print(f"[demo] {message}", flush=True)


@dataclass
class Child:
    """One child process of the demo."""

    name: str
    port: int
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = field(default=None, repr=False)


# --------------------------------------------------------------------------------------
# ports
# --------------------------------------------------------------------------------------


def port_problem(host: str, port: int) -> str | None:
    """Why ``port`` cannot be used on ``host`` (``None`` when it is free).

    Binds with ``SO_REUSEADDR`` like the servers do, so a port lingering in TIME_WAIT after
    a previous run counts as free and only a listening process makes it busy.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "is already in use"
            return f"cannot be used ({exc.strerror or exc})"
    return None


def check_ports(host: str, ports: Sequence[tuple[str, str, int]]) -> str | None:
    """The one-line complaint about the first unusable port, or ``None`` when all are free.

    ``ports`` holds ``(label, variable, port)`` triples, e.g. ``("Django", "DJANGO_PORT",
    8000)``; port 0 (any free port) is always fine. The message names the variable to
    change and suggests a port that is free and not given to another demo service.
    """
    seen: dict[int, str] = {}
    for label, variable, port in ports:
        if port == 0:
            continue
        if not 1 <= port <= 65535:
            return f"{variable}={port} is not a port number (1-65535, or 0 for any free port)"
        if port in seen:
            return f"{variable}={port} is also the {seen[port]} port; give each a different port"
        seen[port] = label
    for label, variable, port in ports:
        problem = port_problem(host, port) if port else None
        if problem is not None:
            taken = {p for _label, _variable, p in ports}
            return (
                f"port {port} ({label}) on {host} {problem}; stop what uses it or choose "
                f"another, e.g. make demo {variable}={suggest_port(host, port, taken)}"
            )
    return None


def suggest_port(host: str, port: int, taken: set[int]) -> int:
    """A port near ``port`` that is free on ``host`` and not in ``taken`` (the ports of the
    other demo services), to suggest instead of a busy one."""
    for candidate in range(port + 1, min(port + 200, 65536)):
        if candidate not in taken and port_problem(host, candidate) is None:
            return candidate
    return any_free_port(host, taken)


def any_free_port(host: str, taken: set[int]) -> int:
    """A port the system says is free on ``host`` right now, not in ``taken``.

    The port is released before it is returned, so another process could take it before
    the child binds it; the child is started at once to keep that window small.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            return port


def wait_for_port(
    host: str, port: int, deadline: float, child: Child, stop: threading.Event
) -> bool:
    """Poll until ``host:port`` accepts a connection; False if the child exits, time is up
    or ``stop`` is set (Ctrl-C)."""
    while time.monotonic() < deadline and not stop.is_set():
        if child.process is not None and child.process.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        stop.wait(0.1)
    return False


# --------------------------------------------------------------------------------------
# children
# --------------------------------------------------------------------------------------


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask Linux to send SIGTERM to this child when the demo runner dies (even by SIGKILL)."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _load_libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc()


def _copy_output(name: str, stream: IO[bytes]) -> None:
    width = 6
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        with _print_lock:
            print(f"[{name:<{width}}] {line}", flush=True)
    stream.close()


def start_child(child: Child) -> None:
    """Start ``child`` in its own session (Ctrl-C reaches only the runner, which then stops
    the children in order) with its output piped to a prefixing thread."""
    child.process = subprocess.Popen(
        child.argv,
        cwd=child.cwd,
        env=child.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent if _LIBC is not None else None,
    )
    say(f"started {child.name} pid {child.process.pid} port {child.port}")


def start_reader(child: Child) -> None:
    """Copy the child's output to stdout on a daemon thread."""
    assert child.process is not None and child.process.stdout is not None
    child.reader = threading.Thread(
        target=_copy_output,
        args=(child.name, child.process.stdout),
        name=f"demo-output-{child.name}",
        daemon=True,
    )
    child.reader.start()


def stop_children(children: Sequence[Child]) -> None:
    """SIGTERM every running child, wait up to ``STOP_GRACE`` seconds, SIGKILL stragglers."""
    running = [c for c in children if c.process is not None and c.process.poll() is None]
    for child in running:
        assert child.process is not None
        with contextlib.suppress(ProcessLookupError):
            child.process.terminate()
    deadline = time.monotonic() + STOP_GRACE
    for child in running:
        assert child.process is not None
        try:
            child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            say(f"{child.name} did not stop in {STOP_GRACE:.0f}s; killing it")
            child.process.kill()
            child.process.wait()
    for child in children:
        if child.reader is not None:
            child.reader.join(timeout=2.0)


def run_setup(argv: list[str], cwd: Path, env: dict[str, str], what: str) -> None:
    """Run one preparation command; on failure print its output and exit with status 1."""
    result = subprocess.run(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, check=False
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        say(f"{what} failed (exit status {result.returncode}):\n{output}")
        raise SystemExit(1)


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def _env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"[demo] {name}={raw!r} is not a port number") from None


def build_parser() -> argparse.ArgumentParser:
    """Command-line options (defaults from ``SERVER_PORT``/``DJANGO_PORT``/``FLASK_PORT``)."""
    parser = argparse.ArgumentParser(description="Run the FlagKit demo (server + two shops).")
    parser.add_argument("--host", default=os.environ.get("DEMO_HOST", "127.0.0.1"))
    parser.add_argument("--server-port", type=int, default=_env_port("SERVER_PORT", 8200))
    parser.add_argument("--django-port", type=int, default=_env_port("DJANGO_PORT", 8000))
    parser.add_argument("--flask-port", type=int, default=_env_port("FLASK_PORT", 5000))
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="where the SQLite databases go (default: next to each example)",
    )
    parser.add_argument(
        "--admin-token",
        default=os.environ.get("FLAGKIT_ADMIN_TOKEN") or DEFAULT_ADMIN_TOKEN,
        help="admin API token of the local server (env FLAGKIT_ADMIN_TOKEN)",
    )
    parser.add_argument(
        "--flags",
        type=Path,
        default=Path(os.environ.get("DEMO_FLAGS") or FLAGS_FILE),
        help="flags file (env DEMO_FLAGS; default: flags.json)",
    )
    return parser


def build_children(args: argparse.Namespace) -> tuple[list[Child], dict[str, str]]:
    """The three children and the environment of the setup commands (the Django child's
    adds ``DJANGO_SETTINGS_MODULE``)."""
    python = sys.executable
    data_dir: Path | None = args.data_dir
    env = dict(os.environ)
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "FLAGKIT_DEMO_SERVER_PORT": str(args.server_port),
            "FLAGKIT_DEMO_API_KEY": DEMO_API_KEY,
            "FLAGKIT_ADMIN_TOKEN": args.admin_token,
        }
    )
    # Each child gets its own settings module, whatever the caller's environment says.
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.pop("FLASK_APP", None)
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        env["DJANGO_SHOP_DB"] = str(data_dir / "django_shop.sqlite3")
        env["FLASK_SHOP_DB"] = str(data_dir / "flask_shop.sqlite3")
    django_env = {**env, "DJANGO_SETTINGS_MODULE": "shop_site.settings"}
    host = args.host
    children = [
        Child(
            "server",
            args.server_port,
            [
                python,
                "-m",
                "flagkit",
                "serve",
                "--flags",
                str(args.flags),
                "--host",
                host,
                "--port",
                str(args.server_port),
                "--admin-token",
                args.admin_token,
            ],
            HERE,
            env,
        ),
        Child(
            "django",
            args.django_port,
            [python, "manage.py", "runserver", f"{host}:{args.django_port}", "--noreload"],
            DJANGO_DIR,
            django_env,
        ),
        Child(
            "flask",
            args.flask_port,
            [
                python,
                "-m",
                "flask",
                "--app",
                "flask_shop",
                "run",
                "--host",
                host,
                "--port",
                str(args.flask_port),
                "--no-reload",
                "--no-debugger",
            ],
            FLASK_DIR,
            env,
        ),
    ]
    return children, django_env


def wait_until_ready(url: str, deadline: float, stop: threading.Event) -> bool:
    """Poll a site's readiness probe (``/health/``) until it answers 200: its FlagKit client
    has loaded the flags. False when the deadline passes or ``stop`` is set first."""
    while time.monotonic() < deadline and not stop.is_set():
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=5) as response:
            if response.status == 200:
                return True
        stop.wait(0.25)
    return False


def banner(args: argparse.Namespace) -> str:
    """The text printed once everything is up."""
    host = args.host
    server = f"http://{host}:{args.server_port}"
    lines = [
        "",
        "FlagKit demo is running:",
        f"  Django shop     http://{host}:{args.django_port}/",
        f"  Flask shop      http://{host}:{args.flask_port}/",
        f"  FlagKit server  {server}/api/v1  (flags from {args.flags.name})",
        f"  Dashboard       {server}/  (sign in with the admin token {args.admin_token})",
        "",
        f"Demo log-ins (password {DEMO_PASSWORD!r} for all):",
        *(f"  {name:<6} {story}" for name, story in DEMO_USERS),
        "",
        "Each site's /flags/ page shows every flag's value and reason for the current user.",
        f"Change a flag: flip it in the dashboard ({server}/), edit {args.flags}, or in "
        "another shell:",
        f"  export FLAGKIT_URL={server} FLAGKIT_ADMIN_TOKEN={args.admin_token}",
        '  .venv/bin/flagkit flags set welcome-message "Hello from the CLI"',
        "  .venv/bin/flagkit flags set maintenance-banner --enabled",
        "Open pages change on their next load. Press Ctrl-C to stop all three.",
        "",
    ]
    return "\n".join(lines)


def choose_ports(args: argparse.Namespace) -> None:
    """Replace each port given as 0 by a free one (distinct from the others)."""
    names = ("server_port", "django_port", "flask_port")
    taken = {getattr(args, name) for name in names} - {0}
    for name in names:
        if getattr(args, name) == 0:
            port = any_free_port(args.host, taken)
            taken.add(port)
            setattr(args, name, port)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo in the foreground; returns the exit status (0 after Ctrl-C)."""
    args = build_parser().parse_args(argv)
    problem = check_ports(
        args.host,
        [
            ("FlagKit server", "SERVER_PORT", args.server_port),
            ("Django", "DJANGO_PORT", args.django_port),
            ("Flask", "FLASK_PORT", args.flask_port),
        ],
    )
    if problem is not None:
        print(f"[demo] {problem}", file=sys.stderr, flush=True)
        return 2
    if not args.flags.is_file():
        print(f"[demo] flags file {args.flags} not found", file=sys.stderr, flush=True)
        return 2

    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    # Our own handlers, installed whatever was inherited: a shell that ignores SIGINT (a
    # background job, some CI runners) passes SIG_IGN down, and Ctrl-C must still stop us.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    # The setup commands only need a valid server port in their settings, not a server.
    setup_args = argparse.Namespace(**{**vars(args), "server_port": args.server_port or 8200})
    children, env = build_children(setup_args)
    try:
        say("preparing the databases and demo users")
        python = sys.executable
        run_setup(
            [python, "manage.py", "migrate", "--noinput", "-v", "0"],
            DJANGO_DIR,
            env,
            "Django migrate",
        )
        run_setup([python, "manage.py", "seed_demo_users"], DJANGO_DIR, env, "Django demo users")
        run_setup(
            [python, "-m", "flask", "--app", "flask_shop", "init-db"],
            FLASK_DIR,
            env,
            "Flask init-db",
        )
        if stop.is_set():
            return 0
        # Ports given as 0 are chosen now, just before the children bind them.
        choose_ports(args)
        children[:], _env = build_children(args)
        for child in children:
            start_child(child)
        for child in children:
            start_reader(child)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for child in children:
            if stop.is_set():
                return 0
            if not wait_for_port(args.host, child.port, deadline, child, stop):
                if stop.is_set():
                    return 0
                assert child.process is not None
                code = child.process.poll()
                state = f"exited with status {code}" if code is not None else "did not start"
                say(f"{child.name} {state} (port {child.port}); stopping the demo")
                return 1
        for name, url in (
            ("Django", f"http://{args.host}:{args.django_port}/health/"),
            ("Flask", f"http://{args.host}:{args.flask_port}/health"),
        ):
            if not wait_until_ready(url, deadline, stop) and not stop.is_set():
                say(f"the {name} shop has not loaded its flags yet ({url}); pages show defaults")
        if stop.is_set():
            return 0
        with _print_lock:
            print(banner(args), flush=True)
        say("ready")
        while not stop.wait(0.5):
            for child in children:
                assert child.process is not None
                code = child.process.poll()
                if code is not None:
                    say(f"{child.name} exited with status {code}; stopping the demo")
                    return 1
        return 0
    finally:
        stop_children(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if any(c.process is not None for c in children):
            say("stopped" + (" (Ctrl-C)" if signal.SIGINT in received else ""))


if __name__ == "__main__":
    sys.exit(main())
