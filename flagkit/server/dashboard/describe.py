"""Targeting in words, for the dashboard: "users whose `country` is one of DE, AT ->
variation `eu`".

Reads the wire object of a flag (docs/targeting.md); anything malformed is described as
such rather than raising (the store only holds validated flags, but this stays total).
Code-like parts are wrapped in backticks; the page renders them as ``<code>`` text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = ["describe_flag", "describe_segment", "rollout_of", "summary_of"]

_OPS: Final[dict[str, str]] = {
    "in": "is one of",
    "equals": "equals",
    "contains": "contains",
    "startsWith": "starts with",
    "endsWith": "ends with",
    "matches": "matches",
    "lt": "is less than",
    "lte": "is at most",
    "gt": "is greater than",
    "gte": "is at least",
    "before": "is before",
    "after": "is after",
    "semverEq": "is version",
    "semverLt": "is a version below",
    "semverLte": "is a version up to",
    "semverGt": "is a version above",
    "semverGte": "is a version from",
}
_MAX_VALUES_SHOWN: Final = 8


def _value(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _values(values: object) -> str:
    items = list(values) if isinstance(values, list) else [values]
    shown = ", ".join(_value(v) for v in items[:_MAX_VALUES_SHOWN])
    more = len(items) - _MAX_VALUES_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def _clause(clause: object) -> str:
    if not isinstance(clause, Mapping):
        return "(a malformed clause)"
    attribute = f"`{clause.get('attribute', '?')}`"
    op = clause.get("op")
    values = clause.get("values", [])
    negate = clause.get("negate") is True
    if op == "segmentMatch":
        names = ", ".join(f"`{v}`" for v in values) if isinstance(values, list) else "?"
        return f"{'not ' if negate else ''}in segment {names}"
    if op == "exists":
        return f"{attribute} is {'not ' if negate else ''}set"
    if op == "in" and negate:
        return f"{attribute} is not one of {_values(values)}"
    words = _OPS.get(op if isinstance(op, str) else "", f"`{op}`")
    text = f"{attribute} {words} {_values(values)}"
    return f"not ({text})" if negate else text


def _conditions(rule: Mapping[str, Any]) -> str:
    parts = [_clause(c) for c in rule.get("clauses") or []]
    segments = rule.get("segments")
    if isinstance(segments, list) and segments:
        parts.append("in segment " + " or ".join(f"`{s}`" for s in segments))
    return " and ".join(parts) if parts else "everyone"


def rollout_of(serve: object) -> list[tuple[str, int]] | None:
    """``[(variation id, weight), ...]`` of a serve object's rollout, or None."""
    if not isinstance(serve, Mapping):
        return None
    rollout = serve.get("rollout")
    if not isinstance(rollout, Mapping) or not isinstance(rollout.get("variations"), list):
        return None
    return [
        (str(w.get("variation")), int(w.get("weight", 0)))
        for w in rollout["variations"]
        if isinstance(w, Mapping) and isinstance(w.get("weight", 0), int)
    ]


def _serve(serve: object) -> str:
    if not isinstance(serve, Mapping):
        return "(nothing)"
    if isinstance(serve.get("variation"), str):
        return f"variation `{serve['variation']}`"
    weights = rollout_of(serve)
    if weights is None:
        return "(nothing)"
    total = sum(w for _, w in weights) or 1
    split = ", ".join(f"{w * 100 / total:g}% `{v}`" for v, w in weights)
    rollout = serve.get("rollout")
    bucket = rollout.get("bucketBy") if isinstance(rollout, Mapping) else None
    return f"a rollout: {split}" + (f" (bucketed by `{bucket}`)" if bucket else "")


def describe_flag(flag: Mapping[str, Any]) -> list[str]:
    """Each step of ``flag``'s targeting as one sentence, in evaluation order."""
    value = _value(flag.get("value"))
    lines: list[str] = []
    targeted = any(
        name in flag for name in ("variations", "rules", "targets", "fallthrough", "prerequisites")
    )
    if not flag.get("enabled", True):
        off = flag.get("offVariation")
        if targeted and isinstance(off, str):
            lines.append(f"Disabled: everyone gets variation `{off}`.")
        else:
            lines.append(f"Disabled: everyone gets its value `{value}`.")
    if not targeted:
        lines.append(f"Everyone gets `{value}`.")
        return lines
    for entry in flag.get("prerequisites") or []:
        if isinstance(entry, Mapping):
            lines.append(
                f"Needs flag `{entry.get('key')}` to serve variation `{entry.get('variation')}` "
                "(else the off variation)."
            )
    for target in flag.get("targets") or []:
        if isinstance(target, Mapping):
            users = _values(target.get("values", []))
            lines.append(f"Users {users} → variation `{target.get('variation')}`.")
    for index, rule in enumerate(flag.get("rules") or []):
        if not isinstance(rule, Mapping):
            continue
        name = rule.get("id") or f"#{index + 1}"
        description = rule.get("description")
        note = f" — {description}" if isinstance(description, str) and description else ""
        lines.append(f"Rule `{name}`: users whose {_conditions(rule)} → {_serve(rule)}{note}.")
    if "fallthrough" in flag:
        lines.append(f"Everyone else → {_serve(flag.get('fallthrough'))}.")
    else:
        lines.append(f"Everyone else gets its value `{value}`.")
    return lines


def describe_segment(segment: Mapping[str, Any]) -> list[str]:
    """A segment's membership in words."""
    lines: list[str] = []
    if segment.get("included"):
        lines.append(f"Includes users {_values(segment['included'])}.")
    if segment.get("excluded"):
        lines.append(f"Excludes users {_values(segment['excluded'])}.")
    for rule in segment.get("rules") or []:
        if isinstance(rule, Mapping):
            lines.append(f"Includes users whose {_conditions(rule)}.")
    return lines or ["Nobody (empty segment)."]


def summary_of(flag: Mapping[str, Any]) -> str:
    """One short phrase for the flags list: "simple", "2 rules, rollout 30% `on`", ..."""
    parts: list[str] = []
    rules = flag.get("rules") or []
    if isinstance(rules, Sequence) and rules:
        parts.append(f"{len(rules)} rule{'s' if len(rules) != 1 else ''}")
    if flag.get("targets"):
        parts.append("individual targets")
    if flag.get("prerequisites"):
        parts.append("prerequisites")
    if any(isinstance(r, Mapping) and r.get("segments") for r in rules) or any(
        isinstance(c, Mapping) and c.get("op") == "segmentMatch"
        for r in rules
        if isinstance(r, Mapping)
        for c in r.get("clauses") or []
    ):
        parts.append("segments")
    if "fallthrough" in flag:
        parts.append("else " + _serve(flag["fallthrough"]).replace("variation ", ""))
    return ", ".join(parts) if parts else "simple: one value for everyone"
