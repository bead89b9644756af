"""Bucketing: committed vectors, the documented hash, stability and distribution."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flagkit.core.targeting import FlagModel, compile_flag, evaluate, interpret
from flagkit.core.targeting.bucketing import (
    BUCKET_SCALE,
    bucket,
    bucket_prefix,
    bucketing_string,
    digest_threshold,
    select_index,
)
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import EvaluationReason, FlagState

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "vectors" / "bucketing.json").read_text("utf-8")
)


def rollout_flag(
    key: str,
    weights: list[tuple[str, int]],
    *,
    salt: str = "",
    rules: list[dict[str, Any]] | None = None,
    bucket_by: str | None = None,
) -> FlagModel:
    """A flag whose fallthrough is a rollout over ``weights`` (variation ids are values)."""
    rollout: dict[str, Any] = {
        "variations": [{"variation": v, "weight": w} for v, w in weights],
    }
    if bucket_by is not None:
        rollout["bucketBy"] = bucket_by
    raw: dict[str, Any] = {
        "key": key,
        "value": "default",
        "enabled": True,
        "version": 1,
        "flagType": "string",
        "salt": salt,
        "variations": [{"id": v, "value": v} for v, _ in weights],
        "fallthrough": {"rollout": rollout},
    }
    if rules:
        raw["rules"] = rules
    model = compile_flag(FlagState.from_dict(raw))
    assert model.error is None, model.error
    return model


def bucket_of(flag_key: str, salt: str, value: str) -> int:
    """The bucket of ``value`` for a flag with this key and salt."""
    return bucket(bucket_prefix(flag_key, salt), value)


def served(model: FlagModel, ctx: EvaluationContext | None) -> str | None:
    """The variation id ``model`` serves to ``ctx``."""
    return evaluate(model, ctx, flags={model.key: model}, segments={}).variation_id


@pytest.mark.parametrize(
    "case", VECTORS["buckets"], ids=lambda c: f"{c['flagKey']}/{c['salt']}/{c['value'][:12]}"
)
def test_bucket_vectors(case: dict[str, Any]) -> None:
    """Every committed (flagKey, salt, value) maps to its committed bucket and message."""
    assert bucket_of(case["flagKey"], case["salt"], case["value"]) == case["bucket"]
    if "messageHex" in case:
        message = bucket_prefix(case["flagKey"], case["salt"]) + case["value"].encode(
            "utf-8", "surrogatepass"
        )
        assert message.hex() == case["messageHex"]


@pytest.mark.parametrize("case", VECTORS["rollouts"], ids=lambda c: f"{c['flagKey']}/{c['value']}")
def test_rollout_vectors_through_the_evaluator(case: dict[str, Any]) -> None:
    """A flag with the vector's key, salt and weights serves the committed variation, both
    compiled (the inlined hash and thresholds) and interpreted (bucket + select_index)."""
    weights = [(w["variation"], w["weight"]) for w in case["weights"]]
    model = rollout_flag(case["flagKey"], weights, salt=case["salt"])
    ctx = EvaluationContext(user_id=case["value"])
    for run in (evaluate, interpret):
        decision = run(model, ctx, flags={}, segments={})
        assert decision.variation_id == case["variation"]
        assert decision.reason is EvaluationReason.FALLTHROUGH
    index = select_index(case["bucket"], [w for _, w in weights])
    assert weights[index][0] == case["variation"]


def test_bucket_matches_a_hand_computed_sha256() -> None:
    """The bucket is the documented arithmetic over SHA-256 of key NUL salt NUL value."""
    digest = hashlib.sha256(b"new-checkout\x00\x00user-1").hexdigest()
    assert digest[:16] == "6fcb9a9f2548ace7"  # 0x6fcb9a9f2548ace7 / 2**64 = 0.43670...
    by_hand = (int(digest[:16], 16) * 100000) // 2**64
    assert by_hand == bucket_of("new-checkout", "", "user-1") == 43670

    raw = hashlib.sha256(b"dark-mode\x00spring-2025\x0042").digest()
    by_hand = int.from_bytes(raw[:8], "big") * 100000 // (1 << 64)
    assert by_hand == bucket_of("dark-mode", "spring-2025", "42")


def test_unicode_values_are_hashed_as_utf8() -> None:
    """Non-ASCII values hash their UTF-8 bytes; a lone surrogate uses surrogatepass."""
    value = "Zoë 用户 👩‍💻"
    digest = hashlib.sha256(b"k\x00\x00" + value.encode("utf-8")).digest()
    assert bucket_of("k", "", value) == (int.from_bytes(digest[:8], "big") * BUCKET_SCALE) >> 64
    surrogate = hashlib.sha256(b"k\x00\x00\xed\xa0\x80").digest()
    assert bucket_of("k", "", "\ud800") == (int.from_bytes(surrogate[:8], "big") * 100000) >> 64
    model = rollout_flag("k", [("a", 50000), ("b", 50000)])
    expected = "a" if bucket_of("k", "", "\ud800") < 50000 else "b"
    assert served(model, EvaluationContext(user_id="\ud800")) == expected


def test_salt_and_key_change_the_bucket_and_separators_matter() -> None:
    """Key, salt and value are separated by NUL bytes, so shifting text between them
    changes the hashed message."""
    assert bucket_prefix("ab", "") + b"c" != bucket_prefix("a", "b") + b"c"
    assert bucket_prefix("a", "bc") != bucket_prefix("a", "b") + b"c"
    buckets = {bucket_of("f", salt, "user-1") for salt in ("", "a", "b", "c", "d")}
    assert len(buckets) == 5


def test_select_index_uses_cumulative_weights_in_order() -> None:
    """Variation i owns [sum of earlier weights, that sum + its weight)."""
    weights = [30000, 0, 70000]
    assert select_index(0, weights) == 0
    assert select_index(29999, weights) == 0
    assert select_index(30000, weights) == 2
    assert select_index(99999, weights) == 2


def test_bucketing_string_accepts_strings_and_integers_only() -> None:
    """Strings hash as themselves, integers in decimal; bools, floats and None cannot."""
    assert bucketing_string("u") == "u"
    assert bucketing_string(12345678901234567890) == "12345678901234567890"
    assert bucketing_string(True) is None
    assert bucketing_string(1.5) is None
    assert bucketing_string(None) is None

    class Sub(str):
        pass

    assert type(bucketing_string(Sub("u"))) is str


def test_raising_a_rollout_keeps_everyone_who_had_it() -> None:
    """Going from 20 % to 30 % only adds users: nobody who had 'on' loses it."""
    users = [EvaluationContext(user_id=f"user-{i}") for i in range(5000)]
    at_20 = rollout_flag("growth", [("on", 20000), ("off", 80000)])
    at_30 = rollout_flag("growth", [("on", 30000), ("off", 70000)])
    had = {c.user_id for c in users if served(at_20, c) == "on"}
    has = {c.user_id for c in users if served(at_30, c) == "on"}
    assert had < has
    assert 0.17 < len(had) / len(users) < 0.23
    assert 0.27 < len(has) / len(users) < 0.33


def test_unrelated_flags_and_rules_do_not_move_users() -> None:
    """A user's variation depends only on the flag's key, salt and weights: adding rules
    that do not match, or changing other flags, leaves it unchanged."""
    users = [EvaluationContext(user_id=f"user-{i}", country="NL") for i in range(2000)]
    weights = [("a", 50000), ("b", 50000)]
    plain = rollout_flag("exp", weights)
    with_rules = rollout_flag(
        "exp",
        weights,
        rules=[
            {
                "id": "us-only",
                "clauses": [{"attribute": "country", "op": "in", "values": ["US"]}],
                "rollout": {
                    "variations": [
                        {"variation": "a", "weight": 10000},
                        {"variation": "b", "weight": 90000},
                    ]
                },
            }
        ],
    )
    other = rollout_flag("other", [("a", 90000), ("b", 10000)], salt="x")
    before = [served(plain, c) for c in users]
    for model in (plain, other):  # evaluating another flag first changes nothing
        for c in users[:50]:
            served(model, c)
    assert [served(with_rules, c) for c in users] == before
    assert [served(plain, c) for c in users] == before
    assert [served(other, c) for c in users] != before


def test_same_bucket_in_every_rollout_of_a_flag() -> None:
    """Rule rollouts and the fallthrough rollout of one flag share the bucket (same key
    and salt), so a user keeps their position when moving between rules."""
    model = rollout_flag(
        "exp",
        [("a", 50000), ("b", 50000)],
        rules=[
            {
                "id": "beta",
                "clauses": [{"attribute": "beta", "op": "equals", "values": [True]}],
                "rollout": {
                    "variations": [
                        {"variation": "a", "weight": 50000},
                        {"variation": "b", "weight": 50000},
                    ]
                },
            }
        ],
    )
    for i in range(200):
        uid = f"u{i}"
        expected = "a" if bucket_of("exp", "", uid) < 50000 else "b"
        plain = evaluate(model, EvaluationContext(user_id=uid), flags={}, segments={})
        beta = evaluate(
            model, EvaluationContext(user_id=uid, custom={"beta": True}), flags={}, segments={}
        )
        assert (plain.variation_id, beta.variation_id) == (expected, expected)
        assert (plain.reason, beta.reason) == (
            EvaluationReason.FALLTHROUGH,
            EvaluationReason.RULE_MATCH,
        )


def test_thirty_percent_rollout_serves_thirty_percent() -> None:
    """Over 100,000 generated user ids a 30 % rollout serves 30 % ± 0.5 %."""
    model = rollout_flag("launch", [("on", 30000), ("off", 70000)])
    evaluate_flag = model._evaluate
    counts = Counter(
        evaluate_flag(EvaluationContext(user_id=f"user-{i:06d}"), {}, {}, ()).variation_id
        for i in range(100_000)
    )
    assert abs(counts["on"] / 100_000 - 0.30) <= 0.005
    assert counts["on"] + counts["off"] == 100_000


def test_three_way_split_matches_its_weights() -> None:
    """Over 100,000 user ids a 50/30/20 split is within 0.5 % of each weight, and every
    user gets the variation the documented arithmetic gives."""
    weights = [("a", 50000), ("b", 30000), ("c", 20000)]
    model = rollout_flag("split", weights, salt="2025")
    evaluate_flag = model._evaluate
    served_ids = [
        evaluate_flag(EvaluationContext(user_id=f"id-{i}"), {}, {}, ()).variation_id
        for i in range(100_000)
    ]
    counts = Counter(served_ids)
    for variation, weight in weights:
        assert abs(counts[variation] / 100_000 - weight / BUCKET_SCALE) <= 0.005
    for i in range(0, 100_000, 97):
        index = select_index(bucket_of("split", "2025", f"id-{i}"), [w for _, w in weights])
        expected = weights[index][0]
        assert served_ids[i] == expected


def test_anonymous_users_are_bucketed_by_their_key() -> None:
    """Without a user id the anonymous key is hashed; a context with neither cannot be
    bucketed and the fallthrough rollout serves the flag's value."""
    model = rollout_flag("anon", [("a", 50000), ("b", 50000)])
    keys = [f"anon-{i}" for i in range(100)]
    for key in keys:
        expected = "a" if bucket_of("anon", "", key) < 50000 else "b"
        assert served(model, EvaluationContext(user_key=key, anonymous=True)) == expected
    assert {served(model, EvaluationContext(user_key=k)) for k in keys} == {"a", "b"}
    for ctx in (None, EvaluationContext(anonymous=True), EvaluationContext(email="a@b.c")):
        decision = evaluate(model, ctx, flags={}, segments={})
        assert (decision.value, decision.reason, decision.variation_id) == (
            "default",
            EvaluationReason.FALLTHROUGH,
            None,
        )


