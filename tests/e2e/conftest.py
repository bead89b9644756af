"""Fixtures of the browser tests: the running demo (``run_demo.py`` on free ports) and a
headless Chromium driven by Selenium.

The browser is Debian's ``chromium`` with its matching ``chromium-driver`` (``make e2e``
and ``make test`` install both with apt-get when missing); nothing is downloaded at run
time. Why Selenium: Debian ships the browser and the driver at the same version, so the
pair always matches, and the ``selenium`` package is pure Python; Playwright would drive a
system Chromium whose version its protocol client was not built for.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "example_projects" / "run_demo.py"
CHROMIUM = os.environ.get("FLAGKIT_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FLAGKIT_E2E_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1200,900",
)
ADMIN_TOKEN = "e2e-admin-token"


@dataclass(frozen=True)
class Demo:
    """URLs of a running demo."""

    server_url: str
    django_url: str
    flask_url: str
    admin_token: str


#: Where the browser tests save their screenshots (kept after the run; .e2e/ is ignored
#: by git).
ARTIFACTS = Path(os.environ.get("FLAGKIT_E2E_ARTIFACTS", ROOT / ".e2e" / "screenshots"))
STARTED = re.compile(r"\[demo\] started (\w+) pid \d+ port (\d+)")


def _collect(stream: IO[str], lines: list[str], ready: threading.Event) -> None:
    with stream:
        for line in stream:
            lines.append(line.rstrip("\n"))
            if line.startswith("[demo] ready"):
                ready.set()
    ready.set()  # output ended: wake the waiter, which then sees the process gone


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """``run_demo.py`` on ports it chooses (port 0, read back from its output), databases
    in a temp dir, stopped with SIGINT."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    process = subprocess.Popen(
        [
            sys.executable,
            str(RUNNER),
            "--server-port",
            "0",
            "--django-port",
            "0",
            "--flask-port",
            "0",
            "--data-dir",
            str(tmp_path_factory.mktemp("demo-data")),
            "--admin-token",
            ADMIN_TOKEN,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    lines: list[str] = []
    ready = threading.Event()
    reader = threading.Thread(target=_collect, args=(process.stdout, lines, ready), daemon=True)
    reader.start()
    try:
        if not ready.wait(120) or process.poll() is not None:
            pytest.fail("the demo did not start:\n" + "\n".join(lines))
        ports = {m.group(1): int(m.group(2)) for line in lines if (m := STARTED.match(line))}
        server_port, django_port, flask_port = (ports[n] for n in ("server", "django", "flask"))
        yield Demo(
            server_url=f"http://127.0.0.1:{server_port}",
            django_url=f"http://127.0.0.1:{django_port}",
            flask_url=f"http://127.0.0.1:{flask_port}",
            admin_token=ADMIN_TOKEN,
        )
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(5)


def _missing_browser_message() -> str | None:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return None
    return (
        f"{' and '.join(missing)} not found: the browser tests need Debian's chromium and "
        "chromium-driver. Run `make e2e` (it installs them with apt-get) or "
        "`apt-get install -y chromium chromium-driver`."
    )


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile (no cookies), closed after the test."""
    problem = _missing_browser_message()
    if problem is not None:
        pytest.fail(problem)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _holds(predicate: Callable[[], object]) -> bool:
    try:
        return bool(predicate())
    except (NoSuchElementException, StaleElementReferenceException):
        return False  # the page is still changing: look again


def _wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not _holds(predicate):
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        pause.wait(0.05)


@pytest.fixture
def screenshots() -> Path:
    """The directory the browser tests save screenshots to (created)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def wait_for() -> Callable[..., None]:
    """``wait_for(predicate, timeout=10.0, what="...")``: poll every 50 ms until true (an
    element missing or replaced by a navigation counts as false); fail naming ``what``
    after ``timeout`` seconds."""
    return _wait_for
