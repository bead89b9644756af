"""The ``flagkit`` command: ``serve`` in a subprocess, admin commands against a live server."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from flagkit.cli import main
from flagkit.server import FlagKitServer

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_FLAGS = ROOT / "example_projects" / "flags.json"
EXAMPLE_KEY = "sdk_demo_key_123456"


class Lines:
    """Collects a subprocess's stdout lines on a thread, for waiting with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self._stdout = proc.stdout
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, daemon=True, name="test-stdout")
        self._thread.start()

    def _pump(self) -> None:
        for line in self._stdout:
            self._queue.put(line)

    def wait_for(self, needle: str, timeout: float = 15.0) -> str:
        """The next line containing ``needle`` (fail after ``timeout``)."""
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            seen.append(line)
            if needle in line:
                return line
        pytest.fail(f"no line with {needle!r} in output: {''.join(seen)!r}")

    def join(self) -> None:
        """Wait for the end of the output (the process has exited)."""
        self._thread.join(10)


@pytest.fixture
def live(server: FlagKitServer) -> list[str]:
    """Connection options for the admin commands against the test server."""
    return ["--url", server.url, "--admin-token", server.admin_token]


def test_serve_example_flags_then_init_with_example_key_then_ctrl_c() -> None:
    """``flagkit serve --flags example_projects/flags.json`` serves the demo key; Ctrl-C stops."""
    script = Path(sys.executable).with_name("flagkit")
    with subprocess.Popen(
        [str(script), "serve", "--flags", str(EXAMPLE_FLAGS), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    ) as proc:
        lines = Lines(proc)
        try:
            base_url = lines.wait_for("listening on").split("listening on", 1)[1].strip()
            token = lines.wait_for("admin token").split()[-1]
            assert EXAMPLE_KEY in lines.wait_for("curl")
            response = httpx.get(base_url + "/sdk/init", headers={"X-API-Key": EXAMPLE_KEY})
            assert response.status_code == 200
            keys = {f["key"] for f in response.json()["flags"]}
            assert {"dark-mode", "welcome-message", "max-cart-items", "checkout-config"} <= keys
            admin = httpx.get(
                base_url + "/admin/flags", headers={"Authorization": f"Bearer {token}"}
            )
            assert admin.status_code == 200
            proc.send_signal(signal.SIGINT)
            lines.wait_for("stopped")
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            lines.join()


def test_python_dash_m_flagkit_runs_the_cli() -> None:
    """``python -m flagkit`` is the same command."""
    out = subprocess.run(
        [sys.executable, "-m", "flagkit", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().startswith("flagkit ")


def test_serve_port_in_use_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    """A taken port gives a clear one-line message and exit code 2."""
    with FlagKitServer() as busy:
        code = main(["serve", "--port", str(busy.port)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert f"port {busy.port}" in err and "already in use" in err


def test_serve_with_broken_flags_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A broken flags file at start is reported with path and line, exit code 2."""
    path = tmp_path / "flags.json"
    path.write_text('{"flags": [\n{"key": "a", "value": 1, "enabled": 3}]}')
    assert main(["serve", "--flags", str(path), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:2" in err and "flags[0].enabled" in err


def test_flags_list_get_set_delete(
    server: FlagKitServer, live: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The flags commands read and change flags on a running server."""
    assert main(["flags", "list", *live]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split() == ["KEY", "TYPE", "ENABLED", "VERSION", "VALUE"]
    assert listing[1].split()[:4] == ["dark-mode", "boolean", "true", "1"]

    assert main(["flags", "set", "dark-mode", "false", *live]) == 0
    assert "dark-mode = false (boolean, enabled, version 2)" in capsys.readouterr().out
    assert server.get_flag("dark-mode")["value"] is False  # type: ignore[index]

    assert main(["flags", "set", "greeting", "hello world", "--disabled", *live]) == 0
    assert server.get_flag("greeting")["flagType"] == "string"  # type: ignore[index]
    assert server.get_flag("greeting")["enabled"] is False  # type: ignore[index]
    assert main(["flags", "set", "code", "42", "--type", "string", *live]) == 0
    assert server.get_flag("code")["value"] == "42"  # type: ignore[index]
    variations = 'variations=[{"id": "x", "value": {"a": [2]}}]'
    fallthrough = 'fallthrough={"variation": "x"}'
    args = ["flags", "set", "cfg", '{"a": [1]}', "--field", variations, "--field", fallthrough]
    assert main([*args, *live]) == 0
    cfg = server.get_flag("cfg")
    assert cfg is not None and cfg["value"] == {"a": [1]}
    assert cfg["fallthrough"] == {"variation": "x"}
    capsys.readouterr()

    assert main(["flags", "get", "cfg", *live]) == 0
    assert json.loads(capsys.readouterr().out)["flagType"] == "json"
    assert main(["flags", "list", "--json", *live]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 7

    assert main(["flags", "delete", "cfg", *live]) == 0
    assert capsys.readouterr().out.strip() == "deleted cfg"
    assert server.get_flag("cfg") is None


def test_flags_errors(live: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Missing flags, bad values and bad tokens give messages and non-zero codes."""
    assert main(["flags", "get", "missing", *live]) == 1
    assert "no flag 'missing'" in capsys.readouterr().err
    assert main(["flags", "set", "n", "abc", "--type", "number", *live]) == 2
    assert "not a valid number" in capsys.readouterr().err
    assert main(["flags", "set", "n", *live]) == 2
    url = live[1]
    assert main(["flags", "list", "--url", url, "--admin-token", "wrong"]) == 1
    assert "admin token" in capsys.readouterr().err


def test_admin_token_comes_from_environment(
    server: FlagKitServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """FLAGKIT_URL and FLAGKIT_ADMIN_TOKEN replace the options; without a token it is exit 2."""
    monkeypatch.setenv("FLAGKIT_URL", server.base_url)
    monkeypatch.delenv("FLAGKIT_ADMIN_TOKEN", raising=False)
    assert main(["flags", "list"]) == 2
    assert "FLAGKIT_ADMIN_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("FLAGKIT_ADMIN_TOKEN", server.admin_token)
    assert main(["flags", "list"]) == 0


def test_unreachable_server_is_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    """A server that is not running gives a 'cannot reach' message."""
    with FlagKitServer() as srv:
        url = srv.url
    assert main(["flags", "list", "--url", url, "--admin-token", "t", "--timeout", "2"]) == 1
    assert "cannot reach" in capsys.readouterr().err


def test_events_tail_prints_last_events(
    server: FlagKitServer, http: httpx.Client, live: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``events tail`` prints the last N events as JSON lines, optionally of one type."""
    events = [{"eventType": "t", "eventId": str(i)} for i in range(5)] + [{"eventType": "u"}]
    http.post("/sdk/events/batch", json={"events": events})
    assert main(["events", "tail", "-n", "2", *live]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line) for line in lines] == [events[4], events[5]]
    assert main(["events", "tail", "--type", "t", "-n", "10", *live]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5


@pytest.fixture
def tail_lines(server: FlagKitServer) -> Iterator[Lines]:
    """The output of ``flagkit events tail -f`` running against the test server."""
    env = {**os.environ, "FLAGKIT_URL": server.url, "FLAGKIT_ADMIN_TOKEN": server.admin_token}
    with subprocess.Popen(
        [sys.executable, "-m", "flagkit", "events", "tail", "-f", "--interval", "0.05"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    ) as proc:
        lines = Lines(proc)
        yield lines
        proc.terminate()
        proc.wait()
        lines.join()


def test_events_tail_follow_prints_new_events(http: httpx.Client, tail_lines: Lines) -> None:
    """``events tail -f`` keeps printing events as they arrive."""
    http.post("/sdk/events/batch", json={"events": [{"eventType": "first", "eventId": "1"}]})
    assert json.loads(tail_lines.wait_for("first"))["eventId"] == "1"
    http.post("/sdk/events/batch", json={"events": [{"eventType": "second", "eventId": "2"}]})
    assert json.loads(tail_lines.wait_for("second"))["eventId"] == "2"


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Running ``flagkit`` with no command (or ``flagkit flags``) shows usage, exit 2."""
    assert main([]) == 2
    assert "serve" in capsys.readouterr().err
    assert main(["flags"]) == 2
    assert "list" in capsys.readouterr().err
    assert main(["serve", "--port", "notanumber"]) == 2


TARGETED = {
    "key": "maintenance-banner",
    "flagType": "string",
    "value": "Happy holidays!",
    "enabled": False,
    "variations": [{"id": "none", "value": ""}, {"id": "festive", "value": "Happy holidays!"}],
    "offVariation": "none",
    "rules": [
        {
            "id": "staff",
            "clauses": [{"attribute": "email", "op": "endsWith", "values": ["@shop.test"]}],
            "variation": "none",
        }
    ],
    "fallthrough": {"variation": "festive"},
}


def test_flags_set_on_a_targeted_flag_tells_the_truth(
    server: FlagKitServer, live: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Enabling a targeted flag says what changed, that its rule still decides and what
    the fallthrough serves; a VALUE of the wrong type names VALUE and the flag's type."""
    server.set_flag(TARGETED["key"], **{k: v for k, v in TARGETED.items() if k != "key"})
    assert main(["flags", "set", "maintenance-banner", "--enabled", *live]) == 0
    out = capsys.readouterr().out
    assert "changed: enabled false -> true" in out
    assert "1 rule still decide per user" in out
    assert "everyone else gets variation 'festive' (\"Happy holidays!\")" in out
    assert "--everyone" in out

    assert main(["flags", "set", "limit", "abc", *live]) == 2
    err = capsys.readouterr().err
    assert "VALUE 'abc' is a string, but flag 'limit' is a number flag" in err
    assert main(["flags", "set", "maintenance-banner", "42", *live]) == 0  # a string flag
    assert server.get_flag("maintenance-banner")["value"] == "42"  # type: ignore[index]


def test_flags_set_everyone_clears_targeting_only_when_confirmed(
    server: FlagKitServer, live: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    server.set_flag(TARGETED["key"], **{k: v for k, v in TARGETED.items() if k != "key"})
    args = ["flags", "set", "maintenance-banner", "Sale!", "--everyone", *live]
    assert main(args) == 2  # stdin is not a terminal: --yes is needed
    assert "add --yes" in capsys.readouterr().err
    assert server.get_flag("maintenance-banner")["rules"]  # type: ignore[index]

    assert main([*args, "--yes"]) == 0
    out = capsys.readouterr().out
    assert 'everyone gets "Sale!"' in out
    flag = server.get_flag("maintenance-banner")
    assert flag is not None and flag["enabled"] is True and flag["value"] == "Sale!"
    assert not any(name in flag for name in ("rules", "variations", "fallthrough"))