def test_rule_rollout_without_a_bucketing_value_moves_on() -> None:
    """A rule whose rollout cannot bucket the context does not apply: the next rule (or
    the fallthrough) decides."""
    everyone = {"attribute": "anonymous", "op": "exists"}
    all_a = {"variations": [{"variation": "a", "weight": 100000}, {"variation": "b", "weight": 0}]}
    model = rollout_flag(
        "skip",
        [("a", 0), ("b", 100000)],
        rules=[
            {"id": "split", "clauses": [everyone], "rollout": all_a},
            {"id": "catch-all", "clauses": [everyone], "variation": "b"},
        ],
    )
    keyed = evaluate(model, EvaluationContext(user_key="k"), flags={}, segments={})
    assert (keyed.variation_id, keyed.rule_id) == ("a", "split")
    unkeyed = evaluate(model, EvaluationContext(), flags={}, segments={})
    assert (unkeyed.variation_id, unkeyed.rule_id) == ("b", "catch-all")


def test_bucket_by_a_custom_attribute() -> None:
    """``bucketBy`` hashes that attribute, so one company gets one variation; when it is
    missing the user id is used."""
    model = rollout_flag("org", [("a", 50000), ("b", 50000)], bucket_by="companyId")
    for company in ("acme", "globex", "initech", "umbrella"):
        seen = {
            served(model, EvaluationContext(user_id=f"u{i}", custom={"companyId": company}))
            for i in range(30)
        }
        assert seen == {"a" if bucket_of("org", "", company) < 50000 else "b"}
    assert served(model, EvaluationContext(user_id="u7")) == (
        "a" if bucket_of("org", "", "u7") < 50000 else "b"
    )
    # Integers hash in decimal, so 42 and "42" land together.
    assert served(model, EvaluationContext(custom={"companyId": 42})) == served(
        model, EvaluationContext(custom={"companyId": "42"})
    )


