"""Explaining one evaluation: what ``manage.py flagkit_explain`` and ``flask flagkit
explain`` print.

>>> rows = explanation(client, client.evaluate("beta"), context)   # doctest: +SKIP
>>> print("\\n".join(explanation_lines(rows)))                     # doctest: +SKIP
flag:       beta
context:    {"anonymous": false, "userId": "42"}
value:      true
reason:     RULE_MATCH
...

Both adapters' commands build the context their own way (Django users, Flask options)
and print the same fields in the same order through :func:`explanation` and
:func:`explanation_lines`. Exit status: both commands exit with 1 when the flag does not
exist (:func:`flag_exists`). Framework-neutral: imports neither Django nor Flask.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flagkit.client import FlagKitClient
    from flagkit.types.context import EvaluationContext
    from flagkit.types.flag import EvaluationResult

__all__ = ["explanation", "explanation_lines", "flag_exists", "to_json"]

#: The label column's width (``"variation:"`` plus a space).
_LABEL_WIDTH = 11


def to_json(value: Any) -> str:
    """Compact, stable JSON for one printed value (``repr`` for what JSON cannot hold)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def flag_exists(client: FlagKitClient, key: str) -> bool:
    """Whether the client holds flag ``key`` (an explain command exits 1 when it does not)."""
    return client.has_flag(key)


def explanation(
    client: FlagKitClient, result: EvaluationResult[Any], context: EvaluationContext | None
) -> dict[str, Any]:
    """The fields of an explanation, in print order: ``flag``, ``context`` (its dict with
    private attributes, None without one), ``value``, ``reason``, ``rule``, ``segment``,
    ``variation``, ``version``, ``enabled``, ``type`` and ``targeting`` (None for an unknown
    flag), and ``error`` (``"CODE: message"``) only when the default was served for an
    error. JSON-ready (``--json`` prints it as is)."""
    model = client.snapshot.models.get(result.flag_key)
    fields: dict[str, Any] = {
        "flag": result.flag_key,
        "context": context.to_dict(strip_private=False) if context is not None else None,
        "value": result.value,
        "reason": result.reason.value,
        "rule": result.rule_id,
        "segment": result.segment_id,
        "variation": result.variation_id,
        "version": result.version,
        "enabled": result.enabled,
        "type": model.state.flag_type.value if model is not None else None,
        "targeting": (not model.is_simple) if model is not None else None,
    }
    if result.error_code:
        fields["error"] = f"{result.error_code}: {result.error_message or ''}".strip()
    return fields


def explanation_lines(fields: dict[str, Any]) -> list[str]:
    """``label:   value`` lines of :func:`explanation`'s fields: strings as they are (the
    value as JSON), booleans as yes/no, None as ``-``."""
    lines = []
    for name, value in fields.items():
        if value is None:
            text = "-"
        elif isinstance(value, bool) and name != "value":
            text = "yes" if value else "no"
        elif isinstance(value, str) and name != "value":
            text = value
        else:
            text = to_json(value)
        lines.append(f"{name + ':':<{_LABEL_WIDTH}} {text}")
    return lines
