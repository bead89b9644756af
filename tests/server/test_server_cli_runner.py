"""flagkit.server.cli_runner: starting and serving the local server from a command line."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from flagkit.server.cli_runner import ServeError, start_server
from flagkit.testing import FlagKitServer

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import signal
from flagkit.server.cli_runner import serve_until_interrupted, start_server
server = start_server(host="127.0.0.1", port=0, flags={"served": True})
serve_until_interrupted(server, lambda: print(server.base_url, server.api_key, flush=True))
print("returned", server.running, signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, flush=True)
"""


def test_start_server_starts_a_serving_server() -> None:
    """A started server answers SDK requests with its flags."""
    server = start_server(host="127.0.0.1", port=0, flags={"served": True})
    try:
        request = urllib.request.Request(
            f"{server.base_url}/sdk/init", headers={"X-API-Key": server.api_key}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.load(response)
        assert [flag["key"] for flag in body["flags"]] == ["served"]
    finally:
        server.stop()


def test_an_invalid_flags_file_is_a_one_line_error(tmp_path: Path) -> None:
    """A broken flags file raises ServeError naming it."""
    broken = tmp_path / "flags.json"
    broken.write_text("{not json")
    with pytest.raises(ServeError, match=r"^invalid flags file: "):
        start_server(host="127.0.0.1", port=0, flags_file=str(broken))


def test_a_bad_argument_is_a_one_line_error() -> None:
    """An invalid server argument raises ServeError with the server's reason."""
    with pytest.raises(ServeError, match="host must be a non-empty string"):
        start_server(host="", port=0)


def test_a_busy_port_says_so() -> None:
    """A port already in use raises ServeError telling how to choose another."""
    with FlagKitServer() as busy, pytest.raises(ServeError) as caught:
        start_server(host="127.0.0.1", port=busy.port)
    assert str(caught.value) == (
        f"port {busy.port} on 127.0.0.1 is already in use; choose another with --port"
    )


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT])
def test_serve_until_interrupted_stops_on_sigterm_and_ctrl_c(how: signal.Signals) -> None:
    """Once ``ready`` ran, SIGTERM or Ctrl-C ends the wait; the server is stopped and
    SIGTERM's handler put back."""
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        base_url, api_key = process.stdout.readline().split()
        request = urllib.request.Request(f"{base_url}/sdk/init", headers={"X-API-Key": api_key})
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 200
        process.send_signal(how)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0, err[-2000:]
    assert out.strip() == "returned False True"
