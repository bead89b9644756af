"""Targeted flags are parsed at load and compiled on their first evaluation.

Malformed targeting is still rejected when the flag is loaded (before any evaluation);
the generated function appears only when the flag is first evaluated, once, even when
many threads evaluate it for the first time together; simple flags never get one.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from flagkit.core.store import FlagStore
from flagkit.core.targeting import compile_flag, evaluate, interpret
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import FlagState

ON_OFF = [{"id": "on", "value": True}, {"id": "off", "value": False}]


def targeted(key: str = "beta", **extra: Any) -> FlagState:
    raw: dict[str, Any] = {
        "key": key,
        "value": False,
        "enabled": True,
        "version": 1,
        "variations": ON_OFF,
        "rules": [
            {
                "id": "dutch",
                "clauses": [{"attribute": "country", "op": "in", "values": ["NL"]}],
                "variation": "on",
            }
        ],
        "fallthrough": {"variation": "off"},
    }
    raw.update(extra)
    return FlagState.from_dict(raw)


def test_a_targeted_flag_is_compiled_on_its_first_evaluation() -> None:
    model = compile_flag(targeted())
    assert model.error is None and model.spec is not None
    assert model.compiled_function() is None  # parsed, not yet compiled

    decision = evaluate(model, EvaluationContext(country="NL"), flags={}, segments={})

    assert (decision.value, decision.rule_id) == (True, "dutch")
    function = model.compiled_function()
    assert function is not None
    evaluate(model, EvaluationContext(country="DE"), flags={}, segments={})
    assert model.compiled_function() is function  # compiled once, then reused


def test_malformed_targeting_is_rejected_at_load_without_an_evaluation(caplog: Any) -> None:
    bad = targeted(rules=[{"id": "r", "clauses": [{"attribute": "a", "op": "near"}]}])
    with caplog.at_level(logging.WARNING):
        store = FlagStore(ttl=300.0, logger=logging.getLogger("flagkit.test"))
        store.apply(full=[bad])
    model = store.snapshot.entries["beta"].model
    assert model is not None
    assert model.error is not None and "rules[0]" in model.error and "near" in model.error
    assert "beta" in caplog.text and "near" in caplog.text


def test_simple_flags_get_no_model_and_targeted_ones_wait_for_an_evaluation() -> None:
    store = FlagStore(ttl=300.0, logger=logging.getLogger("flagkit.test"))
    simple = FlagState.from_dict({"key": "plain", "value": True, "enabled": True, "version": 1})
    store.apply(full=[simple, targeted()])
    entries = store.snapshot.entries
    assert entries["plain"].model is None
    model = entries["beta"].model
    assert model is not None and model.compiled_function() is None


def test_concurrent_first_evaluations_install_one_function_deciding_like_the_interpreter() -> None:
    threads_count = 8
    contexts = [EvaluationContext(country=c) for c in ("NL", "DE", None, "NL")]
    for round_number in range(20):
        model = compile_flag(targeted(f"flag-{round_number}"))
        expected = [interpret(model, c, flags={}, segments={}) for c in contexts]
        barrier = threading.Barrier(threads_count)
        seen: list[Any] = []
        failures: list[BaseException] = []

        def first_evaluation(
            model: Any = model, barrier: Any = barrier, seen: Any = seen, failures: Any = failures
        ) -> None:
            try:
                barrier.wait(timeout=30)
                decisions = [evaluate(model, c, flags={}, segments={}) for c in contexts]
                seen.append((decisions, model.compiled_function()))
            except BaseException as exc:  # reported below, in the test's thread
                failures.append(exc)

        threads = [threading.Thread(target=first_evaluation) for _ in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not failures
        assert len(seen) == threads_count
        functions = {id(function) for _, function in seen}
        assert len(functions) == 1 and model.compiled_function() is seen[0][1]
        for decisions, _ in seen:
            assert decisions == expected
