"""``manage.py flagkit_flags``: list every flag with its value.

::

    $ python manage.py flagkit_flags
    KEY            VALUE          ENABLED  VERSION  REASON
    banner-text    "Spring sale"  yes      3        CACHED
    new-checkout   true           yes      1        CACHED

Values are evaluated for an empty context (a targeted flag shows its fallthrough); use
``--user-id`` for one user, or ``flagkit_explain`` for the details of one evaluation.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from flagkit.types.context import EvaluationContext
from flagkit_django.management.commands._common import ready_client, to_json


class Command(BaseCommand):  # type: ignore[misc]
    """List the flags the project's FlagKit client sees, with their values."""

    help = "List FlagKit flags with their values (evaluated for an empty context or --user-id)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        """``--json``, ``--user-id``, ``--timeout``."""
        parser.add_argument("--json", action="store_true", help="print a JSON object instead")
        parser.add_argument("--user-id", help="evaluate for this user id")
        parser.add_argument(
            "--timeout", type=float, default=None, help="seconds to wait for the flags"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Load the flags (waiting up to ``--timeout``) and print them sorted by key."""
        client = ready_client(options["timeout"])
        context = EvaluationContext(user_id=options["user_id"]) if options["user_id"] else None
        results = [
            client.evaluate(key, context=context) for key in sorted(client.get_all_flag_keys())
        ]
        if options["json"]:
            payload = {
                r.flag_key: {
                    "value": r.value,
                    "enabled": r.enabled,
                    "version": r.version,
                    "reason": r.reason.value,
                    "variationId": r.variation_id,
                }
                for r in results
            }
            self.stdout.write(json.dumps(payload, indent=2, sort_keys=True, default=str))
            return
        if not results:
            self.stdout.write("No flags.")
            return
        rows = [("KEY", "VALUE", "ENABLED", "VERSION", "REASON")]
        rows += [
            (
                r.flag_key,
                to_json(r.value),
                "yes" if r.enabled else "no",
                str(r.version),
                r.reason.value,
            )
            for r in results
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            self.stdout.write(line.rstrip())
