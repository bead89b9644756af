"""Fork safety: a child forked from a process with a fleet client reconnects on its own."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from flagkit import FlagKitClient
from flagkit.testing import FlagKitServer
from tests.fleet.conftest import API_KEY
from tests.support import poll_until, run_in_fork, wait_until


def test_a_forked_child_reads_redis_and_the_parent_keeps_the_lease(
    service: FlagKitServer, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    parent = FlagKitClient(
        api_key=API_KEY,
        local_port=service.port,
        redis_url=redis_url,
        redis_prefix=prefix,
        redis_lease_time=1.0,
    )
    parent.initialize()
    wait_until(lambda: parent.fleet_role == "syncer", timeout=10, message="parent syncs")
    marker = tmp_path / "child-ready"
    changed = threading.Event()

    def change_when_the_child_is_ready() -> None:
        if poll_until(marker.exists, timeout=30):
            service.set_flag("probe", value="after-fork")
            changed.set()

    threading.Thread(target=change_when_the_child_is_ready, daemon=True).start()

    def child() -> dict[str, Any]:
        ready = poll_until(parent.is_ready, timeout=10)
        reader = poll_until(lambda: parent.fleet_role == "reader", timeout=10)
        marker.touch()
        updated = poll_until(
            lambda: parent.get_string_value("probe", "") == "after-fork", timeout=10
        )
        return {"ready": ready, "reader": reader, "updated": updated}

    try:
        report = run_in_fork(child)
        assert report == {"ready": True, "reader": True, "updated": True}
        assert changed.is_set()
        assert parent.fleet_role == "syncer"  # the child never took the parent's lease
        assert parent.get_string_value("probe", "") == "after-fork"
    finally:
        parent.close()
