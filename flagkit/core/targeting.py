"""The targeting model: parse, validate and compile flags and segments (docs/targeting.md).

A flag is the FlagState wire object (PROTOCOL §4.1) optionally extended with camelCase
targeting fields — ``variations``, ``offVariation``, ``targets``, ``rules``,
``fallthrough``, ``prerequisites`` and ``salt``. A flag without any of the first six is
*simple*: it is served exactly as the hosted service serves it (its ``value``, reason
``CACHED``), and :attr:`FlagModel.is_simple` lets callers skip the evaluator entirely.

Three entry points:

- :func:`compile_flag` / :func:`compile_segment` turn wire objects into models that
  :func:`flagkit.core.evaluator.evaluate` runs. They never raise: a malformed object
  yields a model whose ``error`` is set, and evaluating it gives ``EVALUATION_ERROR``.
  Unknown fields inside targeting objects are ignored here (forward compatibility).
- :func:`validate_flags_document` checks a whole flags file (strictly: unknown fields
  inside targeting objects are errors too) including cross-references — segment
  references, prerequisite flags/variations and prerequisite cycles — and raises
  :class:`TargetingError` with the path of the offending field.

Compilation turns each flag into one small generated Python function (rules become a
single boolean expression over the context; all constants, regexes, parsed dates and
versions and every possible :class:`~flagkit.core.evaluator.Decision` are prepared
once). Only identifiers generated here appear in that source: every value taken from a
flag lives in the function's namespace, never in its text.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import CodeType, MappingProxyType
from typing import Any, Final

from flagkit.core import evaluator as _rt
from flagkit.core.bucketing import BUCKET_SCALE, bucket_prefix
from flagkit.core.evaluator import Decision
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import EvaluationReason, FlagState, FlagType

__all__ = [
    "MAX_MATCH_INPUT_LENGTH",
    "MAX_PATTERN_LENGTH",
    "OPERATORS",
    "TARGETING_FIELDS",
    "FlagModel",
    "SegmentModel",
    "TargetingError",
    "compile_flag",
    "compile_segment",
    "validate_flags_document",
]

logger = logging.getLogger("flagkit.targeting")

TARGETING_FIELDS: Final = (
    "variations",
    "offVariation",
    "targets",
    "rules",
    "fallthrough",
    "prerequisites",
)
"""A flag with any of these (not null / empty) is targeted; without them it is simple."""

OPERATORS: Final = (
    "in",
    "equals",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "lt",
    "lte",
    "gt",
    "gte",
    "before",
    "after",
    "semverEq",
    "semverLt",
    "semverLte",
    "semverGt",
    "semverGte",
    "exists",
    "segmentMatch",
)
"""Every clause operator (``op``)."""

MAX_PATTERN_LENGTH: Final = 500
"""Longest regular expression accepted by ``matches`` (longer ones are rejected at load)."""
MAX_MATCH_INPUT_LENGTH: Final = 4096
"""``matches`` never matches an attribute string longer than this (bounds the cost)."""

_STRING_OPS: Final = frozenset({"contains", "startsWith", "endsWith", "matches"})
_NUMBER_OPS: Final = frozenset({"lt", "lte", "gt", "gte"})
_DATE_OPS: Final = frozenset({"before", "after"})
_SEMVER_OPS: Final = frozenset({"semverEq", "semverLt", "semverLte", "semverGt", "semverGte"})

_VARIATION_FIELDS: Final = frozenset({"id", "value", "name", "description"})
_TARGET_FIELDS: Final = frozenset({"variation", "values"})
_RULE_FIELDS: Final = frozenset(
    {"id", "description", "clauses", "segments", "variation", "rollout"}
)
_SEGMENT_RULE_FIELDS: Final = frozenset({"id", "description", "clauses"})
_CLAUSE_FIELDS: Final = frozenset({"attribute", "op", "values", "negate"})
_SERVE_FIELDS: Final = frozenset({"variation", "rollout"})
_ROLLOUT_FIELDS: Final = frozenset({"variations", "bucketBy"})
_WEIGHTED_FIELDS: Final = frozenset({"variation", "weight"})
_PREREQUISITE_FIELDS: Final = frozenset({"key", "variation"})
_SEGMENT_FIELDS: Final = frozenset(
    {"key", "name", "description", "included", "excluded", "rules", "version", "lastModified"}
)


class TargetingError(ValueError):
    """A targeting field is invalid; ``path`` names it (``flags[2].rules[0].clauses[1].op``).

    ``reason`` is the message without the path; ``str(error)`` is ``"{path}: {reason}"``.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}" if path else reason)
        self.path = path
        self.reason = reason


# --------------------------------------------------------------------------------------
# Parsed form (paths kept for error messages and document checks)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Clause:
    attribute: str
    op: str
    values: tuple[Any, ...]
    negate: bool
    value_paths: tuple[str, ...]


