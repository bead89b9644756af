"""``simulate_traffic.py`` against the real demo: the planted effect is found, a planted
sample-ratio mismatch is flagged.

The demo is started as ``make demo`` starts it (the ``demo`` fixture of
``test_demo_runner.py``, one start for this module); the simulator runs as a user would
run it, in its own process, sending visitors through both shops over HTTP. The shops'
SDKs record the exposures and the purchases; the server's report is what is checked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from test_demo_runner import ROOT, RunningDemo, demo  # noqa: F401  (the shared fixture)

SIMULATOR = Path(__file__).resolve().parent / "simulate_traffic.py"


def simulate(running: RunningDemo, *args: str) -> dict[str, Any]:
    """Run the simulator against ``running`` with ``args``; its JSON output."""
    found = re.search(r"FLAGKIT_ADMIN_TOKEN=(\S+)", running.output.text())
    assert found, "the demo banner names no admin token"
    command = [
        sys.executable,
        str(SIMULATOR),
        f"--server-url=http://127.0.0.1:{running.server_port}",
        f"--django-url=http://127.0.0.1:{running.django_port}",
        f"--flask-url=http://127.0.0.1:{running.flask_port}",
        f"--admin-token={found.group(1)}",
        "--fresh",
        "--json",
        "--wait=60",
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    simulation, report = result["simulation"], result["report"]
    assert simulation["errors"] == 0 and simulation["mispredicted"] == 0, done.stderr
    # Every anonymous visitor is a new user; a demo user exposed in an earlier run is
    # not exposed again by the same shop process (the SDK records one exposure per user).
    exposed = sum(v["exposed"] for v in report["variations"]) + report["excludedMultiExposed"]
    assert simulation["exposedAnonymous"] <= exposed <= simulation["exposed"], done.stderr
    converted = sum(v["converted"] for v in report["variations"])
    assert simulation["boughtAnonymous"] <= converted <= simulation["bought"], done.stderr
    return report


def test_the_planted_effect_is_detected_and_the_split_is_sound(demo: RunningDemo) -> None:  # noqa: F811
    """Green converts at 30% against 10%: the report finds green's lift (p < 0.05, the
    interval above 0), not orange's, and the sample-ratio check passes."""
    report = simulate(
        demo, "--visitors=900", "--rates=blue=0.10,green=0.30,orange=0.10", "--seed=18"
    )
    assert report["srm"]["flagged"] is False
    by_id = {v["id"]: v for v in report["variations"]}
    assert by_id["blue"]["lift"] is None
    green = by_id["green"]["lift"]
    assert green["p"] < 0.05 and green["absoluteCi"][0] > 0
    assert by_id["orange"]["lift"]["absoluteCi"][0] < 0.2 < by_id["green"]["ci"][1]


def test_a_planted_sample_ratio_mismatch_is_flagged(demo: RunningDemo) -> None:  # noqa: F811
    """60% of the visitors who would see orange leave before the checkout page: the
    exposures no longer match the 1/3 split, and the check flags it."""
    report = simulate(demo, "--visitors=600", "--drop=orange=0.6", "--seed=19")
    srm = report["srm"]
    assert srm["flagged"] is True and srm["p"] < 0.001
    assert srm["observed"]["orange"] < srm["expected"]["orange"] * 0.7
