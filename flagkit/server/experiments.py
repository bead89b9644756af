"""Experiment results from the events the local server recorded (docs/experiments.md).

A flag is an experiment when it carries an ``experiment`` object (``control`` and
optionally ``metrics``). The SDK records a ``$exposure`` event the first time a context is
served a variation by the experiment's split; metric events are ordinary ``track()``
events of the same user. From those this module computes, per variation:

- exposed users (users exposed to exactly one variation; users exposed to more than one,
  e.g. after a change of the flag, are counted in ``excludedMultiExposed`` and left out);
- converted users: exposed users with a metric event at or after their first exposure;
- the conversion rate with its Wilson interval; for a numeric metric, the mean per exposed
  user of the summed value field (0 for users without an event) with its t interval;
- against control: absolute and relative lift with 95% intervals and a two-sided p
  (two-proportion z-test; Welch's t-test for means);
- and before all of them the sample-ratio-mismatch check: exposed users per variation
  against the weights of the split that exposed them (Pearson's chi-square, flagged when
  p < 0.001).

Everything is computed on request from the events the recorder keeps in memory; pure
functions of (flag, events), standard library only. The JSON shape is documented in
docs/experiments.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from flagkit.server import stats
from flagkit.server.events import event_type_of
from flagkit.utils.timeparse import parse_timestamp

__all__ = [
    "EXPOSURE_EVENT",
    "SRM_THRESHOLD",
    "ExperimentError",
    "Metric",
    "experiment_of",
    "list_experiments",
    "report",
    "resolve_metric",
]

#: The event type of an exposure (sent by the SDK).
EXPOSURE_EVENT: Final = "$exposure"
#: A sample-ratio mismatch is flagged below this p-value.
SRM_THRESHOLD: Final = 0.001


class ExperimentError(ValueError):
    """A report cannot be computed as asked (no such experiment, no metric, bad value)."""


@dataclass(frozen=True)
class Metric:
    """What a report judges: an event type, its kind and, for numeric, the value field."""

    event: str
    kind: str = "conversion"
    value_field: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``metric`` object of a report."""
        return {"event": self.event, "kind": self.kind, "valueField": self.value_field}


def experiment_of(flag: Mapping[str, Any]) -> dict[str, Any] | None:
    """The flag's ``experiment`` object when it has a usable one (a string ``control``)."""
    experiment = flag.get("experiment")
    if isinstance(experiment, dict) and isinstance(experiment.get("control"), str):
        return experiment
    return None


def _configured_metrics(experiment: Mapping[str, Any]) -> list[Metric]:
    found = []
    for entry in experiment.get("metrics") or ():
        if not isinstance(entry, dict) or not isinstance(entry.get("event"), str):
            continue
        kind = entry.get("kind", "conversion")
        value_field = entry.get("valueField")
        if kind == "numeric" and isinstance(value_field, str) and value_field:
            found.append(Metric(entry["event"], "numeric", value_field))
        else:  # a conversion metric (or one the SDK's validation would have refused)
            found.append(Metric(entry["event"]))
    return found


def resolve_metric(
    flag: Mapping[str, Any], event: str | None = None, value_field: str | None = None
) -> Metric:
    """The metric of a report. Neither given: the experiment's first configured metric (its
    kind and value field). ``event`` alone: a conversion metric on that event type.
    ``value_field``: a numeric metric summing that data field (of ``event``, or of the
    first configured metric's event)."""
    experiment = experiment_of(flag) or {}
    configured = _configured_metrics(experiment)
    if event is None:
        if not configured:
            raise ExperimentError(
                f"metric: flag {flag.get('key')!r} names no metrics in its experiment; "
                "ask for one, e.g. ?metric=purchase (CLI: --metric purchase)"
            )
        if value_field is None:
            return configured[0]
        event = configured[0].event
    if value_field is not None:
        return Metric(event, "numeric", value_field)
    return Metric(event)


# --------------------------------------------------------------------------------------
# reading the events
# --------------------------------------------------------------------------------------


