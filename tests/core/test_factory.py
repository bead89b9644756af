"""The ``FlagKit`` static factory: one default client per process, over real HTTP."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flagkit import (
    AuthenticationError,
    ConfigurationError,
    FlagKit,
    FlagKitClient,
    FlagKitOptions,
    InitializationError,
    NetworkError,
    StreamingOptions,
)
from flagkit.flagkit import _reset_default_client
from flagkit.testing import FlagKitServer
from tests.support import poll_until
from tests.support.fault_server import FaultServer, Reply

OFFLINE_KEY = "sdk_offline_factory_key"
FLAGS: dict[str, Any] = {"dark-mode": True, "welcome-message": "Hi!", "max-items": 25}


@pytest.fixture(scope="module")
def server() -> Iterator[FlagKitServer]:
    """One local FlagKit server for the module (tests only read from it)."""
    with FlagKitServer(flags=FLAGS) as running:
        yield running


def quick(server: FlagKitServer, **extra: Any) -> dict[str, Any]:
    """Keyword options for a fast client of ``server``."""
    options: dict[str, Any] = {
        "api_key": server.api_key,
        "base_url": server.base_url,
        "timeout": 3.0,
        "streaming": StreamingOptions(enabled=False),
        "enable_polling": False,
    }
    options.update(extra)
    return options


def closed_port() -> int:
    """A loopback port nothing listens on (bound, read back, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def flagkit_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("flagkit")]


# --- the singleton over HTTP ----------------------------------------------------------------


def test_initialize_loads_flags_and_stores_the_client(server: FlagKitServer) -> None:
    """initialize() returns a ready client that get_instance/get_client return and the class
    methods delegate to."""
    client = FlagKit.initialize(**quick(server))
    assert client.is_ready()
    assert FlagKit.get_instance() is client
    assert FlagKit.get_client() is client
    assert FlagKit.is_initialized()
    assert FlagKit.get_boolean_value("dark-mode", default=False) is True
    assert FlagKit.get_string_value("welcome-message", default="Hello!") == "Hi!"
    assert FlagKit.get_number_value("max-items", default=10) == 25.0
    assert FlagKit.evaluate("dark-mode").value is True


def test_second_initialize_raises_and_keeps_the_first(server: FlagKitServer) -> None:
    """A second initialize() raises INIT_ALREADY_INITIALIZED; the first client stays."""
    first = FlagKit.initialize(**quick(server))
    with pytest.raises(InitializationError) as info:
        FlagKit.initialize(**quick(server))
    assert info.value.code == "INIT_ALREADY_INITIALIZED"
    assert FlagKit.get_instance() is first
    assert first.is_ready()


def test_rejected_key_propagates_and_stores_nothing(server: FlagKitServer) -> None:
    """A 401 at start raises AuthenticationError, stores no client, and a retry may succeed."""
    with pytest.raises(AuthenticationError):
        FlagKit.initialize(**quick(server, api_key="sdk_not_the_server_key_123"))
    assert FlagKit.get_instance() is None
    assert not FlagKit.is_initialized()
    client = FlagKit.initialize(**quick(server))
    assert FlagKit.get_instance() is client


def test_unreachable_server_raises_recoverable_network_error_and_cleans_up() -> None:
    """No server: a recoverable NetworkError within the timeout, no instance, no threads."""
    before = set(flagkit_threads())
    with pytest.raises(NetworkError) as info:
        FlagKit.initialize(
            api_key=OFFLINE_KEY,
            local_port=closed_port(),
            timeout=0.5,
            retries=1,
            streaming=StreamingOptions(enabled=False),
        )
    assert info.value.recoverable
    assert FlagKit.get_instance() is None
    assert poll_until(lambda: set(flagkit_threads()) <= before, 5.0), flagkit_threads()


def test_close_closes_and_forgets_the_client(server: FlagKitServer) -> None:
    """close() closes the client and clears it; it is idempotent and allows a new one."""
    client = FlagKit.initialize(**quick(server))
    FlagKit.close()
    assert FlagKit.get_instance() is None
    assert not client.is_ready()
    FlagKit.close()
    FlagKit.reset()
    again = FlagKit.initialize(**quick(server))
    assert again is not client and FlagKit.get_instance() is again


def test_track_identify_and_flush_delegate(server: FlagKitServer) -> None:
    """The event and context class methods reach the default client and the server."""
    client = FlagKit.initialize(**quick(server))
    FlagKit.identify("user-123", {"plan": "premium"})
    context = client.get_context()
    assert context is not None and context.user_id == "user-123"
    assert context.custom["plan"] == "premium"
    FlagKit.track("button_clicked", {"button": "signup"})
    result = FlagKit.flush(timeout=5.0)
    assert result.error is None and result.pending == 0 and result.sent >= 1


