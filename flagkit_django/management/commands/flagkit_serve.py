"""``manage.py flagkit_serve``: run the local FlagKit server for this project.

::

    $ python manage.py flagkit_serve --flags flags.json
    FlagKit local server on http://127.0.0.1:8200/api/v1 (3 flags from flags.json)
      accepts      FLAGKIT['API_KEY'] (sdk_dev_…)
      admin token  Zr1...
                   export FLAGKIT_ADMIN_TOKEN=Zr1... FLAGKIT_URL=http://127.0.0.1:8200
    Quit with CONTROL-C.

The ``export`` line is the one ``flagkit serve`` prints: paste it into another shell and
``flagkit flags set ...`` changes this server's flags.

The server accepts the project's ``FLAGKIT['API_KEY']`` (and ``SECONDARY_API_KEY``), and
listens on ``FLAGKIT['LOCAL_PORT']`` when set (else the port of a ``BASE_URL`` on
localhost, else 8200), so ``runserver`` in another terminal talks to it with no other
change. It is the same server as ``flagkit serve`` (``flagkit.testing.FlagKitServer``):
SSE streaming, admin API, a watched flags file. For development only.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from flagkit_django import conf

DEFAULT_PORT = 8200
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _default_port(core: dict[str, Any]) -> int:
    port = core.get("LOCAL_PORT")
    if isinstance(port, int) and not isinstance(port, bool):
        return port
    if isinstance(port, str) and port.strip().isdigit():
        return int(port)
    base_url = core.get("BASE_URL")
    if isinstance(base_url, str):
        parts = urlsplit(base_url)
        try:
            explicit = parts.port
        except ValueError:
            explicit = None
        if parts.hostname in _LOCAL_HOSTS and explicit is not None:
            return explicit
    return DEFAULT_PORT


class Command(BaseCommand):  # type: ignore[misc]
    """Serve flags locally with the project's API key and port until interrupted."""

    help = "Run the local FlagKit server with this project's API key and port."

    def add_arguments(self, parser: ArgumentParser) -> None:
        """``--flags``, ``--host``, ``--port``, ``--admin-token``, ``--verify-signatures``,
        ``--events-log``."""
        parser.add_argument("--flags", help="flags file (JSON or YAML), watched for edits")
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
        parser.add_argument(
            "--port",
            type=int,
            default=None,
            help="port (default: FLAGKIT['LOCAL_PORT'], a local BASE_URL's port, or 8200)",
        )
        parser.add_argument("--admin-token", help="bearer token of the admin API")
        parser.add_argument(
            "--verify-signatures", action="store_true", help="verify signed event batches"
        )
        parser.add_argument("--events-log", help="append received events to this JSONL file")

    def handle(self, *args: Any, **options: Any) -> None:
        """Start the server, print where it listens, serve until SIGINT/SIGTERM."""
        from flagkit.server.cli_runner import ServeError, serve_until_interrupted, start_server

        core, _adapter, _unknown = conf.split_setting(conf.read_setting())
        keys = [
            key
            for key in (core.get("API_KEY"), core.get("SECONDARY_API_KEY"))
            if isinstance(key, str) and key
        ]
        port = options["port"] if options["port"] is not None else _default_port(core)
        try:
            server = start_server(
                flags_file=options["flags"],
                api_keys=keys or None,
                host=options["host"],
                port=port,
                admin_token=options["admin_token"],
                verify_signatures=options["verify_signatures"],
                events_log=options["events_log"],
            )
        except ServeError as exc:
            raise CommandError(str(exc)) from None
        source = f" from {options['flags']}" if options["flags"] else ""
        accepted = (
            f"FLAGKIT['API_KEY'] ({keys[0][:8]}…)"
            if keys
            else f"{server.api_key[:8]}… (FLAGKIT has no API_KEY)"
        )
        banner = (
            f"FlagKit local server on {server.base_url} ({len(server.flags())} flags{source})\n"
            f"  accepts      {accepted}\n"
            f"  admin token  {server.admin_token}\n"
            f"               export FLAGKIT_ADMIN_TOKEN={server.admin_token} "
            f"FLAGKIT_URL={server.url}\n"
            "Quit with CONTROL-C."
        )

        def ready() -> None:
            self.stdout.write(banner)
            self.stdout.flush()

        serve_until_interrupted(server, ready)
        self.stdout.write("FlagKit local server stopped.")
