"""Parse and validate flag and segment wire objects into the model (with field paths).

A flag is the FlagState wire object (``docs/protocol.md`` §4.1) optionally extended
with camelCase targeting fields; see ``docs/targeting.md``. Two modes share one parser:

- lenient (the client's ``compile_flag``): unknown fields inside targeting objects are
  ignored, so a newer server may add some;
- strict (:func:`check_document`, the server's load-time check): they are errors, and
  cross-references (segments, prerequisite flags and variations, cycles) are checked.

Every problem raises :class:`TargetingError` naming the field, e.g.
``flags[2].rules[0].clauses[1].op: unknown operator 'near'``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

from flagkit.core.targeting.bucketing import BUCKET_SCALE
from flagkit.core.targeting.metadata import check_metadata
from flagkit.core.targeting.model import (
    Clause,
    Experiment,
    FlagSpec,
    Metric,
    Rollout,
    Rule,
    SegmentSpec,
    Serve,
    TargetingError,
    describe,
)
from flagkit.core.targeting.operators import OPERATOR_TABLE, OPERATORS, check_segment_key
from flagkit.types.flag import FlagType

__all__ = [
    "TARGETING_FIELDS",
    "check_document",
    "has_targeting",
    "parse_flag",
    "parse_segment",
]

TARGETING_FIELDS: Final = (
    "variations",
    "offVariation",
    "targets",
    "rules",
    "fallthrough",
    "prerequisites",
)
"""A flag with any of these (not null / empty) is targeted; without them it is simple."""
_TARGETING_SET: Final = frozenset(TARGETING_FIELDS)

# The fields each targeting object may have (strict mode; docs/flags.schema.json agrees).
VARIATION_FIELDS: Final = frozenset({"id", "value", "name", "description"})
TARGET_FIELDS: Final = frozenset({"variation", "values"})
RULE_FIELDS: Final = frozenset({"id", "description", "clauses", "segments", "variation", "rollout"})
SEGMENT_RULE_FIELDS: Final = frozenset({"id", "description", "clauses"})
CLAUSE_FIELDS: Final = frozenset({"attribute", "op", "values", "negate"})
SERVE_FIELDS: Final = frozenset({"variation", "rollout"})
ROLLOUT_FIELDS: Final = frozenset({"variations", "bucketBy"})
WEIGHTED_FIELDS: Final = frozenset({"variation", "weight"})
PREREQUISITE_FIELDS: Final = frozenset({"key", "variation"})
EXPERIMENT_FIELDS: Final = frozenset({"control", "metrics"})
METRIC_FIELDS: Final = frozenset({"event", "kind", "valueField"})
METRIC_KINDS: Final = ("conversion", "numeric")
# The event types track() accepts (flagkit.core.events.validation): a metric names one.
_EVENT_TYPE_RE: Final = re.compile(r"[a-zA-Z0-9._-]{1,128}")
SEGMENT_FIELDS: Final = frozenset(
    {"key", "name", "description", "included", "excluded", "rules", "version", "lastModified"}
)


def has_targeting(raw: Mapping[str, Any]) -> bool:
    """Whether a flag wire object has any targeting field that is not null or empty."""
    if _TARGETING_SET.isdisjoint(raw):
        return False  # the common case (a simple flag): one set operation in C, no allocation
    for name in TARGETING_FIELDS:
        field_value = raw.get(name)
        if field_value is not None and not (
            isinstance(field_value, (list, tuple, dict)) and not field_value
        ):
            return True
    return False


def parse_flag(
    raw: Mapping[str, Any], key: str, *, base: str = "", strict: bool = False
) -> FlagSpec:
    """The targeting of flag ``key`` (``raw`` is its wire object); raises TargetingError
    with paths under ``base``."""
    return _Parser(strict=strict).flag(raw, base, key)


def parse_segment(raw: object, *, base: str = "", strict: bool = False) -> SegmentSpec:
    """A segment wire object; raises TargetingError with paths under ``base``."""
    return _Parser(strict=strict).segment(raw, base)


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


class _Parser:
    """Turns wire objects into the model; raises :class:`TargetingError`."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict

    # -- primitives --------------------------------------------------------------------

    def obj(self, raw: object, path: str, allowed: frozenset[str]) -> Mapping[str, Any]:
        if not isinstance(raw, Mapping):
            raise TargetingError(path, f"must be an object, got {describe(raw)}")
        if self.strict:
            for name in raw:
                if name not in allowed:
                    known = ", ".join(sorted(allowed))
                    raise TargetingError(_join(path, str(name)), f"unknown field (known: {known})")
        return raw

    @staticmethod
    def array(raw: object, path: str, *, non_empty: bool = False) -> Sequence[Any]:
        if not isinstance(raw, (list, tuple)):
            raise TargetingError(path, f"must be an array, got {describe(raw)}")
        if non_empty and not raw:
            raise TargetingError(path, "must not be empty")
        return raw

    @staticmethod
    def text(raw: object, path: str) -> str:
        if not isinstance(raw, str) or not raw:
            raise TargetingError(path, f"must be a non-empty string, got {describe(raw)}")
        return raw

    @staticmethod
    def variation_ref(raw: object, path: str, variations: Mapping[str, Any]) -> str:
        ref = _Parser.text(raw, path)
        if ref not in variations:
            known = ", ".join(repr(v) for v in variations) or "none: the flag has no variations"
            raise TargetingError(path, f"unknown variation {ref!r} (known: {known})")
        return ref

    def id_set(self, raw: object, path: str) -> frozenset[str]:
        if raw is None:
            return frozenset()
        values = self.array(raw, path)
        return frozenset(self.text(v, f"{path}[{i}]") for i, v in enumerate(values))

    # -- flags -------------------------------------------------------------------------

    def flag(self, raw: Mapping[str, Any], base: str, key: str) -> FlagSpec:
        flag_type = self.flag_type(raw)
        variations = self.variations(raw.get("variations"), _join(base, "variations"), flag_type)
        off = raw.get("offVariation")
        off_variation = (
            None
            if off is None
            else self.variation_ref(off, _join(base, "offVariation"), variations)
        )
        targets = self.targets(raw.get("targets"), _join(base, "targets"), variations)
        rules: list[Rule] = []
        rules_raw = raw.get("rules")
        if rules_raw is not None:
            seen: dict[str, int] = {}
            for index, rule_raw in enumerate(self.array(rules_raw, _join(base, "rules"))):
                path = f"{_join(base, 'rules')}[{index}]"
                rule = self.rule(rule_raw, path, index, variations)
                if rule.id in seen:
                    raise TargetingError(
                        f"{path}.id", f"duplicate rule id {rule.id!r} (also rules[{seen[rule.id]}])"
                    )
                seen[rule.id] = index
                rules.append(rule)
        fall_raw = raw.get("fallthrough")
        fallthrough = (
            None
            if fall_raw is None
            else self.serve(fall_raw, _join(base, "fallthrough"), variations, SERVE_FIELDS)
        )
        prerequisites: list[tuple[str, str]] = []
        prerequisite_paths: list[str] = []
        pre_raw = raw.get("prerequisites")
        if pre_raw is not None:
            for index, item in enumerate(self.array(pre_raw, _join(base, "prerequisites"))):
                path = f"{_join(base, 'prerequisites')}[{index}]"
                entry = self.obj(item, path, PREREQUISITE_FIELDS)
                pre_key = self.text(entry.get("key"), f"{path}.key")
                if pre_key == key:
                    raise TargetingError(
                        f"{path}.key",
                        f"prerequisite cycle: {key} -> {key} (a flag cannot "
                        "be its own prerequisite)",
                    )
                variation = self.text(entry.get("variation"), f"{path}.variation")
                prerequisites.append((pre_key, variation))
                prerequisite_paths.append(path)
        salt = raw.get("salt", "")
        if salt is None:
            salt = ""
        if not isinstance(salt, str):
            raise TargetingError(_join(base, "salt"), f"must be a string, got {describe(salt)}")
        experiment: Experiment | None = None
        experiment_raw = raw.get("experiment")
        if experiment_raw is not None:
            try:
                experiment = self.experiment(experiment_raw, _join(base, "experiment"), variations)
            except TargetingError:
                if self.strict:
                    raise
                # Lenient (the client): a bad experiment field never breaks the targeting;
                # the flag is simply not treated as an experiment.
        return FlagSpec(
            variations,
            off_variation,
            targets,
            tuple(rules),
            fallthrough,
            tuple(prerequisites),
            tuple(prerequisite_paths),
            salt,
            experiment,
        )

    def experiment(self, raw: object, path: str, variations: Mapping[str, Any]) -> Experiment:
        """The ``experiment`` field: ``control`` (an existing variation) and ``metrics``."""
        if not variations:
            raise TargetingError(
                path, "only a flag with variations can be an experiment (add 'variations')"
            )
        entry = self.obj(raw, path, EXPERIMENT_FIELDS)
        control = self.variation_ref(entry.get("control"), f"{path}.control", variations)
        metrics: list[Metric] = []
        metrics_raw = entry.get("metrics")
        if metrics_raw is not None:
            for index, item in enumerate(self.array(metrics_raw, f"{path}.metrics")):
                metrics.append(self.metric(item, f"{path}.metrics[{index}]"))
        return Experiment(control, tuple(metrics))

    def metric(self, raw: object, path: str) -> Metric:
        entry = self.obj(raw, path, METRIC_FIELDS)
        event = self.text(entry.get("event"), f"{path}.event")
        if not _EVENT_TYPE_RE.fullmatch(event):
            raise TargetingError(
                f"{path}.event",
                f"{event!r} is not an event type track() accepts (1 to 128 characters from "
                "a-z, A-Z, 0-9, '.', '_' and '-')",
            )
        kind = entry.get("kind", "conversion")
        if kind not in METRIC_KINDS:
            raise TargetingError(f"{path}.kind", f"must be 'conversion' or 'numeric', got {kind!r}")
        value_field = entry.get("valueField")
        if value_field is not None:
            value_field = self.text(value_field, f"{path}.valueField")
        elif kind == "numeric":
            raise TargetingError(
                f"{path}.valueField",
                "is required for a numeric metric (the event data field holding the value, "
                "e.g. 'amount')",
            )
        return Metric(event, kind, value_field)

    @staticmethod
    def flag_type(raw: Mapping[str, Any]) -> FlagType:
        declared = raw.get("flagType")
        if isinstance(declared, str):
            try:
                return FlagType(declared)
            except ValueError:
                pass
        return FlagType.infer(raw.get("value"))

    def variations(self, raw: object, path: str, flag_type: FlagType) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if raw is None:
            return out
        for index, item in enumerate(self.array(raw, path)):
            item_path = f"{path}[{index}]"
            entry = self.obj(item, item_path, VARIATION_FIELDS)
            variation_id = self.text(entry.get("id"), f"{item_path}.id")
            if variation_id in out:
                raise TargetingError(f"{item_path}.id", f"duplicate variation id {variation_id!r}")
            if "value" not in entry:
                raise TargetingError(f"{item_path}.value", "is required")
            value = entry["value"]
            if isinstance(value, float) and not math.isfinite(value):
                raise TargetingError(f"{item_path}.value", f"must be finite, got {value!r}")
            if FlagType.infer(value) is not flag_type:
                raise TargetingError(
                    f"{item_path}.value",
                    f"must be a {flag_type.value} value like the flag's, got {describe(value)}",
                )
            out[variation_id] = value
        return out

    def targets(
        self, raw: object, path: str, variations: Mapping[str, Any]
    ) -> tuple[tuple[str, frozenset[str]], ...]:
        if raw is None:
            return ()
        out: list[tuple[str, frozenset[str]]] = []
        for index, item in enumerate(self.array(raw, path)):
            item_path = f"{path}[{index}]"
            entry = self.obj(item, item_path, TARGET_FIELDS)
            variation = self.variation_ref(
                entry.get("variation"), f"{item_path}.variation", variations
            )
            ids = self.array(entry.get("values"), f"{item_path}.values")
            out.append((variation, self.id_set(ids, f"{item_path}.values")))
        return tuple(out)

    def serve(
        self,
        raw: object,
        path: str,
        variations: Mapping[str, Any],
        allowed: frozenset[str],
    ) -> Serve:
        entry = self.obj(raw, path, allowed)
        has_variation = entry.get("variation") is not None
        has_rollout = entry.get("rollout") is not None
        if has_variation == has_rollout:
            raise TargetingError(path, "needs exactly one of 'variation' or 'rollout'")
        if has_variation:
            return Serve(
                self.variation_ref(entry["variation"], f"{path}.variation", variations), None
            )
        return Serve(None, self.rollout(entry["rollout"], f"{path}.rollout", variations))

    def rollout(self, raw: object, path: str, variations: Mapping[str, Any]) -> Rollout:
        entry = self.obj(raw, path, ROLLOUT_FIELDS)
        items = self.array(entry.get("variations"), f"{path}.variations", non_empty=True)
        ids: list[str] = []
        weights: list[int] = []
        for index, item in enumerate(items):
            item_path = f"{path}.variations[{index}]"
            weighted = self.obj(item, item_path, WEIGHTED_FIELDS)
            ref = self.variation_ref(
                weighted.get("variation"), f"{item_path}.variation", variations
            )
            if ref in ids:
                raise TargetingError(f"{item_path}.variation", f"variation {ref!r} listed twice")
            weight = weighted.get("weight")
            if isinstance(weight, bool) or not isinstance(weight, int):
                raise TargetingError(
                    f"{item_path}.weight",
                    f"must be an integer (1/100000 units), got {describe(weight)}",
                )
            if not 0 <= weight <= BUCKET_SCALE:
                raise TargetingError(
                    f"{item_path}.weight", f"must be between 0 and {BUCKET_SCALE}, got {weight}"
                )
            ids.append(ref)
            weights.append(weight)
        total = sum(weights)
        if total != BUCKET_SCALE:
            raise TargetingError(
                f"{path}.variations", f"weights must sum to {BUCKET_SCALE}, got {total}"
            )
        bucket_by = entry.get("bucketBy")
        if bucket_by is not None:
            bucket_by = self.attribute(bucket_by, f"{path}.bucketBy")
        return Rollout(tuple(ids), tuple(weights), bucket_by)

    def rule(
        self, raw: object, path: str, index: int, variations: Mapping[str, Any] | None
    ) -> Rule:
        in_segment = variations is None
        entry = self.obj(raw, path, SEGMENT_RULE_FIELDS if in_segment else RULE_FIELDS)
        rule_id = entry.get("id")
        rule_id = f"rule-{index}" if rule_id is None else self.text(rule_id, f"{path}.id")
        clauses: list[Clause] = []
        clauses_raw = entry.get("clauses")
        if clauses_raw is not None:
            for c_index, item in enumerate(self.array(clauses_raw, f"{path}.clauses")):
                clauses.append(self.clause(item, f"{path}.clauses[{c_index}]", in_segment))
        segment_clause: int | None = None
        segments_raw = None if in_segment else entry.get("segments")
        if segments_raw is not None:
            keys = self.array(segments_raw, f"{path}.segments", non_empty=True)
            keys_t = tuple(self.text(k, f"{path}.segments[{i}]") for i, k in enumerate(keys))
            paths = tuple(f"{path}.segments[{i}]" for i in range(len(keys_t)))
            segment_clause = len(clauses)
            clauses.append(Clause("", "segmentMatch", keys_t, False, paths, keys_t))
        else:
            for c_index, clause in enumerate(clauses):
                if clause.op == "segmentMatch" and not clause.negate:
                    segment_clause = c_index
                    break
        if not clauses:
            raise TargetingError(
                path, "a rule needs at least one clause" + ("" if in_segment else " or segment")
            )
        if in_segment:
            return Rule(rule_id, tuple(clauses), None, None)
        assert variations is not None
        serve = self.serve(entry, path, variations, RULE_FIELDS)
        return Rule(rule_id, tuple(clauses), segment_clause, serve)

    @staticmethod
    def attribute(raw: object, path: str) -> str:
        name = _Parser.text(raw, path)
        if name == "custom." or (name.startswith("custom.") and not name[7:]):
            raise TargetingError(path, "custom attribute name is empty")
        return name

    def clause(self, raw: object, path: str, in_segment: bool) -> Clause:
        entry = self.obj(raw, path, CLAUSE_FIELDS)
        op = entry.get("op")
        if not isinstance(op, str) or op not in OPERATORS:
            raise TargetingError(
                f"{path}.op", f"unknown operator {op!r} (known: {', '.join(OPERATORS)})"
            )
        if op == "segmentMatch" and in_segment:
            raise TargetingError(f"{path}.op", "segmentMatch cannot be used inside a segment")
        negate = entry.get("negate", False)
        if negate is None:
            negate = False
        if not isinstance(negate, bool):
            raise TargetingError(f"{path}.negate", f"must be a boolean, got {describe(negate)}")
        attribute = (
            ""
            if op == "segmentMatch"
            else self.attribute(entry.get("attribute"), f"{path}.attribute")
        )
        values_path = f"{path}.values"
        if op == "exists":
            if entry.get("values") is not None:
                self.array(entry["values"], values_path)
            return Clause(attribute, op, (), negate, ())
        raw_values = self.array(entry.get("values"), values_path, non_empty=True)
        paths = tuple(f"{values_path}[{i}]" for i in range(len(raw_values)))
        operator = OPERATOR_TABLE.get(op)
        check = operator.check if operator is not None else check_segment_key
        values: list[Any] = []
        for value, value_path in zip(raw_values, paths, strict=True):
            try:
                values.append(check(value))
            except ValueError as exc:
                raise TargetingError(value_path, str(exc)) from None
        checked = tuple(values)
        prepared = operator.prepare(checked) if operator is not None else checked
        return Clause(attribute, op, checked, negate, paths, prepared)

    # -- segments ----------------------------------------------------------------------

    def segment(self, raw: object, base: str) -> SegmentSpec:
        if not isinstance(raw, Mapping):
            raise TargetingError(base, f"must be an object, got {describe(raw)}")
        entry = raw if not self.strict else self.obj(raw, base, SEGMENT_FIELDS)
        key = self.text(entry.get("key"), _join(base, "key"))
        included = self.id_set(entry.get("included"), _join(base, "included"))
        excluded = self.id_set(entry.get("excluded"), _join(base, "excluded"))
        rules: list[Rule] = []
        rules_raw = entry.get("rules")
        if rules_raw is not None:
            for index, item in enumerate(self.array(rules_raw, _join(base, "rules"))):
                rules.append(self.rule(item, f"{_join(base, 'rules')}[{index}]", index, None))
        return SegmentSpec(key, included, excluded, tuple(rules))


