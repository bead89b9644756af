"""``flagkit sync``: a dedicated syncer process feeding readers through Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

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
    lines: list[str] = []
    assert process.stdout is not None
    stdout = process.stdout
    collector = threading.Thread(target=lambda: lines.extend(stdout), daemon=True)
    collector.start()
    reader = FlagKitClient(
        api_key=API_KEY, redis_url=redis_url, redis_prefix=prefix, redis_role="reader"
    )
    try:
        reader.initialize()  # waits for the syncer's first snapshot
        assert reader.get_string_value("probe", "") == "v0"
        service.set_flag("probe", value="v1")
        wait_until(lambda: reader.get_string_value("probe", "") == "v1", timeout=5)
        assert service.stream_count == 1  # the syncer's; the reader never connects
        wait_until(lambda: "flagkit sync: role syncer\n" in lines, timeout=10, message="role")
    finally:
        reader.close()
        process.send_signal(signal.SIGTERM)
        process.wait(20)
        collector.join(10)
        stdout.close()
    assert process.returncode == 0
