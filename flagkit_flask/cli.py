"""``flask flagkit ...``: list flags, explain an evaluation, run the local server.

Registered on each app by ``init_app`` (``app.cli.add_command``)::

    flask flagkit list [--user ID] [--attr plan=pro] [--json]
    flask flagkit explain new-checkout --user u-42 --attr country=NL
    flask flagkit serve [--port 8200] [--flags-file flags.json]

``list`` and ``explain`` use the app's own client (its ``FLAGKIT_*`` config), wait up to
``--timeout`` seconds for the flags, and evaluate for the context given by the options
(``--user``, ``--key`` for an anonymous key, ``--attr NAME=VALUE`` repeatable; values are
parsed as JSON when they can be, so ``--attr age=42`` is a number). ``serve`` runs
:class:`flagkit.testing.FlagKitServer` in the foreground until interrupted, accepting the
app's ``FLAGKIT_API_KEY`` and listening on its ``FLAGKIT_LOCAL_PORT`` unless told
otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click
from flask import current_app
from flask.cli import AppGroup

from flagkit.utils.signing import key_id
from flagkit.web.explain import explanation, explanation_lines, flag_exists, to_json
from flagkit_flask.state import get_state

if TYPE_CHECKING:
    from flagkit.client import FlagKitClient
    from flagkit.types.context import EvaluationContext

__all__ = ["flagkit_cli"]

DEFAULT_LOCAL_PORT = 8200

flagkit_cli = AppGroup("flagkit", help="Inspect this app's FlagKit flags; run a local server.")


def _context_options(fn: Any) -> Any:
    fn = click.option(
        "--attr",
        "attrs",
        multiple=True,
        metavar="NAME=VALUE",
        help="A context attribute (repeatable): email, country, ... or any custom name.",
    )(fn)
    fn = click.option("--key", "user_key", help="Anonymous visitor key (userKey).")(fn)
    fn = click.option("--user", "user_id", help="User id to evaluate for.")(fn)
    fn = click.option(
        "--timeout",
        type=float,
        default=5.0,
        show_default=True,
        help="Seconds to wait for the flags to load.",
    )(fn)
    return fn


def _parse_attrs(attrs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in attrs:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint="--attr")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out[name.strip()] = value
    return out


def _build_context(
    user_id: str | None, user_key: str | None, attrs: Sequence[str]
) -> EvaluationContext | None:
    from flagkit.core.context_manager import build_context

    attributes = _parse_attrs(attrs)
    if user_key is not None:
        attributes["user_key"] = user_key
    if user_id is None and not attributes:
        return None
    context = build_context(user_id, attributes)
    if user_id is None and context.anonymous is None:
        context.anonymous = True
    return context


def _ready_client(timeout: float) -> FlagKitClient:
    client = get_state().client
    if not client.wait_for_ready(timeout):
        error = client.last_error
        click.echo(
            f"warning: flags not loaded from {client.options.resolved_base_url} within "
            f"{timeout}s ({client.state.value}"
            f"{': ' + str(error) if error is not None else ''}); showing bootstrap values "
            "and defaults",
            err=True,
        )
    return client


def _flag_type(client: FlagKitClient, key: str) -> str:
    model = client.snapshot.models.get(key)
    return model.state.flag_type.value if model is not None else "-"


@flagkit_cli.command("list")
@_context_options
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of a table.")
def list_command(
    timeout: float,
    user_id: str | None,
    user_key: str | None,
    attrs: tuple[str, ...],
    as_json: bool,
) -> None:
    """List every flag with its value for a context (none: no user)."""
    client = _ready_client(timeout)
    context = _build_context(user_id, user_key, attrs)
    with client.context_scope(context):
        results = client.evaluate_all()
    if as_json:
        payload = {
            key: {
                "type": _flag_type(client, key),
                "value": result.value,
                "enabled": result.enabled,
                "reason": result.reason.value,
                "version": result.version,
            }
            for key, result in sorted(results.items())
        }
        click.echo(json.dumps(payload, indent=2, sort_keys=True))
        return
    if not results:
        click.echo("no flags")
        return
    rows = [("KEY", "TYPE", "ENABLED", "VALUE", "REASON", "VERSION")]
    for key, result in sorted(results.items()):
        rows.append(
            (
                key,
                _flag_type(client, key),
                "yes" if result.enabled else "no",
                to_json(result.value),
                result.reason.value,
                str(result.version),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@flagkit_cli.command("explain")
@click.argument("key")
@_context_options
def explain_command(
    key: str,
    timeout: float,
    user_id: str | None,
    user_key: str | None,
    attrs: tuple[str, ...],
) -> None:
    """Explain how flag KEY evaluates for a context: value, reason, rule, variation.

    Exit status: 0 when the flag exists, 1 when it does not (the explanation is still
    printed), 2 for a usage error.
    """
    client = _ready_client(timeout)
    context = _build_context(user_id, user_key, attrs)
    with client.context_scope(context):
        result = client.evaluate(key)
    for line in explanation_lines(explanation(client, result, context)):
        click.echo(line)
    if not flag_exists(client, key):
        raise click.exceptions.Exit(1)


@flagkit_cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=int,
    default=None,
    help=f"Port (default: the app's FLAGKIT_LOCAL_PORT, else {DEFAULT_LOCAL_PORT}; 0 = any).",
)
@click.option(
    "--flags-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="JSON (or YAML) flags file, reloaded when it changes.",
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    help="Accepted API key (repeatable; default: the app's FLAGKIT_API_KEY).",
)
def serve_command(
    host: str, port: int | None, flags_file: str | None, api_keys: tuple[str, ...]
) -> None:
    """Run a local FlagKit server in the foreground until interrupted (Ctrl-C or SIGTERM)."""
    from flagkit.server.cli_runner import ServeError, start_server, wait_until_interrupted

    options = get_state().options
    config = current_app.config
    if port is None:
        configured = config.get("FLAGKIT_LOCAL_PORT")
        port = configured if isinstance(configured, int) else DEFAULT_LOCAL_PORT
    keys = list(api_keys)
    app_key = config.get("FLAGKIT_API_KEY")
    if not keys and isinstance(app_key, str) and app_key and not options.offline:
        keys.append(app_key)
    try:
        server = start_server(api_keys=keys or None, flags_file=flags_file, host=host, port=port)
    except ServeError as exc:
        raise click.ClickException(str(exc)) from None

    def ready() -> None:
        click.echo(f"FlagKit local server listening on {server.base_url}")
        click.echo(f"accepted API keys (ids): {', '.join(key_id(k) for k in server.api_keys)}")
        click.echo(f"admin token: {server.admin_token}")
        click.echo(f"  export FLAGKIT_ADMIN_TOKEN={server.admin_token} FLAGKIT_URL={server.url}")
        click.echo(f"point an app at it with FLAGKIT_LOCAL_PORT={server.port}; Ctrl-C stops it")

    try:
        wait_until_interrupted(ready)
        click.echo("stopping")
    finally:
        server.stop()
