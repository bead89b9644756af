"""The flag snapshot: one immutable view of every flag, segment and bootstrap value.

A :class:`FlagSnapshot` holds:

- ``entries``: one compact :class:`FlagEntry` per server flag (value, enabled, version, type,
  last-modified, any extra wire fields) — flags with targeting also carry their model,
  parsed by :func:`flagkit.core.targeting.compile_flag` (its code is generated on the
  flag's first evaluation). Simple flags keep no model
  and no :class:`FlagState` object: 10,000 flags fit in a few megabytes. ``models`` is a
  read-only view compiling a simple flag only if a prerequisite asks for it;
- ``segments``: compiled segments for targeting rules;
- ``bootstrap``: the accepted bootstrap values (served with reason ``BOOTSTRAP`` when the
  server has no such flag);
- freshness — ``expires_at`` on the ``time.monotonic()`` clock. It belongs to the snapshot,
  not to each entry: a successful poll with no changes renews it, so flags only go stale
  when the updates really stop;
- fast tables for typed getters: ``bools``, ``strings``, ``numbers``, ``jsons`` map a key to
  its value for every flag without targeting whose value has its declared type (bootstrap
  values included when the server has no such key), and a flag with targeting to
  :data:`NEEDS_EVALUATION` in the table of its declared type. A typed getter on a simple
  flag is one dict lookup; anything else takes the rules of :mod:`flagkit.core.evaluation`.

:class:`flagkit.core.store.FlagStore` builds snapshots and swaps them in.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypedDict

from flagkit.core.targeting import FlagModel, SegmentModel, compile_flag
from flagkit.types.flag import FlagState, FlagType

__all__ = [
    "NEEDS_EVALUATION",
    "ChangeSet",
    "FlagEntry",
    "FlagSnapshot",
    "Tables",
    "build_tables",
    "fast_entry",
    "place",
]

_INF: Final = math.inf


class _NeedsEvaluation:
    """Marker in a fast table: this flag has targeting, evaluate it for the context."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEEDS_EVALUATION"


NEEDS_EVALUATION: Final[Any] = _NeedsEvaluation()
"""The fast-table value of a flag with targeting (typed getters then take the evaluator)."""

_CORE_FIELDS: Final = frozenset({"key", "value", "enabled", "version", "flagType", "lastModified"})


