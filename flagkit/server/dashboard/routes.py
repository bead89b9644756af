"""The dashboard's HTTP endpoints: its page at ``/``, static files, and ``/dashboard/api``.

Reading needs a session (or ``--dashboard-readonly-open``); every change needs a session
and its CSRF token in ``X-CSRF-Token`` (and, when the browser sends one, an ``Origin`` of
this server). The ``Host`` header must name this server or a loopback name, so a page on
another site cannot reach the dashboard through DNS rebinding. Pages are static files:
the browser builds the DOM from JSON with ``textContent`` only, and a Content-Security-Policy
allows nothing but this server's own scripts and styles.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any, Final
from urllib.parse import unquote, urlsplit

from flagkit.server.context import ServerContext
from flagkit.server.dashboard.changes import (
    ChangeRejected,
    apply_flag,
    merged_change,
    shaped_like_file,
)
from flagkit.server.dashboard.describe import describe_flag, describe_segment, summary_of
from flagkit.server.dashboard.explain import ContextError, context_from_wire, explain, recent_users
from flagkit.server.dashboard.sessions import COOKIE_NAME, Session
from flagkit.server.dashboard.state import DashboardState
from flagkit.server.dashboard.usage import usage
from flagkit.server.dashboard.writeback import writable
from flagkit.server.endpoints import admin
from flagkit.server.events import event_type_of
from flagkit.server.exchange import Exchange, HTTPError, bad_request
from flagkit.server.streaming import encode_frame

__all__ = ["handle", "is_dashboard_path"]

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
_STATIC: Final = {
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_LOOPBACK_NAMES: Final = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
_MAX_BODY: Final = 1024 * 1024
_RECENT_EVENTS: Final = 200


def is_dashboard_path(path: str) -> bool:
    """Whether the dashboard answers ``path``."""
    return path in ("/", "/dashboard") or path.startswith("/dashboard/")


def _send(ex: Exchange, status: int, obj: object, headers: dict[str, str] | None = None) -> None:
    ex.send_json(status, obj, {**_SECURITY_HEADERS, **(headers or {})})


def _fail(status: int, code: str, message: str) -> HTTPError:
    return HTTPError(status, code, message, dict(_SECURITY_HEADERS))


def _check_host(ctx: ServerContext, ex: Exchange) -> None:
    host = ex.headers.get("Host", "")
    name = urlsplit(f"//{host}").hostname or ""
    own = urlsplit(ctx.admin.base_url).hostname or ""
    if name not in _LOOPBACK_NAMES and name.strip("[]") not in _LOOPBACK_NAMES and name != own:
        raise _fail(
            421, "MISDIRECTED_REQUEST", "the dashboard answers only its own loopback address"
        )


def _session(ctx: ServerContext, ex: Exchange) -> Session | None:
    state = _state(ctx)
    raw = ex.headers.get("Cookie")
    if not raw:
        return None
    try:
        cookie = SimpleCookie(raw)
    except CookieError:
        return None
    morsel = cookie.get(COOKIE_NAME)
    return state.sessions.get(morsel.value if morsel is not None else None)


def _state(ctx: ServerContext) -> DashboardState:
    state = ctx.dashboard
    if state is None:
        raise _fail(404, "NOT_FOUND", "this server has no dashboard")
    return state


def _require_read(ctx: ServerContext, ex: Exchange) -> None:
    if _session(ctx, ex) is None and not _state(ctx).readonly_open:
        raise _fail(401, "SIGN_IN_REQUIRED", "sign in with the admin token first")


def _require_change(ctx: ServerContext, ex: Exchange) -> None:
    session = _session(ctx, ex)
    if session is None:
        raise _fail(401, "SIGN_IN_REQUIRED", "sign in with the admin token first")
    if not session.csrf_matches(ex.headers.get("X-CSRF-Token", "")):
        raise _fail(403, "CSRF_TOKEN_INVALID", "missing or wrong X-CSRF-Token header")
    origin = ex.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != ex.headers.get("Host", ""):
        raise _fail(403, "ORIGIN_REFUSED", "changes are accepted only from the dashboard itself")


def handle(ctx: ServerContext, ex: Exchange) -> None:
    """Answer a request for ``/``, ``/dashboard`` or ``/dashboard/...``."""
    _check_host(ctx, ex)
    path = ex.path
    if path in ("/", "/dashboard", "/dashboard/"):
        ex.done_reading()
        ex.require_method("GET")
        _static(ex, "index.html", "text/html; charset=utf-8")
        return
    if path.startswith("/dashboard/static/"):
        ex.done_reading()
        ex.require_method("GET")
        name = path[len("/dashboard/static/") :]
        if name not in _STATIC:
            raise _fail(404, "NOT_FOUND", "no such file")
        _static(ex, name, _STATIC[name])
        return
    if not path.startswith("/dashboard/api/"):
        ex.done_reading()
        raise _fail(404, "NOT_FOUND", "no such dashboard page")
    parts = [unquote(p) for p in path[len("/dashboard/api/") :].split("/")]
    route = _ROUTES.get(parts[0])
    if route is None:
        ex.done_reading()
        raise _fail(404, "NOT_FOUND", "no such dashboard endpoint")
    route(ctx, ex, parts[1:])


def _static(ex: Exchange, name: str, content_type: str) -> None:
    body = (STATIC_DIR / name).read_bytes()
    ex.send(200, body, content_type, _SECURITY_HEADERS)


# session ---------------------------------------------------------------------------------


def _session_route(ctx: ServerContext, ex: Exchange, rest: list[str]) -> None:
    state = _state(ctx)
    ex.require_method("GET", "POST", "DELETE")
    current = _session(ctx, ex)
    if ex.method in ("GET", "HEAD"):
        ex.done_reading()
        _send(ex, 200, _session_info(ctx, state, current))
        return
    if ex.method == "DELETE":
        ex.done_reading()
        if current is not None:
            _require_change(ctx, ex)
            state.sessions.end(current.id)
        _send(ex, 200, {"signedIn": False}, {"Set-Cookie": _cookie("", max_age=0)})
        return
    origin = ex.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != ex.headers.get("Host", ""):
        ex.done_reading()
        raise _fail(403, "ORIGIN_REFUSED", "sign in from the dashboard itself")
    ex.read_body(4096)
    body = ex.json_object("{'token': admin token}")
    token = body.get("token")
    if not isinstance(token, str) or not hmac.compare_digest(
        token.strip().encode("utf-8", "replace"), ctx.admin_token.encode("utf-8")
    ):
        raise _fail(401, "ADMIN_UNAUTHORIZED", "wrong admin token ('flagkit serve' prints it)")
    session = state.sessions.create()
    _send(ex, 200, _session_info(ctx, state, session), {"Set-Cookie": _cookie(session.id)})


def _cookie(value: str, max_age: int | None = None) -> str:
    parts = [f"{COOKIE_NAME}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def _session_info(
    ctx: ServerContext, state: DashboardState, session: Session | None
) -> dict[str, Any]:
    return {
        "signedIn": session is not None,
        "readonlyOpen": state.readonly_open,
        "csrf": session.csrf if session is not None else None,
        "flagsFile": str(ctx.admin.flags_file) if ctx.admin.flags_file is not None else None,
        "notWritten": writable(ctx.admin.flags_file),
        "sdkUrl": ctx.admin.base_url,
    }


# flags -----------------------------------------------------------------------------------


def _flag_row(flag: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": flag["key"],
        "flagType": flag.get("flagType"),
        "enabled": flag.get("enabled", True),
        "value": flag.get("value"),
        "version": flag.get("version"),
        "lastModified": flag.get("lastModified"),
        "summary": summary_of(flag),
        "simple": not any(
            k in flag for k in ("variations", "rules", "targets", "fallthrough", "prerequisites")
        ),
        "rollout": flag.get("fallthrough", {}).get("rollout")
        if isinstance(flag.get("fallthrough"), dict)
        else None,
        "variations": flag.get("variations"),
    }


def _flags_route(ctx: ServerContext, ex: Exchange, rest: list[str]) -> None:
    if not rest or rest == [""]:
        ex.done_reading()
        ex.require_method("GET")
        _require_read(ctx, ex)
        _send(ex, 200, {"flags": [_flag_row(f) for f in ctx.admin.flags()]})
        return
    key = rest[0]
    action = rest[1] if len(rest) > 1 else ""
    if len(rest) > 2 or action not in ("", "revert"):
        ex.done_reading()
        raise _fail(404, "NOT_FOUND", "no such dashboard endpoint")
    if ex.method in ("GET", "HEAD") and not action:
        ex.done_reading()
        _require_read(ctx, ex)
        _flag_page(ctx, ex, key)
        return
    if action:
        ex.require_method("POST")
    else:
        ex.require_method("PUT", "PATCH")
    _require_change(ctx, ex)
    ex.read_body(_MAX_BODY)
    body = ex.json_object("flag fields")
    if action == "revert":
        version = body.get("version")
        entry = (
            _state(ctx).history.find(key, version)
            if isinstance(version, int) and not isinstance(version, bool)
            else None
        )
        if entry is None or entry.flag is None:
            raise _fail(404, "VERSION_NOT_FOUND", f"no version {version!r} of {key!r}")
        wanted = shaped_like_file(ctx, {**entry.flag, "key": key})
    elif ex.method == "PATCH":
        merged = merged_change(ctx, key, body)
        if merged is None:
            raise _fail(404, "FLAG_NOT_FOUND", f"no flag {key!r}")
        wanted = merged
    else:
        if "key" in body and body["key"] != key:
            _send(ex, 422, {"field": "key", "message": "must match the flag being edited"})
            return
        wanted = {"key": key, **{k: v for k, v in body.items() if k != "key"}}
    try:
        result = apply_flag(ctx, wanted)
    except ChangeRejected as exc:
        _send(ex, 422, {"field": exc.field, "message": exc.reason})
        return
    result["flag"] = _flag_row(result["flag"])
    _send(ex, 200, result)


def _flag_page(ctx: ServerContext, ex: Exchange, key: str) -> None:
    flag = ctx.admin.get_flag(key)
    if flag is None:
        raise _fail(404, "FLAG_NOT_FOUND", f"no flag {key!r}")
    segments = {s["key"]: s for s in ctx.admin.segments()}
    used = sorted(
        {
            name
            for rule in flag.get("rules") or []
            if isinstance(rule, dict)
            for name in [
                *(rule.get("segments") or []),
                *(
                    v
                    for c in rule.get("clauses") or []
                    if isinstance(c, dict) and c.get("op") == "segmentMatch"
                    for v in c.get("values") or []
                ),
            ]
            if isinstance(name, str)
        }
    )
    _send(
        ex,
        200,
        {
            "flag": _flag_row(flag),
            "text": json.dumps(shaped_like_file(ctx, flag), indent=2, ensure_ascii=False),
            "description": describe_flag(flag),
            "segments": [
                {"key": s, "description": describe_segment(segments[s])}
                for s in used
                if s in segments
            ],
            "history": _state(ctx).history.described(key),
        },
    )


# explain, users, events --------------------------------------------------------------------


def _explain_route(ctx: ServerContext, ex: Exchange, rest: list[str]) -> None:
    ex.require_method("POST")
    _require_read(ctx, ex)  # explaining changes nothing
    ex.read_body(_MAX_BODY)
    body = ex.json_object("{'flag', 'context'}")
    key = body.get("flag")
    if not isinstance(key, str):
        raise bad_request("flag: must be a flag key")
    try:
        context = context_from_wire(body.get("context") or {})
    except ContextError as exc:
        _send(ex, 422, {"field": str(exc).partition(":")[0], "message": str(exc)})
        return
    answer = explain(ctx.admin.flags(), ctx.admin.segments(), key, context)
    if answer is None:
        raise _fail(404, "FLAG_NOT_FOUND", f"no flag {key!r}")
    _send(ex, 200, answer)


def _users_route(ctx: ServerContext, ex: Exchange, rest: list[str]) -> None:
    ex.done_reading()
    ex.require_method("GET")
    _require_read(ctx, ex)
    events = [e for _, e in ctx.events.entries()]
    _send(ex, 200, {"users": recent_users(events)})


def _event_row(seq: int, event: dict[str, Any]) -> dict[str, Any]:
    context = event.get("context")
    user = context.get("userId") if isinstance(context, dict) else None
    return {"seq": seq, "type": event_type_of(event), "user": user, "event": event}


def _events_route(ctx: ServerContext, ex: Exchange, rest: list[str]) -> None:
    ex.done_reading()
    ex.require_method("GET")
    _require_read(ctx, ex)
    if rest == ["stream"]:
        _event_stream(ctx, ex)
        return
    entries = ctx.events.entries()[-_RECENT_EVENTS:]
    _send(ex, 200, {"events": [_event_row(s, e) for s, e in entries]})


def _event_stream(ctx: ServerContext, ex: Exchange) -> None:
    """Server-sent events: each newly recorded event as an ``event`` frame, newest last."""
    raw_after = ex.params.get("after", "")
    cursor = int(raw_after) if raw_after.isdigit() else ctx.events.total
    ex.start_event_stream()
    beat = time.monotonic() + ctx.limits.heartbeat_interval
    try:
        ex.write(b": connected\n\n")
        while not ctx.stopping.is_set():
            total = ctx.events.total
            if total < cursor:  # the events were cleared
                cursor = 0
            if total > cursor:
                frames = [
                    encode_frame("event", _event_row(s, e))
                    for s, e in ctx.events.entries(after=cursor)
                ]
                cursor = total
                if frames:
                    ex.write(b"".join(frames))
            elif time.monotonic() >= beat:
                ex.write(b": heartbeat\n\n")
                beat = time.monotonic() + ctx.limits.heartbeat_interval
            else:
                # Wakes as soon as an event is recorded; the timeout bounds how long a stop
                # or a heartbeat waits.
                ctx.events.wait_for_total(cursor + 1, 0.5)
    except OSError:
        pass  # the browser went away


# experiments, usage ----------------------------------------------------------------------


def _experiments_route(ctx: ServerContext, ex: Exchange, rest: list[str]) -> None:
    ex.done_reading()
    ex.require_method("GET")
    _require_read(ctx, ex)
    handler = admin.experiments_handler()
    if handler is None:
        _send(ex, 404, {"error": "NO_EXPERIMENTS", "message": "no experiments data"})
        return
    handler(ctx, ex, rest[0] if rest and rest[0] else None)


def _usage_route(ctx: ServerContext, ex: Exchange, rest: list[str]) -> None:
    ex.done_reading()
    ex.require_method("GET")
    _require_read(ctx, ex)
    events = [e for _, e in ctx.events.entries()]
    _send(ex, 200, usage(ctx.admin.flags(), events, now=time.time()))


_ROUTES: Final[dict[str, Callable[[ServerContext, Exchange, list[str]], None]]] = {
    "session": _session_route,
    "flags": _flags_route,
    "explain": _explain_route,
    "users": _users_route,
    "events": _events_route,
    "experiments": _experiments_route,
    "usage": _usage_route,
}
