"""The socket layer under httpx: a total deadline per request, abort on close, error mapping.

httpx's timeouts bound each socket operation, so a server that sends one byte a second
never trips them. :class:`DeadlineTransport` runs httpcore's connection pool on a network
backend whose every connect, TLS handshake, read and write is bounded by the time left
until the deadline of the request running on that thread (:func:`deadline_scope`); past
it, the operation raises httpcore's timeout for that phase. The backend also remembers its
sockets, so :meth:`DeadlineTransport.abort` can shut them down and wake any thread blocked
in a read (``HttpClient.close()`` uses it).

:func:`translate_errors` is the one place that turns httpx/httpcore exceptions into
:class:`~flagkit.errors.FlagKitError`\\ s.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import Any, Final

import httpcore
import httpx

from flagkit.errors import FlagKitError, NetworkError

__all__ = [
    "DeadlineTransport",
    "deadline_scope",
    "ssl_context",
    "translate_errors",
    "transport_error",
]

_deadline: ContextVar[float | None] = ContextVar("flagkit_http_deadline", default=None)
_WRITE_CHUNK: Final = 64 * 1024


@contextlib.contextmanager
def deadline_scope(deadline: float | None) -> Iterator[None]:
    """Bound the socket operations this thread makes inside the block by ``deadline``
    (a ``time.monotonic()`` value; ``None``: only httpx's per-operation timeouts)."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def _budget(timeout: float | None, expired: type[Exception]) -> float | None:
    """``timeout`` shortened to the time left before this thread's deadline."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the request deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    """A socket stream whose operations end by the request's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, backend: _DeadlineBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _budget(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        # In slices, so a server that reads slowly cannot stretch one call past the deadline.
        view = memoryview(buffer)
        for start in range(0, len(view), _WRITE_CHUNK):
            chunk = bytes(view[start : start + _WRITE_CHUNK])
            self._inner.write(chunk, _budget(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        budget = _budget(timeout, httpcore.ConnectTimeout)
        return self._backend.track(self._inner.start_tls(ssl_context, server_hostname, budget))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend with deadline-bounded streams that :meth:`abort` can stop."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self._lock = threading.Lock()
        self._streams: weakref.WeakSet[_Stream] = weakref.WeakSet()
        self._aborted = False

    def track(self, inner: httpcore.NetworkStream) -> _Stream:
        stream = _Stream(inner, self)
        with self._lock:
            aborted = self._aborted
            if not aborted:
                self._streams.add(stream)
        if aborted:
            inner.close()
            raise httpcore.ConnectError("the HTTP client is closed")
        return stream

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        budget = _budget(timeout, httpcore.ConnectTimeout)
        return self.track(
            self._inner.connect_tcp(host, port, budget, local_address, socket_options)
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:  # pragma: no cover - the SDK never dials a unix socket
        budget = _budget(timeout, httpcore.ConnectTimeout)
        return self.track(self._inner.connect_unix_socket(path, budget, socket_options))

    def sleep(self, seconds: float) -> None:  # pragma: no cover - only for httpcore retries
        self._inner.sleep(seconds)

    def abort(self) -> None:
        """Shut every socket down (waking blocked reads) and refuse new connections."""
        with self._lock:
            self._aborted = True
            streams = list(self._streams)
        for stream in streams:
            sock = stream.get_extra_info("socket")
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """An httpx transport (HTTP/1.1, keep-alive pool) whose requests honour
    :func:`deadline_scope` and which :meth:`abort` stops from any thread."""

    def __init__(self, *, ssl_context: ssl.SSLContext, socket_options: list[Any]) -> None:
        self._backend = _DeadlineBackend()
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            socket_options=socket_options,
            network_backend=self._backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        response = self._pool.handle_request(
            httpcore.Request(
                method=request.method,
                url=httpcore.URL(
                    scheme=request.url.raw_scheme,
                    host=request.url.raw_host,
                    port=request.url.port,
                    target=request.url.raw_path,
                ),
                headers=request.headers.raw,
                content=request.stream,
                extensions=request.extensions,
            )
        )
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    def abort(self) -> None:
        """Shut down every connection now, in-flight ones included; refuse new ones."""
        self._backend.abort()

    def close(self) -> None:
        self._pool.close()


# -- exceptions -----------------------------------------------------------------------------

_TRANSPORT_ERRORS: Final = (
    httpx.HTTPError,
    httpx.StreamError,
    httpx.InvalidURL,
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.ProxyError,
    httpcore.UnsupportedProtocol,
)

_TIMEOUT_PHASES: Final[tuple[tuple[type[Exception], str], ...]] = (
    (httpcore.ConnectTimeout, "connecting"),
    (httpx.ConnectTimeout, "connecting"),
    (httpcore.ReadTimeout, "waiting for the response"),
    (httpx.ReadTimeout, "waiting for the response"),
    (httpcore.WriteTimeout, "sending the request"),
    (httpx.WriteTimeout, "sending the request"),
    (httpcore.PoolTimeout, "waiting for a free connection"),
    (httpx.PoolTimeout, "waiting for a free connection"),
)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def transport_error(
    exc: BaseException, timeout: float | None, request: str | None = None
) -> FlagKitError:
    """Our error for an httpx/httpcore exception (the caller raises it ``from exc``).

    ``request`` (``"GET http://host:port/api/v1/sdk/init"``, no credentials) starts the
    message, so a warning about the failure names the server it could not reach.
    """
    return _transport_error(exc, timeout, request)


def _transport_error(
    exc: BaseException, timeout: float | None, request: str | None
) -> FlagKitError:
    if isinstance(exc, (httpx.TimeoutException, httpcore.TimeoutException)):
        phase = next((name for kind, name in _TIMEOUT_PHASES if isinstance(exc, kind)), "waiting")
        limit = f"{timeout:g}s" if timeout is not None else "its timeout"
        return NetworkError(
            "NETWORK_TIMEOUT", f"request timed out after {limit} ({phase})", request=request
        )
    tls = _caused_by(exc, ssl.SSLError)
    if tls is not None:
        return NetworkError("NETWORK_SSL_ERROR", f"TLS failure: {tls}", request=request)
    if isinstance(exc, (httpx.ConnectError, httpcore.ConnectError)):
        if _caused_by(exc, socket.gaierror) is not None:
            return NetworkError(
                "NETWORK_DNS_ERROR", f"could not resolve the server name: {exc}", request=request
            )
        return NetworkError(
            "NETWORK_CONNECTION_REFUSED", f"could not connect: {exc}", request=request
        )
    if isinstance(exc, httpx.DecodingError):
        return NetworkError(
            "NETWORK_INVALID_RESPONSE", f"could not decode the response: {exc}", request=request
        )
    return NetworkError(
        "NETWORK_ERROR", f"transport error ({type(exc).__name__}): {exc}", request=request
    )


@contextlib.contextmanager
def translate_errors(timeout: float | None, request: str | None = None) -> Iterator[None]:
    """Re-raise any httpx/httpcore exception of the block as a ``FlagKitError`` (naming
    ``request`` when given)."""
    try:
        yield
    except _TRANSPORT_ERRORS as exc:
        raise transport_error(exc, timeout, request) from exc


# -- TLS -------------------------------------------------------------------------------------

_ssl_lock = threading.Lock()
_default_ssl: ssl.SSLContext | None = None


def ssl_context(base_url: str) -> ssl.SSLContext:
    """The TLS context for a client of ``base_url``; verification is always required.

    Loading the CA bundle costs tens to hundreds of milliseconds, so the verifying context is
    built once per process, on first use (an ``SSLContext`` is safe to share between
    threads and clients). A plain ``http://`` base URL never opens a TLS connection
    (redirects are not followed), so it gets a context with no trust anchors: still
    ``CERT_REQUIRED``, it would refuse any certificate rather than skip the check.
    """
    global _default_ssl
    if base_url.startswith("http://"):
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    with _ssl_lock:
        if _default_ssl is None:
            _default_ssl = httpx.create_ssl_context()
        return _default_ssl
