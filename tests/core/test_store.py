"""The flag store: immutable snapshots, fast tables, versions, freshness, persistence."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest

from flagkit.core.store import NEEDS_EVALUATION, FlagStore
from flagkit.core.updates.wire import parse_flags, parse_segments
from flagkit.errors import StorageError
from flagkit.storage import FlagCacheStore, MemoryStorage, create_flag_cache_store
from flagkit.types.flag import FlagState, FlagType

LOG = logging.getLogger("flagkit.tests")
KEY = "sdk_test_key_123456"


def flag(
    key: str,
    value: Any,
    *,
    version: int = 1,
    flag_type: str | None = None,
    enabled: bool = True,
    **extra: Any,
) -> FlagState:
    """A FlagState parsed from a wire object (so ``raw`` is filled like the client's)."""
    wire: dict[str, Any] = {
        "key": key,
        "value": value,
        "enabled": enabled,
        "version": version,
        "flagType": flag_type or FlagType.infer(value).value,
        "lastModified": "2025-03-01T12:00:00Z",
        **extra,
    }
    return FlagState.from_dict(wire)


TARGETED = {
    "variations": [{"id": "on", "value": True}, {"id": "off", "value": False}],
    "offVariation": "off",
    "rules": [
        {
            "id": "nl",
            "clauses": [{"attribute": "country", "op": "in", "values": ["NL"]}],
            "variation": "on",
        }
    ],
    "fallthrough": {"variation": "off"},
}


def store(**kwargs: Any) -> FlagStore:
    return FlagStore(ttl=kwargs.pop("ttl", 300.0), logger=LOG, **kwargs)


def test_full_load_fills_the_fast_tables_by_type() -> None:
    """Simple flags land in the typed fast table matching their declared type and value."""
    s = store()
    s.apply(
        full=[
            flag("b", True),
            flag("s", "hello"),
            flag("n", 10),
            flag("j", {"a": 1}),
            flag("arr", [1, 2], flag_type="json"),
            flag("liar", "yes", flag_type="boolean"),
        ]
    )
    snap = s.snapshot
    assert snap.bools == {"b": True}
    assert snap.strings == {"s": "hello"}
    assert snap.numbers == {"n": 10.0} and isinstance(snap.numbers["n"], float)
    assert snap.jsons == {"j": {"a": 1}}
    assert set(snap.models) == {"b", "s", "n", "j", "arr", "liar"}


def test_targeted_and_malformed_flags_are_marked_for_the_evaluator() -> None:
    """Flags with targeting (even broken) are listed as NEEDS_EVALUATION, never a value."""
    broken = dict(
        TARGETED,
        rules=[
            {
                "id": "x",
                "clauses": [{"attribute": "a", "op": "bogus", "values": [1]}],
                "variation": "on",
            }
        ],
    )
    s = store()
    s.apply(full=[flag("t", False, **TARGETED), flag("broken", False, **broken)])
    snap = s.snapshot
    assert snap.bools == {"t": NEEDS_EVALUATION, "broken": NEEDS_EVALUATION}
    assert not snap.models["t"].is_simple
    assert snap.models["broken"].error is not None


def test_a_swap_leaves_older_snapshots_untouched() -> None:
    """Readers holding a snapshot keep a consistent view while a new one is swapped in."""
    s = store()
    s.apply(full=[flag("a", True)])
    before = s.snapshot
    s.apply(upserts=[flag("a", False, version=2)], deletions=[])
    assert before.bools["a"] is True
    assert s.snapshot.bools["a"] is False
    assert s.snapshot is not before


def test_upserts_apply_only_newer_versions() -> None:
    """An update whose version is not newer than the held one is ignored (protocol.md §20.2)."""
    s = store()
    s.apply(full=[flag("a", "v5", version=5)])
    assert not s.apply(upserts=[flag("a", "old", version=4)])
    assert not s.apply(upserts=[flag("a", "same", version=5)])
    changes = s.apply(upserts=[flag("a", "new", version=6)])
    assert [f.value for f in changes.updated] == ["new"]
    assert s.snapshot.strings["a"] == "new"


def test_stream_flags_without_a_version_are_applied() -> None:
    """A stream event without ``version`` cannot be ordered, so it is taken as given."""
    s = store()
    s.apply(full=[flag("a", "v5", version=5)])
    update = FlagState.from_dict({"key": "a", "value": "streamed"}, stream=True)
    assert s.apply(upserts=[update])
    assert s.snapshot.strings["a"] == "streamed"


def test_deleting_a_server_flag_uncovers_the_bootstrap_value() -> None:
    """After a deletion the bootstrap value of the same key is served again."""
    s = store(bootstrap={"a": "boot", "only-boot": True})
    assert s.snapshot.bools["only-boot"] is True
    s.apply(full=[flag("a", "server")])
    assert s.snapshot.strings["a"] == "server"
    changes = s.apply(deletions=["a", "missing"])
    assert changes.deleted == ["a"]
    assert s.snapshot.strings["a"] == "boot"
    assert "a" not in s.snapshot.models and s.snapshot.has("a")


def test_server_flag_of_another_type_hides_the_bootstrap_value() -> None:
    """A bootstrap bool must not be served for a key the server declares as a string."""
    s = store(bootstrap={"a": True})
    s.apply(full=[flag("a", "text")])
    assert "a" not in s.snapshot.bools


def test_full_replacement_reports_deletions_and_keeps_malformed_keys() -> None:
    """A full load drops absent flags but keeps the last good version of a malformed one."""
    s = store()
    s.apply(full=[flag("a", True), flag("b", True), flag("c", True)])
    changes = s.apply(full=[flag("a", True)], keep=["b"])
    assert changes.deleted == ["c"]
    assert changes.updated == []
    assert set(s.snapshot.models) == {"a", "b"}


def test_freshness_belongs_to_the_snapshot_and_is_renewed() -> None:
    """A confirmation with no changes renews freshness instead of letting flags go stale."""
    s = store(ttl=10.0)
    s.apply(full=[flag("a", True)])
    snap = s.snapshot
    assert snap.is_fresh(now=snap.expires_at - 1)
    assert not snap.is_fresh(now=snap.expires_at + 1)
    before = snap.expires_at
    s.renew()
    assert s.snapshot.expires_at >= before
    assert s.snapshot.entries is snap.entries  # renewing copies nothing


def test_zero_ttl_makes_every_flag_stale_at_once() -> None:
    """``cache_ttl=0`` serves every flag as stale (docs/protocol.md §14.1)."""
    s = store(ttl=0.0)
    s.apply(full=[flag("a", True)])
    assert not s.snapshot.is_fresh(now=s.snapshot.expires_at + 1e-6)


def test_ten_thousand_flags_are_all_held() -> None:
    """There is no capacity limit: 10,000 flags are all held."""
    s = store()
    s.apply(full=[flag(f"f-{i}", i % 2 == 0) for i in range(10_000)])
    assert len(s.snapshot.models) == 10_000
    assert len(s.snapshot.bools) == 10_000


def test_segments_are_compiled_upserted_and_deleted() -> None:
    """Segments from loads and events are compiled and kept by key."""
    s = store()
    seg = {"key": "beta", "included": ["u1"]}
    changes = s.apply(segments_full=[seg])
    assert changes.segments_changed and set(s.snapshot.segments) == {"beta"}
    assert not s.apply(segment_upserts=[seg])  # identical: no change
    assert s.apply(segment_upserts=[{"key": "beta", "included": ["u2"]}])
    assert s.apply(segment_deletions=["beta"])
    assert s.snapshot.segments == {}


def test_parse_flags_skips_malformed_entries_and_reports_their_keys() -> None:
    """Malformed wire flags are dropped one by one; a non-list payload raises ``TypeError``."""
    good, bad = parse_flags(
        [
            {"key": "ok", "value": True, "enabled": True, "version": 1},
            {"key": "bad", "value": True, "enabled": "yes", "version": 1},
            {"value": 1},
            "garbage",
            {"key": "has space", "value": 1, "enabled": True, "version": 1},
        ],
        stream=False,
        logger=LOG,
    )
    assert [f.key for f in good] == ["ok"]
    assert bad == {"bad"}
    with pytest.raises(TypeError):
        parse_flags({"not": "a list"}, stream=False, logger=LOG)
    with pytest.raises(TypeError):
        parse_segments("nope", logger=LOG)


def test_persisted_flags_round_trip_and_are_fresh_when_recent(tmp_path: Path) -> None:
    """Saved flags load into a new store with their values, fresh within the TTL."""
    cache = create_flag_cache_store(tmp_path, api_key=KEY)
    first = store(persistence=cache)
    first.apply(
        full=[flag("a", "saved", **{}), flag("t", False, **TARGETED)],
        segments_full=[{"key": "seg", "included": ["u1"]}],
    )
    assert first.persist()
    assert not first.persist()  # nothing changed since

    second = store(persistence=create_flag_cache_store(tmp_path, api_key=KEY))
    assert second.load_persisted()
    snap = second.snapshot
    assert snap.source == "persisted"
    assert snap.strings["a"] == "saved"
    assert not snap.models["t"].is_simple
    assert set(snap.segments) == {"seg"}
    assert snap.is_fresh()


def test_old_persisted_flags_load_as_stale() -> None:
    """Flags saved longer than ``cache_ttl`` ago are served, but as stale."""
    memory = MemoryStorage()
    cache = FlagCacheStore(memory, "flagkit_cache")
    old_ms = int((time.time() - 3600) * 1000)
    cache.save(
        {
            "formatVersion": 1,
            "savedAt": old_ms,
            "flags": [flag("a", True).to_dict()],
            "segments": [],
        }
    )
    s = store(ttl=60.0, persistence=cache)
    assert s.load_persisted()
    assert s.snapshot.bools["a"] is True
    assert not s.snapshot.is_fresh()


def test_encrypted_cache_from_another_key_is_rejected(tmp_path: Path) -> None:
    """A cache written under another API key cannot be loaded (reported as StorageError)."""
    writer = store(persistence=create_flag_cache_store(tmp_path, api_key=KEY, encrypt=True))
    writer.apply(full=[flag("a", True)])
    writer.persist()
    files = list(tmp_path.iterdir())
    assert files and b'"a"' not in files[0].read_bytes()  # encrypted on disk

    reader = store(
        persistence=create_flag_cache_store(tmp_path, api_key="sdk_another_key_98765", encrypt=True)
    )
    with pytest.raises(StorageError):
        reader.load_persisted()
    assert reader.snapshot.models == {}


def test_tampered_cache_is_rejected(tmp_path: Path) -> None:
    """A cache file altered on disk is refused rather than served."""
    writer = store(persistence=create_flag_cache_store(tmp_path, api_key=KEY, encrypt=True))
    writer.apply(full=[flag("a", True)])
    writer.persist()
    path = next(tmp_path.iterdir())
    blob = json.loads(path.read_text())
    blob["data"] = blob["data"][:-4] + ("AAAA" if blob["data"][-4:] != "AAAA" else "BBBB")
    path.write_text(json.dumps(blob))
    reader = store(persistence=create_flag_cache_store(tmp_path, api_key=KEY, encrypt=True))
    with pytest.raises(StorageError):
        reader.load_persisted()


def test_network_data_is_never_replaced_by_the_persisted_copy(tmp_path: Path) -> None:
    """If the first load won the race, a late persisted load is ignored."""
    cache = create_flag_cache_store(tmp_path, api_key=KEY)
    old = store(persistence=cache)
    old.apply(full=[flag("a", "old")])
    old.persist()
    s = store(persistence=create_flag_cache_store(tmp_path, api_key=KEY))
    s.apply(full=[flag("a", "new", version=2)])
    assert not s.load_persisted()
    assert s.snapshot.strings["a"] == "new"


def test_simple_flags_keep_no_model_but_the_model_view_compiles_them() -> None:
    """Simple flags are stored compactly; prerequisites can still look them up as models."""
    s = store()
    s.apply(full=[flag("simple", True), flag("t", False, **TARGETED)])
    snap = s.snapshot
    assert snap.entries["simple"].model is None
    assert snap.entries["t"].model is not None
    model = snap.models["simple"]
    assert model.is_simple and model.state.value is True
    assert snap.models["simple"] is model  # compiled once per snapshot
    assert "t" in snap.models and len(snap.models) == 2
    with pytest.raises(KeyError):
        snap.models["missing"]


def test_extra_wire_fields_survive_the_compact_storage() -> None:
    """Fields beyond the six core ones are kept for listeners and the persisted cache."""
    s = store()
    s.apply(full=[flag("a", "x", description="shown in the dashboard")])
    state = s.snapshot.get_state("a")
    assert state is not None
    assert state.to_dict()["description"] == "shown in the dashboard"
    assert [f.key for f in s.snapshot.flag_states] == ["a"]
    assert not s.apply(upserts=[flag("a", "x", description="shown in the dashboard")])
    assert s.apply(upserts=[flag("a", "x", version=2, description="changed")])
