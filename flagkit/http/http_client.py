"""The SDK's HTTP layer: the only module that imports httpx (PROTOCOL §2 to §5).

:class:`HttpClient` owns the base URL, the request headers, retries with backoff and
``Retry-After`` (:mod:`flagkit.http.retry`), the circuit breaker
(:mod:`flagkit.http.circuit_breaker`), key rotation and request signing. Every transport or
status failure leaves it as a :class:`~flagkit.errors.FlagKitError` with a code; httpx
exceptions never escape.

One logical request::

    retry loop (attempts = max(1, retries); backoff never sleeps past the deadline)
      └─ closed? / 429 cooldown? ──▶ fail at once, nothing sent
      └─ circuit breaker (one attempt; open ──▶ CircuitOpenError, nothing sent)
           └─ send with the active key ──401──▶ switch to the secondary key once, re-sign,
                                                resend; a second 401 propagates

Decisions where PROTOCOL leaves room:

- A 429 is never retried; it starts a cooldown until its ``Retry-After`` (1 s if absent)
  during which every call raises ``AUTH_RATE_LIMITED`` without sending, so a rate-limited
  server is not hammered by pollers, event flushes and stream reconnects.
- A retryable error with ``Retry-After`` (e.g. 503) waits ``max(backoff, Retry-After)``.
- A 204 answer is an empty object; any other 2xx must be a JSON object.
- The stream-token call makes one attempt: the streaming manager's reconnect backoff is its
  retry policy.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import logging
import math
import platform
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

import httpx

from flagkit._version import __version__
from flagkit.errors import (
    AuthenticationError,
    ConfigurationError,
    EvaluationError,
    FlagKitError,
    NetworkError,
)
from flagkit.http.circuit_breaker import CircuitBreaker
from flagkit.http.retry import call_with_retry, normalize_attempts
from flagkit.types.config import CircuitBreakerOptions, RetryOptions
from flagkit.utils.signing import canonical_json, key_id, sign_body

__all__ = [
    "EventStream",
    "HttpClient",
    "HttpConfig",
    "UsageMetrics",
    "error_from_response",
    "iter_lines",
    "parse_retry_after",
    "parse_usage_headers",
]

DEFAULT_RATE_LIMIT_COOLDOWN: Final = 1.0
"""Seconds of cooldown after a 429 that carries no usable ``Retry-After``."""

MAX_SSE_LINE_BYTES: Final = 16 * 1024 * 1024
"""Longest SSE line accepted (a ``flags_reset`` of many flags is one line)."""

_SDK_LANGUAGE: Final = "python"
_ERROR_BODY_PREVIEW: Final = 200
_SUBSCRIPTION_STATUSES: Final = frozenset({"active", "trial", "past_due", "suspended", "cancelled"})


def _sdk_version() -> str:
    return __version__


@dataclass(frozen=True, kw_only=True)
class HttpConfig:
    """Settings of one :class:`HttpClient` (built by the client from ``FlagKitOptions``).

    >>> HttpConfig(base_url="http://127.0.0.1:8200/api/v1", api_key="sdk_example_key").timeout
    5.0

    Raises :class:`~flagkit.errors.ConfigurationError` for a bad value.
    """

    base_url: str
    api_key: str = field(repr=False)
    secondary_api_key: str | None = field(default=None, repr=False)
    key_rotation_grace_period: float = 300.0
    timeout: float = 5.0
    retries: int = 3
    enable_request_signing: bool = True
    retry: RetryOptions = field(default_factory=RetryOptions)
    circuit_breaker: CircuitBreakerOptions = field(default_factory=CircuitBreakerOptions)
    sdk_version: str = field(default_factory=_sdk_version)

    def __post_init__(self) -> None:
        if not isinstance(self.base_url, str) or not self.base_url.startswith(
            ("http://", "https://")
        ):
            raise ConfigurationError(
                f"base_url must be an absolute http:// or https:// URL, got {self.base_url!r}",
                code="INIT_INVALID_BASE_URL",
                option="base_url",
            )
        if not isinstance(self.api_key, str) or not self.api_key:
            raise ConfigurationError(
                "api_key must be a non-empty string", code="INIT_MISSING_API_KEY", option="api_key"
            )
        if self.secondary_api_key is not None and (
            not isinstance(self.secondary_api_key, str) or not self.secondary_api_key
        ):
            raise ConfigurationError(
                "secondary_api_key must be a non-empty string or None",
                option="secondary_api_key",
            )
        if (
            isinstance(self.timeout, bool)
            or not isinstance(self.timeout, (int, float))
            or not (self.timeout > 0 and math.isfinite(self.timeout))
        ):
            raise ConfigurationError(
                f"timeout must be a number of seconds > 0, got {self.timeout!r}", option="timeout"
            )
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigurationError(
                f"retries must be an int >= 0 (total attempts; 0 means 1), got {self.retries!r}",
                option="retries",
            )
        if (
            isinstance(self.key_rotation_grace_period, bool)
            or not isinstance(self.key_rotation_grace_period, (int, float))
            or self.key_rotation_grace_period < 0
        ):
            raise ConfigurationError(
                "key_rotation_grace_period must be a number of seconds >= 0, "
                f"got {self.key_rotation_grace_period!r}",
                option="key_rotation_grace_period",
            )

    def __repr__(self) -> str:
        secondary = key_id(self.secondary_api_key) if self.secondary_api_key else None
        return (
            f"HttpConfig(base_url={self.base_url!r}, api_key_id={key_id(self.api_key)!r}, "
            f"secondary_api_key_id={secondary!r}, timeout={self.timeout!r}, "
            f"retries={self.retries!r}, enable_request_signing={self.enable_request_signing!r})"
        )


# -- response helpers ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageMetrics:
    """Usage headers of a successful response (PROTOCOL §2.5)."""

    api_usage_percent: float | None = None
    evaluation_usage_percent: float | None = None
    rate_limit_warning: bool = False
    subscription_status: str | None = None


def _parse_percent(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def parse_usage_headers(headers: Mapping[str, str]) -> UsageMetrics | None:
    """The §2.5 usage headers, or ``None`` when none of the four is present.

    >>> parse_usage_headers({"X-API-Usage-Percent": "85.5"}).api_usage_percent
    85.5
    """
    lower = {name.lower(): value for name, value in headers.items()}
    names = (
        "x-api-usage-percent",
        "x-evaluation-usage-percent",
        "x-rate-limit-warning",
        "x-subscription-status",
    )
    if not any(name in lower for name in names):
        return None
    status = lower.get("x-subscription-status")
    status = status.strip() if status is not None else None
    return UsageMetrics(
        api_usage_percent=_parse_percent(lower.get("x-api-usage-percent")),
        evaluation_usage_percent=_parse_percent(lower.get("x-evaluation-usage-percent")),
        rate_limit_warning=lower.get("x-rate-limit-warning") == "true",
        subscription_status=status if status in _SUBSCRIPTION_STATUSES else None,
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> int | None:
    """``Retry-After`` as whole seconds: a positive integer, or an HTTP-date in the future
    (``int(seconds_until) + 1``); anything else is ``None`` (PROTOCOL §2.4).

    >>> parse_retry_after("3"), parse_retry_after("0"), parse_retry_after("soon")
    (3, None, None)
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        seconds = int(text)
        return seconds if seconds > 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    delta = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return int(delta) + 1 if delta > 0 else None


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    method: str = "",
    path: str = "",
) -> FlagKitError:
    """Map a non-2xx response to the §2.4 error (class, code, message, ids, retry-after).

    >>> error_from_response(401, b'{"message": "bad key"}', {}).code
    'AUTH_INVALID_KEY'
    """
    lower = {name.lower(): value for name, value in headers.items()}
    request_id = lower.get("x-request-id")
    message: str | None = None
    details: dict[str, Any] = {"method": method, "path": path}
    if "json" in lower.get("content-type", "").lower():
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            for name in ("message", "error"):
                candidate = parsed.get(name)
                if isinstance(candidate, str) and candidate:
                    message = candidate
                    break
            if isinstance(parsed.get("error"), str):
                details["server_error"] = parsed["error"]
            if isinstance(parsed.get("requestId"), str):
                request_id = parsed["requestId"]
    if message is None:
        preview = body[:_ERROR_BODY_PREVIEW].decode("utf-8", "replace").strip()
        message = preview or "no response body"
    text = f"HTTP {status}: {message}"
    retry_after = parse_retry_after(lower.get("retry-after"))
    if status == 400:
        return FlagKitError(
            "EVAL_INVALID_CONTEXT",
            text,
            status_code=status,
            details=details,
            request_id=request_id,
        )
    if status == 401:
        return AuthenticationError(
            "AUTH_INVALID_KEY", text, status_code=status, details=details, request_id=request_id
        )
    if status == 403:
        return AuthenticationError(
            "AUTH_INSUFFICIENT_PERMISSIONS",
            text,
            status_code=status,
            details=details,
            request_id=request_id,
        )
    if status == 404:
        return EvaluationError(
            "EVAL_FLAG_NOT_FOUND",
            text,
            status_code=status,
            details=details,
            request_id=request_id,
        )
    if status == 429:
        return AuthenticationError(
            "AUTH_RATE_LIMITED",
            text,
            status_code=status,
            details=details,
            retry_after=retry_after,
            request_id=request_id,
        )
    if status >= 500:
        return NetworkError(
            "NETWORK_SERVER_ERROR",
            text,
            status_code=status,
            details=details,
            retry_after=retry_after,
            request_id=request_id,
        )
    return FlagKitError(
        "UNKNOWN_ERROR", text, status_code=status, details=details, request_id=request_id
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


_TIMEOUT_PHASES: Final[dict[type[httpx.TimeoutException], str]] = {
    httpx.ConnectTimeout: "connecting",
    httpx.ReadTimeout: "waiting for the response",
    httpx.WriteTimeout: "sending the request",
    httpx.PoolTimeout: "waiting for a free connection",
}


def _translate_transport_error(exc: httpx.HTTPError, timeout: float | None) -> FlagKitError:
    """Our error for an httpx exception; the caller raises it ``from exc``."""
    if isinstance(exc, httpx.TimeoutException):
        phase = _TIMEOUT_PHASES.get(type(exc), "waiting")
        limit = f"{timeout:g}s" if timeout is not None else "its timeout"
        return NetworkError("NETWORK_TIMEOUT", f"request timed out after {limit} ({phase})")
    tls = _caused_by(exc, ssl.SSLError)
    if tls is not None:
        return NetworkError("NETWORK_SSL_ERROR", f"TLS failure: {tls}")
    if isinstance(exc, httpx.ConnectError):
        if _caused_by(exc, socket.gaierror) is not None:
            return NetworkError("NETWORK_DNS_ERROR", f"could not resolve the server name: {exc}")
        return NetworkError("NETWORK_CONNECTION_REFUSED", f"could not connect: {exc}")
    if isinstance(exc, httpx.DecodingError):
        return NetworkError("NETWORK_INVALID_RESPONSE", f"could not decode the response: {exc}")
    return NetworkError("NETWORK_ERROR", f"transport error ({type(exc).__name__}): {exc}")


def _counts_as_outage(exc: BaseException) -> bool:
    """Circuit-breaker failure test: the server answered unless transport/5xx/429/garbage."""
    if isinstance(exc, FlagKitError):
        status = exc.status_code
        if status is not None and 300 <= status < 500 and status != 429:
            return False
    return True


# -- SSE line splitting --------------------------------------------------------------------

_EOL: Final = re.compile(rb"\r\n|\r|\n")


class _LineSplitter:
    """Split a byte stream into lines on ``\\n``, ``\\r\\n`` and ``\\r`` only (§20.1).

    Works on bytes, so UTF-8 encoded U+2028/U+0085 never split a line, and a ``\\r\\n``
    pair divided between two chunks counts as one line break.
    """

    def __init__(self, max_line: int = MAX_SSE_LINE_BYTES) -> None:
        self._buffer = b""
        self._pending_cr = False
        self._max_line = max_line

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._pending_cr = False
        data = self._buffer + chunk if self._buffer else chunk
        lines: list[bytes] = []
        start = 0
        for match in _EOL.finditer(data):
            lines.append(data[start : match.start()])
            start = match.end()
            if match.group() == b"\r" and start == len(data):
                self._pending_cr = True
        self._buffer = data[start:]
        if len(self._buffer) > self._max_line:
            raise NetworkError(
                "NETWORK_INVALID_RESPONSE",
                f"event stream line longer than {self._max_line} bytes",
            )
        return lines

    def flush(self) -> list[bytes]:
        rest, self._buffer = self._buffer, b""
        return [rest] if rest else []


def iter_lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """Decoded lines of a byte stream, split on ``\\n``, ``\\r\\n``, ``\\r`` only.

    >>> list(iter_lines([b"a\\r", b"\\nb\\rc\\n", "d\\u2028e".encode()]))
    ['a', 'b', 'c', 'd\\u2028e']
    """
    splitter = _LineSplitter()
    for chunk in chunks:
        for line in splitter.feed(chunk):
            yield line.decode("utf-8", "replace")
    for line in splitter.flush():
        yield line.decode("utf-8", "replace")


class EventStream(Iterator[str]):
    """The lines of an open ``/sdk/stream`` response.

    Iterate it on one thread; :meth:`close` may be called from any other thread and makes
    the iteration end promptly (it shuts the socket down, which wakes a blocked read).
    Transport failures while reading raise :class:`~flagkit.errors.NetworkError`; after
    :meth:`close` the iteration just stops.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._closed = threading.Event()
        self._lines = iter_lines(response.iter_bytes())

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> str:
        if self._closed.is_set():
            raise StopIteration
        try:
            return next(self._lines)
        except httpx.HTTPError as exc:
            if self._closed.is_set():
                raise StopIteration from None
            raise _translate_transport_error(exc, None) from exc
        except OSError as exc:
            # httpcore maps socket errors itself; a raw one means the socket was closed
            # under a read (close() or HttpClient.close() raced it).
            if self._closed.is_set():
                raise StopIteration from None
            raise NetworkError("NETWORK_ERROR", f"event stream read failed: {exc}") from exc

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed.is_set()

    def close(self) -> None:
        """Stop the stream from any thread; idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        network_stream = self._response.extensions.get("network_stream")
        sock = network_stream.get_extra_info("socket") if network_stream is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


# -- the client ----------------------------------------------------------------------------


class _Signer:
    """Signature headers of one logical POST: computed once per key, reused across retries."""

    def __init__(self, payload: str) -> None:
        self.payload = payload
        self._slot: int | None = None
        self._headers: dict[str, str] = {}

    def headers_for(self, slot: int, api_key: str) -> dict[str, str]:
        if self._slot != slot:
            timestamp = int(time.time() * 1000)
            self._headers = {
                "X-Signature": sign_body(self.payload, api_key, timestamp),
                "X-Timestamp": str(timestamp),
                "X-Key-Id": key_id(api_key),
            }
            self._slot = slot
        return self._headers


def _close_inherited_sockets(client: httpx.Client) -> None:
    """Best effort: close this process's descriptors of ``client``'s pooled sockets without
    taking httpx/httpcore locks (only safe in a freshly forked child)."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    for connection in list(getattr(pool, "connections", None) or []):
        inner = getattr(connection, "_connection", None)
        network_stream = getattr(inner, "_network_stream", None)
        if network_stream is None:
            continue
        with contextlib.suppress(Exception):
            sock = network_stream.get_extra_info("socket")
            if isinstance(sock, socket.socket):
                sock.close()


_ssl_lock = threading.Lock()
_default_ssl: ssl.SSLContext | None = None


def _ssl_context(base_url: str) -> ssl.SSLContext:
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


def _user_agent(version: str) -> str:
    return (
        f"FlagKit-Python/{version} ({platform.python_implementation()}/"
        f"{platform.python_version()}; {platform.system()}/{platform.release()})"
    )


class HttpClient:
    """JSON over HTTP to a FlagKit server, with retries, breaker, rotation and signing.

    >>> http = HttpClient(HttpConfig(base_url=server.base_url, api_key="sdk_..."))  # doctest: +SKIP
    >>> http.get_json("/sdk/init")["flags"]                                         # doctest: +SKIP

    Every failure raises a :class:`~flagkit.errors.FlagKitError` subclass with a code
    (PROTOCOL §2.4); a circuit-open call raises :class:`~flagkit.errors.CircuitOpenError`.
    Thread-safe: any number of threads may call it at once; ``close()`` interrupts backoff
    sleeps and open event streams.
    """

    def __init__(self, config: HttpConfig, *, logger: logging.Logger | None = None) -> None:
        self._config = config
        self._logger = logger or logging.getLogger("flagkit.http")
        self._base_url = config.base_url.rstrip("/")
        self._keys: tuple[str, str | None] = (config.api_key, config.secondary_api_key)
        self._attempts = normalize_attempts(config.retries)
        self._user_agent = _user_agent(config.sdk_version)
        self._breaker = CircuitBreaker(config.circuit_breaker, logger=self._logger)
        self._lock = threading.Lock()  # key slot, rotation time, cooldown, stream registry
        self._active_slot = 0
        self._rotated_at: float | None = None
        self._rate_limited_until = 0.0
        self._streams: set[EventStream] = set()
        self._closed = threading.Event()
        self._last_usage: UsageMetrics | None = None
        self._abandoned: list[httpx.Client] = []
        self._client = self._new_client()
        self._stream_client: httpx.Client | None = None  # created on first stream

    def _new_client(self) -> httpx.Client:
        # TCP_NODELAY: small JSON requests must not wait for Nagle's algorithm (it doubled
        # the latency of each event batch on loopback).
        transport = httpx.HTTPTransport(
            verify=_ssl_context(self._base_url),
            http2=False,
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        return httpx.Client(
            timeout=self._config.timeout,
            follow_redirects=False,
            transport=transport,
        )

    def _streaming_client(self) -> httpx.Client:
        with self._lock:
            if self._closed.is_set():
                raise FlagKitError("INTERNAL_STATE_ERROR", "the HTTP client is closed")
            if self._stream_client is None:
                self._stream_client = self._new_client()
            return self._stream_client

    def __repr__(self) -> str:
        return (
            f"HttpClient(base_url={self._base_url!r}, active_key_id={self.active_key_id!r}, "
            f"circuit_state={self.circuit_state!r})"
        )

    # -- public API -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The base URL without a trailing slash."""
        return self._base_url

    @property
    def active_key_id(self) -> str:
        """Key id (first 8 chars) of the key requests are sent with."""
        with self._lock:
            slot = self._active_slot
        return key_id(self._key(slot))

    @property
    def circuit_state(self) -> str:
        """``"CLOSED"``, ``"OPEN"`` or ``"HALF_OPEN"``."""
        return self._breaker.state

    @property
    def circuit_breaker(self) -> CircuitBreaker:
        """The breaker shared by every request of this client."""
        return self._breaker

    @property
    def last_usage(self) -> UsageMetrics | None:
        """Usage headers of the last successful response that had any (PROTOCOL §2.5)."""
        return self._last_usage

    def is_in_key_rotation(self) -> bool:
        """Whether the secondary key took over less than ``key_rotation_grace_period`` ago."""
        with self._lock:
            rotated_at = self._rotated_at
        return (
            rotated_at is not None
            and time.monotonic() - rotated_at < self._config.key_rotation_grace_period
        )

    def get_json(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        *,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """``GET {base}{path}`` and return the JSON object answered.

        ``params`` are URL-encoded into the query. ``deadline`` (a ``time.monotonic()``
        value) bounds the whole call including retries. Raises ``FlagKitError``.
        """
        return self._request("GET", path, params=params, deadline=deadline)

    def post_json(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        sign: bool = True,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        """``POST`` ``body`` as canonical JSON and return the JSON object answered.

        With ``sign`` and ``enable_request_signing`` the exact bytes sent are signed
        (``X-Signature``, ``X-Timestamp``, ``X-Key-Id``); the signature is reused by retries
        and recomputed if the key rotates. Raises ``FlagKitError`` (``INTERNAL_ERROR`` for a
        body JSON cannot hold).
        """
        try:
            payload = canonical_json(body)
        except (TypeError, ValueError) as exc:
            raise FlagKitError(
                "INTERNAL_ERROR", f"request body for POST {path} is not valid JSON: {exc}"
            ) from exc
        signer = _Signer(payload) if sign and self._config.enable_request_signing else None
        return self._request("POST", path, payload=payload, signer=signer, deadline=deadline)

    def fetch_stream_token(self, *, deadline: float | None = None) -> tuple[str, int]:
        """``POST /sdk/stream/token`` (PROTOCOL §4.4) and return ``(token, expires_in)``.

        Sends only ``Content-Type`` and ``X-API-Key`` (no FlagKit ``User-Agent``, no SDK
        headers, no signature); one attempt. Raises ``FlagKitError``
        (``NETWORK_INVALID_RESPONSE`` when ``token``/``expiresIn`` are missing or mistyped).
        """
        data = self._request(
            "POST",
            "/sdk/stream/token",
            payload="{}",
            token_call=True,
            attempts=1,
            deadline=deadline,
        )
        token = data.get("token")
        expires_in = data.get("expiresIn")
        if isinstance(expires_in, float) and expires_in.is_integer():
            expires_in = int(expires_in)
        if (
            not isinstance(token, str)
            or not token
            or (isinstance(expires_in, bool) or not isinstance(expires_in, int))
        ):
            raise NetworkError(
                "NETWORK_INVALID_RESPONSE",
                "stream token response needs a non-empty string 'token' and an int "
                f"'expiresIn', got token={type(token).__name__}, "
                f"expiresIn={expires_in!r}",
            )
        return token, expires_in

    @contextlib.contextmanager
    def open_event_stream(self, token: str) -> Iterator[EventStream]:
        """Open ``GET /sdk/stream?token=...`` (PROTOCOL §4.5) and yield its lines.

        ``with http.open_event_stream(token) as lines: for line in lines: ...``

        Only ``Accept: text/event-stream`` and ``Cache-Control: no-cache`` are sent. The
        connection and the response headers are bounded by ``timeout``; the body has no read
        timeout. ``lines.close()`` from another thread ends the iteration promptly. Raises
        ``FlagKitError`` for a transport failure, a non-2xx status (mapped as §2.4) or a
        response that is not ``text/event-stream``.
        """
        self._ensure_open()
        timeout = self._config.timeout
        with contextlib.ExitStack() as stack:
            try:
                response = stack.enter_context(
                    self._streaming_client().stream(
                        "GET",
                        self._url("/sdk/stream"),
                        params={"token": token},
                        headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"},
                        timeout=httpx.Timeout(timeout),
                    )
                )
            except httpx.HTTPError as exc:
                raise _translate_transport_error(exc, timeout) from exc
            if not 200 <= response.status_code < 300:
                try:
                    body = response.read()
                except httpx.HTTPError:
                    body = b""
                error = error_from_response(
                    response.status_code, body, response.headers, method="GET", path="/sdk/stream"
                )
                raise error
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type.lower():
                raise NetworkError(
                    "NETWORK_INVALID_RESPONSE",
                    f"event stream answered with content type {content_type or 'none'!r}, "
                    "expected text/event-stream",
                    status_code=response.status_code,
                )
            # The headers arrived within `timeout`; from here on silence is the heartbeat
            # monitor's business, so lift the read timeout for the body (httpcore reads it
            # from the request's timeout extension when the body iteration starts).
            timeouts = response.request.extensions.get("timeout")
            if isinstance(timeouts, dict):
                timeouts["read"] = None
            stream = EventStream(response)
            with self._lock:
                self._streams.add(stream)
            try:
                yield stream
            finally:
                with self._lock:
                    self._streams.discard(stream)
                stream.close()

    def reset_after_fork(self) -> None:
        """In a forked child: drop pooled connections and locks inherited from the parent.

        The parent's pools are abandoned rather than closed through httpx (their locks may
        have been held by a parent thread at ``fork()``); the child's copies of their socket
        descriptors are closed, which leaves the parent's connections untouched.
        """
        inherited = [c for c in (self._client, self._stream_client) if c is not None]
        for client in inherited:
            _close_inherited_sockets(client)
        self._abandoned.extend(inherited)
        self._lock = threading.Lock()
        self._streams = set()
        was_closed = self._closed.is_set()
        self._closed = threading.Event()
        if was_closed:
            self._closed.set()
        self._breaker.reset_after_fork()
        self._client = self._new_client()
        self._stream_client = None

    def close(self) -> None:
        """Close connections and open streams; wake backoff sleeps. Idempotent.

        Later calls raise ``FlagKitError("INTERNAL_STATE_ERROR")`` without sending.
        """
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            streams = list(self._streams)
            stream_client = self._stream_client
        for stream in streams:
            stream.close()
        self._client.close()
        if stream_client is not None:
            stream_client.close()

    # -- internals --------------------------------------------------------------------

    def _key(self, slot: int) -> str:
        key = self._keys[slot]
        assert key is not None  # slot 1 is only ever active when a secondary key exists
        return key

    def _url(self, path: str) -> str:
        return f"{self._base_url}/{path.lstrip('/')}"

    def _ensure_open(self) -> None:
        if self._closed.is_set():
            raise FlagKitError("INTERNAL_STATE_ERROR", "the HTTP client is closed")

    def _check_cooldown(self) -> None:
        with self._lock:
            remaining = self._rate_limited_until - time.monotonic()
        if remaining > 0:
            raise AuthenticationError(
                "AUTH_RATE_LIMITED",
                f"rate limited by the server; not sending for another {remaining:.2f}s",
                status_code=429,
                retry_after=max(1, math.ceil(remaining)),
            )

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        payload: str | None = None,
        signer: _Signer | None = None,
        token_call: bool = False,
        attempts: int | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        description = f"{method} {path}"

        def send(slot: int) -> dict[str, Any]:
            return self._send(method, path, params, payload, signer, token_call, deadline, slot)

        def attempt() -> dict[str, Any]:
            self._ensure_open()
            self._check_cooldown()
            return self._breaker.call(
                lambda: self._send_with_rotation(send),
                is_failure=_counts_as_outage,
            )

        return call_with_retry(
            attempt,
            attempts=attempts if attempts is not None else self._attempts,
            options=self._config.retry,
            deadline=deadline,
            wait=self._closed.wait,
            description=description,
            logger=self._logger,
        )

    def _send_with_rotation(self, send: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
        """``send(slot)`` with the active key; once more with the secondary key after a 401
        that switched to it."""
        with self._lock:
            slot = self._active_slot
        try:
            return send(slot)
        except AuthenticationError as error:
            if error.code != "AUTH_INVALID_KEY":
                raise
            new_slot = self._rotate_after_401(slot)
            if new_slot is None:
                raise
        return send(new_slot)

    def _rotate_after_401(self, used_slot: int) -> int | None:
        secondary = self._keys[1]
        if secondary is None or used_slot == 1:
            return None
        switched = False
        with self._lock:
            if self._active_slot == 0:
                self._active_slot = 1
                self._rotated_at = time.monotonic()
                switched = True
        if switched:
            self._logger.warning(
                "API key %s was rejected (HTTP 401); switched to the secondary key %s for good",
                key_id(self._config.api_key),
                key_id(secondary),
            )
        return 1

    def _attempt_timeout(self, deadline: float | None) -> float:
        timeout = float(self._config.timeout)
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise NetworkError(
                "NETWORK_TIMEOUT",
                f"deadline passed before the request was sent (timeout {timeout:g}s)",
            )
        return min(timeout, left)

    def _headers(self, slot: int, token_call: bool) -> dict[str, str]:
        if token_call:
            return {"Content-Type": "application/json", "X-API-Key": self._key(slot)}
        return {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-API-Key": self._key(slot),
            "User-Agent": self._user_agent,
            "X-FlagKit-SDK-Version": self._config.sdk_version,
            "X-FlagKit-SDK-Language": _SDK_LANGUAGE,
        }

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        payload: str | None,
        signer: _Signer | None,
        token_call: bool,
        deadline: float | None,
        slot: int,
    ) -> dict[str, Any]:
        headers = self._headers(slot, token_call)
        if signer is not None:
            headers.update(signer.headers_for(slot, self._key(slot)))
        timeout = self._attempt_timeout(deadline)
        try:
            response = self._client.request(
                method,
                self._url(path),
                params=dict(params) if params is not None else None,
                content=payload.encode("ascii") if payload is not None else None,
                headers=headers,
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            raise _translate_transport_error(exc, timeout) from exc
        return self._handle_response(method, path, response)

    def _handle_response(self, method: str, path: str, response: httpx.Response) -> dict[str, Any]:
        status = response.status_code
        request_id = response.headers.get("x-request-id")
        self._logger.debug(
            "%s %s -> %d%s",
            method,
            path,
            status,
            f" (request id {request_id})" if request_id else "",
        )
        if not 200 <= status < 300:
            error = error_from_response(
                status, response.content, response.headers, method=method, path=path
            )
            if status == 429:
                cooldown = float(error.retry_after or DEFAULT_RATE_LIMIT_COOLDOWN)
                with self._lock:
                    self._rate_limited_until = max(
                        self._rate_limited_until, time.monotonic() + cooldown
                    )
                self._logger.warning(
                    "%s was rate limited (HTTP 429); pausing requests for %gs",
                    f"{method} {path}",
                    cooldown,
                )
            raise error
        self._record_usage(response.headers)
        if status == 204:
            return {}
        content_type = response.headers.get("content-type", "")
        if "application/json" not in content_type.lower():
            raise NetworkError(
                "NETWORK_INVALID_RESPONSE",
                f"expected an application/json response, got {content_type or 'none'!r} "
                f"(HTTP {status})",
                status_code=status,
                request_id=request_id,
            )
        try:
            data = json.loads(response.content)
        except (ValueError, RecursionError) as exc:
            raise NetworkError(
                "NETWORK_INVALID_RESPONSE",
                f"response body is not valid JSON (HTTP {status}): {exc}",
                status_code=status,
                request_id=request_id,
            ) from exc
        if not isinstance(data, dict):
            raise NetworkError(
                "NETWORK_INVALID_RESPONSE",
                f"expected a JSON object, got {type(data).__name__} (HTTP {status})",
                status_code=status,
                request_id=request_id,
            )
        return data

    def _record_usage(self, headers: Mapping[str, str]) -> None:
        usage = parse_usage_headers(headers)
        if usage is None:
            return
        self._last_usage = usage
        if usage.api_usage_percent is not None and usage.api_usage_percent >= 80:
            self._logger.warning("API usage at %.1f%% of the plan limit", usage.api_usage_percent)
        if usage.evaluation_usage_percent is not None and usage.evaluation_usage_percent >= 80:
            self._logger.warning(
                "evaluation usage at %.1f%% of the plan limit", usage.evaluation_usage_percent
            )
        if usage.rate_limit_warning:
            self._logger.warning("the server reports that the rate limit is close")
        if usage.subscription_status == "suspended":
            self._logger.error("the FlagKit subscription is suspended")
