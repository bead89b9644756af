"""flagkit.web.startup: the bounded wait for a worker's first flags, against real servers."""

from __future__ import annotations

import time
from pathlib import Path

from flagkit.client import FlagKitClient
from flagkit.testing import FlagKitServer
from flagkit.web.startup import StartWait
from tests.support.clients import FAST_RETRY, NO_STREAM
from tests.web.servers import dead_base_url, slow_server

FLAGS = [{"key": "new-checkout", "value": True}]
QUIET = {"streaming": NO_STREAM, "polling_interval": 60.0, "timeout": 5.0, "retry": FAST_RETRY}


def test_a_slow_server_is_waited_for_so_the_first_request_sees_real_flags() -> None:
    """The first load takes a while (the server answers after 0.4 s): the wait ends when
    the flags arrive, so the first lookup already serves the server's value."""
    with (
        slow_server(0.4) as server,
        FlagKitClient(api_key="sdk_test_key_123456", base_url=server.base_url, **QUIET) as c,
    ):
        c.start()
        wait = StartWait(5.0)
        wait.wait(c)
        assert wait.done and c.is_ready()
        assert c.get_boolean_value("new-checkout", False) is True


def test_a_dead_server_makes_only_the_first_requests_wait_once() -> None:
    """With the server down the first request waits up to the bound (not beyond), and
    every later request goes straight through."""
    with FlagKitClient(api_key="sdk_test_key_123456", base_url=dead_base_url(), **QUIET) as c:
        c.start()
        wait = StartWait(0.5)
        started = time.monotonic()
        wait.wait(c)
        first = time.monotonic() - started
        assert wait.done and not c.is_ready()
        assert 0.4 <= first < 3.0  # waited, and the bound held
        started = time.monotonic()
        wait.wait(c)
        assert time.monotonic() - started < 0.2  # done: no second wait
        assert c.get_boolean_value("new-checkout", False) is False  # defaults meanwhile


def test_a_persisted_cache_serves_at_once(tmp_path: Path) -> None:
    """A client that starts with the last-known flags from its cache file does not wait,
    even with the server down."""
    options = {"persist_cache": True, "cache_storage_path": str(tmp_path), **QUIET}
    with FlagKitServer(flags=FLAGS) as server:
        with FlagKitClient(api_key=server.api_key, base_url=server.base_url, **options) as c:
            assert c.wait_for_ready(5)
        key = server.api_key
    with FlagKitClient(api_key=key, base_url=dead_base_url(), **options) as c:
        c.start()
        wait = StartWait(5.0)
        started = time.monotonic()
        wait.wait(c)
        assert time.monotonic() - started < 1.0
        assert c.get_boolean_value("new-checkout", False) is True


def test_zero_turns_the_wait_off() -> None:
    """``START_WAIT = 0`` keeps the old behaviour: nothing waits."""
    assert StartWait(0).done
