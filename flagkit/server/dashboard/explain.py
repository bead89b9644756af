"""Explain a flag for a context: value, reason and the path that decided it.

Uses the SDK's own evaluator (:func:`flagkit.core.targeting.evaluate` over models built by
:func:`~flagkit.core.targeting.compile_flag`), so the answer is the one a client holding
the same flags gives (docs/protocol.md §8.1). Also: the share of 1,000 sample users per
variation (the same context with other user ids), and the users recently seen in events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from flagkit.core.targeting import compile_flag, compile_segment, evaluate
from flagkit.core.targeting.model import Decision, FlagModel, SegmentModel
from flagkit.server.dashboard.describe import describe_flag
from flagkit.types.context import CONTEXT_FIELDS, EvaluationContext
from flagkit.types.flag import FlagState

__all__ = ["ContextError", "context_from_wire", "explain", "recent_users"]

SAMPLE_USERS: Final = 1000
_WIRE_TO_FIELD: Final = {wire: name for name, wire in CONTEXT_FIELDS.items()}


class ContextError(ValueError):
    """A context that cannot be used; the message names the field."""


def context_from_wire(data: object) -> EvaluationContext:
    """An :class:`EvaluationContext` from its wire form (``userId``, ``country``, ...,
    ``custom``); any other key is a custom attribute. Raises :class:`ContextError`."""
    if not isinstance(data, Mapping):
        raise ContextError("context: must be a JSON object")
    fields: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, value in data.items():
        name = _WIRE_TO_FIELD.get(key)
        if name == "anonymous":
            if not isinstance(value, bool):
                raise ContextError(f"context.{key}: must be true or false, got {value!r}")
            fields[name] = value
        elif name is not None:
            if not isinstance(value, str):
                raise ContextError(f"context.{key}: must be a string, got {value!r}")
            fields[name] = value
        elif key == "custom":
            if not isinstance(value, Mapping):
                raise ContextError("context.custom: must be an object")
            custom.update(value)
        else:
            custom[key] = value
    return EvaluationContext(**fields, custom=custom)


def _models(
    flags: Iterable[Mapping[str, Any]], segments: Iterable[Mapping[str, Any]]
) -> tuple[dict[str, FlagModel], dict[str, SegmentModel]]:
    models = {f["key"]: compile_flag(FlagState.from_dict(dict(f))) for f in flags}
    return models, {s["key"]: compile_segment(s) for s in segments}


def _decision_json(decision: Decision) -> dict[str, Any]:
    return {
        "value": decision.value,
        "reason": decision.reason.value,
        "variationId": decision.variation_id,
        "ruleId": decision.rule_id,
        "segmentId": decision.segment_id,
        "error": decision.error,
    }


def _path(
    flag: Mapping[str, Any],
    decision: Decision,
    context: EvaluationContext,
    models: Mapping[str, FlagModel],
    segments: Mapping[str, SegmentModel],
) -> list[str]:
    reason = decision.reason.value
    steps: list[str] = []
    if decision.error:
        return [f"The flag cannot be evaluated ({decision.error}): it serves its value."]
    if reason == "CACHED":
        return ["A simple flag (no targeting): everyone gets its value."]
    if reason == "FLAG_DISABLED":
        return ["The flag is disabled: it serves its off variation (else its value)."]
    for entry in flag.get("prerequisites") or []:
        key = entry.get("key") if isinstance(entry, Mapping) else None
        model = models.get(key) if isinstance(key, str) else None
        if model is None:
            continue
        got = evaluate(model, context, flags=models, segments=segments)
        met = got.variation_id == entry.get("variation") and model.state.enabled
        steps.append(
            f"Prerequisite `{key}` serves variation `{got.variation_id}` "
            f"(needs `{entry.get('variation')}`): {'met' if met else 'NOT met'}."
        )
    if reason == "PREREQUISITE_FAILED":
        steps.append("A prerequisite is not met: the off variation is served.")
    elif reason == "TARGET_MATCH":
        steps.append(
            f"User `{context.user_id or context.user_key}` is an individual target of "
            f"variation `{decision.variation_id}`."
        )
    elif reason in ("RULE_MATCH", "SEGMENT_MATCH"):
        rules = [r for r in flag.get("rules") or [] if isinstance(r, Mapping)]
        rule = next((r for r in rules if r.get("id") == decision.rule_id), None)
        words = next(
            (line for line in describe_flag(flag) if line.startswith(f"Rule `{decision.rule_id}`")),
            f"Rule `{decision.rule_id}`",
        )
        steps.append(
            f"Matched: {words}" if rule is not None else f"Matched rule `{decision.rule_id}`."
        )
        if decision.segment_id:
            steps.append(f"The user is in segment `{decision.segment_id}`.")
    elif reason == "FALLTHROUGH":
        steps.append("No individual target and no rule matched: the fallthrough decides.")
        fallthrough = flag.get("fallthrough")
        if isinstance(fallthrough, Mapping) and "rollout" in fallthrough:
            steps.append(
                f"The rollout put this user's bucket in variation `{decision.variation_id}`."
            )
    if decision.variation_id is not None:
        steps.append(
            f"Served variation `{decision.variation_id}` = "
            f"`{json.dumps(decision.value, ensure_ascii=False)}`."
        )
    return steps


def explain(
    flags: list[dict[str, Any]],
    segments: list[dict[str, Any]],
    key: str,
    context: EvaluationContext,
) -> dict[str, Any] | None:
    """The explanation of ``key`` for ``context`` (None when there is no such flag)."""
    flag = next((f for f in flags if f["key"] == key), None)
    if flag is None:
        return None
    models, segment_models = _models(flags, segments)
    model = models[key]
    decision = evaluate(model, context, flags=models, segments=segment_models)
    out = _decision_json(decision)
    out["flag"] = key
    out["path"] = _path(flag, decision, context, models, segment_models)
    out["distribution"] = _distribution(model, context, models, segment_models)
    return out


def _distribution(
    model: FlagModel,
    context: EvaluationContext,
    models: Mapping[str, FlagModel],
    segments: Mapping[str, SegmentModel],
) -> list[dict[str, Any]]:
    """How 1,000 sample users with this context's other attributes are served."""
    counts: dict[str, dict[str, Any]] = {}
    fields = {name: getattr(context, name) for name in CONTEXT_FIELDS}
    for i in range(SAMPLE_USERS):
        fields["user_id"] = f"sample-user-{i}"
        sample = EvaluationContext(**fields, custom=dict(context.custom))
        decision = evaluate(model, sample, flags=models, segments=segments)
        label = decision.variation_id or json.dumps(decision.value, ensure_ascii=False)
        entry = counts.setdefault(
            label, {"variation": decision.variation_id, "value": decision.value, "users": 0}
        )
        entry["users"] += 1
    out = sorted(counts.values(), key=lambda e: -int(e["users"]))
    for entry in out:
        entry["share"] = entry["users"] / SAMPLE_USERS
    return out


def recent_users(events: Iterable[Mapping[str, Any]], limit: int = 20) -> list[dict[str, Any]]:
    """Distinct users seen in ``events`` (newest first) with the context they sent."""
    seen: dict[str, dict[str, Any]] = {}
    for event in reversed(list(events)):
        context = event.get("context")
        data = event.get("eventData") or event.get("data")
        user = context.get("userId") if isinstance(context, Mapping) else None
        if user is None and isinstance(data, Mapping):
            user = data.get("userId")
        if isinstance(user, str) and user and user not in seen:
            seen[user] = dict(context) if isinstance(context, Mapping) else {"userId": user}
            if len(seen) >= limit:
                break
    return [{"userId": k, "context": v} for k, v in seen.items()]