def _data(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = event.get("eventData")
    if data is None:
        data = event.get("data")  # the other dialect (docs/protocol.md §10.2)
    return data if isinstance(data, dict) else {}


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MICROSECOND: Final = timedelta(microseconds=1)


def _time(event: Mapping[str, Any]) -> int | None:
    """The event's time in microseconds since the epoch; None when unusable."""
    raw = event.get("timestamp")
    if isinstance(raw, str):
        try:  # the SDK's isoformat() text, parsed in C (most of a report's time is here)
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return parse_timestamp(raw)  # the lenient parser: Z on 3.10, odd fractions
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return (parsed - _EPOCH) // _MICROSECOND
    if isinstance(raw, int) and not isinstance(raw, bool):
        return parse_timestamp(str(raw))
    return None


def _user_keys(event: Mapping[str, Any]) -> list[str]:
    """The keys an event's user is known by: its context's ``userId`` and ``userKey``."""
    context = event.get("context")
    if not isinstance(context, dict):
        return []
    return [
        key
        for key in (context.get("userId"), context.get("userKey"))
        if isinstance(key, str) and key
    ]


@dataclass(frozen=True)
class _Exposure:
    """The parts of one ``$exposure`` event the reports use."""

    flag_key: str
    user: str
    variation: str
    time: int
    rule_id: str | None


def _exposure_of(event: dict[str, Any]) -> _Exposure | None:
    """The exposure in ``event``, or None when it has no usable flag key, user (the
    ``contextKey``, else the context's ``userId``/``userKey``), variation or time."""
    data = _data(event)
    flag_key, variation = data.get("flagKey"), data.get("variationId")
    user = data.get("contextKey")
    if not isinstance(user, str) or not user:
        keys = _user_keys(event)
        user = keys[0] if keys else None
    when = _time(event)
    if not isinstance(flag_key, str) or not isinstance(variation, str):
        return None
    if user is None or when is None:
        return None
    rule = data.get("ruleId")
    return _Exposure(flag_key, user, variation, when, rule if isinstance(rule, str) else None)


@dataclass
class _Exposed:
    """One user's exposures to one flag."""

    first: int
    rule_id: str | None
    variations: set[str] = field(default_factory=set)


@dataclass
class _Collected:
    users: dict[str, _Exposed]
    outcomes: dict[str, list[tuple[int, Any]]]  # user -> (time, value) of metric events
    skipped: int


def _collect(flag_key: str, events: Iterable[dict[str, Any]], metric: str | None) -> _Collected:
    """Exposed users of ``flag_key`` and the ``metric`` events of every user."""
    users: dict[str, _Exposed] = {}
    outcomes: dict[str, list[tuple[int, Any]]] = {}
    skipped = 0
    for event in events:
        etype = event_type_of(event)
        if etype == EXPOSURE_EVENT:
            found = _exposure_of(event)
            if found is None:
                skipped += 1
                continue
            if found.flag_key != flag_key:
                continue
            exposed = users.get(found.user)
            if exposed is None:
                users[found.user] = exposed = _Exposed(found.time, found.rule_id)
            elif found.time < exposed.first:
                exposed.first, exposed.rule_id = found.time, found.rule_id
            exposed.variations.add(found.variation)
        elif metric is not None and etype == metric:
            when = _time(event)
            if when is None:
                skipped += 1
                continue
            value = _data(event)
            for key in dict.fromkeys(_user_keys(event)):
                outcomes.setdefault(key, []).append((when, value))
    return _Collected(users, outcomes, skipped)


# --------------------------------------------------------------------------------------
# the split and the sample-ratio check
# --------------------------------------------------------------------------------------


def _variation_ids(flag: Mapping[str, Any]) -> list[str]:
    return [
        v["id"]
        for v in flag.get("variations") or ()
        if isinstance(v, dict) and isinstance(v.get("id"), str)
    ]


def _split_weights(flag: Mapping[str, Any], rule_id: str | None) -> dict[str, float] | None:
    """Variation -> weight of what rule ``rule_id`` (None: the fallthrough) serves: its
    rollout's weights, or all of one fixed variation; None when unknown (no such rule)."""
    if rule_id is None:
        holder: Any = flag.get("fallthrough")
    else:
        holder = next(
            (r for r in flag.get("rules") or () if isinstance(r, dict) and r.get("id") == rule_id),
            None,
        )
    if not isinstance(holder, dict):
        return None
    if isinstance(holder.get("variation"), str):  # a fixed variation: all of it
        return {holder["variation"]: 1.0}
    rollout = holder.get("rollout")
    if not isinstance(rollout, dict):
        return None
    weights: dict[str, float] = {}
    for entry in rollout.get("variations") or ():
        if isinstance(entry, dict) and isinstance(entry.get("variation"), str):
            weight = entry.get("weight")
            if isinstance(weight, int | float) and not isinstance(weight, bool) and weight > 0:
                weights[entry["variation"]] = weights.get(entry["variation"], 0.0) + weight
    return weights or None


def _srm(
    flag: Mapping[str, Any],
    ids: list[str],
    assigned: dict[str, _Exposed],
    variation_of: dict[str, str],
) -> dict[str, Any]:
    observed = {vid: 0 for vid in ids}
    per_split: dict[str | None, int] = {}
    for key, exposed in assigned.items():
        observed[variation_of[key]] = observed.get(variation_of[key], 0) + 1
        per_split[exposed.rule_id] = per_split.get(exposed.rule_id, 0) + 1
    expected = {vid: 0.0 for vid in observed}
    equal = {vid: 1.0 for vid in ids} or {vid: 1.0 for vid in observed}
    for rule_id, count in per_split.items():
        weights = _split_weights(flag, rule_id) or equal
        total = sum(weights.values())
        for vid, weight in weights.items():
            expected[vid] = expected.get(vid, 0.0) + count * weight / total
            observed.setdefault(vid, 0)
    order = list(observed)
    chi2, p = stats.chi_square_test(
        [observed[v] for v in order], [expected.get(v, 0.0) for v in order]
    )
    return {
        "chi2": chi2,
        "p": p,
        "flagged": p < SRM_THRESHOLD,
        "threshold": SRM_THRESHOLD,
        "expected": {v: expected.get(v, 0.0) for v in order},
        "observed": observed,
    }


# --------------------------------------------------------------------------------------
# reports
# --------------------------------------------------------------------------------------


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _lift_json(lift: stats.Lift | None) -> dict[str, Any] | None:
    if lift is None:
        return None
    return {
        "absolute": lift.absolute,
        "absoluteCi": list(lift.absolute_ci),
        "relative": lift.relative,
        "relativeCi": list(lift.relative_ci) if lift.relative_ci is not None else None,
        "p": lift.p,
    }


def report(
    flag: Mapping[str, Any],
    events: Iterable[dict[str, Any]],
    metric: Metric,
) -> dict[str, Any]:
    """The report of experiment ``flag`` judged by ``metric`` (docs/experiments.md)."""
    experiment = experiment_of(flag)
    if experiment is None:
        raise ExperimentError(f"flag {flag.get('key')!r} is not an experiment")
    control: str = experiment["control"]
    collected = _collect(str(flag.get("key")), events, metric.event)
    ids = _variation_ids(flag)
    assigned = {k: e for k, e in collected.users.items() if len(e.variations) == 1}
    variation_of = {k: next(iter(e.variations)) for k, e in assigned.items()}
    srm = _srm(flag, ids, assigned, variation_of)
    # Per variation, per exposed user: (converted, summed value of the metric's field).
    groups: dict[str, list[tuple[bool, float]]] = {vid: [] for vid in srm["observed"]}
    for key, exposed in assigned.items():
        total = 0.0
        converted = False
        for when, data in collected.outcomes.get(key, ()):
            if when >= exposed.first:  # only what happened after the first exposure
                converted = True
                if metric.value_field is not None:
                    total += _number(data.get(metric.value_field)) or 0.0
        groups[variation_of[key]].append((converted, total))
    ordered = ([control] if control in groups else []) + [v for v in groups if v != control]
    control_group = groups.get(control, [])
    control_converted = sum(1 for c, _ in control_group if c)
    control_summary = stats.mean_summary([t for _, t in control_group])
    variations = []
    for vid in ordered:
        group = groups[vid]
        exposed_n = len(group)
        converted_n = sum(1 for c, _ in group if c)
        entry: dict[str, Any] = {
            "id": vid,
            "exposed": exposed_n,
            "converted": converted_n,
            "rate": converted_n / exposed_n if exposed_n else None,
            "ci": list(stats.wilson_interval(converted_n, exposed_n)) if exposed_n else None,
        }
        lift: stats.Lift | None = None
        if metric.value_field is not None:
            summary = stats.mean_summary([t for _, t in group])
            entry["mean"] = summary.mean if exposed_n else None
            entry["meanCi"] = list(summary.ci) if exposed_n else None
            if vid != control:
                lift = stats.welch_lift(summary, control_summary)
        elif vid != control:
            lift = stats.proportion_lift(
                converted_n, exposed_n, control_converted, len(control_group)
            )
        entry["lift"] = _lift_json(lift)
        variations.append(entry)
    multi = len(collected.users) - len(assigned)
    return {
        "flag": flag.get("key"),
        "control": control,
        "metric": metric.to_json(),
        "srm": srm,
        "excludedMultiExposed": multi,
        "skippedEvents": collected.skipped,
        "variations": variations,
    }


def list_experiments(
    flags: Iterable[Mapping[str, Any]], events: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every experiment flag with its control, variations, metrics and exposed users."""
    experiments = [(f, e) for f in flags if (e := experiment_of(f)) is not None]
    if not experiments:
        return []
    exposures: dict[str, dict[str, set[str]]] = {str(f.get("key")): {} for f, _ in experiments}
    for event in events:
        if event_type_of(event) != EXPOSURE_EVENT:
            continue
        found = _exposure_of(event)
        per_flag = exposures.get(found.flag_key) if found is not None else None
        if found is not None and per_flag is not None:
            per_flag.setdefault(found.user, set()).add(found.variation)
    listed = []
    for flag, experiment in experiments:
        users = exposures[str(flag.get("key"))]
        per_variation = {vid: 0 for vid in _variation_ids(flag)}
        for seen in users.values():
            if len(seen) == 1:
                vid = next(iter(seen))
                per_variation[vid] = per_variation.get(vid, 0) + 1
        listed.append(
            {
                "flag": flag.get("key"),
                "control": experiment["control"],
                "variations": _variation_ids(flag),
                "exposedUsers": len(users),
                "exposures": per_variation,
                "excludedMultiExposed": sum(1 for seen in users.values() if len(seen) > 1),
                "metrics": [m.to_json() for m in _configured_metrics(experiment)],
            }
        )
    return listed
