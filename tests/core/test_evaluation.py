"""One evaluation rule set: the fast paths agree with it, lookups never raise, and typos
and wrong getters are logged once.

The client's fast paths (a typed getter's dict lookup, ``evaluate_all``'s inline simple
flag) are compared with :func:`flagkit.core.evaluation.evaluate_key` on generated flags,
bootstrap values, overrides, contexts and defaults, over a real local server.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flagkit import EvaluationContext, EvaluationReason, FlagKit, StreamingOptions
from flagkit.client import FlagKitClient
from flagkit.core.context_manager import ContextManager
from flagkit.core.evaluation import LazyContext, _forget_warnings, evaluate_key, result_of
from flagkit.testing import FlagKitServer
from flagkit.types.flag import FlagType

KEYS = ["a", "b", "c", "d", "e"]
COUNTRIES = ["NL", "DE", "US"]
GETTERS = {
    FlagType.BOOLEAN: "get_boolean_value",
    FlagType.STRING: "get_string_value",
    FlagType.NUMBER: "get_number_value",
    FlagType.JSON: "get_json_value",
}

_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-(10**6), 10**6), st.text(max_size=5))
_numbers = st.one_of(
    st.integers(-(10**6), 10**6), st.floats(allow_nan=False, allow_infinity=False, width=32)
)
_values = {
    "boolean": st.booleans(),
    "string": st.text(max_size=8),
    "number": _numbers,
    "json": st.one_of(
        st.dictionaries(st.sampled_from(["x", "y"]), _json_leaf, max_size=2),
        st.lists(_json_leaf, max_size=2),
    ),
}
_any_value = st.one_of(
    st.booleans(),
    st.text(max_size=5),
    _numbers,
    st.none(),
    st.dictionaries(st.just("k"), _json_leaf),
)
_odd_defaults = st.one_of(
    _any_value, st.just(float("nan")), st.just(object()), st.just([1, 2]), st.just(b"bytes")
)


@st.composite
def _flag(draw: st.DrawFn, key: str) -> dict[str, Any]:
    flag_type = draw(st.sampled_from(sorted(_values)))
    value = draw(_values[flag_type])
    flag: dict[str, Any] = {
        "key": key,
        "flagType": flag_type,
        "value": value,
        "enabled": draw(st.booleans()),
    }
    if draw(st.booleans()):  # targeted: a rule on country, served variations of the type
        on, off = draw(_values[flag_type]), draw(_values[flag_type])
        country = draw(st.sampled_from(COUNTRIES))
        flag.update(
            variations=[{"id": "on", "value": on}, {"id": "off", "value": off}],
            offVariation="off",
            rules=[
                {
                    "id": "r1",
                    "clauses": [{"attribute": "country", "op": "in", "values": [country]}],
                    "variation": "on",
                }
            ],
            fallthrough={"variation": "off"},
        )
    return flag


@st.composite
def _world(draw: st.DrawFn) -> dict[str, Any]:
    server_keys = draw(st.lists(st.sampled_from(KEYS), unique=True, max_size=4))
    return {
        "flags": [draw(_flag(key)) for key in server_keys],
        "bootstrap": draw(st.dictionaries(st.sampled_from(KEYS), _any_value, max_size=3)),
        "overrides": draw(st.dictionaries(st.sampled_from(KEYS), _any_value, max_size=2)),
        "contexts": draw(
            st.lists(
                st.one_of(
                    st.none(),
                    st.sampled_from(COUNTRIES).map(lambda c: EvaluationContext(country=c)),
                ),
                min_size=1,
                max_size=3,
            )
        ),
        "defaults": draw(st.lists(_odd_defaults, min_size=1, max_size=3)),
    }


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _fields(result: Any) -> tuple[Any, ...]:
    return (
        result.flag_key,
        result.enabled,
        result.reason,
        result.version,
        result.variation_id,
        result.rule_id,
        result.segment_id,
        result.error_code,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[FlagKitServer]:
    with FlagKitServer(flags=[]) as srv:
        yield srv


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=_world())
def test_fast_paths_agree_with_the_rules(server: FlagKitServer, world: dict[str, Any]) -> None:
    """Typed getters, evaluate() and evaluate_all() serve exactly what evaluate_key() says,
    for every key (known, bootstrap-only, overridden, unknown, invalid), context and default."""
    server.reset(flags=world["flags"])
    client = FlagKitClient(
        api_key=server.api_key,
        base_url=server.base_url,
        streaming=StreamingOptions(enabled=False),
        enable_polling=False,
        bootstrap=world["bootstrap"],
        event_flush_interval=60.0,
    )
    try:
        client.initialize()
        for with_overrides in (False, True):
            if with_overrides:
                client.set_overrides(world["overrides"])
            overrides = client.overrides
            snapshot = client.snapshot
            for context in world["contexts"]:

                def rules(
                    key: Any,
                    default: Any,
                    expected: FlagType | None,
                    overrides: Any = overrides,
                    snapshot: Any = snapshot,
                    context: Any = context,
                ) -> Any:
                    lazy = LazyContext(ContextManager(), context)
                    return evaluate_key(
                        key, default, expected, overrides=overrides, snapshot=snapshot, context=lazy
                    )

                for key in [*KEYS, "bad key", ""]:
                    for default in world["defaults"]:
                        for expected, getter in GETTERS.items():
                            served = getattr(client, getter)(key, default, context)
                            assert _same(served, rules(key, default, expected).value), (key, getter)
                        result = client.evaluate(key, context, default=default)
                        reference = result_of(key, rules(key, default, None))
                        assert _same(result.value, reference.value)
                        assert _fields(result) == _fields(reference)
                everything = client.evaluate_all(context)
                assert sorted(everything) == sorted(client.get_all_flag_keys())
                for key, result in everything.items():
                    reference = result_of(key, rules(key, None, None))
                    assert _same(result.value, reference.value), key
                    assert _fields(result) == _fields(reference), key
    finally:
        client.close()


# -- hostile input: lookups never raise ------------------------------------------------------


class HashBomb(str):
    def __hash__(self) -> int:
        raise RuntimeError("hash bomb")


class EqBomb(str):
    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq bomb")


class StrBomb(str):
    def __str__(self) -> str:
        raise RuntimeError("str bomb")

    def __repr__(self) -> str:
        raise RuntimeError("repr bomb")


class LenBomb(str):
    def __len__(self) -> int:
        raise RuntimeError("len bomb")


class ObjectBomb:
    def __hash__(self) -> int:
        raise RuntimeError("hash bomb")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq bomb")

    def __repr__(self) -> str:
        raise RuntimeError("repr bomb")


class MappingBomb(dict[str, Any]):
    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("iter bomb")

    def items(self) -> Any:
        raise RuntimeError("items bomb")

    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("get bomb")


HOSTILE_KEYS = [
    HashBomb("dark-mode"),
    EqBomb("dark-mode"),
    StrBomb("dark-mode"),
    LenBomb("dark-mode"),
    ObjectBomb(),
    ["list"],
    None,
    b"dark-mode",
]
HOSTILE_CONTEXTS: list[Any] = [MappingBomb(country="NL"), object(), 42, "NL"]
TARGETED = {
    "key": "beta",
    "flagType": "boolean",
    "value": False,
    "variations": [{"id": "on", "value": True}, {"id": "off", "value": False}],
    "offVariation": "off",
    "rules": [
        {
            "id": "r",
            "clauses": [{"attribute": "country", "op": "in", "values": ["NL"]}],
            "variation": "on",
        }
    ],
    "fallthrough": {"variation": "off"},
}


@pytest.fixture(scope="module")
def hostile_client() -> Iterator[FlagKitClient]:
    with FlagKitServer(
        flags=[{"key": "dark-mode", "value": True, "flagType": "boolean"}, TARGETED]
    ) as srv:
        client = FlagKitClient(
            api_key=srv.api_key,
            base_url=srv.base_url,
            streaming=StreamingOptions(enabled=False),
            enable_polling=False,
            event_flush_interval=60.0,
        )
        client.initialize()
        yield client
        client.close()


@pytest.mark.parametrize("overridden", [False, True], ids=["fast", "overrides"])
@pytest.mark.parametrize("key", HOSTILE_KEYS, ids=lambda k: type(k).__name__)
def test_hostile_keys_get_the_default_on_every_path(
    hostile_client: FlagKitClient, key: Any, overridden: bool
) -> None:
    """A key whose __hash__, __eq__, __str__ or __len__ raises, or that is no str at all,
    never makes a lookup raise: it gets the default (or, for a str that still hashes and
    compares as "dark-mode", that boolean flag's value)."""
    sentinel = object()
    usable = isinstance(key, (StrBomb, LenBomb))
    with hostile_client.override_flags({"other": 1} if overridden else {}):
        served = hostile_client.get_boolean_value(key, sentinel)  # type: ignore[arg-type]
        assert served is sentinel or (usable and served is True)
        assert hostile_client.get_string_value(key, sentinel) is sentinel  # type: ignore[arg-type]
        assert hostile_client.get_number_value(key, sentinel) is sentinel  # type: ignore[arg-type]
        assert hostile_client.get_json_value(key, sentinel) is sentinel  # type: ignore[call-overload]
        result = hostile_client.evaluate(key, default=sentinel)
        assert type(result.flag_key) is str
        if not usable:
            assert result.value is sentinel and result.error_code is not None
        assert hostile_client.has_flag(key) in (True, False)


@pytest.mark.parametrize("context", HOSTILE_CONTEXTS, ids=lambda c: type(c).__name__)
def test_hostile_contexts_get_the_default_for_targeted_flags(
    hostile_client: FlagKitClient, context: Any
) -> None:
    """A context that cannot be read serves the default (targeted flags) or the stored value
    (simple flags, which ignore the context); evaluate_all() returns every key."""
    assert hostile_client.get_boolean_value("beta", True, context) is True
    assert hostile_client.get_boolean_value("dark-mode", False, context) is True
    result = hostile_client.evaluate("beta", context, default="d")
    assert result.value == "d" and result.reason is EvaluationReason.EVALUATION_ERROR
    everything = hostile_client.evaluate_all(context)
    assert set(everything) == {"dark-mode", "beta"}
    assert everything["dark-mode"].value is True
    assert everything["beta"].reason is EvaluationReason.EVALUATION_ERROR


def test_factory_lookups_with_hostile_keys_never_raise() -> None:
    """Without a default client, FlagKit's lookups log and return the default, whatever the key."""
    FlagKit.close()
    for key in HOSTILE_KEYS:
        assert FlagKit.get_boolean_value(key, True) is True  # type: ignore[arg-type]
        assert FlagKit.evaluate(key, default=3).value == 3  # type: ignore[arg-type]


# -- warn once per key -------------------------------------------------------------------------


@pytest.fixture
def fresh_warnings() -> Iterator[None]:
    _forget_warnings()
    yield
    _forget_warnings()


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_unknown_key_is_logged_once_per_key_once_ready(
    hostile_client: FlagKitClient, caplog: pytest.LogCaptureFixture, fresh_warnings: None
) -> None:
    """A typo is a WARNING naming the key, the first time only; other keys get their own."""
    with caplog.at_level(logging.WARNING, logger="flagkit"):
        for _ in range(3):
            assert hostile_client.get_boolean_value("staf-panel", False) is False
            assert hostile_client.evaluate("staf-panel").reason is EvaluationReason.FLAG_NOT_FOUND
        hostile_client.get_string_value("other-typo", "x")
    messages = _warnings(caplog)
    assert len([m for m in messages if "'staf-panel'" in m]) == 1
    assert any("'staf-panel'" in m and "not defined" in m for m in messages)
    assert len([m for m in messages if "'other-typo'" in m]) == 1


def test_type_mismatch_is_logged_once_naming_both_types(
    hostile_client: FlagKitClient, caplog: pytest.LogCaptureFixture, fresh_warnings: None
) -> None:
    """get_number_value on a boolean flag: the default comes back, and one WARNING names the
    key, the flag's type and the default's type."""
    with caplog.at_level(logging.WARNING, logger="flagkit"):
        for _ in range(3):
            assert hostile_client.get_number_value("dark-mode", 5) == 5
            assert hostile_client.get_string_value("beta", "x") == "x"
    messages = _warnings(caplog)
    [number] = [m for m in messages if "'dark-mode'" in m]
    assert "boolean flag" in number and "get_number_value" in number and "number" in number
    [string] = [m for m in messages if "'beta'" in m]
    assert "boolean flag" in string and "string" in string


def test_unknown_keys_are_not_logged_before_the_client_has_flags(
    caplog: pytest.LogCaptureFixture, fresh_warnings: None
) -> None:
    """Before the first load every key is unknown: nothing is logged; once ready, it is."""
    client = FlagKitClient(api_key="sdk_test_key_123456", offline=True)
    with caplog.at_level(logging.WARNING, logger="flagkit"):
        assert client.get_boolean_value("nope", True) is True
        assert not [m for m in _warnings(caplog) if "'nope'" in m]
        client.start()
        assert client.get_boolean_value("nope", True) is True
    assert len([m for m in _warnings(caplog) if "'nope'" in m]) == 1
    client.close()


def test_targeted_getters_merge_the_global_and_scoped_contexts(server: FlagKitServer) -> None:
    """The typed getters' targeted-flag path resolves the context layers like the rules:
    a per-call context alone, merged over the global one, and inside a request scope."""
    rule = {
        "id": "dutch-pro",
        "clauses": [
            {"attribute": "country", "op": "in", "values": ["NL"]},
            {"attribute": "plan", "op": "in", "values": ["pro"]},
        ],
        "variation": "on",
    }
    server.reset(
        flags=[
            {
                "key": "t",
                "value": False,
                "flagType": "boolean",
                "variations": [{"id": "on", "value": True}, {"id": "off", "value": False}],
                "rules": [rule],
                "fallthrough": {"variation": "off"},
            }
        ]
    )
    client = FlagKitClient(
        api_key=server.api_key,
        base_url=server.base_url,
        streaming=StreamingOptions(enabled=False),
        enable_polling=False,
    )
    try:
        client.initialize()
        both = EvaluationContext(country="NL", custom={"plan": "pro"})
        assert client.get_boolean_value("t", False, both) is True
        assert client.get_boolean_value("t", False, {"country": "NL", "plan": "pro"}) is True
        dutch = EvaluationContext(country="NL")
        assert client.get_boolean_value("t", False, dutch) is False
        client.set_context(EvaluationContext(custom={"plan": "pro"}))
        assert client.get_boolean_value("t", False, dutch) is True  # merged over the global
        client.set_context(None)
        with client.context_scope(EvaluationContext(custom={"plan": "pro"})):
            assert client.get_boolean_value("t", False, dutch) is True  # merged over the scope
        assert client.get_boolean_value("t", False, dutch) is False
        assert client.get_string_value("t", "x", both) == "x"  # wrong getter: the default
    finally:
        client.close()
