"""Hostile input against a running local server, over raw sockets: bounded, strict, quiet.

Chunked bodies with bad sizes, bodies from clients without credentials, trickling and idle
clients, connection floods under a low open-file limit, malformed numbers and cursors:
each is answered at once with the JSON error envelope (or the connection is closed), never
a 500, and the server keeps answering normal requests.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flagkit.server import FlagKitServer, FlagsFileError, InvalidFieldError
from flagkit.utils.validators import is_valid_flag_key
from tests.server.test_server_cli import Lines

ROOT = Path(__file__).resolve().parents[2]
BIG_INT = "9" * 5000  # more digits than Python's int() converts from text by default


class Response:
    """A response read off a raw socket."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def read_response(sock: socket.socket, timeout: float = 10.0) -> Response:
    """Read one HTTP response with a Content-Length from ``sock``."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return Response(status, headers, rest[:length])


def is_closed(sock: socket.socket, timeout: float = 10.0) -> bool:
    """Whether the server closes ``sock`` within ``timeout`` (anything it sends is skipped)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


@pytest.fixture
def connect(server: FlagKitServer) -> Iterator[Any]:
    """Open raw sockets to the server (closed after the test)."""
    opened: list[socket.socket] = []

    def _connect(target: FlagKitServer | None = None) -> socket.socket:
        srv = target or server
        sock = socket.create_connection((srv.host, srv.port), timeout=10)
        opened.append(sock)
        return sock

    yield _connect
    for sock in opened:
        sock.close()


def assert_envelope(response: Response, status: int, code: str) -> dict[str, Any]:
    assert response.status == status, response.body
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["error"] == code and body["message"] and body["requestId"]
    return body