def _extra_fields(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """The wire fields beyond the six core ones (``None`` when there are none).

    Most flags carry only the core fields, which one set operation in C tells
    (``frozenset.issuperset(dict)`` allocates nothing: no view object for the GC)."""
    if not raw or _CORE_FIELDS.issuperset(raw):
        return None
    return {k: v for k, v in raw.items() if k not in _CORE_FIELDS} or None


class FlagEntry:
    """One server flag as held in a snapshot (compact; immutable by convention).

    ``model`` is the compiled :class:`~flagkit.core.targeting.FlagModel` for a flag with
    targeting (or malformed targeting), ``None`` for a simple flag. ``extra`` holds wire
    fields beyond the six core ones (``None`` when there are none).
    """

    __slots__ = ("enabled", "extra", "flag_type", "last_modified", "model", "value", "version")

    def __init__(
        self,
        value: Any,
        enabled: bool,
        version: int,
        flag_type: FlagType,
        last_modified: str,
        extra: dict[str, Any] | None,
        model: FlagModel | None,
    ) -> None:
        self.value = value
        self.enabled = enabled
        self.version = version
        self.flag_type = flag_type
        self.last_modified = last_modified
        self.extra = extra
        self.model = model

    @classmethod
    def from_state(cls, state: FlagState, model: FlagModel | None) -> FlagEntry:
        """An entry for ``state``; ``model`` is kept only when the flag needs the evaluator
        (``None`` for a simple flag: the store never builds a model for one)."""
        if model is not None and model.is_simple and model.error is None:
            model = None
        # A flag whose model is kept has its wire object there (``model.state``): no copy
        # of its extra fields here.
        return cls(
            state.value,
            state.enabled,
            state.version,
            state.flag_type,
            state.last_modified,
            None if model is not None else _extra_fields(state.raw),
            model,
        )

    def to_state(self, key: str) -> FlagState:
        """The :class:`FlagState` this entry was built from (a new object)."""
        model = self.model
        if model is not None:
            return model.state
        raw = self.to_wire(key)
        return FlagState(
            key, self.value, self.enabled, self.version, self.flag_type, self.last_modified, raw
        )

    def to_wire(self, key: str) -> dict[str, Any]:
        """The wire object (docs/protocol.md §4.1 fields plus any extra fields)."""
        model = self.model
        if model is not None:
            return model.state.to_dict()
        out: dict[str, Any] = dict(self.extra) if self.extra else {}
        out.update(
            key=key,
            value=self.value,
            enabled=self.enabled,
            version=self.version,
            flagType=self.flag_type.value,
            lastModified=self.last_modified,
        )
        return out

    def same_as(self, state: FlagState) -> bool:
        """Whether ``state`` says exactly what this entry says."""
        if (
            self.version != state.version
            or self.enabled != state.enabled
            or self.flag_type is not state.flag_type
            or type(self.value) is not type(state.value)
            or self.value != state.value
            or self.last_modified != state.last_modified
        ):
            return False
        model = self.model
        mine = self.extra if model is None else _extra_fields(model.state.raw)
        return (mine or {}) == (_extra_fields(state.raw) or {})


class _ModelView(Mapping[str, "FlagModel"]):
    """``key -> FlagModel`` over a snapshot's entries, for the evaluator's prerequisites.

    Targeted flags return their model; a simple flag is compiled on first access and
    remembered (a benign race at worst compiles it twice).
    """

    __slots__ = ("_entries", "_memo")

    def __init__(self, entries: Mapping[str, FlagEntry]) -> None:
        self._entries = entries
        self._memo: dict[str, FlagModel] = {}

    def __getitem__(self, key: str) -> FlagModel:
        entry = self._entries[key]
        if entry.model is not None:
            return entry.model
        model = self._memo.get(key)
        if model is None:
            model = compile_flag(entry.to_state(key))
            self._memo[key] = model
        return model

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries


@dataclass(frozen=True, slots=True)
class FlagSnapshot:
    """One immutable view of every flag; share it freely between threads.

    Treat the mappings as read-only (they are plain dicts for speed).
    """

    entries: Mapping[str, FlagEntry] = field(default_factory=dict)
    segments: Mapping[str, SegmentModel] = field(default_factory=dict)
    segment_data: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    bootstrap: Mapping[str, Any] = field(default_factory=dict)
    expires_at: float = _INF
    fetched_at: float = 0.0
    source: str = "empty"
    bools: Mapping[str, bool] = field(default_factory=dict)
    strings: Mapping[str, str] = field(default_factory=dict)
    numbers: Mapping[str, float] = field(default_factory=dict)
    jsons: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    models: Mapping[str, FlagModel] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", _ModelView(self.entries))

    def is_fresh(self, now: float | None = None) -> bool:
        """Whether the server flags are within ``cache_ttl`` of their last confirmation."""
        return (time.monotonic() if now is None else now) <= self.expires_at

    def keys(self) -> list[str]:
        """Every key: server flags first, then bootstrap-only keys."""
        out = list(self.entries)
        out.extend(k for k in self.bootstrap if k not in self.entries)
        return out

    def has(self, key: str) -> bool:
        """Whether ``key`` is a server flag or a bootstrap value."""
        return key in self.entries or key in self.bootstrap

    def get_state(self, key: str) -> FlagState | None:
        """The server flag ``key`` as a :class:`FlagState`, or ``None``."""
        entry = self.entries.get(key)
        return None if entry is None else entry.to_state(key)

    @property
    def flag_states(self) -> list[FlagState]:
        """The server flags as :class:`FlagState` objects (built on each call)."""
        return [entry.to_state(key) for key, entry in self.entries.items()]


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What one update changed: flags added or updated, keys deleted, segments touched."""

    updated: list[FlagState] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    segments_changed: bool = False

    def __bool__(self) -> bool:
        return bool(self.updated or self.deleted or self.segments_changed)


def _fast_slot(flag_type: FlagType, value: Any) -> tuple[str, Any] | None:
    """Which fast table a value belongs in (and the value as the getter returns it)."""
    if flag_type is FlagType.BOOLEAN:
        return ("bools", value) if isinstance(value, bool) else None
    if flag_type is FlagType.STRING:
        return ("strings", value) if isinstance(value, str) else None
    if flag_type is FlagType.NUMBER:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:
                return None
            return ("numbers", number) if math.isfinite(number) else None
        return None
    if flag_type is FlagType.JSON:
        return ("jsons", value) if isinstance(value, dict) else None
    return None


_TABLE_OF: Final = {
    FlagType.BOOLEAN: "bools",
    FlagType.STRING: "strings",
    FlagType.NUMBER: "numbers",
    FlagType.JSON: "jsons",
}


def fast_entry(
    key: str, entries: Mapping[str, FlagEntry], bootstrap: Mapping[str, Any]
) -> tuple[str, Any] | None:
    entry = entries.get(key)
    if entry is not None:
        if entry.model is not None:
            # Listed so that a getter's lookup hits (no KeyError to raise and catch) and
            # learns at once that this flag needs the evaluator.
            return (_TABLE_OF[entry.flag_type], NEEDS_EVALUATION)
        return _fast_slot(entry.flag_type, entry.value)
    if key in bootstrap:
        value = bootstrap[key]
        return _fast_slot(FlagType.infer(value), value)
    return None


class Tables(TypedDict):
    bools: dict[str, bool]
    strings: dict[str, str]
    numbers: dict[str, float]
    jsons: dict[str, dict[str, Any]]


def build_tables(entries: Mapping[str, FlagEntry], bootstrap: Mapping[str, Any]) -> Tables:
    """The four fast tables of ``entries`` over ``bootstrap`` (what :func:`fast_entry`
    gives for each key, built in one pass without a tuple per flag)."""
    tables = Tables(bools={}, strings={}, numbers={}, jsons={})
    for key in bootstrap:
        if key not in entries:
            place(tables, key, fast_entry(key, entries, bootstrap))
    bools, strings = tables["bools"], tables["strings"]
    numbers, jsons = tables["numbers"], tables["jsons"]
    by_type: dict[FlagType, dict[str, Any]] = {
        FlagType.BOOLEAN: bools,
        FlagType.STRING: strings,
        FlagType.NUMBER: numbers,
        FlagType.JSON: jsons,
    }
    boolean, string, json_type = FlagType.BOOLEAN, FlagType.STRING, FlagType.JSON
    for key, entry in entries.items():
        flag_type = entry.flag_type
        if entry.model is not None:
            by_type[flag_type][key] = NEEDS_EVALUATION
            continue
        value = entry.value
        if flag_type is boolean:
            if isinstance(value, bool):
                bools[key] = value
        elif flag_type is string:
            if isinstance(value, str):
                strings[key] = value
        elif flag_type is json_type:
            if isinstance(value, dict):
                jsons[key] = value
        else:
            place(tables, key, _fast_slot(flag_type, value))
    return tables


def place(tables: Tables, key: str, slot: tuple[str, Any] | None) -> None:
    if slot is not None:
        table: dict[str, Any] = tables[slot[0]]  # type: ignore[literal-required]
        table[key] = slot[1]
