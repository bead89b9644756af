"""The SDK's HTTP client (docs/protocol.md §2 to §5): the only caller of httpx.

:class:`HttpClient` owns the base URL, the request headers, retries with backoff and
``Retry-After`` (:mod:`flagkit.http.retry`), the circuit breaker
(:mod:`flagkit.http.circuit_breaker`), key rotation and request signing. Every transport or
status failure leaves it as a :class:`~flagkit.errors.FlagKitError` with a code
(:mod:`flagkit.http.responses` holds the status table, :mod:`flagkit.http._transport` the
transport errors); httpx exceptions never escape.

One logical request::

    retry loop (attempts = max(1, retries); backoff never sleeps past the deadline)
      └─ closed? key rejected? 429 cooldown? ──▶ fail at once, nothing sent
      └─ circuit breaker (one attempt; open ──▶ CircuitOpenError, nothing sent)
           └─ send with the active key ──401──▶ switch to the secondary key once, re-sign,
                                                resend; a second 401 propagates
                └─ one attempt: done by min(deadline, now + timeout), body read up to
                   its size limit (docs/security.md "Limits")

Also: each attempt ends by ``min(deadline, now + timeout)`` however slowly the server
sends; a 2xx body over :func:`~flagkit.http.responses.response_limit` is refused
(``NETWORK_RESPONSE_TOO_LARGE``); a 429 is never retried and starts a cooldown (its
``Retry-After``, else 1 s) during which calls raise ``AUTH_RATE_LIMITED`` unsent; a rejected
key (401 with no other key, or 403) is never sent again (:attr:`HttpClient.key_rejected`);
a retryable error waits ``max(backoff, Retry-After)``; a 204 is ``{}``; the stream-token
call makes one attempt (the streaming manager's backoff is its retry policy);
:meth:`HttpClient.close` aborts requests in flight; a forked child builds its own
connections on its first call (:meth:`HttpClient._check_process`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

import httpx

from flagkit.errors import AuthenticationError, FlagKitError, NetworkError
from flagkit.http._redact import install_log_redaction, safe_url
from flagkit.http._signing import RequestSigner, sdk_headers, user_agent
from flagkit.http._transport import DeadlineTransport, deadline_scope, ssl_context, translate_errors
from flagkit.http.circuit_breaker import CircuitBreaker
from flagkit.http.config import HttpConfig
from flagkit.http.responses import (
    ERROR_BODY_LIMIT,
    UsageMetrics,
    counts_as_outage,
    error_from_response,
    json_object,
    log_usage,
    parse_stream_token,
    parse_usage_headers,
    read_body,
    response_limit,
)
from flagkit.http.retry import call_with_retry, normalize_attempts
from flagkit.http.sse import EventStream
from flagkit.utils.signing import canonical_json, key_id

__all__ = ["EventStream", "HttpClient", "HttpConfig"]

DEFAULT_RATE_LIMIT_COOLDOWN: Final = 1.0
"""Seconds of cooldown after a 429 that carries no usable ``Retry-After``."""

_REJECTED_KEY_CODES: Final = frozenset({"AUTH_INVALID_KEY", "AUTH_INSUFFICIENT_PERMISSIONS"})


class HttpClient:
    """JSON over HTTP to a FlagKit server, with retries, breaker, rotation and signing.

    >>> http = HttpClient(HttpConfig(base_url=server.base_url, api_key="sdk_..."))  # doctest: +SKIP
    >>> http.get_json("/sdk/init")["flags"]                                         # doctest: +SKIP

    Every failure raises a :class:`~flagkit.errors.FlagKitError` subclass with a code
    (docs/protocol.md §2.4); a circuit-open call raises
    :class:`~flagkit.errors.CircuitOpenError`. Thread-safe: any number of threads may call
    it at once; ``close()`` interrupts backoff sleeps, requests in flight and event streams.
    """

    def __init__(self, config: HttpConfig, *, logger: logging.Logger | None = None) -> None:
        install_log_redaction()
        self._config = config
        self._logger = logger or logging.getLogger("flagkit.http")
        self._base_url = config.base_url.rstrip("/")
        self._server = safe_url(self._base_url)
        self._keys: tuple[str, str | None] = (config.api_key, config.secondary_api_key)
        self._attempts = normalize_attempts(config.retries)
        self._sdk_headers = sdk_headers(user_agent(config.sdk_version), config.sdk_version)
        self._breaker = CircuitBreaker(config.circuit_breaker, logger=self._logger)
        self._lock = threading.Lock()  # key slot, rejection, cooldown, clients, streams
        self._active_slot = 0
        self._rotated_at: float | None = None
        self._rejection: AuthenticationError | None = None
        self._rate_limited_until = 0.0
        self._last_usage: UsageMetrics | None = None
        self._closed = threading.Event()
        # Connections belong to the process that opened them (see _check_process()).
        self._pid = os.getpid()
        self._client: httpx.Client | None = None
        self._stream_client: httpx.Client | None = None
        self._transports: list[DeadlineTransport] = []
        self._streams: set[EventStream] = set()
        self._abandoned: list[object] = []  # a forked parent's clients: never used or closed

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
        self._check_process()
        with self._lock:
            slot = self._active_slot
        return key_id(self._key(slot))

    @property
    def key_rejected(self) -> bool:
        """Whether the server rejected the key for good (401 with no other key, or 403);
        from then on every call raises ``AuthenticationError`` without sending."""
        return self._rejection is not None

    @property
    def circuit_state(self) -> str:
        """``"CLOSED"``, ``"OPEN"`` or ``"HALF_OPEN"``."""
        self._check_process()
        return self._breaker.state

    @property
    def circuit_breaker(self) -> CircuitBreaker:
        """The breaker shared by every request of this client."""
        return self._breaker

    @property
    def last_usage(self) -> UsageMetrics | None:
        """Usage headers of the last successful response that had any (§2.5)."""
        return self._last_usage

    def is_in_key_rotation(self) -> bool:
        """Whether the secondary key took over less than ``key_rotation_grace_period`` ago."""
        self._check_process()
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
        signer = RequestSigner(payload) if sign and self._config.enable_request_signing else None
        return self._request("POST", path, payload=payload, signer=signer, deadline=deadline)

    def fetch_stream_token(self, *, deadline: float | None = None) -> tuple[str, int]:
        """``POST /sdk/stream/token`` (§4.4) and return ``(token, expires_in)``.

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
        return parse_stream_token(data)

    @contextlib.contextmanager
    def open_event_stream(self, token: str) -> Iterator[EventStream]:
        """Open ``GET /sdk/stream?token=...`` (§4.5) and yield its lines.

        ``with http.open_event_stream(token) as lines: for line in lines: ...``

        Only ``Accept: text/event-stream`` and ``Cache-Control: no-cache`` are sent. The
        connection and the response headers must arrive within ``timeout``; the body has
        no read timeout (silence is the heartbeat monitor's business). ``lines.close()``
        from another thread ends the iteration promptly. Raises ``FlagKitError`` for a
        transport failure, a non-2xx status (mapped as §2.4), a response that is not
        ``text/event-stream``, or once the key was rejected.
        """
        self._ensure_usable()
        timeout = self._config.timeout
        client = self._httpx_client(streaming=True)
        with contextlib.ExitStack() as stack:
            with translate_errors(timeout), deadline_scope(time.monotonic() + timeout):
                response = stack.enter_context(
                    client.stream(
                        "GET",
                        self._url("/sdk/stream"),
                        params={"token": token},
                        headers={"Accept": "text/event-stream", "Cache-Control": "no-cache"},
                        timeout=httpx.Timeout(timeout),
                    )
                )
                if not 200 <= response.status_code < 300:
                    body = read_body(
                        response, ERROR_BODY_LIMIT, truncate=True, what="GET /sdk/stream"
                    )
                    raise error_from_response(
                        response.status_code,
                        body,
                        response.headers,
                        method="GET",
                        path="/sdk/stream",
                    )
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type.lower():
                raise NetworkError(
                    "NETWORK_INVALID_RESPONSE",
                    f"event stream answered with content type {content_type or 'none'!r}, "
                    "expected text/event-stream",
                    status_code=response.status_code,
                )
            # The headers arrived in time; lift the read timeout for the body (httpcore
            # reads it from the request's timeout extension when the body iteration starts).
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

    def close(self) -> None:
        """Close connections, abort requests in flight, end open streams, wake backoff
        sleeps. Idempotent.

        Later calls raise ``FlagKitError("INTERNAL_STATE_ERROR")`` without sending.
        """
        self._check_process()
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            streams = list(self._streams)
            transports = list(self._transports)
            clients = [c for c in (self._client, self._stream_client) if c is not None]
        for stream in streams:
            stream.close()
        for transport in transports:
            transport.abort()
        for client in clients:
            with contextlib.suppress(Exception):
                client.close()

    # -- connections and process ------------------------------------------------------

    def _httpx_client(self, *, streaming: bool = False) -> httpx.Client:
        """The REST (or the streaming) httpx client of this process, built on first use."""
        with self._lock:
            if self._closed.is_set():
                raise FlagKitError("INTERNAL_STATE_ERROR", "the HTTP client is closed")
            if streaming:
                if self._stream_client is None:
                    self._stream_client = self._new_client()
                return self._stream_client
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _check_process(self) -> None:
        """Start afresh in a forked child; called before anything takes a lock.

        The child's first call finds another process id: the parent's httpx clients are
        abandoned (kept, never used, never closed: their sockets are the parent's too) and
        locks and events are replaced without being acquired (a parent thread may have held
        one at ``fork()``). Keys, rotation, rejection, cooldown and breaker state are kept.
        Two threads racing here in a new child at most build one spare client.
        """
        pid = os.getpid()
        if pid == self._pid:
            return
        self._abandoned.extend([self._client, self._stream_client, *self._transports])
        self._lock = threading.Lock()
        closed = self._closed.is_set()
        self._closed = threading.Event()
        if closed:
            self._closed.set()
        self._breaker.reset_after_fork()
        self._client = None
        self._stream_client = None
        self._transports = []
        self._streams = set()
        self._pid = pid

    def _new_client(self) -> httpx.Client:
        # Caller holds the lock. TCP_NODELAY: small JSON requests must not wait for
        # Nagle's algorithm (it doubled the latency of each event batch on loopback).
        transport = DeadlineTransport(
            ssl_context=ssl_context(self._base_url),
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        self._transports.append(transport)
        return httpx.Client(
            timeout=self._config.timeout,
            follow_redirects=False,
            transport=transport,
        )

    # -- internals --------------------------------------------------------------------

    def _key(self, slot: int) -> str:
        key = self._keys[slot]
        assert key is not None  # slot 1 is only ever active when a secondary key exists
        return key

    def _url(self, path: str) -> str:
        return f"{self._base_url}/{path.lstrip('/')}"

    def _ensure_usable(self) -> None:
        """Raise at once, sending nothing, when closed or the key was rejected."""
        self._check_process()
        if self._closed.is_set():
            raise FlagKitError("INTERNAL_STATE_ERROR", "the HTTP client is closed")
        rejection = self._rejection
        if rejection is not None:
            raise AuthenticationError(
                rejection.code,
                f"the server rejected API key {self.active_key_id} "
                f"(HTTP {rejection.status_code}); not sending with it again",
                status_code=rejection.status_code,
                request_id=rejection.request_id,
            )

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
        signer: RequestSigner | None = None,
        token_call: bool = False,
        attempts: int | None = None,
        deadline: float | None = None,
    ) -> dict[str, Any]:
        def send(slot: int) -> dict[str, Any]:
            return self._send(method, path, params, payload, signer, token_call, deadline, slot)

        def attempt() -> dict[str, Any]:
            self._ensure_usable()
            self._check_cooldown()
            return self._breaker.call(
                lambda: self._send_with_rotation(send), is_failure=counts_as_outage
            )

        return call_with_retry(
            attempt,
            attempts=attempts if attempts is not None else self._attempts,
            options=self._config.retry,
            deadline=deadline,
            wait=self._closed.wait,
            description=f"{method} {self._server}/{path.lstrip('/')}",
            logger=self._logger,
        )

    def _send_with_rotation(self, send: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
        """``send(slot)`` with the active key; once more with the secondary key after a 401
        that switched to it. A key rejection with no key left to try is remembered."""
        with self._lock:
            slot = self._active_slot
        try:
            return send(slot)
        except AuthenticationError as error:
            new_slot = self._rotate_after_401(slot) if error.code == "AUTH_INVALID_KEY" else None
            if new_slot is None:
                self._note_rejection(error)
                raise
        try:
            return send(new_slot)
        except AuthenticationError as error:
            self._note_rejection(error)
            raise

    def _note_rejection(self, error: AuthenticationError) -> None:
        if error.code not in _REJECTED_KEY_CODES:
            return
        with self._lock:
            first = self._rejection is None
            if first:
                self._rejection = error
            slot = self._active_slot
        if first:
            self._logger.error(
                "%s rejected API key %s (HTTP %s); no more requests are sent with it",
                self._server,
                key_id(self._key(slot)),
                error.status_code,
            )

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

    def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        payload: str | None,
        signer: RequestSigner | None,
        token_call: bool,
        deadline: float | None,
        slot: int,
    ) -> dict[str, Any]:
        """One attempt, over by ``min(deadline, now + timeout)`` whatever the server does."""
        client = self._httpx_client()
        headers = (
            {"Content-Type": "application/json", "X-API-Key": self._key(slot)}
            if token_call
            else self._sdk_headers(self._key(slot))
        )
        if signer is not None:
            headers.update(signer.headers_for(slot, self._key(slot)))
        timeout = self._attempt_timeout(deadline)
        what = f"{method} {path}"
        try:
            with (
                translate_errors(timeout, f"{method} {self._server}/{path.lstrip('/')}"),
                deadline_scope(time.monotonic() + timeout),
                client.stream(
                    method,
                    self._url(path),
                    params=dict(params) if params is not None else None,
                    content=payload.encode("ascii") if payload is not None else None,
                    headers=headers,
                    timeout=timeout,
                ) as response,
            ):
                ok = 200 <= response.status_code < 300
                limit = response_limit(path) if ok else ERROR_BODY_LIMIT
                body = read_body(response, limit, truncate=not ok, what=what)
        except NetworkError as error:
            if self._closed.is_set():
                raise FlagKitError(
                    "INTERNAL_STATE_ERROR", f"the HTTP client was closed during {what}"
                ) from error
            raise
        return self._handle_response(method, path, response, body)

    def _handle_response(
        self, method: str, path: str, response: httpx.Response, body: bytes
    ) -> dict[str, Any]:
        status = response.status_code
        request_id = response.headers.get("x-request-id")
        self._logger.debug("%s %s -> %d (request id %s)", method, path, status, request_id)
        if not 200 <= status < 300:
            error = error_from_response(
                status, body, response.headers, method=method, path=path, server=self._server
            )
            if status == 429:
                cooldown = float(error.retry_after or DEFAULT_RATE_LIMIT_COOLDOWN)
                with self._lock:
                    self._rate_limited_until = max(
                        self._rate_limited_until, time.monotonic() + cooldown
                    )
                self._logger.warning(
                    "%s %s/%s was rate limited (HTTP 429); pausing requests for %gs",
                    method,
                    self._server,
                    path.lstrip("/"),
                    cooldown,
                )
            raise error
        usage = parse_usage_headers(response.headers)
        if usage is not None:
            self._last_usage = usage
            log_usage(usage, self._logger)
        return json_object(status, response.headers, body)
