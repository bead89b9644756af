"""The public API type-checks under ``mypy --strict`` the way users call it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_public_api_usage_type_checks_strictly() -> None:
    """mypy --strict accepts tests/typing/api.py and flags each deliberate mistake in it."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "tests/typing/api.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout
