"""The admin API under ``/api/v1/admin`` (see docs/server.md): flags, segments, events,
experiments (docs/experiments.md), faults, reset, reload and status, behind
``Authorization: Bearer <admin token>``.

The token is checked before the body is read; changes go through the server's public
Python API (:class:`~flagkit.server.context.AdminAPI`), so both behave the same.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import unquote

from flagkit._version import __version__
from flagkit.server.context import ServerContext
from flagkit.server.events import event_type_of
from flagkit.server.exchange import Exchange, HTTPError, bad_request, parse_nonnegative_int
from flagkit.server.experiments import (
    ExperimentError,
    experiment_of,
    list_experiments,
    report,
    resolve_metric,
)
from flagkit.server.flags_file import FlagsFileError, InvalidFieldError

__all__ = ["experiments_handler", "handle"]

_MAX_VERSION: Final = 2**53  # the largest integer every JSON reader keeps exactly
_FAULT_FIELDS: Final = frozenset(
    {"endpoint", "statuses", "latency", "drop", "malformed", "count", "retryAfter"}
)


def _check_token(ctx: ServerContext, ex: Exchange) -> None:
    auth = ex.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode("utf-8", "replace"), ctx.admin_token.encode("utf-8")
    ):
        raise HTTPError(
            401,
            "ADMIN_UNAUTHORIZED",
            "the admin API needs 'Authorization: Bearer <admin token>' "
            "(printed by 'flagkit serve')",
            {"WWW-Authenticate": 'Bearer realm="flagkit-admin"'},
        )


def handle(ctx: ServerContext, ex: Exchange, sub: str) -> None:
    """Answer an admin request; ``sub`` is the path below ``/api/v1`` (``/admin/...``)."""
    _check_token(ctx, ex)
    parts = [unquote(p) for p in sub.split("/")[2:]]
    resource = parts[0] if parts else ""
    item = parts[1] if len(parts) > 1 else None
    handler = _HANDLERS.get(resource)
    if (
        handler is None
        or len(parts) > 2
        or (item is not None and resource not in ("flags", "segments", "experiments"))
    ):
        raise HTTPError(404, "NOT_FOUND", f"no such admin path {sub!r}")
    ex.read_body(ctx.limits.max_body_bytes)
    try:
        handler(ctx, ex, item)
    except InvalidFieldError as exc:
        raise bad_request(str(exc)) from None


def _flags(ctx: ServerContext, ex: Exchange, key: str | None) -> None:
    app = ctx.admin
    if key is None:
        ex.require_method("GET", "POST")
        if ex.method == "POST":
            fields = ex.json_object("a flag with a 'key'")
            new_key = fields.pop("key", None)
            if not isinstance(new_key, str) or not new_key:
                raise bad_request("key: must be a non-empty string")
            ex.send_json(200, _put_flag(ctx, ex, new_key, fields))
            return
        ex.send_json(200, {"flags": app.flags()})
        return
    ex.require_method("GET", "PUT", "PATCH", "DELETE")
    if ex.method in ("GET", "HEAD"):
        flag = app.get_flag(key)
        if flag is None:
            raise HTTPError(404, "FLAG_NOT_FOUND", f"no flag {key!r}")
        ex.send_json(200, flag)
    elif ex.method == "DELETE":
        if not app.delete_flag(key):
            raise HTTPError(404, "FLAG_NOT_FOUND", f"no flag {key!r}")
        ex.send_json(200, {"deleted": key})
    else:
        fields = ex.json_object("flag fields")
        if ex.method == "PATCH" and app.get_flag(key) is None:
            raise HTTPError(404, "FLAG_NOT_FOUND", f"no flag {key!r}")
        if "key" in fields and fields.pop("key") != key:
            raise bad_request("key: must match the key in the path")
        ex.send_json(200, _put_flag(ctx, ex, key, fields))


def _put_flag(ctx: ServerContext, ex: Exchange, key: str, fields: dict[str, Any]) -> Any:
    version = fields.pop("version", None)
    fields.pop("lastModified", None)
    if version is not None and (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not 1 <= version <= _MAX_VERSION
    ):
        raise bad_request(f"version: must be an integer in 1..2**53, got {version!r}")
    replace = ex.params.get("replace", "").lower() in ("1", "true", "yes")
    return ctx.admin.set_flag(key, replace=replace, version=version, **fields)


def _segments(ctx: ServerContext, ex: Exchange, key: str | None) -> None:
    app = ctx.admin
    if key is None:
        ex.require_method("GET")
        ex.send_json(200, {"segments": app.segments()})
        return
    ex.require_method("GET", "PUT", "DELETE")
    if ex.method in ("GET", "HEAD"):
        segment = app.get_segment(key)
        if segment is None:
            raise HTTPError(404, "SEGMENT_NOT_FOUND", f"no segment {key!r}")
        ex.send_json(200, segment)
    elif ex.method == "DELETE":
        if not app.delete_segment(key):
            raise HTTPError(404, "SEGMENT_NOT_FOUND", f"no segment {key!r}")
        ex.send_json(200, {"deleted": key})
    else:
        fields = ex.json_object("segment fields")
        if "key" in fields and fields.pop("key") != key:
            raise bad_request("key: must match the key in the path")
        ex.send_json(200, app.set_segment(key, **fields))


def _int_param(ex: Exchange, name: str) -> int:
    raw = ex.params.get(name)
    return 0 if raw is None or raw == "" else parse_nonnegative_int(raw, name)


def _events(ctx: ServerContext, ex: Exchange, _item: str | None) -> None:
    ex.require_method("GET", "DELETE")
    if ex.method == "DELETE":
        ctx.admin.clear_events()
        ex.send_json(200, {"cleared": True})
        return
    after = _int_param(ex, "after")
    limit = _int_param(ex, "limit")
    wanted_type = ex.params.get("type") or None
    session = ex.params.get("sessionId") or None
    entries = ctx.events.entries(after=after)
    selected = [
        (seq, e)
        for seq, e in entries
        if (wanted_type is None or event_type_of(e) == wanted_type)
        and (session is None or e.get("sessionId") == session)
    ]
    if limit:
        selected = selected[-limit:]
    cursor = entries[-1][0] if entries else after
    ex.send_json(
        200,
        {
            "events": [e for _, e in selected],
            "cursor": cursor,
            "total": ctx.events.total,
            "duplicates": ctx.events.duplicates,
            "errors": ctx.events.errors,
        },
    )


def _experiments(ctx: ServerContext, ex: Exchange, key: str | None) -> None:
    """``GET /admin/experiments`` (every experiment flag) and
    ``GET /admin/experiments/{flag}?metric=TYPE&value=FIELD`` (its report), computed from
    the events the server keeps in memory (docs/experiments.md)."""
    ex.require_method("GET")
    entries = ctx.events.entries()
    events = [e for _, e in entries]
    kept = {"eventsConsidered": len(events), "eventsDropped": ctx.events.total - len(events)}
    if key is None:
        ex.send_json(200, {"experiments": list_experiments(ctx.admin.flags(), events), **kept})
        return
    flag = ctx.admin.get_flag(key)
    if flag is None:
        raise HTTPError(404, "FLAG_NOT_FOUND", f"no flag {key!r}")
    if experiment_of(flag) is None:
        raise HTTPError(
            404,
            "EXPERIMENT_NOT_FOUND",
            f"flag {key!r} is not an experiment (it has no 'experiment' object with a "
            "'control' variation)",
        )
    try:
        metric = resolve_metric(
            flag, ex.params.get("metric") or None, ex.params.get("value") or None
        )
        result = report(flag, events, metric)
    except ExperimentError as exc:
        raise bad_request(str(exc)) from None
    ex.send_json(200, {**result, **kept})


def _faults(ctx: ServerContext, ex: Exchange, _item: str | None) -> None:
    ex.require_method("GET", "POST", "DELETE")
    if ex.method == "POST":
        spec = ex.json_object("a fault")
        unknown = sorted(set(spec) - _FAULT_FIELDS)
        if unknown:
            raise bad_request(
                f"{unknown[0]}: unknown field; allowed: {', '.join(sorted(_FAULT_FIELDS))}"
            )
        try:
            ctx.faults.set(
                spec.get("endpoint"),  # type: ignore[arg-type]  # validated inside
                statuses=spec.get("statuses") or (),
                latency=spec.get("latency", 0.0),
                drop=spec.get("drop", False),
                malformed=spec.get("malformed", False),
                count=spec.get("count"),
                retry_after=spec.get("retryAfter"),
            )
        except ValueError as exc:
            raise bad_request(str(exc)) from None
    elif ex.method == "DELETE":
        ctx.faults.clear(ex.params.get("endpoint") or None)
    ex.send_json(200, {"faults": ctx.faults.list()})


def _reset(ctx: ServerContext, ex: Exchange, _item: str | None) -> None:
    ex.require_method("POST")
    spec = ex.json_object("reset options") if ex.body.strip() else {}
    options: dict[str, bool] = {}
    for name in ("events", "faults", "requests"):
        value = spec.get(name, True)
        if not isinstance(value, bool):
            raise bad_request(f"{name}: must be a boolean, got {value!r}")
        options[name] = value
    segments = spec.get("segments")
    if segments is not None and not isinstance(segments, list):
        raise bad_request("segments: must be an array of segment objects")
    ctx.admin.reset(spec.get("flags"), segments, **options)
    ex.send_json(200, {"flags": ctx.admin.flags(), "segments": ctx.admin.segments()})


def _reload(ctx: ServerContext, ex: Exchange, _item: str | None) -> None:
    ex.require_method("POST")
    if ctx.admin.flags_file is None:
        raise HTTPError(409, "NO_FLAGS_FILE", "the server was started without a flags file")
    try:
        changed = ctx.admin.reload_flags_file()
    except FlagsFileError as exc:
        raise HTTPError(
            422, "FLAGS_FILE_INVALID", f"{exc}; the last good flags stay served"
        ) from None
    ex.send_json(200, {"changed": changed})


def _status(ctx: ServerContext, ex: Exchange, _item: str | None) -> None:
    ex.require_method("GET")
    app = ctx.admin
    error = app.last_reload_error
    ex.send_json(
        200,
        {
            "version": __version__,
            "baseUrl": app.base_url,
            "flags": len(ctx.store.flags()),
            "segments": len(ctx.store.segments()),
            "streams": ctx.broadcaster.count,
            "events": ctx.events.total,
            "flagsFile": str(app.flags_file) if app.flags_file is not None else None,
            "lastReloadError": str(error) if error is not None else None,
            "verifySignatures": ctx.verify_signatures,
        },
    )


_HANDLERS: Final[dict[str, Callable[[ServerContext, Exchange, str | None], None]]] = {
    "flags": _flags,
    "segments": _segments,
    "events": _events,
    "experiments": _experiments,
    "faults": _faults,
    "reset": _reset,
    "reload": _reload,
    "status": _status,
}


def experiments_handler() -> Callable[[ServerContext, Exchange, str | None], None] | None:
    """The handler of ``/admin/experiments[/{flag}]`` when this server has one (the
    dashboard's experiments page shows "no experiments data" otherwise)."""
    return _HANDLERS.get("experiments")
