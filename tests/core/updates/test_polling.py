"""The polling loop: jitter, a real exponential backoff that resets, wake and stop."""

from __future__ import annotations

import logging
import threading

import pytest

from flagkit.core.updates.polling import PollingManager
from tests.support import poll_until

LOG = logging.getLogger("flagkit.tests")


def test_failures_double_the_interval_up_to_the_cap_and_success_resets_it() -> None:
    """Each failed poll doubles the wait (capped); the first success restores the base."""
    waited: list[float] = []
    outcomes = iter([False, False, False, False, True, True])
    done = threading.Event()
    holder: dict[str, PollingManager] = {}

    def poll() -> None:
        waited.append(holder["pm"].current_interval)
        try:
            ok = next(outcomes)
        except StopIteration:
            done.set()
            return
        if not ok:
            raise ConnectionError("server down")

    pm = PollingManager(
        poll, interval=0.01, max_interval=0.05, jitter=0.0, logger=LOG, initial_delay=0.0
    )
    holder["pm"] = pm
    pm.start()
    assert done.wait(10)
    pm.stop()
    # waits before polls 1..7: base, then 2x, 4x, capped, capped; success resets to base.
    assert waited[:7] == pytest.approx([0.01, 0.02, 0.04, 0.05, 0.05, 0.01, 0.01])


def test_backoff_cap_never_undercuts_a_long_base_interval() -> None:
    """With a base above the 300 s cap, failures keep at least the base interval."""

    def failing() -> None:
        raise RuntimeError("boom")

    pm = PollingManager(failing, interval=600.0, logger=LOG, initial_delay=0.0)
    pm.start()
    assert poll_until(lambda: pm.consecutive_failures == 1)
    pm.stop()
    assert pm.current_interval == 600.0


def test_jitter_is_bounded_by_a_tenth_of_the_interval_and_one_second() -> None:
    """The random extra wait is in [0, min(1 s, interval/10)) (docs/protocol.md §5.3)."""
    short = PollingManager(lambda: None, interval=0.5, logger=LOG)
    delays = [short.next_delay() for _ in range(500)]
    assert all(0.5 <= d <= 0.55 for d in delays)
    assert len(set(delays)) > 1
    long = PollingManager(lambda: None, interval=30.0, logger=LOG)
    assert all(30.0 <= long.next_delay() <= 31.0 for _ in range(500))


def test_wake_polls_at_once_and_stop_ends_the_loop_immediately() -> None:
    """A long interval does not delay ``wake()`` or ``stop()``."""
    polled = threading.Event()
    pm = PollingManager(polled.set, interval=3600.0, logger=LOG)
    pm.start()
    assert pm.is_running
    pm.wake()
    assert polled.wait(5)
    pm.stop(timeout=5)
    assert not pm.is_running
    assert pm.poll_count == 1


def test_errors_never_kill_the_loop() -> None:
    """A poll that raises is logged and the loop carries on."""
    count = 0
    third = threading.Event()

    def poll() -> None:
        nonlocal count
        count += 1
        if count >= 3:
            third.set()
        raise ValueError("bad payload")

    pm = PollingManager(
        poll, interval=0.001, max_interval=0.002, jitter=0.0, logger=LOG, initial_delay=0.0
    )
    pm.start()
    assert third.wait(10)
    pm.stop()
    assert pm.consecutive_failures >= 3


def test_set_interval_applies_from_the_next_wait_and_stop_is_idempotent() -> None:
    """Changing the base interval takes effect without restarting; stopping twice is fine."""
    pm = PollingManager(lambda: None, interval=1.0, logger=LOG)
    pm.set_interval(2.0)
    assert pm.interval == 2.0 and pm.current_interval == 2.0
    with pytest.raises(ValueError):
        pm.set_interval(-1)
    pm.stop()
    pm.stop()
    pm.start()  # a stopped manager stays stopped
    assert not pm.is_running


def test_stop_from_inside_the_poll_does_not_deadlock() -> None:
    """The poll function may stop its own loop (the client does so after a rejected key)."""
    holder: dict[str, PollingManager] = {}
    stopped = threading.Event()

    def poll() -> None:
        holder["pm"].stop()
        stopped.set()

    pm = PollingManager(poll, interval=0.001, logger=LOG, initial_delay=0.0)
    holder["pm"] = pm
    pm.start()
    assert stopped.wait(5)
    thread = pm._thread
    assert thread is not None
    thread.join(5)
    assert not thread.is_alive()
    assert pm.poll_count == 1
