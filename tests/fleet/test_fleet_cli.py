"""``flagkit sync``: a dedicated syncer process feeding readers through Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from flagkit import FlagKitClient
from flagkit.testing import FlagKitServer
from tests.fleet.conftest import API_KEY, ROOT
from tests.support import wait_until


def test_flagkit_sync_feeds_readers_and_stops_on_sigterm(
    service: FlagKitServer, redis_url: str, prefix: str
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FLAGKIT_API_KEY": API_KEY}
    command = [sys.executable, "-m", "flagkit.cli", "sync", "--redis", redis_url]
    command += ["--prefix", prefix, "--local-port", str(service.port), "--lease-time", "1"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    reader = FlagKitClient(
        api_key=API_KEY, redis_url=redis_url, redis_prefix=prefix, redis_role="reader"
    )
    try:
        reader.initialize()  # waits for the syncer's first snapshot
        assert reader.get_string_value("probe", "") == "v0"
        service.set_flag("probe", value="v1")
        wait_until(lambda: reader.get_string_value("probe", "") == "v1", timeout=5)
        assert service.stream_count == 1  # the syncer's; the reader never connects
    finally:
        reader.close()
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
    assert process.returncode == 0
    assert "role syncer" in out
