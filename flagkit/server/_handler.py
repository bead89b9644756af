"""HTTP plumbing of the local server: routing, bodies, errors, SDK endpoints, SSE, admin API.

One handler instance serves one connection (keep-alive, HTTP/1.1) on its own thread. All
state lives in the :class:`~flagkit.server.app.FlagKitServer` reached via
``self.server.app``. Every error is a JSON body ``{"error", "message", "requestId"}``
(PROTOCOL §2.4) with ``Content-Type: application/json``; the server keeps serving.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import math
import queue
import selectors
import socket
import threading
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl, unquote, urlsplit

from flagkit._version import __version__
from flagkit.server._time import format_micros, now_micros, parse_timestamp
from flagkit.server.events import event_type_of
from flagkit.server.flags_file import InvalidFieldError
from flagkit.server.requests_log import Headers, RecordedRequest
from flagkit.server.signatures import verify_signature
from flagkit.server.streaming import encode_frame

if TYPE_CHECKING:
    from flagkit.server.app import FlagKitServer

logger = logging.getLogger("flagkit.server")

BASE_PATH: Final = "/api/v1"
_SDK_ROUTES: Final = {
    "/sdk/init": ("GET", "init"),
    "/sdk/updates": ("GET", "updates"),
    "/sdk/events/batch": ("POST", "events"),
    "/sdk/stream/token": ("POST", "stream_token"),
    "/sdk/stream": ("GET", "stream"),
}
_MALFORMED_BODY: Final = b'{"flags": [{"key": "malformed", "value": tru'
_MALFORMED_FRAME: Final = b'event: flag_updated\ndata: {"key": "malformed", "value": tru\n\n'


def _raw_param(query: str, name: str) -> str:
    """A query parameter percent-decoded but with ``+`` kept (cursors are sent unencoded)."""
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if unquote(key) == name:
            return unquote(value)
    return ""


class HTTPError(Exception):
    """Raised inside handlers to answer with a JSON error body."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def _bad_request(message: str) -> HTTPError:
    return HTTPError(400, "INVALID_REQUEST", message)


class LocalHTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` that knows its :class:`FlagKitServer`."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: FlagKitServer, *, ipv6: bool) -> None:
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        self.app = app
        self._wake_r, self._wake_w = socket.socketpair()
        super().__init__(address, RequestHandler)  # closes itself (server_close) if bind fails

    def serve_until_stopped(self) -> None:
        """Accept connections until :meth:`stop_serving`; wakes at once (no polling)."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = selector.select()
                if any(key.fileobj is self._wake_r for key, _ in ready):
                    return
                self._handle_request_noblock()  # type: ignore[attr-defined]

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve each connection on a named daemon thread."""
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="flagkit-server-conn",
            daemon=True,
        )
        thread.start()

    def stop_serving(self) -> None:
        """Make :meth:`serve_until_stopped` return."""
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.exception("unexpected error while serving %s", client_address)


class RequestHandler(BaseHTTPRequestHandler):
    """Serves one connection of the local FlagKit server."""

    protocol_version = "HTTP/1.1"
    server_version = f"FlagKitLocal/{__version__}"
    disable_nagle_algorithm = True
    timeout = 120  # idle keep-alive connections end after this many seconds

    server: LocalHTTPServer
    _request_id: str = ""
    _record: RecordedRequest | None = None

    # connection bookkeeping --------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self.server.app._connection_opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app._connection_closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s", self.address_string(), format % args)

    # responses -------------------------------------------------------------------------------

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", self._request_id or self.server.app._next_request_id())
        if headers:
            for name, value in headers.items():
                self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        if self._record is not None:
            self._record.status = status  # before the client can see the response
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(
        self, status: int, obj: object, headers: Mapping[str, str] | None = None
    ) -> None:
        body = json.dumps(obj, separators=(",", ":")).encode("ascii")
        self._send(status, body, headers=headers)

    def _send_error_body(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        if not self._request_id:
            self._request_id = self.server.app._next_request_id()
        body = {"error": code, "message": message, "requestId": self._request_id}
        self._send_json(status, body, headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """JSON instead of the default HTML page (bad request lines, unknown methods...)."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self.close_connection = True
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # unparsable request line: still send headers
        self._send_error_body(code, phrase.upper().replace(" ", "_"), message or phrase)

    # dispatch --------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        app = self.server.app
        self._request_id = app._next_request_id()
        self._record = None
        try:
            self._route(app)
        except HTTPError as exc:
            self._send_error_body(exc.status, exc.code, exc.message, exc.headers)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception:
            logger.exception("error while handling %s %s", self.command, self.path)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self._send_error_body(500, "INTERNAL_ERROR", "the local server failed; see its log")

    def _route(self, app: FlagKitServer) -> None:
        split = urlsplit(self.path)
        path = split.path
        body = self._read_body(app)
        if path == BASE_PATH or path.startswith(BASE_PATH + "/"):
            sub = path[len(BASE_PATH) :].rstrip("/") or "/"
        else:
            sub = None
        route = _SDK_ROUTES.get(sub) if sub is not None else None
        is_admin = sub is not None and (sub == "/admin" or sub.startswith("/admin/"))
        if not is_admin:
            self._record = app._record_request(
                RecordedRequest(
                    method=self.command,
                    path=path,
                    raw_query=split.query,
                    query=dict(parse_qsl(split.query, keep_blank_values=True)),
                    headers=Headers(self.headers.items()),
                    body=body,
                    endpoint=route[1] if route else None,
                    time=time.time(),
                )
            )
        if sub is None:
            raise HTTPError(
                404, "NOT_FOUND", f"no such path {path!r}; the API lives under {BASE_PATH}"
            )
        if is_admin:
            self._admin(app, sub, split.query, body)
            return
        if sub == "/health":
            self._require_method("GET")
            self._send_json(200, {"status": "ok", "version": __version__})
            return
        if route is None:
            raise HTTPError(404, "NOT_FOUND", f"no such endpoint {path!r}")
        method, endpoint = route
        self._require_method(method)
        if endpoint == "stream" and self.command == "HEAD":
            raise HTTPError(
                405, "METHOD_NOT_ALLOWED", "use GET for the event stream", {"Allow": "GET"}
            )
        malformed = self._apply_fault(app, endpoint)
        if malformed is None:
            return  # the fault answered (or dropped the connection)
        if endpoint == "stream":
            self._stream(app, split.query, malformed)
            return
        if malformed:
            self._send(200, _MALFORMED_BODY)
            return
        self._authenticate(app)
        if endpoint == "init":
            self._init(app)
        elif endpoint == "updates":
            self._updates(app, split.query)
        elif endpoint == "events":
            self._events(app, body)
        else:
            self._stream_token(app)

    def _require_method(self, *allowed: str) -> None:
        if self.command not in allowed and not (self.command == "HEAD" and "GET" in allowed):
            raise HTTPError(
                405,
                "METHOD_NOT_ALLOWED",
                f"{self.command} is not allowed here; use {' or '.join(allowed)}",
                {"Allow": ", ".join(allowed)},
            )

    def _read_body(self, app: FlagKitServer) -> bytes:
        limit = app.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
            if length < 0:
                raise ValueError(raw_length)
        except ValueError:
            self.close_connection = True
            raise _bad_request(f"invalid Content-Length {raw_length!r}") from None
        if length > limit:
            self.close_connection = True  # the unread body makes the connection unusable
            raise HTTPError(
                413,
                "PAYLOAD_TOO_LARGE",
                f"request body of {length} bytes exceeds the limit of {limit}",
            )
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            self.close_connection = True
            raise ConnectionError("client closed the connection mid-body")
        return body

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise _bad_request("invalid chunked encoding") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > limit:
                self.close_connection = True
                raise HTTPError(
                    413, "PAYLOAD_TOO_LARGE", f"request body exceeds the limit of {limit} bytes"
                )
            parts.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _parse_json(self, body: bytes) -> Any:
        if not body.strip():
            raise _bad_request("the request body is empty; a JSON object is required")
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, RecursionError):
            raise _bad_request("the request body is not valid UTF-8 JSON") from None
        except json.JSONDecodeError as exc:
            raise _bad_request(
                f"malformed JSON body: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None

    def _apply_fault(self, app: FlagKitServer, endpoint: str) -> bool | None:
        """Apply an injected fault: None if it answered, else whether to malform the body."""
        action = app._faults.take(endpoint)
        if action is None:
            return False
        if action.latency > 0 and app._stop_event.wait(action.latency):
            action = type(action)(drop=True)
        if action.status is not None:
            headers = {}
            if action.retry_after is not None:
                headers["Retry-After"] = str(math.ceil(action.retry_after))
            try:
                phrase = HTTPStatus(action.status).phrase
            except ValueError:
                phrase = "Error"
            self._send_error_body(
                action.status,
                phrase.upper().replace(" ", "_").replace("-", "_"),
                f"injected fault: {action.status} {phrase}",
                headers,
            )
            return None
        if action.drop:
            self.close_connection = True
            if self._record is not None:
                self._record.status = 0
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return None
        return action.malformed

    def _authenticate(self, app: FlagKitServer) -> None:
        key = self.headers.get("X-API-Key")
        if not key:
            raise HTTPError(401, "AUTH_INVALID_KEY", "missing X-API-Key header")
        if not app._is_valid_key(key):
            raise HTTPError(401, "AUTH_INVALID_KEY", "invalid API key")

    # SDK endpoints -----------------------------------------------------------------------

    def _init(self, app: FlagKitServer) -> None:
        snapshot = app._store.snapshot()
        env = app.environment
        self._send_json(
            200,
            {
                "flags": snapshot.flags,
                "segments": snapshot.segments,
                "environment": env.name,
                "environmentId": env.id,
                "projectId": env.project_id,
                "organizationId": env.organization_id,
                "serverTime": snapshot.server_time,
                "pollingIntervalSeconds": env.polling_interval_seconds,
                "streamingUrl": f"{app.base_url}/sdk/stream",
                "metadata": env.metadata,
            },
        )

    def _updates(self, app: FlagKitServer, query: str) -> None:
        since = _raw_param(query, "since")
        since_us = parse_timestamp(since) if since else None
        changes = app._store.changes_since(since_us)
        self._send_json(
            200,
            {
                "flags": changes.flags,
                "checkedAt": format_micros(changes.time_us),
                "since": since,
                "segments": changes.segments,
                "deleted": changes.deleted_flags,
                "deletedSegments": changes.deleted_segments,
            },
        )

    def _events(self, app: FlagKitServer, body: bytes) -> None:
        parsed = self._parse_json(body)
        if app.verify_signatures:
            problem = verify_signature(self.headers, body, parsed, app.api_keys)
            if problem is not None:
                raise HTTPError(403, "SECURITY_SIGNATURE_INVALID", problem)
        if not isinstance(parsed, dict):
            raise _bad_request("the body must be a JSON object with an 'events' array")
        events = parsed.get("events")
        if not isinstance(events, list):
            raise _bad_request("'events' must be an array of event objects")
        result = app._events.record_batch(events)
        message = f"recorded {result.recorded} events"
        if result.duplicates:
            message += f", skipped {result.duplicates} duplicates"
        if result.errors:
            message += f", rejected {result.errors} malformed events"
        self._send_json(
            200,
            {
                "success": True,
                "message": message,
                "recorded": result.recorded,
                "errors": result.errors,
                "duplicates": result.duplicates,
            },
        )

    def _stream_token(self, app: FlagKitServer) -> None:
        token = app._tokens.issue()
        self._send_json(200, {"token": token, "expiresIn": max(1, int(app._tokens.ttl))})

    def _stream(self, app: FlagKitServer, query: str, malformed: bool) -> None:
        token = dict(parse_qsl(query, keep_blank_values=True)).get("token", "")
        if not token:
            raise HTTPError(
                401, "TOKEN_INVALID", "missing ?token=; get one from POST /sdk/stream/token"
            )
        state = app._tokens.check(token)
        self.close_connection = True
        if state != "ok":
            code = "TOKEN_EXPIRED" if state == "expired" else "TOKEN_INVALID"
            text = "the stream token has expired" if state == "expired" else "unknown stream token"
            self._start_event_stream()
            self.wfile.write(encode_frame("error", {"code": code, "message": text}))
            return
        subscriber = app._broadcaster.subscribe()
        if subscriber is None:
            raise HTTPError(503, "SERVICE_UNAVAILABLE", "the server is stopping")
        try:
            self._start_event_stream()
            if malformed:
                self.wfile.write(_MALFORMED_FRAME)
            self._pump(app, subscriber.frames, lambda: subscriber.closed)
        except OSError:
            pass  # the client went away
        finally:
            app._broadcaster.unsubscribe(subscriber)

    def _start_event_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.send_header("X-Accel-Buffering", "no")
        self.send_header("X-Request-Id", self._request_id)
        if self._record is not None:
            self._record.status = 200
        self.end_headers()

    def _pump(
        self,
        app: FlagKitServer,
        frames: queue.Queue[bytes | None],
        is_closed: Callable[[], bool],
    ) -> None:
        interval = app.heartbeat_interval
        next_beat = time.monotonic() + interval
        while not is_closed():
            wait = next_beat - time.monotonic()
            if wait <= 0:
                self.wfile.write(
                    encode_frame("heartbeat", {"timestamp": format_micros(now_micros())})
                )
                next_beat = time.monotonic() + interval
                continue
            try:
                frame = frames.get(timeout=wait)
            except queue.Empty:
                continue
            if frame is None:
                return
            chunk = [frame]
            while len(chunk) < 256:
                try:
                    more = frames.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.wfile.write(b"".join(chunk))
                    return
                chunk.append(more)
            self.wfile.write(b"".join(chunk))

    # admin API -----------------------------------------------------------------------------

    def _admin(self, app: FlagKitServer, sub: str, query: str, body: bytes) -> None:
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode("utf-8", "replace"), app.admin_token.encode("utf-8")
        ):
            raise HTTPError(
                401,
                "ADMIN_UNAUTHORIZED",
                "the admin API needs 'Authorization: Bearer <admin token>' "
                "(printed by 'flagkit serve')",
                {"WWW-Authenticate": 'Bearer realm="flagkit-admin"'},
            )
        params = dict(parse_qsl(query, keep_blank_values=True))
        parts = [unquote(p) for p in sub.split("/")[2:]]
        resource = parts[0] if parts else ""
        item = parts[1] if len(parts) > 1 else None
        if len(parts) > 2:
            raise HTTPError(404, "NOT_FOUND", f"no such admin path {sub!r}")
        handlers: dict[str, Callable[[FlagKitServer, str | None, dict[str, str], bytes], None]] = {
            "flags": self._admin_flags,
            "segments": self._admin_segments,
            "events": self._admin_events,
            "faults": self._admin_faults,
            "reset": self._admin_reset,
            "reload": self._admin_reload,
            "status": self._admin_status,
        }
        handler = handlers.get(resource)
        if handler is None or (item is not None and resource not in ("flags", "segments")):
            raise HTTPError(404, "NOT_FOUND", f"no such admin path {sub!r}")
        try:
            handler(app, item, params, body)
        except InvalidFieldError as exc:
            raise _bad_request(str(exc)) from None

    def _json_object(self, body: bytes, what: str) -> dict[str, Any]:
        parsed = self._parse_json(body)
        if not isinstance(parsed, dict):
            raise _bad_request(f"the body must be a JSON object ({what})")
        return parsed

    def _admin_flags(
        self, app: FlagKitServer, key: str | None, params: dict[str, str], body: bytes
    ) -> None:
        if key is None:
            self._require_method("GET", "POST")
            if self.command == "POST":
                fields = self._json_object(body, "a flag with a 'key'")
                new_key = fields.pop("key", None)
                if not isinstance(new_key, str) or not new_key:
                    raise _bad_request("key: must be a non-empty string")
                self._send_json(200, self._put_flag(app, new_key, fields, params))
                return
            self._send_json(200, {"flags": app.flags()})
            return
        self._require_method("GET", "PUT", "PATCH", "DELETE")
        if self.command in ("GET", "HEAD"):
            flag = app.get_flag(key)
            if flag is None:
                raise HTTPError(404, "FLAG_NOT_FOUND", f"no flag {key!r}")
            self._send_json(200, flag)
        elif self.command == "DELETE":
            if not app.delete_flag(key):
                raise HTTPError(404, "FLAG_NOT_FOUND", f"no flag {key!r}")
            self._send_json(200, {"deleted": key})
        else:
            fields = self._json_object(body, "flag fields")
            if self.command == "PATCH" and app.get_flag(key) is None:
                raise HTTPError(404, "FLAG_NOT_FOUND", f"no flag {key!r}")
            if "key" in fields and fields.pop("key") != key:
                raise _bad_request("key: must match the key in the path")
            self._send_json(200, self._put_flag(app, key, fields, params))

    def _put_flag(
        self, app: FlagKitServer, key: str, fields: dict[str, Any], params: dict[str, str]
    ) -> dict[str, Any]:
        version = fields.pop("version", None)
        fields.pop("lastModified", None)
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 1
        ):
            raise _bad_request(f"version: must be an integer >= 1, got {version!r}")
        replace = params.get("replace", "").lower() in ("1", "true", "yes")
        return app.set_flag(key, replace=replace, version=version, **fields)

    def _admin_segments(
        self, app: FlagKitServer, key: str | None, params: dict[str, str], body: bytes
    ) -> None:
        if key is None:
            self._require_method("GET")
            self._send_json(200, {"segments": app.segments()})
            return
        self._require_method("GET", "PUT", "DELETE")
        if self.command in ("GET", "HEAD"):
            segment = app.get_segment(key)
            if segment is None:
                raise HTTPError(404, "SEGMENT_NOT_FOUND", f"no segment {key!r}")
            self._send_json(200, segment)
        elif self.command == "DELETE":
            if not app.delete_segment(key):
                raise HTTPError(404, "SEGMENT_NOT_FOUND", f"no segment {key!r}")
            self._send_json(200, {"deleted": key})
        else:
            fields = self._json_object(body, "segment fields")
            if "key" in fields and fields.pop("key") != key:
                raise _bad_request("key: must match the key in the path")
            self._send_json(200, app.set_segment(key, **fields))

    def _int_param(self, params: dict[str, str], name: str, default: int) -> int:
        raw = params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise _bad_request(f"{name}: must be an integer, got {raw!r}") from None
        if value < 0:
            raise _bad_request(f"{name}: must be >= 0, got {value}")
        return value

    def _admin_events(
        self, app: FlagKitServer, _item: str | None, params: dict[str, str], body: bytes
    ) -> None:
        self._require_method("GET", "DELETE")
        if self.command == "DELETE":
            app.clear_events()
            self._send_json(200, {"cleared": True})
            return
        after = self._int_param(params, "after", 0)
        limit = self._int_param(params, "limit", 0)
        wanted_type = params.get("type") or None
        session = params.get("sessionId") or None
        entries = app._events.entries(after=after)
        selected = [
            (seq, e)
            for seq, e in entries
            if (wanted_type is None or event_type_of(e) == wanted_type)
            and (session is None or e.get("sessionId") == session)
        ]
        if limit:
            selected = selected[-limit:]
        cursor = entries[-1][0] if entries else after
        self._send_json(
            200,
            {
                "events": [e for _, e in selected],
                "cursor": cursor,
                "total": app._events.total,
                "duplicates": app._events.duplicates,
                "errors": app._events.errors,
            },
        )

    def _admin_faults(
        self, app: FlagKitServer, _item: str | None, params: dict[str, str], body: bytes
    ) -> None:
        self._require_method("GET", "POST", "DELETE")
        if self.command == "POST":
            spec = self._json_object(body, "a fault")
            allowed = {
                "endpoint",
                "statuses",
                "latency",
                "drop",
                "malformed",
                "count",
                "retryAfter",
            }
            unknown = sorted(set(spec) - allowed)
            if unknown:
                raise _bad_request(
                    f"{unknown[0]}: unknown field; allowed: {', '.join(sorted(allowed))}"
                )
            try:
                app.inject_fault(
                    spec.get("endpoint"),  # type: ignore[arg-type]  # validated inside
                    statuses=spec.get("statuses") or (),
                    latency=spec.get("latency", 0.0),
                    drop=spec.get("drop", False),
                    malformed=spec.get("malformed", False),
                    count=spec.get("count"),
                    retry_after=spec.get("retryAfter"),
                )
            except ValueError as exc:
                raise _bad_request(str(exc)) from None
        elif self.command == "DELETE":
            endpoint = params.get("endpoint") or None
            app.clear_faults(endpoint)
        self._send_json(200, {"faults": app.faults()})

    def _admin_reset(
        self, app: FlagKitServer, _item: str | None, params: dict[str, str], body: bytes
    ) -> None:
        self._require_method("POST")
        spec = self._json_object(body, "reset options") if body.strip() else {}
        options: dict[str, bool] = {}
        for name in ("events", "faults", "requests"):
            value = spec.get(name, True)
            if not isinstance(value, bool):
                raise _bad_request(f"{name}: must be a boolean, got {value!r}")
            options[name] = value
        segments = spec.get("segments")
        if segments is not None and not isinstance(segments, list):
            raise _bad_request("segments: must be an array of segment objects")
        app.reset(spec.get("flags"), segments, **options)
        self._send_json(200, {"flags": app.flags(), "segments": app.segments()})

    def _admin_reload(
        self, app: FlagKitServer, _item: str | None, params: dict[str, str], body: bytes
    ) -> None:
        self._require_method("POST")
        if app.flags_file is None:
            raise HTTPError(409, "NO_FLAGS_FILE", "the server was started without a flags file")
        from flagkit.server.flags_file import FlagsFileError

        try:
            changed = app.reload_flags_file()
        except FlagsFileError as exc:
            raise HTTPError(
                422, "FLAGS_FILE_INVALID", f"{exc}; the last good flags stay served"
            ) from None
        self._send_json(200, {"changed": changed})

    def _admin_status(
        self, app: FlagKitServer, _item: str | None, params: dict[str, str], body: bytes
    ) -> None:
        self._require_method("GET")
        error = app.last_reload_error
        self._send_json(
            200,
            {
                "version": __version__,
                "baseUrl": app.base_url,
                "flags": len(app.flags()),
                "segments": len(app.segments()),
                "streams": app.stream_count,
                "events": app._events.total,
                "flagsFile": str(app.flags_file) if app.flags_file is not None else None,
                "lastReloadError": str(error) if error is not None else None,
                "verifySignatures": app.verify_signatures,
            },
        )
