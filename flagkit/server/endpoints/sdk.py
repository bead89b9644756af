"""The SDK endpoints ``/sdk/init``, ``/sdk/updates`` and ``/sdk/stream/token``
(docs/protocol.md §4), plus what every SDK endpoint shares: API-key checks and faults."""

from __future__ import annotations

import math
from http import HTTPStatus
from typing import Final
from urllib.parse import unquote

from flagkit.server._time import format_micros, parse_timestamp
from flagkit.server.context import ServerContext
from flagkit.server.exchange import Exchange, HTTPError, bad_request, shown
from flagkit.server.faults import FaultAction

__all__ = ["MALFORMED_BODY", "apply_fault", "check_api_key", "init", "stream_token", "updates"]

MALFORMED_BODY: Final = b'{"flags": [{"key": "malformed", "value": tru'
_MAX_CURSOR_DIGITS: Final = 18


def check_api_key(ctx: ServerContext, ex: Exchange) -> HTTPError | None:
    """The 401 to answer when ``X-API-Key`` is missing or unknown, else None.

    Reads only the header, so a request with a wrong key is refused before its body.
    """
    key = ex.headers.get("X-API-Key")
    if not key:
        return HTTPError(401, "AUTH_INVALID_KEY", "missing X-API-Key header")
    if not ctx.keys.accepts(key):
        return HTTPError(401, "AUTH_INVALID_KEY", "invalid API key")
    return None


def apply_fault(ctx: ServerContext, ex: Exchange, endpoint: str) -> bool | None:
    """Apply an injected fault: None if it answered, else whether to malform the answer."""
    action = ctx.faults.take(endpoint)
    if action is None:
        return False
    if action.latency > 0 and ctx.stopping.wait(action.latency):
        action = FaultAction(drop=True)
    if action.status is not None:
        headers = {}
        if action.retry_after is not None:
            headers["Retry-After"] = str(math.ceil(action.retry_after))
        try:
            phrase = HTTPStatus(action.status).phrase
        except ValueError:
            phrase = "Error"
        ex.send_error(
            action.status,
            phrase.upper().replace(" ", "_").replace("-", "_"),
            f"injected fault: {action.status} {phrase}",
            headers,
        )
        return None
    if action.drop:
        ex.drop()
        return None
    return action.malformed


def init(ctx: ServerContext, ex: Exchange) -> None:
    """``GET /sdk/init``: every flag and segment, the environment and the server time."""
    snapshot = ctx.store.snapshot()
    env = ctx.admin.environment
    ex.send_json(
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
            "streamingUrl": f"{ctx.admin.base_url}/sdk/stream",
            "metadata": env.metadata,
        },
    )


def raw_param(query: str, name: str) -> str:
    """A query parameter percent-decoded but with ``+`` kept (cursors are sent unencoded)."""
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if unquote(key) == name:
            return unquote(value)
    return ""


def _cursor(since: str) -> int | None:
    """``since`` in microseconds (None: everything); 400 for text no cursor can be."""
    if not since:
        return None
    text = since.strip()
    if not text.isascii() or (text.isdigit() and len(text) > _MAX_CURSOR_DIGITS):
        raise bad_request(f"since: not a timestamp: {shown(since)}")
    try:
        return parse_timestamp(text)
    except (ValueError, OverflowError):
        raise bad_request(f"since: not a timestamp: {shown(since)}") from None


def updates(ctx: ServerContext, ex: Exchange) -> None:
    """``GET /sdk/updates?since=``: what changed at or after the cursor, and deletions.

    An unparsable cursor (lenient parsing) answers everything, as for no cursor.
    """
    since = raw_param(ex.raw_query, "since")
    changes = ctx.store.changes_since(_cursor(since))
    ex.send_json(
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


def stream_token(ctx: ServerContext, ex: Exchange) -> None:
    """``POST /sdk/stream/token``: a short-lived token for ``/sdk/stream``."""
    token = ctx.tokens.issue()
    ex.send_json(200, {"token": token, "expiresIn": max(1, int(ctx.tokens.ttl))})
