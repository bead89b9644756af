"""Routing of the local server: one handler per connection, keep-alive, HTTP/1.1.

Each request is read under a total deadline (``request_timeout``), authenticated from its
headers, and only then is its body read. Errors are answered with the JSON envelope
(:mod:`flagkit.server.exchange`); an unexpected failure is logged and answered 500, and
the server keeps serving. Query-string credentials (stream tokens) never reach a log line.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from flagkit._version import __version__
from flagkit.server.context import ServerContext
from flagkit.server.dashboard import routes as dashboard
from flagkit.server.endpoints import admin, events, sdk, stream
from flagkit.server.exchange import DeadlineReader, Exchange, HTTPError, shown
from flagkit.server.httpd import LocalHTTPServer
from flagkit.server.requests_log import Headers, RecordedRequest

__all__ = ["BASE_PATH", "RequestHandler", "redact_query"]

logger = logging.getLogger("flagkit.server")

BASE_PATH: Final = "/api/v1"

_Endpoint = Callable[[ServerContext, Exchange], None]
_SDK_ROUTES: Final[dict[str, tuple[str, str, _Endpoint | None]]] = {
    "/sdk/init": ("GET", "init", sdk.init),
    "/sdk/updates": ("GET", "updates", sdk.updates),
    "/sdk/events/batch": ("POST", "events", events.batch),
    "/sdk/stream/token": ("POST", "stream_token", sdk.stream_token),
    "/sdk/stream": ("GET", "stream", None),  # authenticated by its token, not a key
}
_SECRET_PARAM: Final = re.compile(r"(?i)([?&;](?:token|api_?key|key)=)[^&;\s\"']*")


def redact_query(text: str) -> str:
    """``text`` with the values of ``token=``/``api_key=`` query parameters replaced."""
    return _SECRET_PARAM.sub(r"\1[REDACTED]", text)


class RequestHandler(BaseHTTPRequestHandler):
    """Serves one connection of the local FlagKit server."""

    protocol_version = "HTTP/1.1"
    server_version = f"FlagKitLocal/{__version__}"
    disable_nagle_algorithm = True
    timeout = 120  # seconds one send may block; the read deadline is request_timeout

    server: LocalHTTPServer
    _reader: DeadlineReader

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # replaced by a reader that enforces the per-request deadline
        self._reader = DeadlineReader(self.connection, float(self.timeout))
        self.rfile = io.BufferedReader(self._reader)

    def handle_one_request(self) -> None:
        # The deadline covers the wait for the request, its headers and its body, so an
        # idle or trickling client cannot hold a connection slot for longer.
        self._reader.arm(self.server.context.limits.request_timeout)
        super().handle_one_request()
        if self._reader.timed_out and self._reader.armed and self._reader.received:
            # Cut off mid-request: say why. (An idle keep-alive connection is just closed.)
            self._reader.disarm()
            with contextlib.suppress(OSError):
                self._send_timeout()

    def _send_timeout(self) -> None:
        if not hasattr(self, "requestline"):  # cut off before the request line ended
            self.requestline = ""
            self.command = ""
        limit = self.server.context.limits.request_timeout
        self.send_error(408, f"the request was not received within {limit:g} s")

    def log_message(self, format: str, *args: Any) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s", self.address_string(), redact_query(format % args))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """JSON instead of the default HTML page (bad request lines, unknown methods...)."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        self.close_connection = True
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # unparsable request line: still send headers
        ex = Exchange(
            self,
            request_id=self.server.context.next_request_id(),
            path="",
            raw_query="",
            params={},
        )
        ex.send_error(code, phrase.upper().replace(" ", "_"), redact_query(message or phrase))

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    def _dispatch(self) -> None:
        ctx = self.server.context
        split = urlsplit(self.path)
        ex = Exchange(
            self,
            request_id=ctx.next_request_id(),
            path=split.path,
            raw_query=split.query,
            params=dict(parse_qsl(split.query, keep_blank_values=True)),
            reader=self._reader,
        )
        try:
            _route(ctx, ex)
        except HTTPError as exc:
            ex.done_reading()
            ex.send_error(exc.status, exc.code, exc.message, exc.headers)
        except TimeoutError:
            self.close_connection = True
            if self._reader.armed:  # still reading the body: nothing was sent yet
                self._reader.disarm()
                with contextlib.suppress(OSError):
                    self._send_timeout()
        except ConnectionError:
            self.close_connection = True
        except Exception:
            logger.exception("error while handling %s %s", self.command, redact_query(self.path))
            self.close_connection = True
            with contextlib.suppress(OSError):
                ex.send_error(500, "INTERNAL_ERROR", "the local server failed; see its log")


def _record(ctx: ServerContext, ex: Exchange, endpoint: str | None) -> None:
    ex.record = ctx.requests.append(
        RecordedRequest(
            method=ex.method,
            path=ex.path,
            raw_query=ex.raw_query,
            query=dict(ex.params),
            headers=Headers(ex.headers.items()),
            body=ex.body,
            endpoint=endpoint,
            time=time.time(),
        )
    )


def _route(ctx: ServerContext, ex: Exchange) -> None:
    path = ex.path
    if dashboard.is_dashboard_path(path):
        dashboard.handle(ctx, ex)  # never recorded: a sign-in body holds the admin token
        return
    if path != BASE_PATH and not path.startswith(BASE_PATH + "/"):
        ex.done_reading()
        _record(ctx, ex, None)
        raise HTTPError(
            404, "NOT_FOUND", f"no such path {shown(path)}; the API lives under {BASE_PATH}"
        )
    sub = path[len(BASE_PATH) :].rstrip("/") or "/"
    if sub == "/admin" or sub.startswith("/admin/"):
        admin.handle(ctx, ex, sub)  # reads the body (under the deadline) after the token
        return
    route = _SDK_ROUTES.get(sub)
    if route is None:
        ex.done_reading()
        _record(ctx, ex, None)
        if sub != "/health":
            raise HTTPError(404, "NOT_FOUND", f"no such endpoint {shown(path)}")
        ex.require_method("GET")
        ex.send_json(200, {"status": "ok", "version": __version__})
        return
    method, endpoint, serve = route
    refusal = sdk.check_api_key(ctx, ex) if serve is not None else None
    if serve is not None and refusal is None:
        ex.read_body(ctx.limits.max_body_bytes)
    ex.done_reading()
    _record(ctx, ex, endpoint)
    ex.require_method(method)
    if serve is None and ex.method == "HEAD":
        raise HTTPError(405, "METHOD_NOT_ALLOWED", "use GET for the event stream", {"Allow": "GET"})
    malformed = sdk.apply_fault(ctx, ex, endpoint)  # faults apply before authentication
    if malformed is None:
        return  # the fault answered (or dropped the connection)
    if serve is None:
        stream.stream(ctx, ex, malformed)
    elif malformed:
        ex.send(200, sdk.MALFORMED_BODY)
    elif refusal is not None:
        raise refusal
    else:
        serve(ctx, ex)
