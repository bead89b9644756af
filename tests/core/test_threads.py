"""Concurrency: lookups during updates, per-thread/per-task contexts, the dispatcher thread."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flagkit import EvaluationContext, FlagState, StreamingOptions
from flagkit.client import FlagKitClient
from flagkit.core.dispatcher import Dispatcher, Listeners
from flagkit.testing import FlagKitServer
from tests.support import poll_until

LOG = logging.getLogger("flagkit.tests")
PER_USER = {
    "key": "per-user",
    "value": "nobody",
    "flagType": "string",
    "variations": [{"id": f"v{n}", "value": f"user-{n}"} for n in range(16)],
    "targets": [{"variation": f"v{n}", "values": [f"user-{n}"]} for n in range(16)],
    "fallthrough": {"variation": "v0"},
}


def test_sixteen_threads_evaluate_consistently_while_updates_stream_in() -> None:
    """Lookups racing 100 SSE updates never fail and never mix two snapshots."""
    with FlagKitServer(
        flags=[
            {"key": "counter", "value": "v1", "flagType": "string"},
            {"key": "steady", "value": True, "flagType": "boolean"},
        ]
    ) as server:
        client = FlagKitClient(
            api_key=server.api_key,
            base_url=server.base_url,
            polling_interval=60.0,
            event_flush_interval=60.0,
        )
        client.initialize()
        server.wait_for_streams(1, timeout=10)
        stop = threading.Event()
        problems: list[str] = []
        lookups = [0] * 16

        def reader(n: int) -> None:
            while not stop.is_set():
                try:
                    result = client.evaluate("counter")
                    if result.value != f"v{result.version}":
                        problems.append(f"value {result.value!r} with version {result.version}")
                    if client.get_boolean_value("steady", False) is not True:
                        problems.append("steady flag lost")
                    if not client.get_string_value("counter", "").startswith("v"):
                        problems.append("counter lost")
                    lookups[n] += 1
                except Exception as exc:  # the point of the test: nothing may raise
                    problems.append(repr(exc))

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(16)]
        for t in threads:
            t.start()
        for version in range(2, 102):
            server.set_flag("counter", f"v{version}", version=version)
        assert poll_until(lambda: client.get_string_value("counter", "") == "v101", 15)
        stop.set()
        for t in threads:
            t.join()
        client.close()
    assert problems == []
    assert all(count > 0 for count in lookups)


@pytest.fixture(scope="module")
def per_user_client() -> Iterator[FlagKitClient]:
    """A ready client whose ``per-user`` flag serves each of 16 users their own value."""
    with FlagKitServer(flags=[PER_USER]) as server:
        client = FlagKitClient(
            api_key=server.api_key,
            base_url=server.base_url,
            streaming=StreamingOptions(enabled=False),
            polling_interval=60.0,
            event_flush_interval=60.0,
        )
        client.initialize()
        yield client
        client.close()


def test_each_thread_evaluates_for_its_own_request_scope(per_user_client: FlagKitClient) -> None:
    """Sixteen threads in their own ``context_scope`` each get their own user's variation."""
    client = per_user_client
    barrier = threading.Barrier(16)
    wrong: list[str] = []

    def worker(n: int) -> None:
        with client.context_scope(EvaluationContext(user_id=f"user-{n}")):
            barrier.wait()
            for _ in range(300):
                got = client.get_string_value("per-user", "")
                if got != f"user-{n}":
                    wrong.append(f"thread {n} got {got}")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert client.get_string_value("per-user", "") == "user-0"  # no scope: fallthrough


def test_each_asyncio_task_evaluates_for_its_own_request_scope(
    per_user_client: FlagKitClient,
) -> None:
    """Interleaved asyncio tasks in their own scopes never see each other's user."""
    client = per_user_client

    async def request(n: int) -> list[str]:
        seen = []
        with client.context_scope(EvaluationContext(user_id=f"user-{n}")):
            for _ in range(5):
                await asyncio.sleep(0)
                seen.append(client.get_string_value("per-user", ""))
        return seen

    async def main() -> list[list[str]]:
        return list(await asyncio.gather(*(request(n) for n in range(16))))

    for n, seen in enumerate(asyncio.run(main())):
        assert seen == [f"user-{n}"] * 5


def test_callbacks_may_call_back_into_the_client_without_deadlock() -> None:
    """An ``on_update`` listener can use the client (no SDK lock is held while it runs)."""
    with FlagKitServer(flags={"a": 1}) as server:
        client = FlagKitClient(
            api_key=server.api_key,
            base_url=server.base_url,
            streaming=StreamingOptions(enabled=False),
            polling_interval=0.05,
            event_flush_interval=60.0,
        )
        seen: list[Any] = []
        done = threading.Event()

        def listener(flags: list[FlagState]) -> None:
            client.set_overrides({"from-callback": True})
            seen.append((client.get_number_value("a", 0), client.is_ready(), client.refresh()))
            done.set()

        client.add_update_listener(listener)
        client.initialize()
        server.set_flag("a", 2)
        assert done.wait(10)
        assert seen[0][:2] == (2.0, True)
        assert client.get_boolean_value("from-callback", False) is True
        client.close()


def test_close_from_inside_a_callback_does_not_deadlock() -> None:
    """A callback may close the client that is calling it."""
    closed = threading.Event()
    holder: dict[str, FlagKitClient] = {}

    def on_ready() -> None:
        holder["c"].close()
        closed.set()

    client = FlagKitClient(api_key="sdk_test_key_123456", offline=True, on_ready=on_ready)
    holder["c"] = client
    client.initialize()
    assert closed.wait(10)
    assert not client.is_ready()


# -- dispatcher unit tests -------------------------------------------------------------------


def test_dispatcher_runs_jobs_in_order_on_its_own_thread() -> None:
    """Jobs run in submission order on ``flagkit-dispatch``; the thread starts lazily."""
    dispatcher = Dispatcher(LOG)
    assert not dispatcher.is_running
    ran: list[tuple[int, str]] = []
    for n in range(20):
        dispatcher.submit(lambda n=n: ran.append((n, threading.current_thread().name)))
    assert dispatcher.wait_idle(5)
    assert [n for n, _ in ran] == list(range(20))
    assert {name for _, name in ran} == {"flagkit-dispatch"}
    dispatcher.close()
    assert dispatcher.submit(lambda: None) is False


def test_dispatcher_logs_a_raising_callback_and_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A callback that raises is logged with its traceback; later jobs still run."""
    dispatcher = Dispatcher(LOG)
    after = threading.Event()

    def broken() -> None:
        raise ValueError("callback bug")

    with caplog.at_level(logging.ERROR, logger="flagkit.tests"):
        dispatcher.submit(broken)
        dispatcher.submit(after.set)
        assert after.wait(5)
        assert dispatcher.wait_idle(5)
    assert any(r.exc_info and "callback bug" in str(r.exc_info[1]) for r in caplog.records)
    dispatcher.close()


def test_listeners_unsubscribe_once_and_iterate_without_locking() -> None:
    """Unsubscribing removes exactly one registration; snapshots are immutable tuples."""
    listeners: Listeners[Callable[[], None]] = Listeners()

    def fn() -> None:
        return None

    first = listeners.add(fn)
    listeners.add(fn)
    snapshot = listeners.snapshot()
    first()
    first()
    assert listeners.snapshot() == (fn,)
    assert snapshot == (fn, fn)
    with pytest.raises(TypeError):
        listeners.add(42)  # type: ignore[arg-type]
