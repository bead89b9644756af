"""``manage.py flagkit_explain``: explain one evaluation for one user.

::

    $ python manage.py flagkit_explain staff-feature --user-id 42 --attr is_staff=true
    flag:       staff-feature
    context:    {"custom": {"is_staff": true}, "userId": "42"}
    value:      true
    reason:     RULE_MATCH
    rule:       staff-only
    segment:    -
    variation:  on
    version:    1
    enabled:    yes
    type:       boolean
    targeting:  yes

``--user`` loads a Django user (by ``USER_ID_ATTRIBUTE``) and builds the same context the
middleware would (staff/superuser/groups/date_joined...). ``--attr KEY=VALUE`` adds
attributes (values parsed as JSON when they can be: ``true``, ``3``, ``["a","b"]``);
``email``, ``name``, ``country``, ``ip``, ``user_agent`` and ``user_key`` set those fields,
anything else goes to ``custom``.

Exit status: 0 when the flag exists (whatever its value), 1 when it does not (the
explanation, reason ``FLAG_NOT_FOUND``, is still printed) or on a usage error such as a
bad ``--attr`` or an unknown ``--user``, like ``flask flagkit explain``.
"""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from flagkit.core.context_manager import build_context
from flagkit.types.context import EvaluationContext
from flagkit.web.explain import explanation, explanation_lines, flag_exists
from flagkit_django import conf
from flagkit_django.context import user_context
from flagkit_django.management.commands._common import ready_client


def _parse_attr(text: str) -> tuple[str, Any]:
    name, sep, raw = text.partition("=")
    if not sep or not name:
        raise CommandError(f"--attr expects KEY=VALUE, got {text!r}")
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return name, value


class Command(BaseCommand):  # type: ignore[misc]
    """Evaluate one flag for one user and show the value, reason, rule, segment, variation."""

    help = "Explain one FlagKit evaluation: value, reason, rule, segment and variation."

    def add_arguments(self, parser: ArgumentParser) -> None:
        """``flag_key``, ``--user-id``, ``--user``, ``--attr`` (repeatable), ``--json``."""
        parser.add_argument("flag_key", help="the flag to evaluate")
        parser.add_argument("--user-id", help="user id to evaluate for")
        parser.add_argument(
            "--user", help="load this Django user (by FLAGKIT['USER_ID_ATTRIBUTE'])"
        )
        parser.add_argument(
            "--attr",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="an attribute (repeatable); VALUE is parsed as JSON when possible",
        )
        parser.add_argument("--json", action="store_true", help="print a JSON object instead")
        parser.add_argument(
            "--timeout", type=float, default=None, help="seconds to wait for the flags"
        )

    def _user_part(self, identifier: str) -> EvaluationContext:
        field = conf.get_adapter_settings().user_id_attribute
        model = get_user_model()
        lookup = "pk" if field == "pk" else field
        try:
            user = model._default_manager.get(**{lookup: identifier})
        except (model.DoesNotExist, ValueError) as exc:
            raise CommandError(f"no user with {lookup}={identifier!r}") from exc
        return user_context(user)

    def handle(self, *args: Any, **options: Any) -> None:
        """Build the context, evaluate, print the explanation."""
        attributes = dict(_parse_attr(item) for item in options["attr"])
        context = build_context(options["user_id"], attributes)
        if options["user"]:
            context = self._user_part(options["user"]).merged_with(context)
        client = ready_client(options["timeout"])
        key = options["flag_key"]
        result = client.evaluate(key, context=context)
        fields = explanation(client, result, context)
        if options["json"]:
            self.stdout.write(json.dumps(fields, indent=2, sort_keys=True, default=str))
        else:
            for line in explanation_lines(fields):
                self.stdout.write(line)
        if not flag_exists(client, key):
            raise CommandError(f"flag {key!r} does not exist", returncode=1)