def test_integer_user_ids_hash_like_their_decimal_string() -> None:
    """A user id given as an int (against the type hints) buckets like its string form."""
    model = rollout_flag("ints", [("a", 50000), ("b", 50000)])
    for i in range(50):
        as_int = EvaluationContext(user_id=i)  # type: ignore[arg-type]
        assert served(model, as_int) == served(model, EvaluationContext(user_id=str(i)))


def test_digest_threshold_compares_like_the_bucket() -> None:
    """``digest < digest_threshold(b)`` (what generated code tests) holds exactly when
    the digest's bucket is below ``b``, including digests at the edges of a bucket."""
    bounds = [1, 2, 29999, 30000, 30001, 50000, 99998, 99999]
    for b in bounds:
        threshold = int.from_bytes(digest_threshold(b), "big")
        for x in (0, threshold - 1, threshold, threshold + 1, 2**64 - 1):
            x = min(max(x, 0), 2**64 - 1)
            digest = x.to_bytes(8, "big") + bytes(24)
            assert (digest < digest_threshold(b)) == ((x * BUCKET_SCALE) >> 64 < b), (b, x)
    for i in range(2000):
        digest = hashlib.sha256(f"d{i}".encode()).digest()
        bucket_value = (int.from_bytes(digest[:8], "big") * BUCKET_SCALE) >> 64
        for b in bounds:
            assert (digest < digest_threshold(b)) == (bucket_value < b)
    with pytest.raises(ValueError, match="bound"):
        digest_threshold(BUCKET_SCALE)
