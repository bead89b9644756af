"""``flask flagkit list|explain|serve``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from flask import Flask

from flagkit.testing import FlagKitServer
from tests.flask.conftest import AppFactory


def test_list_prints_every_flag(app: Flask) -> None:
    """``flagkit list`` prints a table of every flag with value, reason and version."""
    result = app.test_cli_runner().invoke(args=["flagkit", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["KEY", "TYPE", "ENABLED", "VALUE", "REASON", "VERSION"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {
        "banner-text",
        "beta",
        "greeting",
        "maintenance",
        "new-checkout",
        "rollout",
    }
    assert rows["beta"][1:] == ["boolean", "yes", "true", "CACHED", "1"]
    assert rows["new-checkout"][3:5] == ["false", "FALLTHROUGH"]


def test_list_for_a_user_as_json(app: Flask) -> None:
    """``--user`` and ``--attr`` give the context; ``--json`` prints machine output."""
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=["flagkit", "list", "--user", "zed", "--attr", "plan=pro", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["new-checkout"] == {
        "type": "boolean",
        "value": True,
        "enabled": True,
        "reason": "RULE_MATCH",
        "version": 1,
    }
    assert data["greeting"]["value"] == "welcome back"


def test_explain_shows_rule_and_variation(app: Flask) -> None:
    """``flagkit explain`` shows the value, reason, rule and variation for a context."""
    result = app.test_cli_runner().invoke(
        args=["flagkit", "explain", "new-checkout", "--user", "u-9", "--attr", "country=NL"]
    )
    assert result.exit_code == 0, result.output
    fields = dict(line.split(":", 1) for line in result.output.splitlines())
    fields = {k: v.strip() for k, v in fields.items()}
    assert fields["value"] == "true"
    assert fields["reason"] == "RULE_MATCH"
    assert fields["rule"] == "nl"
    assert fields["variation"] == "on"
    assert fields["targeting"] == "yes"
    assert json.loads(fields["context"]) == {"userId": "u-9", "country": "NL", "anonymous": False}


def test_explain_anonymous_key_and_missing_flag(app: Flask) -> None:
    """``--key`` evaluates for an anonymous visitor; an unknown flag exits with status 1."""
    runner = app.test_cli_runner()
    result = runner.invoke(args=["flagkit", "explain", "greeting", "--key", "visitor-1"])
    assert result.exit_code == 0, result.output
    assert "hello visitor" in result.output and "RULE_MATCH" in result.output
    missing = runner.invoke(args=["flagkit", "explain", "no-such-flag"])
    assert missing.exit_code == 1
    assert "FLAG_NOT_FOUND" in missing.output


def test_bad_attr_is_a_usage_error(app: Flask) -> None:
    """``--attr`` without ``=`` is rejected with a usage error."""
    result = app.test_cli_runner().invoke(args=["flagkit", "list", "--attr", "plan"])
    assert result.exit_code == 2
    assert "NAME=VALUE" in result.output


def test_list_warns_when_flags_cannot_load(make_app: AppFactory) -> None:
    """When the server rejects the key, list warns on stderr and shows what it has."""
    app = make_app({"FLAGKIT_API_KEY": "sdk_not_accepted_key_1"})
    result = app.test_cli_runner().invoke(args=["flagkit", "list", "--timeout", "2"])
    assert result.exit_code == 0
    assert "warning: flags not loaded" in result.stderr
    assert "sdk_not_accepted_key_1" not in result.output
    assert "no flags" in result.stdout


def test_serve_runs_a_local_server(tmp_path: Path) -> None:
    """``flask flagkit serve`` serves a flags file with the app's key until SIGTERM, then
    stops cleanly."""
    flags_file = tmp_path / "flags.json"
    flags_file.write_text(json.dumps({"flags": [{"key": "served-flag", "value": True}]}))
    app_module = tmp_path / "serve_app.py"
    app_module.write_text(
        "from flask import Flask\n"
        "from flagkit_flask import FlagKit\n"
        "app = Flask(__name__)\n"
        "app.config['FLAGKIT_API_KEY'] = 'sdk_serve_test_key_1'\n"
        "FlagKit(app)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flask",
            "--app",
            "serve_app",
            "flagkit",
            "serve",
            "--port",
            "0",
            "--flags-file",
            str(flags_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        if not first.startswith("FlagKit local server listening on http://127.0.0.1:"):
            process.terminate()
            _, errors = process.communicate(timeout=10)
            pytest.fail(f"serve did not start: stdout {first!r}, stderr {errors[-2000:]!r}")
        base_url = first.rsplit(" ", 1)[1].strip()
        assert "sdk_serv" in process.stdout.readline()  # key ids only
        request = urllib.request.Request(
            f"{base_url}/sdk/init", headers={"X-API-Key": "sdk_serve_test_key_1"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.load(response)
        assert [flag["key"] for flag in body["flags"]] == ["served-flag"]
        process.terminate()  # SIGTERM: a clean stop, like Ctrl-C
        out, _ = process.communicate(timeout=20)
        assert process.returncode == 0
        assert "stopping" in out
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()


def test_serve_on_a_busy_port_is_a_one_line_error(app: Flask, server: FlagKitServer) -> None:
    """A port already in use is a short error naming the port, not a traceback."""
    result = app.test_cli_runner().invoke(args=["flagkit", "serve", "--port", str(server.port)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: port {server.port} on 127.0.0.1 is already in use; choose another with --port"
    )


def test_commands_registered_by_init_app(make_app: AppFactory) -> None:
    """The CLI group is registered on every app by init_app (help lists the commands)."""
    app = make_app()
    result = app.test_cli_runner().invoke(args=["flagkit", "--help"])
    assert result.exit_code == 0
    for command in ("list", "explain", "serve"):
        assert command in result.output