@dataclass(frozen=True)
class _Rollout:
    variations: tuple[str, ...]
    weights: tuple[int, ...]
    bucket_by: str | None


@dataclass(frozen=True)
class _Serve:
    variation: str | None
    rollout: _Rollout | None


@dataclass(frozen=True)
class _Rule:
    id: str
    clauses: tuple[_Clause, ...]
    segment_clause: int | None  # index of the clause whose match names the segment
    serve: _Serve | None  # None for segment rules


@dataclass(frozen=True)
class _FlagSpec:
    variations: dict[str, Any]
    off_variation: str | None
    targets: tuple[tuple[str, tuple[str, ...]], ...]
    rules: tuple[_Rule, ...]
    fallthrough: _Serve | None
    prerequisites: tuple[tuple[str, str], ...]
    prerequisite_paths: tuple[str, ...]
    salt: str


@dataclass(frozen=True)
class _SegmentSpec:
    key: str
    included: frozenset[str]
    excluded: frozenset[str]
    rules: tuple[_Rule, ...]


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    return type(value).__name__


class _Parser:
    """Turns wire objects into the parsed form; raises :class:`TargetingError`."""

    def __init__(self, *, strict: bool) -> None:
        self.strict = strict

    # -- primitives --------------------------------------------------------------------

    def obj(self, raw: object, path: str, allowed: frozenset[str]) -> Mapping[str, Any]:
        if not isinstance(raw, Mapping):
            raise TargetingError(path, f"must be an object, got {_describe(raw)}")
        if self.strict:
            for name in raw:
                if name not in allowed:
                    known = ", ".join(sorted(allowed))
                    raise TargetingError(_join(path, str(name)), f"unknown field (known: {known})")
        return raw

    @staticmethod
    def array(raw: object, path: str, *, non_empty: bool = False) -> Sequence[Any]:
        if not isinstance(raw, (list, tuple)):
            raise TargetingError(path, f"must be an array, got {_describe(raw)}")
        if non_empty and not raw:
            raise TargetingError(path, "must not be empty")
        return raw

    @staticmethod
    def text(raw: object, path: str) -> str:
        if not isinstance(raw, str) or not raw:
            raise TargetingError(path, f"must be a non-empty string, got {_describe(raw)}")
        return raw

    @staticmethod
    def variation_ref(raw: object, path: str, variations: Mapping[str, Any]) -> str:
        ref = _Parser.text(raw, path)
        if ref not in variations:
            known = ", ".join(repr(v) for v in variations) or "none: the flag has no variations"
            raise TargetingError(path, f"unknown variation {ref!r} (known: {known})")
        return ref

    # -- flags -------------------------------------------------------------------------

    def flag(self, raw: Mapping[str, Any], base: str, key: str) -> _FlagSpec:
        flag_type = self.flag_type(raw)
        variations = self.variations(raw.get("variations"), _join(base, "variations"), flag_type)
        off = raw.get("offVariation")
        off_variation = (
            None
            if off is None
            else self.variation_ref(off, _join(base, "offVariation"), variations)
        )
        targets = self.targets(raw.get("targets"), _join(base, "targets"), variations)
        rules_raw = raw.get("rules")
        rules: list[_Rule] = []
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
            else self.serve(fall_raw, _join(base, "fallthrough"), variations, _SERVE_FIELDS)
        )
        prerequisites: list[tuple[str, str]] = []
        prerequisite_paths: list[str] = []
        pre_raw = raw.get("prerequisites")
        if pre_raw is not None:
            for index, item in enumerate(self.array(pre_raw, _join(base, "prerequisites"))):
                path = f"{_join(base, 'prerequisites')}[{index}]"
                entry = self.obj(item, path, _PREREQUISITE_FIELDS)
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
            raise TargetingError(_join(base, "salt"), f"must be a string, got {_describe(salt)}")
        return _FlagSpec(
            variations,
            off_variation,
            targets,
            tuple(rules),
            fallthrough,
            tuple(prerequisites),
            tuple(prerequisite_paths),
            salt,
        )

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
            entry = self.obj(item, item_path, _VARIATION_FIELDS)
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
                    f"must be a {flag_type.value} value like the flag's, got {_describe(value)}",
                )
            out[variation_id] = value
        return out

    def targets(
        self, raw: object, path: str, variations: Mapping[str, Any]
    ) -> tuple[tuple[str, tuple[str, ...]], ...]:
        if raw is None:
            return ()
        out: list[tuple[str, tuple[str, ...]]] = []
        for index, item in enumerate(self.array(raw, path)):
            item_path = f"{path}[{index}]"
            entry = self.obj(item, item_path, _TARGET_FIELDS)
            variation = self.variation_ref(
                entry.get("variation"), f"{item_path}.variation", variations
            )
            values = self.array(entry.get("values"), f"{item_path}.values")
            ids = tuple(self.text(v, f"{item_path}.values[{i}]") for i, v in enumerate(values))
            out.append((variation, ids))
        return tuple(out)

    def serve(
        self,
        raw: object,
        path: str,
        variations: Mapping[str, Any],
        allowed: frozenset[str],
    ) -> _Serve:
        entry = self.obj(raw, path, allowed)
        has_variation = entry.get("variation") is not None
        has_rollout = entry.get("rollout") is not None
        if has_variation == has_rollout:
            raise TargetingError(path, "needs exactly one of 'variation' or 'rollout'")
        if has_variation:
            return _Serve(
                self.variation_ref(entry["variation"], f"{path}.variation", variations), None
            )
        return _Serve(None, self.rollout(entry["rollout"], f"{path}.rollout", variations))

    def rollout(self, raw: object, path: str, variations: Mapping[str, Any]) -> _Rollout:
        entry = self.obj(raw, path, _ROLLOUT_FIELDS)
        items = self.array(entry.get("variations"), f"{path}.variations", non_empty=True)
        ids: list[str] = []
        weights: list[int] = []
        for index, item in enumerate(items):
            item_path = f"{path}.variations[{index}]"
            weighted = self.obj(item, item_path, _WEIGHTED_FIELDS)
            ref = self.variation_ref(
                weighted.get("variation"), f"{item_path}.variation", variations
            )
            if ref in ids:
                raise TargetingError(f"{item_path}.variation", f"variation {ref!r} listed twice")
            weight = weighted.get("weight")
            if isinstance(weight, bool) or not isinstance(weight, int):
                raise TargetingError(
                    f"{item_path}.weight",
                    f"must be an integer (1/100000 units), got {_describe(weight)}",
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
        return _Rollout(tuple(ids), tuple(weights), bucket_by)

    def rule(
        self, raw: object, path: str, index: int, variations: Mapping[str, Any] | None
    ) -> _Rule:
        in_segment = variations is None
        entry = self.obj(raw, path, _SEGMENT_RULE_FIELDS if in_segment else _RULE_FIELDS)
        rule_id = entry.get("id")
        rule_id = f"rule-{index}" if rule_id is None else self.text(rule_id, f"{path}.id")
        clauses: list[_Clause] = []
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
            clauses.append(_Clause("", "segmentMatch", keys_t, False, paths))
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
            return _Rule(rule_id, tuple(clauses), None, None)
        assert variations is not None
        serve = self.serve(entry, path, variations, _RULE_FIELDS)
        return _Rule(rule_id, tuple(clauses), segment_clause, serve)

    @staticmethod
    def attribute(raw: object, path: str) -> str:
        name = _Parser.text(raw, path)
        if name == "custom." or (name.startswith("custom.") and not name[7:]):
            raise TargetingError(path, "custom attribute name is empty")
        return name

    def clause(self, raw: object, path: str, in_segment: bool) -> _Clause:
        entry = self.obj(raw, path, _CLAUSE_FIELDS)
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
            raise TargetingError(f"{path}.negate", f"must be a boolean, got {_describe(negate)}")
        attribute = (
            ""
            if op == "segmentMatch"
            else self.attribute(entry.get("attribute"), f"{path}.attribute")
        )
        values_path = f"{path}.values"
        if op == "exists":
            if entry.get("values") is not None:
                self.array(entry["values"], values_path)
            return _Clause(attribute, op, (), negate, ())
        raw_values = self.array(entry.get("values"), values_path, non_empty=True)
        paths = tuple(f"{values_path}[{i}]" for i in range(len(raw_values)))
        values = tuple(self.clause_value(op, v, p) for v, p in zip(raw_values, paths, strict=True))
        return _Clause(attribute, op, values, negate, paths)

    @staticmethod
    def clause_value(op: str, value: object, path: str) -> Any:
        if op in ("in", "equals"):
            if isinstance(value, float) and not math.isfinite(value):
                raise TargetingError(path, f"must be finite, got {value!r}")
            if not isinstance(value, (str, int, float)):
                raise TargetingError(
                    path,
                    f"must be a string, number or boolean, got {_describe(value)}"
                    + (" (use the 'exists' operator)" if value is None else ""),
                )
            return value
        if op in _STRING_OPS or op == "segmentMatch":
            if not isinstance(value, str):
                raise TargetingError(path, f"must be a string, got {_describe(value)}")
            if op == "segmentMatch" and not value:
                raise TargetingError(path, "must be a non-empty segment key")
            if op == "matches":
                if len(value) > MAX_PATTERN_LENGTH:
                    raise TargetingError(
                        path, f"regular expression longer than {MAX_PATTERN_LENGTH} characters"
                    )
                try:
                    return re.compile(value)
                except (re.error, RecursionError, OverflowError) as exc:
                    raise TargetingError(path, f"invalid regular expression: {exc}") from None
            return value
        if op in _NUMBER_OPS:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TargetingError(path, f"must be a number, got {_describe(value)}")
            if isinstance(value, float) and not math.isfinite(value):
                raise TargetingError(path, f"must be finite, got {value!r}")
            return value
        if op in _DATE_OPS:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise TargetingError(
                    path,
                    "must be an ISO-8601 date string or epoch milliseconds, "
                    f"got {_describe(value)}",
                )
            key = _rt.date_key(value)
            if key is None:
                raise TargetingError(path, f"invalid date {value!r} (use ISO-8601)")
            return key
        # semantic versions
        if not isinstance(value, str):
            raise TargetingError(path, f"must be a version string, got {_describe(value)}")
        parsed = _rt.parse_semver(value)
        if parsed is None:
            raise TargetingError(path, f"invalid semantic version {value!r}")
        return parsed

    # -- segments ----------------------------------------------------------------------

    def segment(self, raw: object, base: str) -> _SegmentSpec:
        if not isinstance(raw, Mapping):
            raise TargetingError(base, f"must be an object, got {_describe(raw)}")
        entry = raw if not self.strict else self.obj(raw, base, _SEGMENT_FIELDS)
        key = self.text(entry.get("key"), _join(base, "key"))
        included = self.id_set(entry.get("included"), _join(base, "included"))
        excluded = self.id_set(entry.get("excluded"), _join(base, "excluded"))
        rules: list[_Rule] = []
        rules_raw = entry.get("rules")
        if rules_raw is not None:
            for index, item in enumerate(self.array(rules_raw, _join(base, "rules"))):
                rules.append(self.rule(item, f"{_join(base, 'rules')}[{index}]", index, None))
        return _SegmentSpec(key, included, excluded, tuple(rules))

    def id_set(self, raw: object, path: str) -> frozenset[str]:
        if raw is None:
            return frozenset()
        values = self.array(raw, path)
        return frozenset(self.text(v, f"{path}[{i}]") for i, v in enumerate(values))


# --------------------------------------------------------------------------------------
# Code generation
# --------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _compile_source(source: str) -> CodeType:
    # Flags of the same shape share generated source; only their namespaces differ.
    return compile(source, "<flagkit-targeting>", "exec")


_RUNTIME_NAMES: Final[dict[str, Any]] = {
    "_EMPTY_CTX": _rt.EMPTY_CONTEXT,
    "_EMPTY_MAP": {},
    "_EXACT": frozenset({str, int, float, bool, type(None)}),
    "_anon": _rt.anonymous_of,
    "_generic": _rt.match_generic,
    "_date": _rt.date_key,
    "_semver": _rt.semver_key,
    "_segmatch": _rt.segment_match,
    "_prereq": _rt.check_prerequisites,
    "_bucket_value": _rt.bucketing_value,
    "_sha256": hashlib.sha256,
    "_from_bytes": int.from_bytes,
}


class _Codegen:
    """Builds the source and namespace of one generated function."""

    def __init__(self) -> None:
        self.ns: dict[str, Any] = dict(_RUNTIME_NAMES)
        self.helpers: list[str] = []
        self.count = 0
        self.uses_custom = False

    def const(self, value: Any) -> str:
        name = f"_c{self.count}"
        self.count += 1
        self.ns[name] = value
        return name

    def attribute(self, attribute: str) -> str:
        custom = _rt.custom_name(attribute)
        if custom is not None:
            self.uses_custom = True
            return f"cu.get({self.const(custom)})"
        if attribute == "anonymous":
            return "_anon(ctx)"
        return f"ctx.{_rt.BUILTIN_ATTRIBUTES[attribute]}"

    def scalar_test(self, clause: _Clause) -> str:
        """An expression over ``v`` (a plain built-in scalar) for the un-negated clause.

        The first use of ``v`` is written ``@v@`` so the caller can put the assignment
        of the attribute value there (saving a separate ``is not None`` test).
        """
        op, values = clause.op, clause.values
        if op in ("in", "equals"):
            strings = frozenset(v for v in values if isinstance(v, str))
            numbers = frozenset(
                v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
            )
            bools = frozenset(v for v in values if isinstance(v, bool))
            parts = []
            # Cheapest forms first: identity for booleans, == for a single string (never
            # raises, and a list falls through to the generic path), a set otherwise.
            if bools == {True} or bools == {False}:
                parts.append(f"(@v@ is {next(iter(bools))})")
            elif bools:
                parts.append("(@v@ is True or v is False)")
            if len(strings) == 1:
                parts.append(f"(@v@ == {self.const(next(iter(strings)))})")
            elif strings:
                parts.append(f"(@v@.__class__ is str and v in {self.const(strings)})")
            if numbers:
                number_set = self.const(numbers)
                parts.append(
                    f"((@v@.__class__ is int or v.__class__ is float) and v in {number_set})"
                )
            return "(" + " or ".join([parts[0], *(p.replace("@v@", "v") for p in parts[1:])]) + ")"
        if op == "contains":
            alts = " or ".join(f"{self.const(v)} in v" for v in values)
            return f"(@v@.__class__ is str and ({alts}))"
        if op in ("startsWith", "endsWith"):
            if "" in values:
                return "(@v@.__class__ is str)"
            # removeprefix/removesuffix change ``v`` exactly when it has the (non-empty)
            # affix; as one-argument methods they are called much faster than
            # startswith/endswith (tuple + argument parsing on CPython 3.11) or a slice, and
            # the unchanged result is ``v`` itself, so ``!=`` is an identity check then.
            method = "removeprefix" if op == "startsWith" else "removesuffix"
            alts = " or ".join(f"v.{method}({self.const(v)}) != v" for v in values)
            return f"(@v@.__class__ is str and ({alts}))"
        if op == "matches":
            alts = " or ".join(f"{self.const(p.search)}(v) is not None" for p in values)
            return f"(@v@.__class__ is str and len(v) <= {MAX_MATCH_INPUT_LENGTH} and ({alts}))"
        if op in _NUMBER_OPS:
            symbol = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[op]
            bound = max(values) if op in ("lt", "lte") else min(values)
            limit = self.const(bound)
            return f"((@v@.__class__ is int or v.__class__ is float) and v {symbol} {limit})"
        if op in _DATE_OPS:
            if op == "before":
                return f"((t := _date(@v@)) is not None and t < {self.const(max(values))})"
            return f"((t := _date(@v@)) is not None and t > {self.const(min(values))})"
        # semantic versions
        head = "(@v@.__class__ is str and (t := _semver(v)) is not None and "
        if op == "semverEq":
            return head + f"t in {self.const(frozenset(values))})"
        symbol = {"semverLt": "<", "semverLte": "<=", "semverGt": ">", "semverGte": ">="}[op]
        bound = max(values) if op in ("semverLt", "semverLte") else min(values)
        return head + f"t {symbol} {self.const(bound)})"

    def clause(self, clause: _Clause, assign_segment: bool) -> str:
        if clause.op == "segmentMatch":
            call = f"_segmatch(ctx, segments, {self.const(tuple(clause.values))})"
            if clause.negate:
                return f"({call} is None)"
            if assign_segment:
                return f"((s := {call}) is not None)"
            return f"({call} is not None)"
        attr = self.attribute(clause.attribute)
        if clause.op == "exists":
            return f"({attr} is {'' if clause.negate else 'not '}None)"
        template = self.scalar_test(clause)
        test = template.replace("@v@", "v")
        scalar = f"_s{len(self.helpers)}"
        self.helpers.append(f"def {scalar}(v):\n    return {test}\n")
        fallback = f"(v.__class__ not in _EXACT and _generic({scalar}, v))"
        if clause.negate:
            # A missing attribute never matches, negated or not.
            return f"((v := {attr}) is not None and not ({test} or {fallback}))"
        # None fails the typed test and is in _EXACT, so no separate None check is needed.
        return f"({template.replace('@v@', f'(v := {attr})', 1)} or {fallback})"

    def condition(self, rule: _Rule) -> str:
        return " and ".join(
            self.clause(clause, index == rule.segment_clause)
            for index, clause in enumerate(rule.clauses)
        )

    def build(self, body: list[str], name: str) -> Callable[..., Any]:
        prologue = ["    if ctx is None:", "        ctx = _EMPTY_CTX"]
        if self.uses_custom:
            prologue.append("    cu = ctx.custom or _EMPTY_MAP")
        signature = (
            f"def {name}(ctx, flags, segments, stack):\n"
            if name == "_evaluate"
            else f"def {name}(ctx):\n"
        )
        source = "".join(self.helpers) + signature + "\n".join(prologue + body) + "\n"
        exec(_compile_source(source), self.ns)
        function: Callable[..., Any] = self.ns[name]
        return function


def _decision(
    spec: _FlagSpec,
    variation: str,
    reason: EvaluationReason,
    rule_id: str | None = None,
    segment_id: str | None = None,
) -> Decision:
    return Decision(spec.variations[variation], reason, variation, rule_id, segment_id)


def _serve_lines(
    gen: _Codegen,
    spec: _FlagSpec,
    serve: _Serve,
    reason: EvaluationReason,
    prefix: bytes,
    rule: _Rule | None,
    segment_keys: tuple[str, ...] | None,
    value: Any,
    indent: str,
) -> list[str]:
    """Statements returning the Decision for ``serve`` (``s`` holds the matched segment).

    A rollout is emitted inline (the bucket hash of ``flagkit.core.bucketing`` included).
    When the context has no bucketing value, a rule's rollout emits no ``return`` (the
    next rule is tried) and the fallthrough's returns the flag's value.
    """
    rule_id = rule.id if rule is not None else None

    def decision_expr(variation: str) -> str:
        if segment_keys is None:
            return gen.const(_decision(spec, variation, reason, rule_id))
        table = {k: _decision(spec, variation, reason, rule_id, k) for k in segment_keys}
        return f"{gen.const(table)}[s]"

    if serve.variation is not None:
        return [f"{indent}return {decision_expr(serve.variation)}"]
    rollout = serve.rollout
    assert rollout is not None
    lines: list[str] = []
    if rollout.bucket_by in (None, "userId"):
        lines += [
            f"{indent}v = ctx.user_id",
            f"{indent}if v.__class__ is not str:",
            f"{indent}    v = _bucket_value(ctx, None)",
        ]
    else:
        getter = gen.const(_rt.attribute_getter(rollout.bucket_by or ""))
        lines.append(f"{indent}v = _bucket_value(ctx, {getter})")
    head = gen.const(prefix)
    lines += [
        f"{indent}if v is not None:",
        f"{indent}    try:",
        f"{indent}        m = {head} + v.encode()",
        f"{indent}    except UnicodeEncodeError:",
        f"{indent}        m = {head} + v.encode('utf-8', 'surrogatepass')",
        f"{indent}    b = (_from_bytes(_sha256(m).digest()[:8], 'big') * {BUCKET_SCALE}) >> 64",
    ]
    upper = 0
    bounds: list[tuple[int, str]] = []
    for variation, weight in zip(rollout.variations, rollout.weights, strict=True):
        upper += weight
        if weight:
            bounds.append((upper, variation))
    for bound, variation in bounds[:-1]:
        lines += [
            f"{indent}    if b < {bound}:",
            f"{indent}        return {decision_expr(variation)}",
        ]
    lines.append(f"{indent}    return {decision_expr(bounds[-1][1])}")
    if rule is None:
        lines.append(f"{indent}return {gen.const(Decision(value, reason))}")
    return lines


def _build_flag_function(key: str, spec: _FlagSpec, value: Any) -> Callable[..., Decision]:
    gen = _Codegen()
    prefix = bucket_prefix(key, spec.salt)
    body: list[str] = []
    if spec.prerequisites:
        failed = (
            _decision(spec, spec.off_variation, EvaluationReason.PREREQUISITE_FAILED)
            if spec.off_variation is not None
            else Decision(value, EvaluationReason.PREREQUISITE_FAILED)
        )
        body += [
            f"    d = _prereq({gen.const(key)}, {gen.const(spec.prerequisites)}, "
            f"{gen.const(failed)}, ctx, flags, segments, stack)",
            "    if d is not None:",
            "        return d",
        ]
    if spec.targets:
        table: dict[str, Decision] = {}
        for variation, ids in spec.targets:
            decision = _decision(spec, variation, EvaluationReason.TARGET_MATCH)
            for user in ids:
                table.setdefault(user, decision)
        body += [
            "    k = ctx.user_id",
            "    if k is None:",
            "        k = ctx.user_key",
            "    if k is not None:",
            f"        d = {gen.const(table)}.get(k)",
            "        if d is not None:",
            "            return d",
        ]
    for rule in spec.rules:
        assert rule.serve is not None
        segment_keys = (
            tuple(rule.clauses[rule.segment_clause].values)
            if rule.segment_clause is not None
            else None
        )
        reason = (
            EvaluationReason.SEGMENT_MATCH
            if segment_keys is not None
            else EvaluationReason.RULE_MATCH
        )
        body.append(f"    if {gen.condition(rule)}:")
        body += _serve_lines(
            gen, spec, rule.serve, reason, prefix, rule, segment_keys, value, " " * 8
        )
    if spec.fallthrough is not None:
        body += _serve_lines(
            gen,
            spec,
            spec.fallthrough,
            EvaluationReason.FALLTHROUGH,
            prefix,
            None,
            None,
            value,
            " " * 4,
        )
    else:
        body.append(f"    return {gen.const(Decision(value, EvaluationReason.FALLTHROUGH))}")
    return gen.build(body, "_evaluate")


def _build_segment_function(spec: _SegmentSpec) -> Callable[[EvaluationContext], bool]:
    gen = _Codegen()
    body: list[str] = []
    if spec.included or spec.excluded:
        body += [
            "    k = ctx.user_id",
            "    if k is None:",
            "        k = ctx.user_key",
            "    if k is not None:",
            f"        if k in {gen.const(spec.included)}:",
            "            return True",
            f"        if k in {gen.const(spec.excluded)}:",
            "            return False",
        ]
    for rule in spec.rules:
        body += [f"    if {gen.condition(rule)}:", "        return True"]
    body.append("    return False")
    return gen.build(body, "_contains")


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


def _constant(decision: Decision) -> Callable[..., Decision]:
    def evaluate_constant(
        ctx: object, flags: object = None, segments: object = None, stack: object = None
    ) -> Decision:
        return decision

    return evaluate_constant


def _has_targeting(raw: Mapping[str, Any]) -> bool:
    for name in TARGETING_FIELDS:
        field_value = raw.get(name)
        if field_value is not None and not (
            isinstance(field_value, (list, tuple, dict)) and not field_value
        ):
            return True
    return False


class FlagModel:
    """A compiled flag, ready for :func:`~flagkit.core.evaluator.evaluate`.

    Attributes: ``state`` (the :class:`FlagState`), ``key``, ``is_simple`` (no targeting
    fields: callers may serve ``state.value`` with reason ``CACHED`` directly), ``error``
    (why the targeting is malformed, else None), ``variations`` (id -> value),
    ``prerequisites`` (``(flag key, variation id)`` pairs) and ``segment_keys`` (segments
    its rules reference). Immutable and thread-safe; build with :func:`compile_flag`.
    """

    __slots__ = (
        "_evaluate",
        "error",
        "is_simple",
        "key",
        "prerequisites",
        "segment_keys",
        "state",
        "variations",
    )

    def __init__(
        self,
        state: FlagState,
        *,
        is_simple: bool,
        error: str | None,
        variations: Mapping[str, Any],
        prerequisites: tuple[tuple[str, str], ...],
        segment_keys: frozenset[str],
        evaluate: Callable[..., Decision],
    ) -> None:
        self.state = state
        self.key = state.key
        self.is_simple = is_simple
        self.error = error
        self.variations = variations
        self.prerequisites = prerequisites
        self.segment_keys = segment_keys
        self._evaluate = evaluate

    def __repr__(self) -> str:
        kind = "simple" if self.is_simple else ("malformed" if self.error else "targeted")
        return f"FlagModel(key={self.key!r}, version={self.state.version}, {kind})"


class SegmentModel:
    """A compiled segment: ``key``, ``error`` (None when valid), ``included``/``excluded``
    user ids and ``raw`` (the wire object). Evaluating a rule that references a
    malformed segment gives ``EVALUATION_ERROR``. Immutable and thread-safe; build with
    :func:`compile_segment`.
    """

    __slots__ = ("_contains", "error", "excluded", "included", "key", "raw")

    def __init__(
        self,
        key: str,
        raw: Mapping[str, Any],
        *,
        error: str | None,
        included: frozenset[str],
        excluded: frozenset[str],
        contains: Callable[[EvaluationContext], bool],
    ) -> None:
        self.key = key
        self.raw = raw
        self.error = error
        self.included = included
        self.excluded = excluded
        self._contains = contains

    def __repr__(self) -> str:
        return f"SegmentModel(key={self.key!r}{', malformed' if self.error else ''})"


def _segment_keys(spec: _FlagSpec) -> frozenset[str]:
    return frozenset(
        key
        for rule in spec.rules
        for clause in rule.clauses
        if clause.op == "segmentMatch"
        for key in clause.values
    )


def compile_flag(state: FlagState) -> FlagModel:
    """Compile a flag for evaluation; never raises.

    >>> model = compile_flag(FlagState.from_dict({"key": "a", "value": False,
    ...     "enabled": True, "version": 1, "variations": [{"id": "x", "value": True}],
    ...     "fallthrough": {"variation": "x"}}))
    >>> model.is_simple, model.error
    (False, None)

    Malformed targeting gives a model whose ``error`` reads like
    ``"rules[0].clauses[1].op: unknown operator 'near'"`` (also logged once, as a
    warning on ``flagkit.targeting``). Thread-safe.
    """
    raw = state.raw
    if not _has_targeting(raw):
        simple = Decision(state.value, EvaluationReason.CACHED)
        return FlagModel(
            state,
            is_simple=True,
            error=None,
            variations={},
            prerequisites=(),
            segment_keys=frozenset(),
            evaluate=_constant(simple),
        )
    try:
        spec = _Parser(strict=False).flag(raw, "", state.key)
        if not state.enabled:
            off = (
                _decision(spec, spec.off_variation, EvaluationReason.FLAG_DISABLED)
                if spec.off_variation is not None
                else Decision(state.value, EvaluationReason.FLAG_DISABLED)
            )
            function: Callable[..., Decision] = _constant(off)
        else:
            function = _build_flag_function(state.key, spec, state.value)
    except TargetingError as exc:
        return _broken_flag(state, str(exc))
    except (RecursionError, MemoryError, SyntaxError, ValueError, TypeError) as exc:
        return _broken_flag(state, f"cannot compile targeting: {type(exc).__name__}: {exc}")
    return FlagModel(
        state,
        is_simple=False,
        error=None,
        variations=MappingProxyType(spec.variations),
        prerequisites=spec.prerequisites,
        segment_keys=_segment_keys(spec),
        evaluate=function,
    )


def _broken_flag(state: FlagState, error: str) -> FlagModel:
    logger.warning("flag %r has malformed targeting, serving its value: %s", state.key, error)
    return FlagModel(
        state,
        is_simple=False,
        error=error,
        variations={},
        prerequisites=(),
        segment_keys=frozenset(),
        evaluate=_constant(_rt.error_decision(state.value, error)),
    )


def compile_segment(raw: Mapping[str, Any]) -> SegmentModel:
    """Compile a segment object (``key``, ``included``, ``excluded``, ``rules``); never raises.

    A malformed segment gets ``error`` set (logged once as a warning); any rule
    referencing it then evaluates to ``EVALUATION_ERROR``. Thread-safe.
    """
    key = raw.get("key") if isinstance(raw, Mapping) else None
    key_text = key if isinstance(key, str) else ""
    try:
        spec = _Parser(strict=False).segment(raw, "")
        contains = _build_segment_function(spec)
    except TargetingError as exc:
        return _broken_segment(key_text, raw, str(exc))
    except (RecursionError, MemoryError, SyntaxError, ValueError, TypeError) as exc:
        return _broken_segment(key_text, raw, f"cannot compile: {type(exc).__name__}: {exc}")
    return SegmentModel(
        spec.key,
        raw,
        error=None,
        included=spec.included,
        excluded=spec.excluded,
        contains=contains,
    )


def _broken_segment(key: str, raw: Any, error: str) -> SegmentModel:
    logger.warning("segment %r is malformed: %s", key, error)
    message = f"segment {key!r} is malformed: {error}"

    def contains(ctx: EvaluationContext) -> bool:
        raise _rt.EvaluationFailure(message)

    return SegmentModel(
        key,
        raw if isinstance(raw, Mapping) else {},
        error=error,
        included=frozenset(),
        excluded=frozenset(),
        contains=contains,
    )


# --------------------------------------------------------------------------------------
# Whole documents (the server's load-time check)
# --------------------------------------------------------------------------------------


def validate_flags_document(doc: Mapping[str, Any]) -> None:
    """Check every targeting field of a flags document; raise on the first problem.

    ``doc`` is the flags file object: ``flags`` and ``segments`` arrays (other top-level
    keys are not looked at). Checks, strictly (unknown fields inside targeting objects
    are errors): each flag's and segment's targeting, that rules reference existing
    segments, that prerequisites name existing flags and variations, and that
    prerequisites have no cycle. Compiles each flag, so a file that passes compiles
    without ``error`` in the client.

    Raises :class:`TargetingError` whose ``path`` is e.g.
    ``flags[2].rules[0].clauses[1].op`` or ``flags[0].prerequisites[0].key``.
    Thread-safe (pure).
    """
    parser = _Parser(strict=True)
    raw_segments = doc.get("segments")
    raw_segments = [] if raw_segments is None else parser.array(raw_segments, "segments")
    segment_index: dict[str, int] = {}
    for index, raw in enumerate(raw_segments):
        spec = parser.segment(raw, f"segments[{index}]")
        if spec.key in segment_index:
            raise TargetingError(
                f"segments[{index}].key",
                f"duplicate segment key {spec.key!r} (also segments[{segment_index[spec.key]}])",
            )
        segment_index[spec.key] = index
        _build_segment_function(spec)
    raw_flags = doc.get("flags")
    raw_flags = [] if raw_flags is None else parser.array(raw_flags, "flags")
    specs: dict[str, tuple[int, _FlagSpec | None]] = {}
    for index, raw in enumerate(raw_flags):
        base = f"flags[{index}]"
        if not isinstance(raw, Mapping):
            raise TargetingError(base, f"must be an object, got {_describe(raw)}")
        key = parser.text(raw.get("key"), f"{base}.key")
        if key in specs:
            raise TargetingError(
                f"{base}.key", f"duplicate flag key {key!r} (also flags[{specs[key][0]}])"
            )
        if not _has_targeting(raw):
            specs[key] = (index, None)
            continue
        flag_spec = parser.flag(raw, base, key)
        for rule in flag_spec.rules:
            for clause in rule.clauses:
                if clause.op != "segmentMatch":
                    continue
                for segment_key, path in zip(clause.values, clause.value_paths, strict=True):
                    if segment_key not in segment_index:
                        raise TargetingError(path, f"unknown segment {segment_key!r}")
        _build_flag_function(key, flag_spec, raw.get("value"))
        specs[key] = (index, flag_spec)
    for _index, checked in specs.values():
        if checked is None:
            continue
        flag_spec = checked
        for (pre_key, variation), path in zip(
            flag_spec.prerequisites, flag_spec.prerequisite_paths, strict=True
        ):
            target = specs.get(pre_key)
            if target is None:
                raise TargetingError(f"{path}.key", f"unknown flag {pre_key!r}")
            target_spec = target[1]
            if target_spec is None or variation not in target_spec.variations:
                known = (
                    ", ".join(repr(v) for v in target_spec.variations)
                    if target_spec is not None and target_spec.variations
                    else "none: it has no variations"
                )
                raise TargetingError(
                    f"{path}.variation",
                    f"flag {pre_key!r} has no variation {variation!r} (known: {known})",
                )
    _check_cycles(specs)


def _check_cycles(specs: Mapping[str, tuple[int, _FlagSpec | None]]) -> None:
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
            spec = specs[key][1]
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