def test_initialize_in_progress_blocks_a_second_one_and_get_or_create_waits() -> None:
    """While a first load is held by the server: initialize() again raises, get_or_create()
    waits and then returns the first client without building its own."""
    gate = threading.Event()
    with FaultServer() as fault:
        fault.script(
            "GET",
            "/sdk/init",
            Reply.json({"flags": [], "serverTime": "2025-01-01T00:00:00Z"}, gate=gate),
        )
        results: dict[str, Any] = {}

        def first() -> None:
            results["first"] = FlagKit.initialize(
                api_key=OFFLINE_KEY,
                base_url=fault.base_url,
                timeout=5.0,
                enable_polling=False,
                streaming=StreamingOptions(enabled=False),
            )

        built: list[FlagKitClient] = []

        def waiter() -> None:
            def build() -> FlagKitClient:
                client = FlagKitClient(api_key=OFFLINE_KEY, offline=True)
                built.append(client)
                return client

            results["waiter"] = FlagKit.get_or_create(build)

        starter = threading.Thread(target=first, name="test-first-init")
        starter.start()
        fault.wait_for_requests(1, "GET", "/sdk/init")
        with pytest.raises(InitializationError) as info:
            FlagKit.initialize(api_key=OFFLINE_KEY, offline=True)
        assert info.value.code == "INIT_ALREADY_INITIALIZED"
        assert FlagKit.get_instance() is None
        second = threading.Thread(target=waiter, name="test-waiter")
        second.start()
        assert not poll_until(lambda: "waiter" in results, timeout=0.2)
        gate.set()
        starter.join(5)
        second.join(5)
        assert results["waiter"] is results["first"] is FlagKit.get_instance()
        assert built == []


# --- without a server -----------------------------------------------------------------------


def test_factory_is_not_instantiable() -> None:
    """FlagKit is a static factory."""
    with pytest.raises(TypeError, match="static factory"):
        FlagKit()


def test_without_a_client_lookups_serve_defaults(caplog: pytest.LogCaptureFixture) -> None:
    """No default client: getters return the default and log, evaluate says why; no raise."""
    caplog.set_level(logging.WARNING, logger="flagkit")
    assert FlagKit.get_boolean_value("dark-mode", default=True) is True
    assert FlagKit.get_string_value("x", default="d") == "d"
    assert FlagKit.get_number_value("x", default=1.5) == 1.5
    assert FlagKit.get_json_value("x", default={"a": 1}) == {"a": 1}
    result = FlagKit.evaluate("x", default="fallback")
    assert (result.value, result.error_code) == ("fallback", "INIT_NOT_INITIALIZED")
    assert result.reason.value == "DEFAULT"
    assert "FlagKit is not initialized" in caplog.text


@pytest.mark.parametrize(
    "call",
    [
        FlagKit.get_client,
        lambda: FlagKit.identify("u"),
        lambda: FlagKit.track("clicked"),
        lambda: FlagKit.flush(),
    ],
    ids=["get_client", "identify", "track", "flush"],
)
def test_without_a_client_other_calls_raise_not_initialized(call: Callable[[], object]) -> None:
    """get_client and the non-lookup delegates raise INIT_NOT_INITIALIZED."""
    with pytest.raises(InitializationError) as info:
        call()
    assert info.value.code == "INIT_NOT_INITIALIZED"


def test_unknown_keyword_suggests_the_option() -> None:
    """A misspelt keyword is a TypeError naming the likely option; nothing is stored."""
    with pytest.raises(TypeError, match="'poling_interval'; did you mean 'polling_interval'"):
        FlagKit.initialize(api_key=OFFLINE_KEY, offline=True, poling_interval=5)  # type: ignore[call-arg]
    assert FlagKit.get_instance() is None


def test_bad_option_raises_configuration_error_and_stores_nothing() -> None:
    """A bad value fails fast with ConfigurationError; the factory stays usable."""
    with pytest.raises(ConfigurationError, match="timeout must be"):
        FlagKit.initialize(api_key=OFFLINE_KEY, offline=True, timeout=-1)
    assert FlagKit.get_instance() is None
    assert FlagKit.initialize(api_key=OFFLINE_KEY, offline=True).is_ready()


def test_initialize_accepts_every_option_as_a_keyword() -> None:
    """Each FlagKitOptions field is a valid FlagKit.initialize keyword."""
    reference = FlagKitOptions(api_key=OFFLINE_KEY, offline=True, bootstrap={"f": True})
    kwargs = {
        name: getattr(reference, name)
        for name in FlagKitOptions.option_names()
        if name != "api_key"
    }
    client = FlagKit.initialize(api_key=OFFLINE_KEY, **kwargs)
    assert client.options == reference
    assert FlagKit.get_boolean_value("f", default=False) is True


