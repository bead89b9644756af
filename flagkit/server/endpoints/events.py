"""``POST /sdk/events/batch``: record analytics events (docs/protocol.md §10), optionally
verifying the batch signature (§3.2)."""

from __future__ import annotations

from flagkit.server.context import ServerContext
from flagkit.server.exchange import Exchange, HTTPError, bad_request
from flagkit.server.signatures import verify_signature

__all__ = ["batch"]


def batch(ctx: ServerContext, ex: Exchange) -> None:
    """Record a batch; answers the counts of recorded, duplicate and malformed events.

    The body is strict JSON (no ``NaN``/``Infinity``), so every recorded event can be sent
    back by ``GET /admin/events``. With signature verification, a bad signature is a 403.
    """
    parsed = ex.json_body()
    if ctx.verify_signatures:
        problem = verify_signature(ex.headers, ex.body, parsed, ctx.keys.keys)
        if problem is not None:
            raise HTTPError(403, "SECURITY_SIGNATURE_INVALID", problem)
    if not isinstance(parsed, dict):
        raise bad_request("the body must be a JSON object with an 'events' array")
    events = parsed.get("events")
    if not isinstance(events, list):
        raise bad_request("'events' must be an array of event objects")
    result = ctx.events.record_batch(events)
    message = f"recorded {result.recorded} events"
    if result.duplicates:
        message += f", skipped {result.duplicates} duplicates"
    if result.errors:
        message += f", rejected {result.errors} malformed events"
    ex.send_json(
        200,
        {
            "success": True,
            "message": message,
            "recorded": result.recorded,
            "errors": result.errors,
            "duplicates": result.duplicates,
        },
    )
