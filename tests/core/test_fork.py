"""Fork safety: a forked child (gunicorn --preload, uWSGI, Celery prefork) keeps updating."""

from __future__ import annotations

import json
import os
import select
import sys
import threading
import time
import warnings
from typing import Any

import pytest

from flagkit import StreamingOptions
from flagkit.client import FlagKitClient
from flagkit.testing import FlagKitServer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _fork() -> int:
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() in a multi-threaded process; that is the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        return os.fork()


def _child(client: FlagKitClient, write_fd: int, updated: list[str]) -> None:
    """Runs in the child: wait for the post-fork update, report it, exit without cleanup."""
    report: dict[str, Any] = {}
    try:
        pause = threading.Event()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if client.get_string_value("a", "") == "after-fork" and "a" in updated:
                break
            pause.wait(0.02)
        report = {
            "value": client.get_string_value("a", ""),
            "listener": "a" in updated,
            "threads": sorted(t.name for t in threading.enumerate()),
            "ready": client.is_ready(),
        }
        client.close(timeout=2)
    except BaseException as exc:  # report everything; the child must exit via _exit
        report = {"error": repr(exc)}
    finally:
        os.write(write_fd, json.dumps(report).encode())
        os.close(write_fd)
        os._exit(0)


def _read_report(read_fd: int, pid: int, timeout: float = 30.0) -> dict[str, Any]:
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([read_fd], [], [], 0.1)
            if ready:
                chunk = os.read(read_fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, f"child status {status}"
    assert chunks, "the child reported nothing"
    report: dict[str, Any] = json.loads(b"".join(chunks))
    return report


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "polling"])
def test_forked_child_receives_updates_pushed_after_the_fork(streaming: bool) -> None:
    """The child restarts its own threads and connections and sees a post-fork change."""
    with FlagKitServer(flags={"a": "before-fork"}) as server:
        client = FlagKitClient(
            api_key=server.api_key,
            base_url=server.base_url,
            streaming=StreamingOptions(enabled=streaming, reconnect_interval=0.05, max_backoff=0.1),
            polling_interval=60.0 if streaming else 0.05,
            event_flush_interval=60.0,
        )
        updated: list[str] = []  # appended to by the update listener (no lock to inherit)
        client.add_update_listener(lambda flags: updated.extend(f.key for f in flags))
        client.initialize()
        if streaming:
            server.wait_for_streams(1, timeout=10)
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = _fork()
        if pid == 0:
            os.close(read_fd)
            _child(client, write_fd, updated)
        os.close(write_fd)
        if streaming:
            server.wait_for_streams(2, timeout=10)  # the child opened its own stream
        server.set_flag("a", "after-fork")
        report = _read_report(read_fd, pid)
        client.close()
    assert "error" not in report, report
    assert report["value"] == "after-fork"
    assert report["listener"] is True
    assert report["ready"] is True
    assert "flagkit-dispatch" in report["threads"]
    assert ("flagkit-stream" in report["threads"]) is streaming
    assert "flagkit-poller" in report["threads"]


class _Recorder:
    """A fork-aware part that records the order of after_fork() calls."""

    def __init__(self, name: str, calls: list[str]) -> None:
        self.name = name
        self.calls = calls

    def after_fork(self) -> None:
        self.calls.append(self.name)


def test_one_hook_calls_after_fork_on_registered_parts_in_order() -> None:
    """The single fork hook calls after_fork() on each registered part, in registration
    order, in the child only; unregistered and collected parts are skipped; one raising part
    does not stop the others."""
    from flagkit.core import fork
    from tests.support import run_in_fork

    calls: list[str] = []

    class Broken:
        def after_fork(self) -> None:
            raise RuntimeError("broken part")

    first, broken, second, gone = (
        _Recorder("first", calls),
        Broken(),
        _Recorder("second", calls),
        _Recorder("gone", calls),
    )
    for part in (first, broken, second, gone):
        fork.register(part)
    fork.unregister(gone)
    try:
        report = run_in_fork(lambda: {"calls": list(calls)})
    finally:
        for part in (first, broken, second):
            fork.unregister(part)
    assert report == {"calls": ["first", "second"]}
    assert calls == []  # the parent is untouched


def test_a_closed_client_starts_nothing_in_a_forked_child() -> None:
    """close() unregisters the client: a child forked later has no FlagKit thread."""
    from tests.support import run_in_fork

    with FlagKitServer(flags={"a": "x"}) as server:
        client = FlagKitClient(
            api_key=server.api_key,
            base_url=server.base_url,
            streaming=StreamingOptions(enabled=False),
            polling_interval=0.05,
        )
        client.initialize()
        client.close()
        report = run_in_fork(
            lambda: {
                "threads": [t.name for t in threading.enumerate() if t.name.startswith("flagkit")],
                "value": client.get_string_value("a", ""),
            }
        )
    assert report == {"threads": [], "value": "x"}
