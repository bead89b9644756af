"""The ``flagkit`` command: run the local server and manage it from a shell.

::

    flagkit serve --flags example_projects/flags.json [--port 8200] [--api-key KEY ...]
    flagkit sync --redis redis://cache:6379/0 [--api-key KEY] [--prefix flagkit]
    flagkit flags list | get KEY | set KEY VALUE [--type T] [--disabled] | delete KEY
    flagkit events tail [-n 10] [-f] [--type purchase]
    flagkit experiments list | report FLAG [--metric TYPE] [--value FIELD] [--json]

The ``flags``, ``events`` and ``experiments`` commands talk to a running server's admin
API: ``--url`` (env ``FLAGKIT_URL``, default ``http://127.0.0.1:8200``) and
``--admin-token`` (env ``FLAGKIT_ADMIN_TOKEN``; ``flagkit serve`` prints it). Exit codes:
0 success, 1 the server answered with an error or could not be reached, 2 bad usage or
configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

from flagkit import cli_sync
from flagkit._version import __version__
from flagkit.server.context import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_REQUEST_TIMEOUT,
)

DEFAULT_URL = "http://127.0.0.1:8200"


class _CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------------------
# flagkit serve
# --------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from flagkit.server.cli_runner import ServeError, serve_until_interrupted, start_server

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    admin_token = args.admin_token or os.environ.get("FLAGKIT_ADMIN_TOKEN") or None
    try:
        server = start_server(
            flags_file=args.flags,
            api_keys=args.api_key or None,
            verify_signatures=args.verify_signatures,
            admin_token=admin_token,
            host=args.host,
            port=args.port,
            events_log=args.events_log,
            heartbeat_interval=args.heartbeat_interval,
            max_body_bytes=args.max_body_bytes,
            max_connections=args.max_connections,
            request_timeout=args.request_timeout,
            dashboard_readonly_open=args.dashboard_readonly_open,
        )
    except ServeError as exc:
        raise _CliError(f"flagkit serve: {exc}", 2) from None

    flags = server.flags()
    lines = [
        f"FlagKit local server {__version__} listening on {server.base_url}",
        f"  dashboard    {server.dashboard_url}  (sign in with the token below"
        + ("; read-only without it)" if args.dashboard_readonly_open else ")"),
        f"  flags file   {args.flags} ({len(flags)} flags, watched for changes)"
        if args.flags
        else f"  flags        {len(flags)} (no flags file; add flags with 'flagkit flags set')",
        f"  API keys     {', '.join(server.api_keys)}",
        f"  admin token  {server.admin_token}",
        f"               export FLAGKIT_ADMIN_TOKEN={server.admin_token} FLAGKIT_URL={server.url}",
        f"  signatures   {'verified' if server.verify_signatures else 'not verified'}",
        f"  try          curl -H 'X-API-Key: {server.api_key}' {server.base_url}/sdk/init",
        "Press Ctrl-C to stop.",
    ]
    serve_until_interrupted(server, lambda: print("\n".join(lines), flush=True))
    print("FlagKit local server stopped.", flush=True)
    return 0


# --------------------------------------------------------------------------------------
# admin client (flags / events)
# --------------------------------------------------------------------------------------


class _Admin:
    """A tiny admin-API client for the CLI (httpx; the server itself never imports it)."""

    def __init__(self, args: argparse.Namespace) -> None:
        url = (args.url or os.environ.get("FLAGKIT_URL") or DEFAULT_URL).rstrip("/")
        if url.endswith("/api/v1"):
            url = url[: -len("/api/v1")]
        self.url = url
        token = args.admin_token or os.environ.get("FLAGKIT_ADMIN_TOKEN")
        if not token:
            raise _CliError(
                "flagkit: an admin token is needed: pass --admin-token or set "
                "FLAGKIT_ADMIN_TOKEN ('flagkit serve' prints it)",
                2,
            )
        self.token = token
        self.timeout = args.timeout

    def call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        import httpx

        try:
            response = httpx.request(
                method,
                f"{self.url}/api/v1/admin{path}",
                json=body,
                params=params,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            raise _CliError(
                f"flagkit: cannot reach the FlagKit server at {self.url}: {exc}"
            ) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if response.status_code == 401:
            raise _CliError("flagkit: the server rejected the admin token (check --admin-token)")
        if response.status_code >= 400:
            message = payload.get("message") if isinstance(payload, dict) else response.text
            raise _CliError(f"flagkit: {message} (HTTP {response.status_code})")
        return payload


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= width else text[: width - 3] + "..."


def _flags_list(args: argparse.Namespace) -> int:
    flags = _Admin(args).call("GET", "/flags")["flags"]
    if args.json:
        print(json.dumps(flags, indent=2, ensure_ascii=False))
        return 0
    if not flags:
        print("(no flags)")
        return 0
    rows = [("KEY", "TYPE", "ENABLED", "VERSION", "VALUE")]
    rows += [
        (f["key"], f["flagType"], str(f["enabled"]).lower(), str(f["version"]), _short(f["value"]))
        for f in flags
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
    return 0


def _flags_get(args: argparse.Namespace) -> int:
    flag = _Admin(args).call("GET", f"/flags/{_quote(args.key)}")
    print(json.dumps(flag, indent=2, ensure_ascii=False))
    return 0


_JSON_TYPES = {bool: "boolean", str: "string", int: "number", float: "number"}


def _type_of(value: Any) -> str:
    return _JSON_TYPES.get(type(value), "json")


def _parse_value(raw: str, flag_type: str | None, current: dict[str, Any] | None) -> Any:
    """VALUE as the flag's type: ``--type``, else the existing flag's, else JSON or a string."""
    wanted = flag_type or (current["flagType"] if current is not None else None)
    if wanted == "string":
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    if wanted is not None and _type_of(value) != wanted:
        if flag_type:
            raise _CliError(f"flagkit flags set: {raw!r} is not a valid {flag_type} value", 2)
        key = current["key"] if current is not None else "?"
        raise _CliError(
            f"flagkit flags set: VALUE {raw!r} is a {_type_of(value)}, but flag {key!r} is "
            f"a {wanted} flag; give a {wanted} value, or --type {_type_of(value)} to change "
            "the flag's type",
            2,
        )
    return value


def _targeting_fields() -> tuple[str, ...]:
    """The fields that make a flag targeted, and ``salt`` (cleared with them)."""
    from flagkit.core.targeting import TARGETING_FIELDS

    return (*TARGETING_FIELDS, "salt")


def _is_targeted(flag: dict[str, Any]) -> bool:
    return any(flag.get(name) not in (None, [], {}, "") for name in _targeting_fields()[:-1])


def _variation(flag: dict[str, Any], variation_id: Any) -> str:
    for variation in flag.get("variations") or ():
        if isinstance(variation, dict) and variation.get("id") == variation_id:
            return f"variation {variation_id!r} ({_short(variation.get('value'), 40)})"
    return f"variation {variation_id!r}"


def _effective(flag: dict[str, Any]) -> list[str]:
    """What the flag now serves, in words (the truth about targeting)."""
    value = _short(flag["value"], 40)
    if not _is_targeted(flag):
        if flag["enabled"]:
            return [f"  everyone gets {value}"]
        return [f"  disabled: lookups return {value} (a simple flag serves its value)"]
    if not flag["enabled"]:
        off = flag.get("offVariation")
        served = _variation(flag, off) if off is not None else f"its value {value}"
        return [f"  disabled: everyone gets {served}"]
    parts = []
    for name, what in (("rules", "rule"), ("targets", "individual target list")):
        count = len(flag.get(name) or ())
        if count:
            parts.append(f"{count} {what}{'s' if count != 1 else ''}")
    if flag.get("prerequisites"):
        parts.append(f"{len(flag['prerequisites'])} prerequisite(s)")
    fallthrough = flag.get("fallthrough") or {}
    if "rollout" in fallthrough:
        rest = "a percentage rollout decides for everyone else"
    elif "variation" in fallthrough:
        rest = f"everyone else gets {_variation(flag, fallthrough['variation'])}"
    else:
        rest = f"everyone else gets its value {value}"
    decided = ", ".join(parts) if parts else "its targeting"
    return [
        f"  targeted: {decided} still decide per user; {rest}",
        "  to serve one value to everyone: flagkit flags set "
        f"{flag['key']} [VALUE] --everyone --yes (clears targeting)",
    ]


def _confirm_clearing(args: argparse.Namespace, current: dict[str, Any]) -> None:
    cleared = [name for name in _targeting_fields() if name in current]
    if not cleared or args.yes:
        return
    question = f"Clear {', '.join(cleared)} of {current['key']!r} and serve one value to everyone?"
    if not sys.stdin.isatty():
        raise _CliError(
            f"flagkit flags set: --everyone would clear {', '.join(cleared)}; add --yes to confirm",
            2,
        )
    if input(f"{question} [y/N] ").strip().lower() not in ("y", "yes"):
        raise _CliError("flagkit flags set: nothing changed", 1)


def _flags_set(args: argparse.Namespace) -> int:
    admin = _Admin(args)
    try:
        current: dict[str, Any] | None = admin.call("GET", f"/flags/{_quote(args.key)}")
    except _CliError as exc:
        if "(HTTP 404)" not in str(exc):
            raise
        current = None
    body: dict[str, Any] = {}
    for item in args.field or ():
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise _CliError(f"flagkit flags set: --field needs NAME=JSON, got {item!r}", 2)
        try:
            body[name] = json.loads(raw)
        except ValueError:
            raise _CliError(f"flagkit flags set: --field {name}: {raw!r} is not JSON", 2) from None
    if args.value is not None:
        body["value"] = _parse_value(args.value, args.type, current)
    if args.type:
        body["flagType"] = args.type
    if args.enabled is not None:
        body["enabled"] = args.enabled
    replace = args.replace
    if args.everyone:
        if current is not None:
            _confirm_clearing(args, current)
            kept = {
                k: v
                for k, v in current.items()
                if k not in (*_targeting_fields(), "key", "version", "lastModified")
            }
            body = {**kept, "enabled": True, **body}
            replace = True
        else:
            body.setdefault("enabled", True)
    if not body:
        raise _CliError(
            "flagkit flags set: give a VALUE, --type, --enabled/--disabled, --field or --everyone",
            2,
        )
    params = {"replace": "true"} if replace else None
    flag = admin.call("PUT", f"/flags/{_quote(args.key)}", body=body, params=params)
    state = "enabled" if flag["enabled"] else "disabled"
    details = f"{flag['flagType']}, {state}, version {flag['version']}"
    print(f"{flag['key']} = {_short(flag['value'])} ({details})")
    if current is None:
        print("  created")
    else:
        changes = [
            f"{name} {_short(current.get(name), 30)} -> {_short(flag.get(name), 30)}"
            for name in sorted(set(current) | set(flag))
            if name not in ("version", "lastModified") and current.get(name) != flag.get(name)
        ]
        print("  changed: " + ("; ".join(changes) if changes else "nothing"))
    for line in _effective(flag):
        print(line)
    return 0


def _flags_delete(args: argparse.Namespace) -> int:
    _Admin(args).call("DELETE", f"/flags/{_quote(args.key)}")
    print(f"deleted {args.key}")
    return 0


def _quote(key: str) -> str:
    from urllib.parse import quote

    return quote(key, safe="")


def _events_tail(args: argparse.Namespace) -> int:
    admin = _Admin(args)
    params: dict[str, str] = {"limit": str(args.lines)}
    if args.type:
        params["type"] = args.type
    if args.lines == 0:
        params["limit"] = "0"
    page = admin.call("GET", "/events", params=params)
    events = page["events"] if args.lines else []
    for event in events:
        print(json.dumps(event, ensure_ascii=False, separators=(",", ":")), flush=True)
    if not args.follow:
        return 0
    cursor = int(page["cursor"])
    wake = threading.Event()
    try:
        while not wake.wait(args.interval):
            query = {"after": str(cursor)}
            if args.type:
                query["type"] = args.type
            page = admin.call("GET", "/events", params=query)
            if int(page["total"]) < cursor:  # the server cleared its events
                cursor = 0
                continue
            for event in page["events"]:
                print(json.dumps(event, ensure_ascii=False, separators=(",", ":")), flush=True)
            cursor = int(page["cursor"])
    except KeyboardInterrupt:
        pass
    return 0


# --------------------------------------------------------------------------------------
# flagkit experiments (docs/experiments.md)
# --------------------------------------------------------------------------------------


def _experiments_list(args: argparse.Namespace) -> int:
    from flagkit.server.experiment_text import list_lines

    page = _Admin(args).call("GET", "/experiments")
    if args.json:
        print(json.dumps(page, indent=2, ensure_ascii=False))
    else:
        print("\n".join(list_lines(page["experiments"])))
    return 0


def _experiments_report(args: argparse.Namespace) -> int:
    params = {
        name: value for name, value in (("metric", args.metric), ("value", args.value)) if value
    }
    report = _Admin(args).call("GET", f"/experiments/{_quote(args.flag)}", params=params)
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        from flagkit.server.experiment_text import report_lines

        print("\n".join(report_lines(report)))
    return 0


# --------------------------------------------------------------------------------------
# argument parsing
# --------------------------------------------------------------------------------------


def _admin_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url", help=f"server URL (env FLAGKIT_URL; default {DEFAULT_URL})", default=None
    )
    parser.add_argument("--admin-token", help="admin token (env FLAGKIT_ADMIN_TOKEN)", default=None)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def build_parser() -> argparse.ArgumentParser:
    """The ``flagkit`` argument parser (subcommands ``serve``, ``sync``, ``flags``,
    ``events``, ``experiments``)."""
    parser = argparse.ArgumentParser(
        prog="flagkit", description="FlagKit local server and admin tools."
    )
    parser.add_argument("--version", action="version", version=f"flagkit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the local FlagKit server")
    serve.add_argument("--flags", metavar="FILE", help="flags file (JSON, or YAML with PyYAML)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8200, help="port (default 8200; 0 = any free)")
    serve.add_argument(
        "--api-key",
        action="append",
        metavar="KEY",
        help="accepted API key (repeatable; default: the flags file's apiKeys)",
    )
    serve.add_argument(
        "--verify-signatures",
        action="store_true",
        help="reject event batches with a bad X-Signature",
    )
    serve.add_argument(
        "--admin-token", help="admin API token (env FLAGKIT_ADMIN_TOKEN; default random)"
    )
    serve.add_argument(
        "--events-log", metavar="FILE", help="append received events to this JSONL file"
    )
    serve.add_argument(
        "--heartbeat-interval", type=float, default=15.0, help="seconds between SSE heartbeats"
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=DEFAULT_MAX_BODY_BYTES,
        help="request body limit in bytes, chunked bodies too (413 above; default 5 MiB)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help=f"connections served at once; more wait (default {DEFAULT_MAX_CONNECTIONS})",
    )
    serve.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT,
        metavar="SECONDS",
        help="time to receive one whole request, then the connection ends "
        f"(default {DEFAULT_REQUEST_TIMEOUT:g})",
    )
    serve.add_argument(
        "--dashboard-readonly-open",
        action="store_true",
        help="let the web dashboard show flags and events without signing in "
        "(changes still need the admin token; default: off)",
    )
    serve.add_argument("-v", "--verbose", action="store_true", help="log every request")
    serve.set_defaults(func=_serve)

    cli_sync.add_parser(commands)

    flags = commands.add_parser(
        "flags", help="list, read, change or delete flags on a running server"
    )
    flag_commands = flags.add_subparsers(dest="flags_command", metavar="ACTION")
    listing = flag_commands.add_parser("list", help="list every flag")
    listing.add_argument("--json", action="store_true", help="print the full JSON")
    listing.set_defaults(func=_flags_list)
    get = flag_commands.add_parser("get", help="print one flag as JSON")
    get.add_argument("key")
    get.set_defaults(func=_flags_get)
    setter = flag_commands.add_parser(
        "set",
        help="create or change a flag",
        description='VALUE is JSON when it parses as JSON (true, 42, {"a": 1}), else a string.',
    )
    setter.add_argument("key")
    setter.add_argument("value", nargs="?", help="new value")
    setter.add_argument("--type", choices=("boolean", "string", "number", "json"))
    toggle = setter.add_mutually_exclusive_group()
    toggle.add_argument("--enabled", dest="enabled", action="store_true", default=None)
    toggle.add_argument("--disabled", dest="enabled", action="store_false")
    setter.add_argument(
        "--field", action="append", metavar="NAME=JSON", help="set another field (repeatable)"
    )
    setter.add_argument(
        "--replace", action="store_true", help="replace the whole flag instead of merging"
    )
    setter.add_argument(
        "--everyone",
        action="store_true",
        help="serve one value to everyone: enable the flag and clear its targeting "
        "(rules, targets, rollouts; asks first unless --yes)",
    )
    setter.add_argument("--yes", action="store_true", help="do not ask before --everyone")
    setter.set_defaults(func=_flags_set)
    delete = flag_commands.add_parser("delete", help="delete a flag")
    delete.add_argument("key")
    delete.set_defaults(func=_flags_delete)
    for sub in (listing, get, setter, delete):
        _admin_options(sub)
    flags.set_defaults(func=lambda _args: _usage(flags))

    events = commands.add_parser("events", help="read events recorded by a running server")
    event_commands = events.add_subparsers(dest="events_command", metavar="ACTION")
    tail = event_commands.add_parser("tail", help="print the last events, optionally following")
    tail.add_argument("-n", "--lines", type=int, default=10, help="how many (default 10)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.add_argument("--type", help="only events of this type")
    tail.add_argument("--interval", type=float, default=0.5, help="poll interval with -f (s)")
    _admin_options(tail)
    tail.set_defaults(func=_events_tail)
    events.set_defaults(func=lambda _args: _usage(events))

    experiments = commands.add_parser(
        "experiments", help="experiment results from the events a running server recorded"
    )
    experiment_commands = experiments.add_subparsers(dest="experiments_command", metavar="ACTION")
    exp_list = experiment_commands.add_parser("list", help="experiment flags and their exposures")
    exp_list.add_argument("--json", action="store_true", help="print the JSON answer")
    exp_list.set_defaults(func=_experiments_list)
    exp_report = experiment_commands.add_parser(
        "report",
        help="one experiment's results, the sample-ratio check first",
        description="Without --metric: the experiment's first configured metric. --metric "
        "alone: conversion to that event type; --value FIELD: the mean of that data field.",
    )
    exp_report.add_argument("flag", help="the experiment flag's key")
    exp_report.add_argument("--metric", metavar="TYPE", help="the metric event type")
    exp_report.add_argument("--value", metavar="FIELD", help="a numeric event data field")
    exp_report.add_argument("--json", action="store_true", help="print the JSON answer")
    exp_report.set_defaults(func=_experiments_report)
    for sub in (exp_list, exp_report):
        _admin_options(sub)
    experiments.set_defaults(func=lambda _args: _usage(experiments))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``flagkit`` command; returns the exit code (0 ok, 1 error, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        result: int = func(args)
    except _CliError as exc:
        print(str(exc), file=sys.stderr)
        return exc.code
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
