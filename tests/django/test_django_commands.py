"""Management commands: ``flagkit_flags``, ``flagkit_explain`` and ``flagkit_serve``."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError

from flagkit.testing import FlagKitServer

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_flagkit_flags_table(live: FlagKitServer) -> None:
    """The table lists every flag sorted by key with value, enabled, version and reason."""
    lines = run("flagkit_flags").splitlines()
    assert lines[0].split() == ["KEY", "VALUE", "ENABLED", "VERSION", "REASON"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert list(rows) == sorted(rows)
    assert rows["banner-text"] == ["banner-text", '"Spring', 'sale"', "yes", "1", "CACHED"]
    assert rows["max-items"] == ["max-items", "25", "yes", "1", "CACHED"]
    assert rows["staff-feature"] == ["staff-feature", "false", "yes", "1", "FALLTHROUGH"]


def test_flagkit_flags_json_for_a_user(live: FlagKitServer) -> None:
    """``--json`` prints an object; ``--user-id`` evaluates for that user."""
    data = json.loads(run("flagkit_flags", "--json", "--user-id", "u-1"))
    assert data["new-checkout"] == {
        "enabled": True,
        "reason": "CACHED",
        "value": True,
        "variationId": None,
        "version": 1,
    }
    assert data["rollout-50"]["reason"] == "FALLTHROUGH"
    assert data["rollout-50"]["variationId"] in ("on", "off")


def test_flagkit_flags_when_the_server_is_unreachable(settings: Any) -> None:
    """No server within --timeout is a CommandError naming the URL, never the key."""
    with FlagKitServer() as server:
        url = server.base_url
    settings.FLAGKIT = {"API_KEY": "sdk_secret_value_123", "BASE_URL": url, "RETRIES": 1}
    with pytest.raises(CommandError) as info:
        run("flagkit_flags", "--timeout", "0.5")
    assert f"did not load flags from {url} within 0.5s" in str(info.value)
    assert "sdk_secret_value_123" not in str(info.value)


def test_flagkit_flags_offline_without_flags(settings: Any) -> None:
    """An offline project without bootstrap flags says so."""
    settings.FLAGKIT = {"OFFLINE": True}
    assert run("flagkit_flags").strip() == "No flags."


def test_flagkit_explain_rule_match(live: FlagKitServer) -> None:
    """explain shows value, reason, rule and variation for the given attributes."""
    output = run("flagkit_explain", "staff-feature", "--user-id", "42", "--attr", "is_staff=true")
    assert output.splitlines() == [
        "flag:       staff-feature",
        'context:    {"anonymous": false, "custom": {"is_staff": true}, "userId": "42"}',
        "value:      true",
        "reason:     RULE_MATCH",
        "rule:       staff-only",
        "segment:    -",
        "variation:  on",
        "version:    1",
        "enabled:    yes",
        "type:       boolean",
        "targeting:  yes",
    ]


def test_flagkit_explain_fallthrough_json(live: FlagKitServer) -> None:
    """``--json`` output; a user without the attribute falls through."""
    data = json.loads(run("flagkit_explain", "staff-feature", "--user-id", "7", "--json"))
    assert data["value"] is False
    assert data["reason"] == "FALLTHROUGH"
    assert data["rule"] is None
    assert data["variation"] == "off"


@pytest.mark.django_db
def test_flagkit_explain_for_a_django_user(live: FlagKitServer, users: dict[str, User]) -> None:
    """``--user`` builds the context the middleware would (groups included)."""
    data = json.loads(
        run("flagkit_explain", "beta-feature", "--user", str(users["tester"].pk), "--json")
    )
    assert data["context"]["userId"] == str(users["tester"].pk)
    assert data["context"]["custom"]["groups"] == ["alpha", "beta"]
    assert (data["value"], data["reason"], data["rule"]) == (True, "RULE_MATCH", "beta-group")


@pytest.mark.django_db
def test_flagkit_explain_errors(live: FlagKitServer) -> None:
    """Bad --attr syntax and an unknown user are CommandErrors."""
    with pytest.raises(CommandError, match="--attr expects KEY=VALUE"):
        run("flagkit_explain", "staff-feature", "--attr", "oops")
    with pytest.raises(CommandError, match="no user with pk='999'"):
        run("flagkit_explain", "staff-feature", "--user", "999")


def test_flagkit_explain_missing_flag(live: FlagKitServer) -> None:
    """A missing flag is explained as FLAG_NOT_FOUND with its error code, and the command
    fails (exit status 1, like ``flask flagkit explain``)."""
    out = io.StringIO()
    with pytest.raises(CommandError, match="'no-such-flag' does not exist") as failed:
        call_command("flagkit_explain", "no-such-flag", "--json", stdout=out)
    assert failed.value.returncode == 1
    data = json.loads(out.getvalue())
    assert data["reason"] == "FLAG_NOT_FOUND"
    assert data["error"].startswith("EVAL_FLAG_NOT_FOUND")
    assert data["type"] is None and data["targeting"] is None


def test_flagkit_explain_unknown_flag_exits_1_from_manage_py() -> None:
    """Run as a process (offline test settings, no flags), an unknown flag gives exit
    status 1 with the reason on stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [
        sys.executable,
        "-m",
        "django",
        "flagkit_explain",
        "--settings",
        "tests.django.settings",
    ]
    missing = subprocess.run(
        [*base, "no-such-flag"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert missing.returncode == 1, missing.stderr
    assert "does not exist" in missing.stderr


def test_flagkit_serve_runs_the_local_server(tmp_path: Path) -> None:
    """flagkit_serve serves the flags file to the project's API key until SIGTERM."""
    flags_file = tmp_path / "flags.json"
    flags_file.write_text(json.dumps({"flags": [{"key": "from-file", "value": True}]}))
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django",
            "flagkit_serve",
            "--settings",
            "tests.django.settings",
            "--port",
            "0",
            "--flags",
            str(flags_file),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as proc:
        try:
            assert proc.stdout is not None
            first = proc.stdout.readline()
            assert first.startswith("FlagKit local server on http://127.0.0.1:")
            assert first.rstrip().endswith(f"(1 flags from {flags_file})")
            assert proc.stdout.readline().strip() == "accepts      FLAGKIT['API_KEY'] (sdk_djan…)"
            base_url = first.split()[4]
            response = httpx.get(
                f"{base_url}/sdk/init", headers={"X-API-Key": "sdk_django_tests_key"}
            )
            assert response.status_code == 200
            assert [f["key"] for f in response.json()["flags"]] == ["from-file"]
            token = proc.stdout.readline().split()[-1]
            export = proc.stdout.readline().split()
            # The line `flagkit serve` prints: paste it and `flagkit flags set` works.
            url = base_url.removesuffix("/api/v1")
            assert export == ["export", f"FLAGKIT_ADMIN_TOKEN={token}", f"FLAGKIT_URL={url}"]
            admin = httpx.get(
                f"{base_url}/admin/flags", headers={"Authorization": f"Bearer {token}"}
            )
            assert admin.status_code == 200
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(10) == 0
            assert "FlagKit local server stopped." in proc.stdout.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_flagkit_serve_defaults_to_the_projects_port() -> None:
    """The default port comes from LOCAL_PORT, else a local BASE_URL, else 8200."""
    from flagkit_django.management.commands.flagkit_serve import _default_port

    assert _default_port({"LOCAL_PORT": 9100}) == 9100
    assert _default_port({"BASE_URL": "http://localhost:9200/api/v1"}) == 9200
    assert _default_port({"BASE_URL": "https://api.flagkit.dev/api/v1"}) == 8200
    assert _default_port({}) == 8200


def test_flagkit_serve_on_a_busy_port_is_a_command_error() -> None:
    """A port already in use is a CommandError naming the port and the way out."""
    with FlagKitServer() as busy, pytest.raises(CommandError) as caught:
        call_command("flagkit_serve", "--port", str(busy.port), stdout=io.StringIO())
    assert str(caught.value) == (
        f"port {busy.port} on 127.0.0.1 is already in use; choose another with --port"
    )


def test_flagkit_serve_with_a_broken_flags_file_is_a_command_error(tmp_path: Path) -> None:
    """An unreadable flags file is a CommandError naming it, before anything listens."""
    broken = tmp_path / "flags.json"
    broken.write_text("{not json")
    with pytest.raises(CommandError, match="invalid flags file"):
        call_command("flagkit_serve", "--port", "0", "--flags", str(broken), stdout=io.StringIO())
