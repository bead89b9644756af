"""``GET /sdk/stream?token=``: the Server-Sent Events stream (docs/protocol.md §4.5).

The connection is held open and fed frames from the broadcaster, with a heartbeat every
``heartbeat_interval`` seconds; it ends when the client goes away, the stream is
disconnected, or the server stops.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Final
from urllib.parse import parse_qsl

from flagkit.server._time import format_micros, now_micros
from flagkit.server.context import ServerContext
from flagkit.server.exchange import Exchange, HTTPError
from flagkit.server.streaming import encode_frame

__all__ = ["stream"]

_MALFORMED_FRAME: Final = b'event: flag_updated\ndata: {"key": "malformed", "value": tru\n\n'
_MAX_FRAMES_PER_WRITE: Final = 256


def stream(ctx: ServerContext, ex: Exchange, malformed: bool) -> None:
    """Check the token, then stream until the end (``malformed``: a broken frame first).

    A missing token is a 401; an unknown or expired one gets a stream with one ``error``
    event (``TOKEN_INVALID`` / ``TOKEN_EXPIRED``), as the SDK expects.
    """
    token = dict(parse_qsl(ex.raw_query, keep_blank_values=True)).get("token", "")
    if not token:
        raise HTTPError(
            401, "TOKEN_INVALID", "missing ?token=; get one from POST /sdk/stream/token"
        )
    state = ctx.tokens.check(token)
    if state != "ok":
        code = "TOKEN_EXPIRED" if state == "expired" else "TOKEN_INVALID"
        text = "the stream token has expired" if state == "expired" else "unknown stream token"
        ex.start_event_stream()
        ex.write(encode_frame("error", {"code": code, "message": text}))
        return
    subscriber = ctx.broadcaster.subscribe()
    if subscriber is None:
        raise HTTPError(503, "SERVICE_UNAVAILABLE", "the server is stopping")
    try:
        ex.start_event_stream()
        if malformed:
            ex.write(_MALFORMED_FRAME)
        _pump(ex, ctx.limits.heartbeat_interval, subscriber.frames, lambda: subscriber.closed)
    except OSError:
        pass  # the client went away
    finally:
        ctx.broadcaster.unsubscribe(subscriber)


def _pump(
    ex: Exchange,
    interval: float,
    frames: queue.Queue[bytes | None],
    is_closed: Callable[[], bool],
) -> None:
    """Write queued frames (batched) and heartbeats until the queue says "close"."""
    next_beat = time.monotonic() + interval
    while not is_closed():
        wait = next_beat - time.monotonic()
        if wait <= 0:
            ex.write(encode_frame("heartbeat", {"timestamp": format_micros(now_micros())}))
            next_beat = time.monotonic() + interval
            continue
        try:
            frame = frames.get(timeout=wait)
        except queue.Empty:
            continue
        if frame is None:
            return
        chunk = [frame]
        while len(chunk) < _MAX_FRAMES_PER_WRITE:
            try:
                more = frames.get_nowait()
            except queue.Empty:
                break
            if more is None:
                ex.write(b"".join(chunk))
                return
            chunk.append(more)
        ex.write(b"".join(chunk))
