"""What a FlagKit server's answer means: status -> error, ``Retry-After``, usage headers.

Every non-2xx answer goes through :func:`error_from_response`, which reads one table,
:data:`STATUS_ERRORS` (docs/protocol.md §2.4)::

    status                 class                code                           rec. retried
    401                    AuthenticationError  AUTH_INVALID_KEY               no   no
    403                    AuthenticationError  AUTH_INSUFFICIENT_PERMISSIONS  no   no
    403 + body error SECURITY_SIGNATURE_INVALID:
                           SecurityError        SECURITY_SIGNATURE_INVALID     no   no
    408                    NetworkError         NETWORK_TIMEOUT                yes  yes
    429                    AuthenticationError  AUTH_RATE_LIMITED              yes  no
    5xx                    NetworkError         NETWORK_SERVER_ERROR           yes  yes
    425                    NetworkError         NETWORK_UNEXPECTED_STATUS      yes  yes
    other (3xx, 400, 404,  NetworkError         NETWORK_UNEXPECTED_STATUS      yes  no
    409, ...)

*recoverable* (the error code's flag) says whether a later request may succeed: only a
rejected key (401, 403) or a refused signature is permanent, so the first load of a client
keeps retrying everything else with its backoff. *retried* says whether the same call
tries again at once (with :mod:`flagkit.http.retry`'s backoff): a definite answer of the
server (3xx, 4xx) is not, except 408 and 425, which ask for exactly that.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Final

import httpx

from flagkit.errors import (
    AuthenticationError,
    FlagKitError,
    NetworkError,
    SecurityError,
)

__all__ = [
    "ERROR_BODY_LIMIT",
    "STATUS_ERRORS",
    "StatusError",
    "UsageMetrics",
    "counts_as_outage",
    "error_from_response",
    "json_object",
    "log_usage",
    "parse_retry_after",
    "parse_stream_token",
    "parse_usage_headers",
    "read_body",
    "response_limit",
    "retried_within_call",
]

MB: Final = 1024 * 1024

RESPONSE_LIMITS: Final[Mapping[str, int]] = {"/sdk/init": 50 * MB, "/sdk/updates": 50 * MB}
"""Largest body accepted from the flag endpoints (the whole flag set travels there)."""

DEFAULT_RESPONSE_LIMIT: Final = 1 * MB
"""Largest body accepted from any other endpoint (event batches, stream tokens)."""

ERROR_BODY_LIMIT: Final = 64 * 1024
"""Bytes of a non-2xx body read for its message; the rest is not read."""

_ERROR_BODY_PREVIEW: Final = 200
_SUBSCRIPTION_STATUSES: Final = frozenset({"active", "trial", "past_due", "suspended", "cancelled"})


def response_limit(path: str) -> int:
    """The largest 2xx body accepted for ``path``.

    >>> response_limit("/sdk/init") // MB, response_limit("/sdk/events/batch") // MB
    (50, 1)
    """
    return RESPONSE_LIMITS.get("/" + path.lstrip("/"), DEFAULT_RESPONSE_LIMIT)


# -- status -> error ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusError:
    """One row of the status table: the error raised and whether the call retries it."""

    error: type[FlagKitError]
    code: str
    retried: bool = False


STATUS_ERRORS: Final[Mapping[int | tuple[int, str], StatusError]] = {
    401: StatusError(AuthenticationError, "AUTH_INVALID_KEY"),
    403: StatusError(AuthenticationError, "AUTH_INSUFFICIENT_PERMISSIONS"),
    # A refused signature is not a refused key (docs/protocol.md §20.5): the key stays usable.
    (403, "SECURITY_SIGNATURE_INVALID"): StatusError(SecurityError, "SECURITY_SIGNATURE_INVALID"),
    408: StatusError(NetworkError, "NETWORK_TIMEOUT", retried=True),
    425: StatusError(NetworkError, "NETWORK_UNEXPECTED_STATUS", retried=True),
    429: StatusError(AuthenticationError, "AUTH_RATE_LIMITED"),
}
"""Status (or status and the body's ``error`` code) -> error; see the module docstring."""

_SERVER_ERROR: Final = StatusError(NetworkError, "NETWORK_SERVER_ERROR", retried=True)
_OTHER_STATUS: Final = StatusError(NetworkError, "NETWORK_UNEXPECTED_STATUS")


def status_error(status: int, server_code: str | None = None) -> StatusError:
    """The table row for ``status`` (and the body's ``error`` code, when it has one).

    >>> status_error(404).code, status_error(503).code
    ('NETWORK_UNEXPECTED_STATUS', 'NETWORK_SERVER_ERROR')
    """
    if server_code is not None:
        row = STATUS_ERRORS.get((status, server_code))
        if row is not None:
            return row
    row = STATUS_ERRORS.get(status)
    if row is not None:
        return row
    return _SERVER_ERROR if status >= 500 else _OTHER_STATUS


def retried_within_call(error: FlagKitError) -> bool:
    """Whether the status an error came from lets the same call try again (see the table).

    Errors without a status (transport failures, garbage 2xx bodies) are not restricted here.
    """
    status = error.status_code
    if status is None or 200 <= status < 300:
        return True
    return status_error(status, _server_code(error)).retried


def counts_as_outage(exc: BaseException) -> bool:
    """Circuit-breaker failure test: the server is down unless it gave a definite answer.

    Transport failures, 5xx, 408, 429 and malformed 2xx bodies count; other 3xx/4xx answers
    (a rejected key, an unknown path) mean the server is up and must not open the circuit.
    """
    if isinstance(exc, FlagKitError):
        status = exc.status_code
        if status is not None and 300 <= status < 500 and status not in (408, 429):
            return False
    return True


def _server_code(error: FlagKitError) -> str | None:
    code = (error.details or {}).get("server_error")
    return code if isinstance(code, str) else None


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    method: str = "",
    path: str = "",
    server: str = "",
) -> FlagKitError:
    """The error for a non-2xx answer: class and code from :data:`STATUS_ERRORS`, the
    message and request id from the §2.4 error body, ``retry_after`` from the header.
    With ``server`` (the base URL without credentials) the message starts with the
    request, so a warning names the server that answered.

    >>> error_from_response(401, b'{"message": "bad key"}', {}).code
    'AUTH_INVALID_KEY'
    """
    lower = {name.lower(): value for name, value in headers.items()}
    request_id = lower.get("x-request-id")
    message: str | None = None
    server_code: str | None = None
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
                server_code = parsed["error"]
                details["server_error"] = server_code
            if isinstance(parsed.get("requestId"), str):
                request_id = parsed["requestId"]
    if message is None:
        preview = body[:_ERROR_BODY_PREVIEW].decode("utf-8", "replace").strip()
        message = preview or "no response body"
    row = status_error(status, server_code)
    return row.error(
        row.code,
        f"HTTP {status}: {message}",
        request=f"{method} {server}/{path.lstrip('/')}" if server else None,
        status_code=status,
        details=details,
        retry_after=parse_retry_after(lower.get("retry-after")),
        request_id=request_id,
    )


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> int | None:
    """``Retry-After`` as whole seconds: a positive integer, or an HTTP-date in the future
    (``int(seconds_until) + 1``); anything else is ``None`` (docs/protocol.md §2.4).

    >>> parse_retry_after("3"), parse_retry_after("0"), parse_retry_after("soon")
    (3, None, None)
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit() and len(text) < 12:
        seconds = int(text)
        return seconds if seconds > 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    delta = (when - (now or datetime.now(timezone.utc))).total_seconds()
    return int(delta) + 1 if delta > 0 else None


def read_body(response: httpx.Response, limit: int, *, truncate: bool, what: str) -> bytes:
    """At most ``limit`` bytes of the body, read as it streams in.

    Over the limit: with ``truncate`` the first ``limit`` bytes (for error messages), else
    ``NetworkError("NETWORK_RESPONSE_TOO_LARGE")`` without reading further.
    """
    declared = response.headers.get("content-length", "")
    if not truncate and declared.isdigit() and int(declared) > limit:
        raise _too_large(what, limit, response.status_code)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            if truncate:
                chunks.append(chunk[: limit - (size - len(chunk))])
                break
            raise _too_large(what, limit, response.status_code)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(what: str, limit: int, status: int) -> NetworkError:
    return NetworkError(
        "NETWORK_RESPONSE_TOO_LARGE",
        f"the answer to {what} is larger than its limit of {limit} bytes; not read",
        status_code=status,
    )


def json_object(status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The JSON object of a 2xx answer (``{}`` for a 204).

    Raises ``NetworkError("NETWORK_INVALID_RESPONSE")`` for another content type, invalid
    JSON or a JSON value that is not an object.
    """
    if status == 204:
        return {}
    request_id = headers.get("x-request-id")
    content_type = headers.get("content-type", "")
    if "application/json" not in content_type.lower():
        raise NetworkError(
            "NETWORK_INVALID_RESPONSE",
            f"expected an application/json response, got {content_type or 'none'!r} "
            f"(HTTP {status})",
            status_code=status,
            request_id=request_id,
        )
    try:
        data = json.loads(body)
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


def parse_stream_token(data: Mapping[str, Any]) -> tuple[str, int]:
    """``(token, expiresIn)`` of a ``POST /sdk/stream/token`` answer (docs/protocol.md §4.4).

    Raises ``NetworkError("NETWORK_INVALID_RESPONSE")`` when either is missing or mistyped.
    """
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


# -- usage headers --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UsageMetrics:
    """Usage headers of a successful response (docs/protocol.md §2.5)."""

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


def log_usage(usage: UsageMetrics, logger: logging.Logger) -> None:
    """Warn about usage at 80 % of the plan or more, a near rate limit, a suspended plan."""
    if usage.api_usage_percent is not None and usage.api_usage_percent >= 80:
        logger.warning("API usage at %.1f%% of the plan limit", usage.api_usage_percent)
    if usage.evaluation_usage_percent is not None and usage.evaluation_usage_percent >= 80:
        logger.warning(
            "evaluation usage at %.1f%% of the plan limit", usage.evaluation_usage_percent
        )
    if usage.rate_limit_warning:
        logger.warning("the server reports that the rate limit is close")
    if usage.subscription_status == "suspended":
        logger.error("the FlagKit subscription is suspended")
