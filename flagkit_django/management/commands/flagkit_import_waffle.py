"""``manage.py flagkit_import_waffle``: django-waffle's flags, switches and samples as a
FlagKit flags file.

::

    $ python manage.py flagkit_import_waffle -o flags.json
    note: flag 'beta', percent: 25.0 % as a rollout by user id: ...
    LOSS: flag 'promo', testing: testing mode (dwft_ query string and cookie) has no ...
    wrote 12 flags to flags.json (2 notes, 1 loss)

Without ``-o`` the flags file goes to standard output (the report to standard error);
``--push URL`` sends each flag to a running local server's admin API instead
(``--admin-token`` or ``$FLAGKIT_ADMIN_TOKEN``). ``--strict`` refuses to write anything
when a waffle setting has no faithful FlagKit equivalent. Exit status: 0 written, 1 on any
error (waffle missing, its tables missing, a loss under ``--strict``, a failed push).
"""

from __future__ import annotations

import json
import os
from argparse import ArgumentParser
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from flagkit_django import conf
from flagkit_django.waffle_compat.importer import ImportResult, convert


def _read_waffle() -> tuple[list[Any], list[Any], list[Any]]:
    try:
        import waffle
    except ImportError:
        raise CommandError(
            "django-waffle is not installed: install it (pip install django-waffle) and keep "
            "'waffle' in INSTALLED_APPS until the import is done"
        ) from None
    try:
        flag_model = waffle.get_waffle_flag_model()
        flags = list(flag_model.objects.order_by("name").prefetch_related("groups", "users"))
        switches = list(waffle.get_waffle_switch_model().objects.order_by("name"))
        samples = list(waffle.get_waffle_sample_model().objects.order_by("name"))
    except LookupError as exc:
        raise CommandError(
            f"waffle's models are not available ({exc}); add 'waffle' to INSTALLED_APPS"
        ) from exc
    except DatabaseError as exc:
        raise CommandError(
            f"cannot read waffle's tables ({exc}); run `python manage.py migrate waffle` "
            "or point DATABASES at the database that holds them"
        ) from exc
    return flags, switches, samples


def _push(result: ImportResult, url: str, token: str) -> int:
    import httpx

    base = url.rstrip("/")
    if not base.endswith("/api/v1"):
        base += "/api/v1"
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=10.0) as http:
        for flag in result.flags:
            target = f"{base}/admin/flags/{quote(flag['key'], safe='')}"
            try:
                response = http.put(target, params={"replace": "true"}, json=flag, headers=headers)
            except httpx.HTTPError as exc:
                raise CommandError(f"cannot reach the FlagKit server at {url}: {exc}") from exc
            if response.status_code == 401:
                raise CommandError(
                    "the server refused the admin token (use --admin-token or "
                    "FLAGKIT_ADMIN_TOKEN, as printed by `flagkit serve`)"
                )
            if response.status_code >= 400:
                raise CommandError(
                    f"the server refused flag {flag['key']!r}: HTTP {response.status_code} "
                    f"{response.text[:300]}"
                )
    return len(result.flags)


class Command(BaseCommand):  # type: ignore[misc]
    """Convert django-waffle's flags, switches and samples to FlagKit flags."""

    help = (
        "Write django-waffle's flags, switches and samples as a FlagKit flags file "
        "(or push them to a running FlagKit server), reporting what cannot be carried over."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        """``-o/--output``, ``--push``, ``--admin-token``, ``--strict``."""
        parser.add_argument("-o", "--output", help="write the flags file here (default: stdout)")
        parser.add_argument("--push", metavar="URL", help="send the flags to this local server")
        parser.add_argument(
            "--admin-token", help="admin token for --push (default: $FLAGKIT_ADMIN_TOKEN)"
        )
        parser.add_argument(
            "--strict",
            action="store_true",
            help="fail, writing nothing, when anything cannot be imported exactly",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Read waffle's rows, convert them, report, then write or push."""
        if options["output"] and options["push"]:
            raise CommandError("use either --output or --push, not both")
        flags, switches, samples = _read_waffle()
        user_id_attribute = conf.get_adapter_settings().user_id_attribute
        result = convert(flags, switches, samples, user_id_attribute=user_id_attribute)
        for finding in result.findings:
            self.stderr.write(str(finding))
        losses = result.losses
        summary = f"{len(result.findings) - len(losses)} notes, {len(losses)} losses"
        if options["strict"] and losses:
            raise CommandError(f"--strict: {len(losses)} losses (listed above); nothing written")
        if options["push"]:
            token = options["admin_token"] or os.environ.get("FLAGKIT_ADMIN_TOKEN")
            if not token:
                raise CommandError("--push needs --admin-token or FLAGKIT_ADMIN_TOKEN")
            count = _push(result, options["push"], token)
            self.stderr.write(f"pushed {count} flags to {options['push']} ({summary})")
            return
        text = json.dumps(result.document(), indent=2, ensure_ascii=False) + "\n"
        if options["output"]:
            Path(options["output"]).write_text(text, encoding="utf-8")
            self.stderr.write(f"wrote {len(result.flags)} flags to {options['output']} ({summary})")
        else:
            self.stdout.write(text, ending="")
            self.stderr.write(f"{len(result.flags)} flags ({summary})")