# --------------------------------------------------------------------------------------
# Whole documents (the server's load-time check)
# --------------------------------------------------------------------------------------


def check_document(
    doc: Mapping[str, Any],
) -> tuple[list[SegmentSpec], dict[str, tuple[Mapping[str, Any], FlagSpec | None]]]:
    """Check every targeting field of a flags document strictly; raise on the first problem.

    Returns the parsed segments and, per flag key, its wire object and targeting (None
    for a simple flag). See ``validate_flags_document`` for what is checked.
    """
    parser = _Parser(strict=True)
    raw_segments = doc.get("segments")
    raw_segments = [] if raw_segments is None else parser.array(raw_segments, "segments")
    segment_index: dict[str, int] = {}
    segments: list[SegmentSpec] = []
    for index, raw in enumerate(raw_segments):
        spec = parser.segment(raw, f"segments[{index}]")
        if spec.key in segment_index:
            raise TargetingError(
                f"segments[{index}].key",
                f"duplicate segment key {spec.key!r} (also segments[{segment_index[spec.key]}])",
            )
        segment_index[spec.key] = index
        segments.append(spec)
    raw_flags = doc.get("flags")
    raw_flags = [] if raw_flags is None else parser.array(raw_flags, "flags")
    index_of: dict[str, int] = {}
    flags: dict[str, tuple[Mapping[str, Any], FlagSpec | None]] = {}
    for index, raw in enumerate(raw_flags):
        base = f"flags[{index}]"
        if not isinstance(raw, Mapping):
            raise TargetingError(base, f"must be an object, got {describe(raw)}")
        key = parser.text(raw.get("key"), f"{base}.key")
        if key in index_of:
            raise TargetingError(
                f"{base}.key", f"duplicate flag key {key!r} (also flags[{index_of[key]}])"
            )
        index_of[key] = index
        check_metadata(raw.get("metadata"), f"{base}.metadata")
        if not has_targeting(raw):
            if raw.get("experiment") is not None:
                raise TargetingError(
                    f"{base}.experiment",
                    "only a flag with variations can be an experiment (add 'variations')",
                )
            flags[key] = (raw, None)
            continue
        flag_spec = parser.flag(raw, base, key)
        for rule in flag_spec.rules:
            for clause in rule.clauses:
                if clause.op != "segmentMatch":
                    continue
                for segment_key, path in zip(clause.values, clause.value_paths, strict=True):
                    if segment_key not in segment_index:
                        raise TargetingError(path, f"unknown segment {segment_key!r}")
        flags[key] = (raw, flag_spec)
    specs = {key: spec for key, (_raw, spec) in flags.items()}
    _check_prerequisites(specs)
    _check_cycles(specs)
    return segments, flags