def post_head(path: str, *headers: str) -> bytes:
    lines = [f"POST /api/v1{path} HTTP/1.1", "Host: test", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


# chunked bodies and authentication before the body ------------------------------------


def test_chunked_body_without_api_key_is_refused_before_reading_it(
    server: FlagKitServer, connect: Any
) -> None:
    """A chunk size of -1 and no key: 401 at once, the body is never read, connection closed."""
    sock = connect()
    sock.sendall(post_head("/sdk/events/batch", "Transfer-Encoding: chunked") + b"-1\r\n")
    response = read_response(sock)
    assert_envelope(response, 401, "AUTH_INVALID_KEY")
    assert response.headers["connection"] == "close"
    assert is_closed(sock)
    assert server.requests_to("events")[-1].body == b""


def test_body_of_an_unauthenticated_request_is_never_read(
    server: FlagKitServer, connect: Any
) -> None:
    """A 100 MB Content-Length without a key (or with a bad admin token) is answered 401
    before any of the body is sent."""
    sock = connect()
    sock.sendall(post_head("/sdk/events/batch", "Content-Length: 100000000", "X-API-Key: sdk_x"))
    assert_envelope(read_response(sock), 401, "AUTH_INVALID_KEY")
    admin = connect()
    admin.sendall(
        post_head("/admin/faults", "Content-Length: 100000000", "Authorization: Bearer wrong")
    )
    assert_envelope(read_response(admin), 401, "ADMIN_UNAUTHORIZED")


@pytest.mark.parametrize("size_line", [b"-1", b"zz", b"1x", b"+5", b" ", b"f" * 40, b"1" * 5000])
def test_bad_chunk_sizes_are_a_400_at_once(
    server: FlagKitServer, connect: Any, size_line: bytes
) -> None:
    """Negative, non-hex, signed or overlong chunk sizes: 400 without waiting for data."""
    sock = connect()
    head = post_head(
        "/sdk/events/batch", "Transfer-Encoding: chunked", f"X-API-Key: {server.api_key}"
    )
    sock.sendall(head + size_line + b"\r\n")
    body = assert_envelope(read_response(sock), 400, "INVALID_REQUEST")
    assert "chunk" in body["message"]
    assert is_closed(sock)


def test_chunked_bodies_obey_max_body_bytes() -> None:
    """One huge declared chunk is refused before its data; small chunks adding up too."""
    with FlagKitServer(max_body_bytes=1000) as srv:
        head = post_head(
            "/sdk/events/batch", "Transfer-Encoding: chunked", f"X-API-Key: {srv.api_key}"
        )
        with socket.create_connection((srv.host, srv.port)) as sock:
            sock.sendall(head + b"ffffffff\r\n")
            assert_envelope(read_response(sock), 413, "PAYLOAD_TOO_LARGE")
        with socket.create_connection((srv.host, srv.port)) as sock:
            sock.sendall(head + (b"258\r\n" + b"x" * 600 + b"\r\n") * 2)
            assert_envelope(read_response(sock), 413, "PAYLOAD_TOO_LARGE")


def test_a_well_formed_chunked_batch_is_recorded(server: FlagKitServer, connect: Any) -> None:
    """Chunked bodies that follow the rules still work (with keep-alive)."""
    payload = json.dumps({"events": [{"eventType": "chunky", "eventId": "c-1"}]}).encode()
    chunks = b"".join(
        f"{len(part):x};ext=1\r\n".encode() + part + b"\r\n"
        for part in (payload[:10], payload[10:])
    )
    sock = connect()
    head = post_head(
        "/sdk/events/batch", "Transfer-Encoding: chunked", f"X-API-Key: {server.api_key}"
    )
    sock.sendall(head + chunks + b"0\r\nX-Trailer: 1\r\n\r\n")
    assert read_response(sock).json()["recorded"] == 1
    sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: test\r\n\r\n")
    assert read_response(sock).status == 200
    assert server.events("chunky")[0]["eventId"] == "c-1"


@pytest.mark.parametrize("length", ["²", "+5", "-1", "5_0", BIG_INT])
def test_bad_content_length_is_a_400(server: FlagKitServer, connect: Any, length: str) -> None:
    sock = connect()
    sock.sendall(
        post_head("/sdk/events/batch", f"Content-Length: {length}", f"X-API-Key: {server.api_key}")
    )
    assert_envelope(read_response(sock), 400, "INVALID_REQUEST")


def test_ambiguous_framing_is_refused_or_not_reused(server: FlagKitServer, connect: Any) -> None:
    """Two Content-Length headers are a 400; Content-Length with chunked uses the chunks
    and closes the connection, so nothing smuggled after the body is read as a request."""
    key = f"X-API-Key: {server.api_key}"
    sock = connect()
    sock.sendall(post_head("/sdk/events/batch", "Content-Length: 2", "Content-Length: 30", key))
    assert_envelope(read_response(sock), 400, "INVALID_REQUEST")
    assert is_closed(sock)

    body = b'{"events": []}'
    smuggled = b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n"
    both = post_head(
        "/sdk/events/batch", "Transfer-Encoding: chunked", f"Content-Length: {len(body)}", key
    )
    sock = connect()
    sock.sendall(both + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n" + smuggled)
    response = read_response(sock)
    assert response.status == 200 and response.headers["connection"] == "close"
    assert is_closed(sock)
    assert all(r.path != "/api/v1/health" for r in server.requests)


# slow, idle and too many clients -----------------------------------------------------------


def test_a_trickling_client_loses_its_connection_at_the_request_deadline() -> None:
    """Headers sent one byte at a time never finish; the deadline ends the connection
    with a 408 although every byte arrived well within the idle timeout."""
    with FlagKitServer(request_timeout=0.5) as srv:
        sock = socket.create_connection((srv.host, srv.port))
        closed = threading.Event()
        pause = threading.Event()

        def trickle() -> None:
            try:
                for byte in b"GET /api/v1/health HTTP/1.1\r\nX-Padding: " + b"a" * 1000:
                    if closed.is_set() or pause.wait(0.05):
                        return
                    sock.send(bytes([byte]))
            except OSError:
                return

        sender = threading.Thread(target=trickle, daemon=True)
        sender.start()
        try:
            assert_envelope(read_response(sock, timeout=10), 408, "REQUEST_TIMEOUT")
            assert sender.is_alive()  # still trickling when the server gave up
        finally:
            closed.set()
            sock.close()
            sender.join(5)
        assert httpx.get(srv.base_url + "/health").status_code == 200


@pytest.mark.parametrize("path", ["/sdk/events/batch", "/admin/flags/x"])
def test_a_body_that_stops_arriving_is_cut_at_the_request_deadline(path: str) -> None:
    """An authenticated request whose body never completes gets a 408 (SDK and admin)."""
    with FlagKitServer(request_timeout=0.5) as srv:
        credentials = (
            f"Authorization: Bearer {srv.admin_token}"
            if path.startswith("/admin")
            else f"X-API-Key: {srv.api_key}"
        )
        with socket.create_connection((srv.host, srv.port)) as sock:
            head = post_head(path, "Content-Length: 100", credentials)
            sock.sendall(head.replace(b"POST", b"PUT" if "admin" in path else b"POST") + b"{")
            assert_envelope(read_response(sock), 408, "REQUEST_TIMEOUT")
            assert is_closed(sock)


def test_connections_over_the_cap_wait_for_a_free_slot() -> None:
    """With max_connections=3 and three idle clients, a fourth waits; when one leaves,
    it is served."""
    with FlagKitServer(max_connections=3, request_timeout=30) as srv:
        idle = [socket.create_connection((srv.host, srv.port)) for _ in range(3)]
        for sock in idle:
            sock.sendall(b"GET /api/v1/health HTTP/1.1\r\n")  # half-sent
        waiting = socket.create_connection((srv.host, srv.port))
        waiting.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: t\r\n\r\n")
        waiting.settimeout(0.5)
        with pytest.raises(TimeoutError):
            waiting.recv(1)
        idle.pop().close()
        assert read_response(waiting).status == 200
        for sock in [*idle, waiting]:
            sock.close()


SERVE_WITH_LOW_FILE_LIMIT = """
import logging, resource, sys
from flagkit.server import FlagKitServer
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
server = FlagKitServer(request_timeout=1.0).start()
print(server.port, flush=True)
sys.stdin.read()
server.stop()
print("stopped", flush=True)
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc for CPU time")
def test_open_file_limit_reached_backs_off_and_still_answers() -> None:
    """With RLIMIT_NOFILE=64 and 100 idle half-sent requests, accept() fails with EMFILE:
    the server pauses instead of spinning, the idle clients are cut at the request
    deadline, and a normal request is answered."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, "-c", SERVE_WITH_LOW_FILE_LIMIT],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
        lines = Lines(proc)
        try:
            port = int(lines.wait_for("").strip())
            own_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            flood = [
                socket.create_connection(("127.0.0.1", port))
                for _ in range(min(100, own_limit // 4))
            ]
            for sock in flood:
                sock.sendall(b"GET /api/v1/health HTTP/1.1\r\n")
            cpu_before, wall_before = _cpu_seconds(proc.pid), time.monotonic()
            response = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=30)
            assert response.status_code == 200
            cpu = _cpu_seconds(proc.pid) - cpu_before
            wall = time.monotonic() - wall_before
            assert cpu < 0.5 * wall + 0.5, f"server used {cpu:.2f} s CPU in {wall:.2f} s"
            for sock in flood:
                sock.close()
            proc.stdin.close()
            lines.wait_for("stopped")
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            lines.join()
        assert "cannot accept connections" in proc.stderr.read()


# malformed input is a 400 with the envelope ----------------------------------------------


@pytest.mark.parametrize("since", ["%C2%B2", BIG_INT, "%D9%A1%D9%A2"])
def test_malformed_update_cursors_are_a_400(http: httpx.Client, since: str) -> None:
    response = http.get(f"/sdk/updates?since={since}")
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_REQUEST"
    assert "since" in response.json()["message"]


@pytest.mark.parametrize(
    "body",
    [
        '{"events": [{"eventType": "x", "eventData": {"n": ' + BIG_INT + "}}]}",
        '{"events": [{"eventType": "x", "eventData": {"n": NaN}}]}',
        '{"events": [{"eventType": "x", "eventData": {"n": -Infinity}}]}',
        '{"events": [{"eventType": "x", "eventData": {"n": 1e400}}]}',
    ],
)
def test_unusable_numbers_in_events_are_a_400_and_events_stay_valid_json(
    server: FlagKitServer, http: httpx.Client, admin: httpx.Client, body: str
) -> None:
    response = http.post(
        "/sdk/events/batch", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_REQUEST"
    assert server.events("x") == []
    listing = admin.get("/events")
    json.loads(listing.text, parse_constant=lambda name: pytest.fail(f"{name} in the output"))


@pytest.mark.parametrize(
    "fault",
    [
        '{"endpoint": "init", "statuses": [503], "retryAfter": NaN}',
        '{"endpoint": "init", "statuses": [503], "retryAfter": 1e999}',
        '{"endpoint": "init", "latency": Infinity}',
        '{"endpoint": "init", "count": ' + BIG_INT + "}",
    ],
)
def test_unusable_fault_parameters_are_a_400_and_init_keeps_working(
    http: httpx.Client, admin: httpx.Client, fault: str
) -> None:
    response = admin.post("/faults", content=fault, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "INVALID_REQUEST"
    assert admin.get("/faults").json()["faults"] == []
    assert http.get("/sdk/init").status_code == 200


def test_python_api_refuses_non_finite_fault_parameters(server: FlagKitServer) -> None:
    for kwargs in ({"retry_after": float("nan")}, {"retry_after": float("inf")}):
        with pytest.raises(ValueError, match="retry_after"):
            server.inject_fault("init", statuses=[503], **kwargs)
    with pytest.raises(ValueError, match="latency"):
        server.inject_fault("init", latency=float("nan"))


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", "/flags/limit", '{"value": ' + BIG_INT + "}"),
        ("PUT", "/flags/limit", '{"value": 1, "version": ' + "9" * 30 + "}"),
        ("GET", "/events?after=" + BIG_INT, None),
        ("GET", "/events?limit=%D9%A1", None),
        ("POST", "/reset", '{"flags": {"a": NaN}}'),
    ],
)
def test_malformed_admin_input_is_a_400(
    admin: httpx.Client, method: str, path: str, body: str | None
) -> None:
    response = admin.request(method, path, content=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "INVALID_REQUEST"


@pytest.mark.parametrize("timestamp", ["²", BIG_INT, "12a", "-5"])
def test_malformed_signature_timestamps_are_refused_not_a_500(timestamp: str) -> None:
    with FlagKitServer(verify_signatures=True) as srv:
        response = httpx.post(
            srv.base_url + "/sdk/events/batch",
            json={"events": []},
            headers={
                "X-API-Key": srv.api_key,
                "X-Signature": "0" * 64,
                "X-Key-Id": srv.api_key[:8],
                "X-Timestamp": timestamp.encode("latin-1"),
            },
        )
    assert response.status_code == 403
    assert "X-Timestamp" in response.json()["message"]


# one rule for flag keys and API keys -----------------------------------------------------


@pytest.mark.parametrize(
    "key", ["dark-mode", "A_1", "Feature.A", "café", "a b", "a/b", "x" * 257, "", "ok-" * 80]
)
def test_the_server_accepts_exactly_the_flag_keys_the_client_accepts(key: str) -> None:
    server = FlagKitServer()
    if is_valid_flag_key(key):
        assert server.set_flag(key, True)["key"] == key
    else:
        with pytest.raises(InvalidFieldError):
            server.set_flag(key, True)


def test_a_flags_file_with_a_key_the_client_drops_names_the_key_and_its_path(
    tmp_path: Path,
) -> None:
    path = tmp_path / "flags.json"
    path.write_text(
        '{"flags": [\n  {"key": "ok", "value": 1},\n  {"key": "Feature.A", "value": 2}\n]}'
    )
    with pytest.raises(FlagsFileError) as info:
        FlagKitServer(flags_file=path)
    assert info.value.field == "flags[1].key"
    assert info.value.line == 3
    assert "'Feature.A'" in str(info.value)


def test_the_readme_placeholder_key_is_accepted_and_keys_never_appear_in_errors() -> None:
    with FlagKitServer(api_keys="sdk_...") as srv:
        response = httpx.get(srv.base_url + "/sdk/init", headers={"X-API-Key": "sdk_..."})
        assert response.status_code == 200
    secret = "sdk_secret.value with space"
    with pytest.raises(ValueError) as info:
        FlagKitServer(api_keys=[secret])
    assert "secret" not in str(info.value) and "api_keys[0]" in str(info.value)


def test_flagkit_serve_starts_with_the_readme_placeholder_key() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "flagkit", "serve", "--port", "0", "--api-key", "sdk_..."],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as proc:
        lines = Lines(proc)
        try:
            base_url = lines.wait_for("listening on").split("listening on", 1)[1].strip()
            response = httpx.get(base_url + "/sdk/init", headers={"X-API-Key": "sdk_..."})
            assert response.status_code == 200
        finally:
            proc.terminate()
            proc.wait(10)
            lines.join()


# tokens stay out of the logs -------------------------------------------------------------


def test_stream_tokens_never_reach_the_server_log(
    server: FlagKitServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="flagkit.server")
    token = httpx.post(
        server.base_url + "/sdk/stream/token", headers={"X-API-Key": server.api_key}
    ).json()["token"]
    with httpx.stream("GET", f"{server.base_url}/sdk/stream?token={token}") as response:
        assert response.status_code == 200
    httpx.get(f"{server.base_url}/nowhere?token={token}&x=1")
    server.wait_for_requests("stream")
    assert any("/sdk/stream?token=[REDACTED]" in r.getMessage() for r in caplog.records)
    assert all(token not in r.getMessage() for r in caplog.records)


# Ctrl-C when started with SIGINT ignored ---------------------------------------------------


def test_serve_stops_on_ctrl_c_even_when_started_with_sigint_ignored() -> None:
    """A shell script's background job inherits SIGINT ignored; serve handles it itself."""
    with subprocess.Popen(
        [sys.executable, "-m", "flagkit", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    ) as proc:
        lines = Lines(proc)
        try:
            lines.wait_for("Press Ctrl-C")
            proc.send_signal(signal.SIGINT)
            lines.wait_for("stopped")
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            lines.join()
