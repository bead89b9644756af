"""End to end: the local server serves targeted flags; a client evaluates them per context.

The flags file is the example of docs/targeting.md; the expectations are its tables.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flagkit import FlagKitClient
from flagkit.testing import FlagKitServer, FlagsFileError, InvalidFieldError
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import EvaluationReason
from tests.support import wait_until
from tests.support.targeting_examples import DOCUMENTED, Row, ctx, example_document

R = EvaluationReason


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    """The documented example written to a file."""
    path = tmp_path / "flags.json"
    path.write_text(json.dumps(example_document(), indent=2), "utf-8")
    return path


@pytest.fixture
def served(flags_file: Path) -> Iterator[tuple[FlagKitServer, FlagKitClient]]:
    """A server loading the example file and an initialized client talking to it."""
    with FlagKitServer(flags_file=flags_file, heartbeat_interval=0.5) as server:
        client = FlagKitClient(api_key=server.api_key, base_url=server.base_url)
        try:
            client.initialize()
            yield server, client
        finally:
            client.close()


def check_rows(client: FlagKitClient, rows: list[Row] = DOCUMENTED) -> None:
    """Every row's value, reason and ids come back from ``client.evaluate``."""
    for key, context, value, reason, variation, rule, segment in rows:
        result = client.evaluate(key, context)
        got = (result.value, result.reason, result.variation_id, result.rule_id, result.segment_id)
        assert got == (value, reason, variation, rule, segment), (key, context)


def test_client_gets_the_documented_variations_and_reasons(
    served: tuple[FlagKitServer, FlagKitClient],
) -> None:
    """Over real HTTP, each documented context gets the documented value, reason and ids."""
    _server, client = served
    check_rows(client)


def test_typed_getters_and_scoped_contexts_use_targeting(
    served: tuple[FlagKitServer, FlagKitClient],
) -> None:
    """Typed getters evaluate per context, including the request-scoped context."""
    _server, client = served
    assert client.get_boolean_value("new-checkout", False, EvaluationContext(user_id="user-1"))
    assert not client.get_boolean_value("new-checkout", True, EvaluationContext(user_id="user-2"))
    assert client.get_string_value("checkout-api", "x", ctx(userAgent="LegacyApp/2")) == "v1"
    with client.context_scope(EvaluationContext(user_id="user-7")):
        assert client.evaluate("new-checkout").reason is R.SEGMENT_MATCH
    results = client.evaluate_all(
        EvaluationContext(user_id="user-21", country="NL", custom={"plan": "pro"})
    )
    assert results["new-checkout"].rule_id == "nl-pro"
    assert results["maintenance-mode"].reason is R.CACHED


def test_segment_and_flag_changes_reach_the_client(
    served: tuple[FlagKitServer, FlagKitClient],
) -> None:
    """Changing a segment or a rollout on the server changes what the client serves."""
    server, client = served
    newcomer = EvaluationContext(user_id="user-99", email="x@other.example.com")
    assert client.evaluate("new-checkout", newcomer).reason is R.FALLTHROUGH
    server.set_segment(
        "beta-testers",
        included=["user-7", "user-99"],
        excluded=["user-13"],
        rules=[
            {"clauses": [{"attribute": "email", "op": "endsWith", "values": ["@beta.example.com"]}]}
        ],
    )
    wait_until(
        lambda: client.evaluate("new-checkout", newcomer).reason is R.SEGMENT_MATCH, timeout=10.0
    )
    assert client.evaluate("new-checkout", newcomer).segment_id == "beta-testers"

    # Raising the rollout from 30 % to 100 % gives user-40 (bucket 43261) the new checkout.
    assert client.evaluate("new-checkout", EvaluationContext(user_id="user-40")).value is False
    everyone = {
        "rollout": {
            "variations": [{"variation": "on", "weight": 100000}, {"variation": "off", "weight": 0}]
        }
    }
    server.set_flag("new-checkout", fallthrough=everyone)
    wait_until(
        lambda: client.evaluate("new-checkout", EvaluationContext(user_id="user-40")).value is True,
        timeout=10.0,
    )
    # Users matched before keep their reasons.
    check_rows(
        client, [r for r in DOCUMENTED if r[0] != "new-checkout" or r[3] is not R.FALLTHROUGH]
    )


def test_server_refuses_bad_targeting_with_the_field_path(
    served: tuple[FlagKitServer, FlagKitClient], tmp_path: Path
) -> None:
    """A flags file or an update with malformed targeting is rejected, naming the field."""
    server, client = served
    bad_rule = [
        {
            "id": "r",
            "clauses": [{"attribute": "country", "op": "near", "values": ["NL"]}],
            "variation": "on",
        }
    ]
    with pytest.raises(InvalidFieldError) as info:
        server.set_flag("new-checkout", rules=bad_rule)
    assert "rules[0].clauses[0].op" in str(info.value)
    check_rows(client)  # nothing changed

    doc = example_document()
    doc["flags"][2]["rules"][1]["clauses"][1]["op"] = "near"
    bad_file = tmp_path / "bad.json"
    bad_file.write_text(json.dumps(doc, indent=2), "utf-8")
    with pytest.raises(FlagsFileError) as file_info:
        FlagKitServer(flags_file=bad_file)
    error = file_info.value
    assert error.field == "flags[2].rules[1].clauses[1].op"
    assert (
        error.line is not None
        and '"op": "near"' in bad_file.read_text("utf-8").splitlines()[error.line - 1]
    )


def _read_lines(stream: Any, lines: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        lines.put(line)


def test_flagkit_serve_command_serves_the_example(flags_file: Path) -> None:
    """``flagkit serve --flags FILE`` serves targeted flags a client evaluates as documented."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "flagkit", "serve", "--flags", str(flags_file), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    try:
        base_url = None
        deadline = time.monotonic() + 30
        while base_url is None:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            match = re.search(r"listening on (http://\S+/api/v1)", line)
            base_url = match.group(1) if match else None
        key_line = ""
        while "API keys" not in key_line:
            key_line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        api_key = key_line.split()[-1]
        client = FlagKitClient(api_key=api_key, base_url=base_url, enable_polling=False)
        try:
            client.initialize()
            check_rows(client)
        finally:
            client.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


def test_flagkit_serve_rejects_a_bad_flags_file(tmp_path: Path) -> None:
    """``flagkit serve`` exits 2 naming the file, line and field of bad targeting."""
    doc = example_document()
    doc["segments"][0]["rules"][0]["clauses"][0]["values"] = [5]
    bad_file = tmp_path / "flags.json"
    bad_file.write_text(json.dumps(doc, indent=2), "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "flagkit", "serve", "--flags", str(bad_file), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "segments[0].rules[0].clauses[0].values[0]" in done.stderr
    assert "must be a string" in done.stderr