def _check_prerequisites(specs: Mapping[str, FlagSpec | None]) -> None:
    for spec in specs.values():
        if spec is None:
            continue
        for (pre_key, variation), path in zip(
            spec.prerequisites, spec.prerequisite_paths, strict=True
        ):
            if pre_key not in specs:
                raise TargetingError(f"{path}.key", f"unknown flag {pre_key!r}")
            target = specs[pre_key]
            if target is None or variation not in target.variations:
                known = (
                    ", ".join(repr(v) for v in target.variations)
                    if target is not None and target.variations
                    else "none: it has no variations"
                )
                raise TargetingError(
                    f"{path}.variation",
                    f"flag {pre_key!r} has no variation {variation!r} (known: {known})",
                )


def _check_cycles(specs: Mapping[str, FlagSpec | None]) -> None:
    done: set[str] = set()
    for start in specs:
        if start in done:
            continue
        # Iterative DFS: stack of (flag key, index of the next prerequisite to visit).
        path: list[str] = [start]
        on_path = {start}
        cursor = [0]
        while path:
            key = path[-1]
            spec = specs[key]
            prerequisites = spec.prerequisites if spec is not None else ()
            if cursor[-1] >= len(prerequisites):
                done.add(key)
                on_path.discard(key)
                path.pop()
                cursor.pop()
                continue
            position = cursor[-1]
            cursor[-1] += 1
            nxt = prerequisites[position][0]
            if nxt in on_path:
                cycle = " -> ".join([*path[path.index(nxt) :], nxt])
                assert spec is not None
                raise TargetingError(
                    f"{spec.prerequisite_paths[position]}.key", f"prerequisite cycle: {cycle}"
                )
            if nxt in done or nxt not in specs:
                continue
            path.append(nxt)
            on_path.add(nxt)
            cursor.append(0)
