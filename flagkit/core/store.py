"""The flag store: an immutable snapshot of flags and segments, swapped atomically.

Every change (first load, poll, stream event, persisted cache, deletion) builds a new
:class:`FlagSnapshot` and replaces one reference under a lock; evaluations read that
reference and never lock. A snapshot holds:

- ``entries``: one compact :class:`FlagEntry` per server flag (value, enabled, version, type,
  last-modified, any extra wire fields) — flags with targeting also carry their model,
  compiled once by :func:`flagkit.core.targeting.compile_flag`. Simple flags keep no model
  and no :class:`FlagState` object: 10,000 flags fit in a few megabytes. ``models`` is a
  read-only view compiling a simple flag only if a prerequisite asks for it;
- ``segments``: compiled segments for targeting rules;
- ``bootstrap``: the accepted bootstrap values (served with reason ``BOOTSTRAP`` when the
  server has no such flag);
- freshness — ``expires_at`` on the ``time.monotonic()`` clock. It belongs to the snapshot,
  not to each entry (docs/architecture.md): a successful poll with no changes renews it, so
  flags only go stale when the updates really stop;
- fast tables for typed getters: ``bools``, ``strings``, ``numbers``, ``jsons`` map a key to
  its value for every flag without targeting whose value has its declared type (bootstrap
  values included when the server has no such key), and a flag with targeting to
  :data:`NEEDS_EVALUATION` in the table of its declared type. A typed getter on a simple
  flag is one dict lookup; anything else takes the evaluator or the full path.

There is no capacity limit: every flag the server sends is held.

Persistence (optional): :class:`FlagStore` can save its flags and segments through a
:class:`~flagkit.storage.FlagCacheStore` and load them back at start, with the time they were
fetched, so a restart with the server unreachable serves the last known values — ``CACHED``
while younger than ``cache_ttl``, ``STALE_CACHE`` after.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, TypedDict

from flagkit.core.targeting import FlagModel, SegmentModel, compile_flag, compile_segment
from flagkit.core.updates.wire import parse_flags, parse_segments
from flagkit.errors import FlagKitError, StorageError
from flagkit.types.flag import FlagState, FlagType
from flagkit.utils.security import apply_bootstrap_verification
from flagkit.utils.validators import flag_key_problem, is_valid_flag_key

if TYPE_CHECKING:
    from flagkit.storage import FlagCacheStore
    from flagkit.types.config import FlagKitOptions

__all__ = [
    "NEEDS_EVALUATION",
    "ChangeSet",
    "FlagEntry",
    "FlagSnapshot",
    "FlagStore",
    "build_store",
]

PERSIST_FORMAT_VERSION: Final = 1
_INF: Final = math.inf


class _NeedsEvaluation:
    """Marker in a fast table: this flag has targeting, evaluate it for the context."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NEEDS_EVALUATION"


NEEDS_EVALUATION: Final[Any] = _NeedsEvaluation()
"""The fast-table value of a flag with targeting (typed getters then take the evaluator)."""

