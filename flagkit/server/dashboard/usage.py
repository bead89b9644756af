"""Usage of flags from the SDKs' ``$evaluation_summary`` events, and cleanup candidates.

A summary's ``eventData`` is ``{"startDate", "endDate", "counts": [{"flagKey",
"variationId", "reason", "count"}]}``. Candidates for cleanup: flags not evaluated in the
last ``stale_days`` days (or never, among the events the server holds) and flags that
served one value to everyone (a single variation over at least 20 evaluations, or a
targeted flag whose every serve is the same variation).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Final

from flagkit.server.dashboard.describe import rollout_of

__all__ = ["usage"]

SUMMARY_EVENT: Final = "$evaluation_summary"
_MIN_EVALUATIONS: Final = 20


def _time(text: object) -> float | None:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text) / (1000.0 if text > 1e11 else 1.0)
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _served_variations(flag: Mapping[str, Any]) -> set[str] | None:
    """Every variation the flag's targeting can serve (None: a simple flag)."""
    serves = [flag.get("fallthrough"), *(flag.get("rules") or [])]
    served: set[str] = set()
    for target in flag.get("targets") or []:
        if isinstance(target, Mapping) and target.get("values"):
            served.add(str(target.get("variation")))
    for serve in serves:
        if not isinstance(serve, Mapping):
            continue
        if isinstance(serve.get("variation"), str):
            served.add(serve["variation"])
        for variation, weight in rollout_of(serve) or []:
            if weight > 0:
                served.add(variation)
    return served if "variations" in flag else None


def usage(
    flags: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]],
    *,
    now: float,
    stale_days: float = 7.0,
) -> dict[str, Any]:
    """Evaluations per flag and the cleanup candidates (see the module docstring)."""
    per_flag: dict[str, dict[str, Any]] = {}
    summaries = 0
    for event in events:
        kind = event.get("eventType", event.get("type"))
        data = event.get("eventData", event.get("data"))
        if kind != SUMMARY_EVENT or not isinstance(data, Mapping):
            continue
        summaries += 1
        end = _time(data.get("endDate")) or _time(event.get("timestamp"))
        for row in data.get("counts") or []:
            if not isinstance(row, Mapping) or not isinstance(row.get("flagKey"), str):
                continue
            count = row.get("count")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                continue
            entry = per_flag.setdefault(
                row["flagKey"], {"evaluations": 0, "variations": {}, "reasons": {}, "last": None}
            )
            entry["evaluations"] += count
            variation = str(row.get("variationId") or "(value)")
            entry["variations"][variation] = entry["variations"].get(variation, 0) + count
            reason = str(row.get("reason") or "")
            entry["reasons"][reason] = entry["reasons"].get(reason, 0) + count
            if end is not None and (entry["last"] is None or end > entry["last"]):
                entry["last"] = end
    rows: list[dict[str, Any]] = []
    candidates: list[dict[str, str]] = []
    stale_before = now - stale_days * 86400
    for flag in flags:
        key = flag["key"]
        seen = per_flag.get(key)
        rows.append(
            {
                "flag": key,
                **(seen or {"evaluations": 0, "variations": {}, "reasons": {}, "last": None}),
            }
        )
        if seen is None or not seen["evaluations"]:
            candidates.append(
                {"flag": key, "why": "not evaluated in the summaries the server holds"}
            )
        elif seen["last"] is not None and seen["last"] < stale_before:
            candidates.append(
                {"flag": key, "why": f"not evaluated for more than {stale_days:g} days"}
            )
        elif len(seen["variations"]) == 1 and seen["evaluations"] >= _MIN_EVALUATIONS:
            (only,) = seen["variations"]
            candidates.append(
                {
                    "flag": key,
                    "why": f"served `{only}` to everyone ({seen['evaluations']} evaluations)",
                }
            )
            continue
        served = _served_variations(flag)
        if (
            served is not None
            and len(served) == 1
            and flag.get("enabled", True)
            and not any(c["flag"] == key for c in candidates)
        ):
            candidates.append(
                {"flag": key, "why": f"its targeting serves only `{next(iter(served))}`"}
            )
    rows.sort(key=lambda r: (-r["evaluations"], r["flag"]))
    return {"summaries": summaries, "flags": rows, "candidates": candidates}
