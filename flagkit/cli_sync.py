"""``flagkit sync``: a dedicated fleet syncer, FlagKit service -> Redis (docs/fleet.md).

Kept apart from :mod:`flagkit.cli` (the local server's admin commands); the client it
builds imports the optional ``redis`` package only because ``redis_url`` is set.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Add ``sync`` to the ``flagkit`` subcommands."""
    sync = commands.add_parser(
        "sync",
        help="run a dedicated fleet syncer: FlagKit service -> Redis (docs/fleet.md)",
    )
    sync.add_argument("--redis", required=True, metavar="URL", help="redis://host:6379/0")
    sync.add_argument("--api-key", help="SDK key (env FLAGKIT_API_KEY)")
    sync.add_argument("--prefix", default="flagkit", help="Redis key prefix (default flagkit)")
    sync.add_argument("--base-url", default="https://api.flagkit.dev/api/v1", help="service URL")
    sync.add_argument("--local-port", type=int, help="use a local server on this port")
    sync.add_argument("--lease-time", type=float, default=10.0, help="seconds (default 10)")
    sync.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sync.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run a dedicated fleet syncer until SIGINT/SIGTERM (docs/fleet.md)."""
    import signal

    from flagkit.client import FlagKitClient
    from flagkit.errors import FlagKitError

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    api_key = args.api_key or os.environ.get("FLAGKIT_API_KEY")
    if not api_key:
        print("flagkit sync: pass --api-key or set FLAGKIT_API_KEY", file=sys.stderr)
        return 2
    location: dict[str, Any] = (
        {"local_port": args.local_port} if args.local_port else {"base_url": args.base_url}
    )
    try:
        client = FlagKitClient(
            api_key=api_key,
            redis_url=args.redis,
            redis_prefix=args.prefix,
            redis_lease_time=args.lease_time,
            redis_signing_key=os.environ.get("FLAGKIT_REDIS_SIGNING_KEY") or None,
            **location,
        )
    except FlagKitError as exc:
        print(f"flagkit sync: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    client.start()
    print(f"flagkit sync: syncing {args.prefix!r} to Redis; Ctrl-C to stop", flush=True)
    role = None
    while not stop.wait(1.0):
        if client.fleet_role != role:
            role = client.fleet_role
            print(f"flagkit sync: role {role}", flush=True)
    client.close()
    return 0