_CORE_FIELDS: Final = frozenset({"key", "value", "enabled", "version", "flagType", "lastModified"})


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
    def from_state(cls, state: FlagState, model: FlagModel) -> FlagEntry:
        """An entry for ``state``; ``model`` is kept only when the flag needs the evaluator."""
        raw = state.raw
        extra = {k: v for k, v in raw.items() if k not in _CORE_FIELDS} if raw else None
        return cls(
            state.value,
            state.enabled,
            state.version,
            state.flag_type,
            state.last_modified,
            extra or None,
            None if model.is_simple and model.error is None else model,
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
        raw = state.raw
        extra = {k: v for k, v in raw.items() if k not in _CORE_FIELDS} if raw else {}
        return (self.extra or {}) == extra


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


def _fast_entry(
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


class _Tables(TypedDict):
    bools: dict[str, bool]
    strings: dict[str, str]
    numbers: dict[str, float]
    jsons: dict[str, dict[str, Any]]


def _build_tables(entries: Mapping[str, FlagEntry], bootstrap: Mapping[str, Any]) -> _Tables:
    tables = _Tables(bools={}, strings={}, numbers={}, jsons={})
    for key in bootstrap:
        if key not in entries:
            _place(tables, key, _fast_entry(key, entries, bootstrap))
    for key in entries:
        _place(tables, key, _fast_entry(key, entries, bootstrap))
    return tables


def _place(tables: _Tables, key: str, slot: tuple[str, Any] | None) -> None:
    if slot is not None:
        table: dict[str, Any] = tables[slot[0]]  # type: ignore[literal-required]
        table[key] = slot[1]


class FlagStore:
    """Owns the current :class:`FlagSnapshot` and builds the next one.

    >>> store = FlagStore(ttl=300.0, logger=logging.getLogger("flagkit"))
    >>> store.apply(full=[FlagState("dark-mode", True)])
    ChangeSet(updated=[FlagState(key='dark-mode', ...)], deleted=[], segments_changed=False)
    >>> store.snapshot.bools["dark-mode"]
    True

    Readers use :attr:`snapshot` without locking; writers (``apply``, ``renew``,
    ``load_persisted``) serialise on an internal lock that is held only while the new
    snapshot is built in memory — never during I/O. Thread-safe.
    """

    def __init__(
        self,
        *,
        ttl: float,
        logger: logging.Logger,
        bootstrap: Mapping[str, Any] | None = None,
        persistence: FlagCacheStore | None = None,
    ) -> None:
        self._ttl = float(ttl)
        self._logger = logger
        self._lock = threading.Lock()
        self._persistence = persistence
        boot = dict(bootstrap or {})
        tables = _build_tables({}, boot)
        self._snapshot = FlagSnapshot(bootstrap=boot, **tables)
        self._dirty = False

    @property
    def snapshot(self) -> FlagSnapshot:
        """The current snapshot (lock-free read of one reference)."""
        return self._snapshot

    @property
    def ttl(self) -> float:
        """Seconds a confirmation of the server flags keeps them fresh (``cache_ttl``)."""
        return self._ttl

    @property
    def persistence(self) -> FlagCacheStore | None:
        """Where flags are persisted (``None`` when persistence is off)."""
        return self._persistence

    def after_fork(self) -> None:
        """Replace the lock in a forked child."""
        self._lock = threading.Lock()

    # -- updates --------------------------------------------------------------------------

    def apply(
        self,
        *,
        full: Iterable[FlagState] | None = None,
        keep: Iterable[str] = (),
        upserts: Iterable[FlagState] = (),
        deletions: Iterable[str] = (),
        segments_full: Iterable[Mapping[str, Any]] | None = None,
        segment_upserts: Iterable[Mapping[str, Any]] = (),
        segment_deletions: Iterable[str] = (),
        renew: bool = True,
        check_versions: bool = True,
    ) -> ChangeSet:
        """Build and swap in the next snapshot; returns what changed.

        - ``full`` replaces every server flag (``/sdk/init``, SSE ``flags_reset``); keys in
          ``keep`` (malformed in that payload) keep their previous version.
        - ``upserts`` add or update flags; with ``check_versions`` a flag whose ``version``
          is not newer than the one held is ignored (docs/protocol.md §20.2) — except stream events
          without a version field, whose version is taken as given.
        - ``deletions`` remove flags; segments are handled likewise.
        - ``renew`` marks the server data as confirmed now (fresh for ``ttl`` seconds).
        """
        # Compile outside the lock: it is pure and may take a while for big payloads.
        full_entries = None if full is None else [(st, self._entry(st)) for st in full]
        upsert_entries = [(st, self._entry(st)) for st in upserts]
        now_mono = time.monotonic()
        now_wall = time.time()
        with self._lock:
            old = self._snapshot
            entries = dict(old.entries)
            updated: list[FlagState] = []
            deleted: list[str] = []
            touched: set[str] = set()
            rebuild_all = False

            if full_entries is not None:
                new_entries: dict[str, FlagEntry] = {}
                for state, entry in full_entries:
                    previous = entries.get(state.key)
                    new_entries[state.key] = entry
                    if previous is None or not previous.same_as(state):
                        updated.append(state)
                for key in keep:
                    if key in entries and key not in new_entries:
                        new_entries[key] = entries[key]
                deleted.extend(k for k in entries if k not in new_entries)
                entries = new_entries
                rebuild_all = True
            for state, entry in upsert_entries:
                previous = entries.get(state.key)
                if previous is not None:
                    if (
                        check_versions
                        and "version" in state.raw
                        and state.version <= previous.version
                    ):
                        continue
                    if previous.same_as(state):
                        continue
                entries[state.key] = entry
                updated.append(state)
                touched.add(state.key)
            for key in deletions:
                if key in entries:
                    del entries[key]
                    deleted.append(key)
                    touched.add(key)

            segments = dict(old.segments)
            segment_data = dict(old.segment_data)
            segments_changed = False
            if segments_full is not None:
                segments, segment_data = {}, {}
                for raw in segments_full:
                    key = str(raw["key"])
                    segments[key] = compile_segment(raw)
                    segment_data[key] = dict(raw)
                segments_changed = segment_data != dict(old.segment_data)
            for raw in segment_upserts:
                key = str(raw["key"])
                if segment_data.get(key) == raw:
                    continue
                segments[key] = compile_segment(raw)
                segment_data[key] = dict(raw)
                segments_changed = True
            for key in segment_deletions:
                if key in segments:
                    del segments[key]
                    segment_data.pop(key, None)
                    segments_changed = True

            changes = ChangeSet(updated, deleted, segments_changed)
            if not changes and not renew:
                return changes
            if changes:
                if rebuild_all:
                    tables = _build_tables(entries, old.bootstrap)
                else:
                    tables = _Tables(
                        bools=dict(old.bools),
                        strings=dict(old.strings),
                        numbers=dict(old.numbers),
                        jsons=dict(old.jsons),
                    )
                    for key in touched:
                        tables["bools"].pop(key, None)
                        tables["strings"].pop(key, None)
                        tables["numbers"].pop(key, None)
                        tables["jsons"].pop(key, None)
                        _place(tables, key, _fast_entry(key, entries, old.bootstrap))
                snapshot = FlagSnapshot(
                    entries=entries,
                    segments=segments,
                    segment_data=segment_data,
                    bootstrap=old.bootstrap,
                    expires_at=(now_mono + self._ttl) if renew else old.expires_at,
                    fetched_at=now_wall if renew else old.fetched_at,
                    source="server",
                    **tables,
                )
                self._dirty = True
            else:
                snapshot = replace(
                    old, expires_at=now_mono + self._ttl, fetched_at=now_wall, source="server"
                )
            self._snapshot = snapshot
        return changes

    def renew(self) -> None:
        """Mark the server flags as confirmed now (a poll with no changes, a live stream)."""
        self.apply(renew=True)

    def _entry(self, state: FlagState) -> FlagEntry:
        model = compile_flag(state)
        if model.error is not None:
            self._logger.warning("flag %r has invalid targeting: %s", state.key, model.error)
        return FlagEntry.from_state(state, model)

    # -- persistence ----------------------------------------------------------------------

    def load_persisted(self) -> bool:
        """Load the persisted flags into the snapshot; False when there is nothing usable.

        Freshness follows the time the flags were saved: younger than ``ttl`` → fresh
        (``CACHED``), older → stale (``STALE_CACHE``). A corrupt, tampered or foreign file
        raises :class:`~flagkit.errors.StorageError` (the caller reports it; the next save
        replaces the file).
        """
        persistence = self._persistence
        if persistence is None:
            return False
        payload = persistence.load()
        if not payload:
            return False
        if not isinstance(payload, dict) or not isinstance(payload.get("flags"), list):
            self._logger.warning("persisted flag cache has an unknown format; ignoring it")
            return False
        states, _bad = parse_flags(payload["flags"], stream=False, logger=self._logger)
        raw_segments = payload.get("segments", [])
        segments = parse_segments(
            raw_segments if isinstance(raw_segments, list) else [], logger=self._logger
        )
        saved_ms = payload.get("savedAt")
        now_wall = time.time()
        saved = (
            float(saved_ms) / 1000.0
            if isinstance(saved_ms, (int, float)) and not isinstance(saved_ms, bool)
            else 0.0
        )
        saved = min(saved, now_wall)
        remaining = saved + self._ttl - now_wall
        entries = {state.key: self._entry(state) for state in states}
        seg_models = {str(raw["key"]): compile_segment(raw) for raw in segments}
        seg_data = {str(raw["key"]): dict(raw) for raw in segments}
        with self._lock:
            old = self._snapshot
            if old.source == "server":
                return False  # the network won the race: never go back to older data
            self._snapshot = FlagSnapshot(
                entries=entries,
                segments=seg_models,
                segment_data=seg_data,
                bootstrap=old.bootstrap,
                expires_at=time.monotonic() + remaining,
                fetched_at=saved,
                source="persisted",
                **_build_tables(entries, old.bootstrap),
            )
        self._logger.info(
            "loaded %d persisted flags saved %.0fs ago", len(entries), max(0.0, now_wall - saved)
        )
        return True

    def persist(self, *, force: bool = False) -> bool:
        """Save the server flags if they changed since the last save (or ``force``).

        Returns whether something was written. Raises
        :class:`~flagkit.errors.StorageError` when the storage fails (the caller logs it).
        """
        persistence = self._persistence
        if persistence is None:
            return False
        with self._lock:
            snapshot = self._snapshot
            if snapshot.source != "server" or not (self._dirty or force):
                return False
            self._dirty = False
        payload = {
            "formatVersion": PERSIST_FORMAT_VERSION,
            "savedAt": int(snapshot.fetched_at * 1000),
            "flags": [entry.to_wire(key) for key, entry in snapshot.entries.items()],
            "segments": list(snapshot.segment_data.values()),
        }
        try:
            persistence.save(payload)
        except FlagKitError:
            with self._lock:
                self._dirty = True
            raise
        return True


def build_store(
    options: FlagKitOptions, logger: logging.Logger
) -> tuple[FlagStore, list[FlagKitError]]:
    """The store a client starts with: the verified bootstrap, then the persisted flags.

    Returns the store and the errors found on the way (a rejected persisted cache), which
    the client reports once it starts. Raises ``SecurityError`` for a bootstrap that fails
    verification with ``on_failure="error"``.
    """
    bootstrap = apply_bootstrap_verification(
        options.bootstrap, options.api_key, options.bootstrap_verification, logger
    )
    clean: dict[str, Any] = {}
    for key, value in (bootstrap or {}).items():
        if is_valid_flag_key(key):
            clean[key] = value
        else:
            logger.warning("ignoring bootstrap value: %s", flag_key_problem(key))
    store = FlagStore(
        ttl=options.cache_ttl,
        logger=logger,
        bootstrap=clean,
        persistence=_persistence_for(options),
    )
    errors: list[FlagKitError] = []
    if store.persistence is not None:
        try:
            store.load_persisted()
        except StorageError as exc:
            logger.warning(
                "persisted flag cache rejected (%s); it will be replaced on the next save", exc
            )
            errors.append(exc)
        except Exception:
            logger.exception("could not load the persisted flag cache; ignoring it")
    return store, errors


def _persistence_for(options: FlagKitOptions) -> FlagCacheStore | None:
    if not (options.persist_cache or options.cache_storage_path or options.encrypt_cache):
        return None
    from flagkit.storage import create_flag_cache_store

    directory = options.cache_storage_path or os.path.join(
        tempfile.gettempdir(), "flagkit", "cache"
    )
    # The owner tag binds the file to this API key without revealing it.
    owner = hashlib.sha256(options.api_key.encode("utf-8")).hexdigest()[:16]
    return create_flag_cache_store(
        directory,
        api_key=options.api_key,
        storage_key=options.cache_storage_key,
        encrypt=options.encrypt_cache,
        owner=owner,
    )
