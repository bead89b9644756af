"""Context layers: global, request scope (contextvars) and per call; identify and reset."""

from __future__ import annotations

import asyncio
import threading

import pytest

from flagkit.core.context_manager import ContextManager, build_context, context_from_mapping
from flagkit.types.context import EvaluationContext


def test_identify_attributes_are_all_kept() -> None:
    """Known attributes go to their fields and every other attribute goes to ``custom``."""
    ctx = build_context(
        "u-1",
        {
            "email": "a@example.com",
            "name": "Ann",
            "country": "NL",
            "ip": "10.0.0.1",
            "userAgent": "curl",
            "plan": "premium",
            "custom": {"beta": True},
            "private_attributes": ["email"],
            "country_code": 31,
        },
    )
    assert ctx.user_id == "u-1" and ctx.anonymous is False
    assert (ctx.email, ctx.name, ctx.country, ctx.ip, ctx.user_agent) == (
        "a@example.com",
        "Ann",
        "NL",
        "10.0.0.1",
        "curl",
    )
    assert ctx.custom == {"plan": "premium", "beta": True, "country_code": 31}
    assert ctx.private_attributes == ["email"]


def test_known_fields_with_odd_types_are_kept_in_custom() -> None:
    """A known field with a value of the wrong type is not dropped: it lands in ``custom``."""
    ctx = build_context("u-1", {"country": 31, "email": None})
    assert ctx.country is None and ctx.custom == {"country": 31}
    with pytest.raises(TypeError):
        build_context("u-1", ["not", "a", "mapping"])  # type: ignore[arg-type]


def test_context_from_mapping_accepts_both_spellings() -> None:
    """Plain dicts with snake_case or camelCase keys become contexts."""
    assert context_from_mapping({"userId": "u1"}).user_id == "u1"
    assert context_from_mapping({"user_id": "u2", "plan": "x"}).custom == {"plan": "x"}


def test_layers_merge_global_then_scope_then_call() -> None:
    """Per-call fields win over the scope, which wins over the global context."""
    cm = ContextManager()
    cm.set_global(EvaluationContext(user_id="global", country="NL", custom={"a": 1, "b": 1}))
    with cm.scope(EvaluationContext(user_id="scoped", custom={"b": 2})):
        merged = cm.resolve(EvaluationContext(custom={"c": 3}))
        assert merged is not None
        assert merged.user_id == "scoped" and merged.country == "NL"
        assert merged.custom == {"a": 1, "b": 2, "c": 3}
        assert cm.in_scope()
    assert not cm.in_scope()
    assert cm.current() == EvaluationContext(
        user_id="global", country="NL", custom={"a": 1, "b": 1}
    )


def test_resolve_returns_none_or_the_only_layer_without_copying() -> None:
    """With a single layer set, that very object is used (no merge cost)."""
    cm = ContextManager()
    assert cm.resolve(None) is None
    per_call = EvaluationContext(user_id="x")
    assert cm.resolve(per_call) is per_call


def test_scopes_do_not_leak_between_threads() -> None:
    """Sixteen threads in their own scopes each only ever see their own user."""
    cm = ContextManager()
    errors: list[str] = []
    barrier = threading.Barrier(16)

    def worker(n: int) -> None:
        with cm.scope(EvaluationContext(user_id=f"user-{n}")):
            barrier.wait()
            for _ in range(200):
                seen = cm.resolve(None)
                if seen is None or seen.user_id != f"user-{n}":
                    errors.append(f"{n} saw {seen!r}")
        if cm.resolve(None) is not None:
            errors.append(f"{n} kept a scope after leaving it")

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_scopes_do_not_leak_between_asyncio_tasks() -> None:
    """Concurrent tasks interleaving at awaits each see only their own scope."""
    cm = ContextManager()

    async def handler(n: int) -> list[str | None]:
        seen: list[str | None] = []
        with cm.scope(EvaluationContext(user_id=f"task-{n}")):
            for _ in range(5):
                await asyncio.sleep(0)
                ctx = cm.resolve(None)
                seen.append(ctx.user_id if ctx else None)
        return seen

    async def main() -> list[list[str | None]]:
        return list(await asyncio.gather(*(handler(n) for n in range(10))))

    results = asyncio.run(main())
    for n, seen in enumerate(results):
        assert seen == [f"task-{n}"] * 5


def test_lazy_scope_factory_runs_once_and_only_when_needed() -> None:
    """A callable scope is built on first need, once, and never if nobody asks."""
    cm = ContextManager()
    calls: list[int] = []

    def factory() -> EvaluationContext:
        calls.append(1)
        return EvaluationContext(user_id="lazy")

    with cm.scope(factory):
        assert calls == []
        first = cm.resolve(None)
        second = cm.resolve(None)
        assert first is not None and first.user_id == "lazy" and second is first
    assert calls == [1]
    with cm.scope(factory):
        pass
    assert calls == [1]


def test_broken_scope_factory_counts_as_no_context() -> None:
    """A factory that raises gives no scoped context instead of breaking lookups."""
    cm = ContextManager()

    def broken() -> EvaluationContext:
        raise RuntimeError("db down")

    with cm.scope(broken):
        assert cm.resolve(None) is None
    with pytest.raises(TypeError), cm.scope(42):  # type: ignore[arg-type]
        pass


def test_identify_same_user_merges_and_new_user_starts_clean() -> None:
    """Re-identifying a user adds attributes; another user does not inherit them."""
    cm = ContextManager()
    cm.identify("u1", {"plan": "pro", "email": "u1@example.com"})
    cm.identify("u1", {"country": "NL"})
    ctx = cm.current()
    assert ctx is not None
    assert (ctx.user_id, ctx.email, ctx.country, ctx.custom) == (
        "u1",
        "u1@example.com",
        "NL",
        {"plan": "pro"},
    )
    cm.identify("u2", {"country": "BE"})
    ctx = cm.current()
    assert ctx is not None
    assert (ctx.user_id, ctx.email, ctx.custom) == ("u2", None, {})


def test_identify_from_anonymous_keeps_the_anonymous_key() -> None:
    """An anonymous visitor who logs in keeps attributes gathered while anonymous."""
    cm = ContextManager()
    cm.set_global(EvaluationContext(user_key="visitor-9", anonymous=True))
    cm.identify("u1")
    ctx = cm.current()
    assert ctx is not None
    assert (ctx.user_id, ctx.user_key, ctx.anonymous) == ("u1", "visitor-9", False)


def test_identify_and_reset_inside_a_scope_never_touch_the_global_context() -> None:
    """A request that identifies its user changes only its own scope."""
    cm = ContextManager()
    cm.set_global(EvaluationContext(custom={"app": "shop"}))
    with cm.scope(None):
        cm.identify("request-user")
        inside = cm.current()
        assert inside is not None and inside.user_id == "request-user"
        assert inside.custom == {"app": "shop"}
        cm.reset()
        after_reset = cm.scoped_context()
        assert after_reset == EvaluationContext(anonymous=True)
    assert cm.global_context == EvaluationContext(custom={"app": "shop"})


def test_reset_outside_a_scope_makes_the_global_context_anonymous() -> None:
    """``reset()`` replaces the global context with an anonymous one (docs/protocol.md §9.3)."""
    cm = ContextManager()
    cm.identify("u1", {"plan": "pro"})
    cm.reset()
    assert cm.global_context == EvaluationContext(anonymous=True)