def test_concurrent_initialize_creates_exactly_one_client() -> None:
    """Eight threads racing initialize(): one wins, seven get INIT_ALREADY_INITIALIZED."""
    barrier = threading.Barrier(8)
    outcomes: list[object] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait()
        try:
            outcome: object = FlagKit.initialize(api_key=OFFLINE_KEY, offline=True)
        except InitializationError as exc:
            outcome = exc.code
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=race, name=f"test-race-{i}") for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    clients = [o for o in outcomes if isinstance(o, FlagKitClient)]
    assert len(clients) == 1
    assert outcomes.count("INIT_ALREADY_INITIALIZED") == 7
    assert FlagKit.get_instance() is clients[0]


def test_get_or_start_builds_once_and_starts_without_blocking() -> None:
    """Concurrent get_or_start calls share one client, built by one factory call, started."""
    calls: list[int] = []
    barrier = threading.Barrier(6)
    got: list[FlagKitClient] = []
    lock = threading.Lock()

    def factory() -> FlagKitOptions:
        calls.append(1)
        return FlagKitOptions(api_key=OFFLINE_KEY, offline=True, bootstrap={"f": True})

    def worker() -> None:
        barrier.wait()
        client = FlagKit.get_or_start(factory)
        with lock:
            got.append(client)

    threads = [threading.Thread(target=worker, name=f"test-start-{i}") for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(calls) == 1
    assert len(got) == 6 and all(client is got[0] for client in got)
    assert got[0].wait_for_ready(timeout=5.0)
    assert FlagKit.get_boolean_value("f", default=False) is True


def test_get_or_start_returns_an_initialized_client_untouched() -> None:
    """An existing default client is returned and the factory is never called."""
    client = FlagKit.initialize(api_key=OFFLINE_KEY, offline=True)

    def factory() -> FlagKitOptions:
        raise AssertionError("must not be called")

    assert FlagKit.get_or_start(factory) is client


def test_get_or_create_stores_nothing_when_build_fails() -> None:
    """An exception from build propagates and leaves no default client."""

    def build() -> FlagKitClient:
        raise ConfigurationError("boom must be fine, got 'boom'", option="boom")

    with pytest.raises(ConfigurationError):
        FlagKit.get_or_create(build)
    assert FlagKit.get_instance() is None


def test_reset_default_client_closes_and_clears() -> None:
    """The test-only reset closes the stored client and forgets it."""
    client = FlagKit.initialize(api_key=OFFLINE_KEY, offline=True)
    _reset_default_client()
    assert FlagKit.get_instance() is None
    assert not client.is_ready()


# --- no unbounded wait ------------------------------------------------------------------------


class _DripServer:
    """A loopback HTTP server that sends headers, then its body one byte every 0.2 s: a
    per-read timeout never fires, so only an overall deadline ends a request to it."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.port: int = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, name="test-drip", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        try:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
            )
            while not self._stop.wait(0.2):
                conn.sendall(b" ")
        except OSError:
            pass

    def close(self) -> None:
        self._stop.set()
        for conn in [self._sock, *self._conns]:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._thread.join(5)


def test_get_or_create_never_waits_forever_for_a_stuck_initialize() -> None:
    """While FlagKit.initialize() reads a never-ending answer in one thread, get_or_create()
    in another returns (a client) or raises INIT_TIMEOUT within the initialize timeout plus
    a moment: it never waits without bound."""
    drip = _DripServer()
    outcome: dict[str, Any] = {}

    def first() -> None:
        try:
            FlagKit.initialize(
                api_key=OFFLINE_KEY,
                base_url=f"http://127.0.0.1:{drip.port}/api/v1",
                timeout=1.0,
                retries=1,
                enable_polling=False,
                streaming=StreamingOptions(enabled=False),
            )
        except Exception as exc:  # whatever it raises, the waiter below must not hang
            outcome["first"] = exc

    def waiter() -> None:
        try:
            outcome["waiter"] = FlagKit.get_or_create(
                lambda: FlagKitClient(api_key=OFFLINE_KEY, offline=True)
            )
        except InitializationError as exc:
            outcome["waiter"] = exc

    starter = threading.Thread(target=first, name="test-stuck-init")
    starter.start()
    try:
        assert poll_until(lambda: FlagKit._initializing or "first" in outcome, timeout=5)
        second = threading.Thread(target=waiter, name="test-waiter")
        second.start()
        second.join(1.0 * 1.1 + 1.0 + 2.0)
        assert not second.is_alive(), "get_or_create() is still waiting"
        result = outcome["waiter"]
        if isinstance(result, InitializationError):
            assert result.code == "INIT_TIMEOUT"
        else:
            assert isinstance(result, FlagKitClient)
    finally:
        drip.close()
        starter.join(10)
        _reset_default_client()
