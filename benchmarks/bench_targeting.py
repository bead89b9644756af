"""Targeting benchmark: evaluation cost as ratios against baselines measured in the same run.

Run: ``.venv/bin/python benchmarks/bench_targeting.py``. Prints three ratios:

1. a flag whose fallthrough is a 30 % rollout, evaluated for 2,000 distinct users, against
   computing the same users' buckets alone (the flag's prefix precomputed, one SHA-256,
   the documented arithmetic: the cheapest way to get the bucket) -- target <= 1.2x;
2. a flag whose first rule has 5 clauses (all matching), against ``evaluate()`` of a
   simple flag (no targeting: a precomputed decision) through the same evaluator, both
   called the same way -- target <= 3x. Two rules are measured: one with a string
   suffix test (``endsWith``, the dearest common operator on CPython 3.11 because
   ``str.endswith`` parses its arguments slowly) and one without;
3. evaluating 1,000 targeted flags (rules, segments, targets, rollouts, prerequisites)
   for one context, against 1,000 simple flags (reported, no target).

Each figure is the minimum over several ``timeit`` repeats (the least disturbed run), in
CPU time of the measuring thread (``time.thread_time``), so that other processes on a
busy machine disturb the figures less than they disturb wall-clock time.
Always exits 0: the numbers are for reading, not for gating.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
import timeit
from collections.abc import Callable
from typing import Any

from flagkit.core.targeting import (
    FlagModel,
    SegmentModel,
    compile_flag,
    compile_segment,
    evaluate,
)
from flagkit.core.targeting.bucketing import BUCKET_SCALE, bucket, bucket_prefix
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import FlagState

REPEATS = 15
ON_OFF = [{"id": "on", "value": True}, {"id": "off", "value": False}]


def best(env: dict[str, Any], number: int, *statements: str) -> list[float]:
    """Seconds per execution of each statement: the minimum over the repeats, with the
    statements interleaved in every repeat so machine load affects them alike."""
    timers = [
        timeit.Timer(statement, globals=env, timer=time.thread_time) for statement in statements
    ]
    for timer in timers:  # warm up (specialization, caches)
        timer.timeit(max(1, number // 10))
    minimum = [float("inf")] * len(timers)
    for _ in range(REPEATS):
        for index, timer in enumerate(timers):
            minimum[index] = min(minimum[index], timer.timeit(number) / number)
    return minimum


def compile_raw(raw: dict[str, Any]) -> FlagModel:
    """Compile a wire flag (enabled, version 1) and insist it is well-formed."""
    model = compile_flag(FlagState.from_dict({"enabled": True, "version": 1, **raw}))
    if model.error:
        raise SystemExit(f"benchmark flag {raw['key']!r} is malformed: {model.error}")
    return model


def verdict(ratio: float, target: float) -> str:
    """PASS/MISS against a target ratio."""
    return f"target <= {target:.1f}x: {'PASS' if ratio <= target else 'MISS'}"


def make_bucketer(flag_key: str, salt: str) -> Callable[[str], int]:
    """The cheapest way to compute a bucket in Python: the flag's prefix precomputed,
    one SHA-256, the documented arithmetic (the baseline of ratio 1)."""
    prefix = bucket_prefix(flag_key, salt)
    sha256 = hashlib.sha256
    from_bytes = int.from_bytes

    def bucketer(value: str) -> int:
        return (
            from_bytes(sha256(prefix + value.encode()).digest()[:8], "big") * BUCKET_SCALE
        ) >> 64

    return bucketer


def rollout_vs_hash() -> None:
    """Ratio 1: 30 % rollout evaluation against the bucket hash alone."""
    flag = compile_raw(
        {
            "key": "rollout-30",
            "value": False,
            "variations": ON_OFF,
            "salt": "bench",
            "fallthrough": {
                "rollout": {
                    "variations": [
                        {"variation": "on", "weight": 30000},
                        {"variation": "off", "weight": 70000},
                    ]
                }
            },
        }
    )
    contexts = [EvaluationContext(user_id=f"user-{i:06d}") for i in range(2000)]
    ids = [c.user_id or "" for c in contexts]
    bucketer = make_bucketer("rollout-30", "bench")
    flags: dict[str, FlagModel] = {flag.key: flag}
    segments: dict[str, SegmentModel] = {}
    env = {
        "evaluate": evaluate,
        "flag": flag,
        "contexts": contexts,
        "ids": ids,
        "bucketer": bucketer,
        "bucket": bucket,
        "bucket_prefix": bucket_prefix,
        "flags": flags,
        "segments": segments,
    }
    hashed, evaluated, plain = (
        seconds / len(ids)
        for seconds in best(
            env,
            5,
            "for u in ids: bucketer(u)",
            "for c in contexts: evaluate(flag, c, flags=flags, segments=segments)",
            "for u in ids: bucket(bucket_prefix('rollout-30', 'bench'), u)",
        )
    )
    ratio = evaluated / hashed
    print("1. 30% rollout, 2,000 distinct users")
    print(f"   bucket hash alone (precomputed prefix)  {hashed * 1e9:8.0f} ns/user")
    print(f"   bucket() from scratch (for reference)   {plain * 1e9:8.0f} ns/user")
    print(f"   evaluate() of the rollout flag          {evaluated * 1e9:8.0f} ns/user")
    print(f"   ratio evaluate / hash alone             {ratio:8.2f}x   {verdict(ratio, 1.2)}")


def rule_flag(key: str, clauses: list[dict[str, Any]]) -> FlagModel:
    """A flag whose only rule has ``clauses`` (serving 'on'), fallthrough 'off'."""
    return compile_raw(
        {
            "key": key,
            "value": False,
            "variations": ON_OFF,
            "rules": [{"id": "target-customers", "clauses": clauses, "variation": "on"}],
            "fallthrough": {"variation": "off"},
        }
    )


COUNTRY = {"attribute": "country", "op": "in", "values": ["NL", "BE", "DE"]}
PLAN = {"attribute": "plan", "op": "in", "values": ["pro", "enterprise"]}
SEATS = {"attribute": "seats", "op": "gte", "values": [10]}
BETA = {"attribute": "beta", "op": "equals", "values": [True]}
EMAIL_SUFFIX = {"attribute": "email", "op": "endsWith", "values": ["@example.com"]}
USER_AGENT = {"attribute": "userAgent", "op": "contains", "values": ["Mobile"]}


def five_clause_rule_vs_simple() -> None:
    """Ratio 2: a matching 5-clause rule against a simple (cached) flag."""
    mixed = rule_flag("five-mixed", [COUNTRY, EMAIL_SUFFIX, PLAN, SEATS, BETA])
    lookups = rule_flag("five-lookups", [COUNTRY, USER_AGENT, PLAN, SEATS, BETA])
    simple = compile_raw({"key": "plain", "value": True})
    ctx = EvaluationContext(
        user_id="user-1",
        country="NL",
        email="someone@example.com",
        user_agent="Mozilla/5.0 (iPhone) Mobile",
        custom={"plan": "pro", "seats": 12, "beta": True},
    )
    store = {"plain": simple}

    class Store:
        def get(self, key: str) -> FlagModel | None:
            return store.get(key)

    flags = {m.key: m for m in (mixed, lookups, simple)}
    for model in (mixed, lookups):
        check = evaluate(model, ctx, flags=flags, segments={})
        assert check.reason.value == "RULE_MATCH", check
    env = {
        "evaluate": evaluate,
        "mixed": mixed,
        "lookups": lookups,
        "simple": simple,
        "ctx": ctx,
        "flags": flags,
        "segments": {},
        "store": Store(),
    }
    base, with_suffix, without_suffix, lookup = best(
        env,
        50_000,
        "evaluate(simple, ctx, flags=flags, segments=segments)",
        "evaluate(mixed, ctx, flags=flags, segments=segments)",
        "evaluate(lookups, ctx, flags=flags, segments=segments)",
        "store.get('plain')",
    )
    print("2. a matching 5-clause rule vs evaluate() of a simple flag (the baseline)")
    print(f"   baseline: evaluate() of a simple flag    {base * 1e9:8.0f} ns")
    print(f"   (a dict lookup in a method call: {lookup * 1e9:.0f} ns, for reference only)")
    for label, seconds in (
        ("country in, email endsWith, plan in, seats gte, beta equals", with_suffix),
        ("country in, userAgent contains, plan in, seats gte, beta equals", without_suffix),
    ):
        ratio = seconds / base
        print(f"   {label}")
        print(f"     {seconds * 1e9:8.0f} ns   ratio {ratio:5.2f}x   {verdict(ratio, 3.0)}")


def thousand_flags() -> None:
    """Ratio 3: evaluate 1,000 targeted flags for one context."""
    rng = random.Random(7)
    segments = {
        f"seg-{i}": compile_segment(
            {
                "key": f"seg-{i}",
                "included": [f"user-{j}" for j in range(i, i + 20)],
                "rules": [
                    {"clauses": [{"attribute": "plan", "op": "in", "values": [f"plan-{i}"]}]}
                ],
            }
        )
        for i in range(20)
    }
    raws: list[dict[str, Any]] = []
    for i in range(1000):
        kind = i % 5
        raw: dict[str, Any] = {"key": f"flag-{i:04d}", "value": False, "variations": ON_OFF}
        if kind == 0:
            raw["rules"] = [
                {
                    "id": f"r{i}",
                    "clauses": [
                        {"attribute": "country", "op": "in", "values": [rng.choice(["US", "FR"])]},
                        {"attribute": "seats", "op": "gt", "values": [rng.randint(1, 100)]},
                    ],
                    "variation": "on",
                }
            ]
            raw["fallthrough"] = {"variation": "off"}
        elif kind == 1:
            raw["targets"] = [{"variation": "on", "values": [f"user-{j}" for j in range(50)]}]
            raw["fallthrough"] = {
                "rollout": {
                    "variations": [
                        {"variation": "on", "weight": 25000},
                        {"variation": "off", "weight": 75000},
                    ]
                }
            }
        elif kind == 2:
            raw["rules"] = [
                {"id": f"s{i}", "segments": [f"seg-{i % 20}"], "variation": "on"},
                {
                    "id": f"v{i}",
                    "clauses": [
                        {"attribute": "appVersion", "op": "semverGte", "values": ["3.0.0"]}
                    ],
                    "variation": "on",
                },
            ]
            raw["fallthrough"] = {"variation": "off"}
        elif kind == 3:
            raw["prerequisites"] = [{"key": f"flag-{i - 3:04d}", "variation": "on"}]
            raw["offVariation"] = "off"
            raw["fallthrough"] = {"variation": "on"}
        else:
            raw["rules"] = [
                {
                    "id": f"e{i}",
                    "clauses": [
                        {"attribute": "email", "op": "matches", "values": [r"@corp\d*\.io$"]}
                    ],
                    "variation": "on",
                }
            ]
            raw["fallthrough"] = {"variation": "off"}
        raws.append(raw)
    started = time.perf_counter()
    flags = {raw["key"]: compile_raw(raw) for raw in raws}
    compile_seconds = time.perf_counter() - started
    simple_flags = {
        f"simple-{i}": compile_raw({"key": f"simple-{i}", "value": True}) for i in range(1000)
    }
    ctx = EvaluationContext(
        user_id="user-77",
        country="NL",
        email="a@corp7.io",
        custom={"plan": "plan-3", "seats": 40, "appVersion": "2.9.1"},
    )
    env = {
        "evaluate": evaluate,
        "flags": flags,
        "simple_flags": simple_flags,
        "segments": segments,
        "ctx": ctx,
    }
    statement = "{k: evaluate(m, ctx, flags=%s, segments=segments) for k, m in %s.items()}"
    targeted, simple = best(
        env, 20, statement % ("flags", "flags"), statement % ("simple_flags", "simple_flags")
    )
    print("3. evaluate all of 1,000 targeted flags for one context")
    print(f"   1,000 targeted flags                     {targeted * 1e6:8.0f} us")
    print(f"   1,000 simple flags                       {simple * 1e6:8.0f} us")
    print(f"   ratio targeted / simple                  {targeted / simple:8.2f}x")
    print(f"   (compiling the 1,000 flags took {compile_seconds * 1e3:.0f} ms)")


def main() -> int:
    """Run the three measurements and print them."""
    print(f"bench_targeting: Python {sys.version.split()[0]}, min of {REPEATS} repeats\n")
    rollout_vs_hash()
    print()
    five_clause_rule_vs_simple()
    print()
    thousand_flags()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
