"""OpenFeature's own specification scenarios (gherkin, copied under spec/) against
FlagKitProvider and a real local server serving spec_flags.json."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagEvaluationOptions
from openfeature.hook import Hook, HookContext
from openfeature.provider import ProviderStatus
from openfeature.transaction_context import ContextVarsTransactionContextPropagator
from pytest_bdd import given, parsers, scenarios, then, when

from flagkit.openfeature import FlagKitProvider, to_flagkit_context
from flagkit.server import FlagKitServer
from flagkit.types.config import StreamingOptions
from tests.support import wait_until

from .conftest import SPEC_KEY

scenarios("spec/evaluation_v2.feature", "spec/metadata.feature", "spec/hooks.feature")
scenarios("spec/contextMerging.feature")


class RecordingProvider(FlagKitProvider):
    """A FlagKitProvider that keeps the merged context OpenFeature passed to it."""

    last_context: EvaluationContext | None = None

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ):  # type: ignore[no-untyped-def]
        self.last_context = evaluation_context
        return super().resolve_boolean_details(flag_key, default_value, evaluation_context)


class RecordingHook(Hook):
    def __init__(self, name: str = "hook", order: list[str] | None = None) -> None:
        self.name = name
        self.calls: dict[str, Any] = {}
        self.order = order if order is not None else []

    def before(self, hook_context: HookContext, hints: Any) -> EvaluationContext | None:
        self.calls["before"] = True
        self.order.append(f"{self.name}.before")
        return None

    def after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: Any
    ) -> None:
        self.calls["after"] = details
        self.order.append(f"{self.name}.after")

    def error(self, hook_context: HookContext, exception: Exception, hints: Any) -> None:
        self.calls["error"] = exception

    def finally_after(
        self, hook_context: HookContext, details: FlagEvaluationDetails[Any], hints: Any
    ) -> None:
        self.calls["finally"] = details
        self.order.append(f"{self.name}.finally")


@dataclass
class State:
    client: OpenFeatureClient | None = None
    provider: FlagKitProvider | None = None
    kind: str = ""
    key: str = ""
    default: Any = None
    attributes: dict[str, Any] = field(default_factory=dict)
    details: FlagEvaluationDetails[Any] | None = None
    hook: RecordingHook | None = None
    hooks: list[RecordingHook] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    original_context: EvaluationContext | None = None
    levels: list[str] = field(default_factory=list)
    elapsed: float = 0.0


@pytest.fixture
def state() -> Iterator[State]:
    yield State()


def _options(server: FlagKitServer, **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "api_key": SPEC_KEY,
        "base_url": server.base_url,
        "timeout": 2.0,
        "streaming": StreamingOptions(enabled=False),
        "event_flush_interval": 60.0,
    }
    options.update(extra)
    return options


def _register(state: State, provider: FlagKitProvider, *, wait: bool = True) -> None:
    state.provider = provider
    if wait:
        # The status scenarios look at the resulting provider status, not the exception.
        with contextlib.suppress(Exception):
            api.set_provider_and_wait(provider)
    else:
        api.set_provider(provider)
    state.client = api.get_client()


# -- providers ----------------------------------------------------------------------------


@given("a stable provider")
def stable_provider(state: State, spec_server: FlagKitServer) -> None:
    _register(state, FlagKitProvider(**_options(spec_server)))


@given("a stable provider with retrievable context is registered")
def recording_provider(state: State, spec_server: FlagKitServer) -> None:
    api.set_transaction_context_propagator(ContextVarsTransactionContextPropagator())
    _register(state, RecordingProvider(**_options(spec_server)))


@given("a not ready provider")
def not_ready_provider(
    state: State, spec_server: FlagKitServer, request: pytest.FixtureRequest
) -> None:
    spec_server.inject_fault("init", latency=0.8, count=1)
    provider = FlagKitProvider(**_options(spec_server))
    _register(state, provider, wait=False)
    # Let the slow first load finish before the provider is shut down after the scenario.
    request.addfinalizer(lambda: provider.client.wait_for_ready(5))


@given("a fatal provider")
def fatal_provider(state: State, spec_server: FlagKitServer) -> None:
    _register(state, FlagKitProvider(**_options(spec_server, api_key="sdk_not_a_known_key")))


@given("a error provider")
def error_provider(state: State, refusing_port: int) -> None:
    options = {"api_key": SPEC_KEY, "base_url": f"http://127.0.0.1:{refusing_port}/api/v1"}
    _register(state, FlagKitProvider(**options, timeout=0.5, retries=0))


@given("a stale provider")
def stale_provider(state: State, spec_server: FlagKitServer) -> None:
    options = _options(spec_server, cache_ttl=1, polling_interval=60)
    _register(state, FlagKitProvider(**options, status_interval=0.05))
    client = state.client
    assert client is not None
    wait_until(lambda: client.get_provider_status() is ProviderStatus.STALE, timeout=5)


# -- flags and contexts -------------------------------------------------------------------


def _parse(kind: str, text: str) -> Any:
    kind = kind.lower()
    if kind == "boolean":
        return {"true": True, "false": False}[text]
    if kind == "integer":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "object":
        return json.loads(text.replace('\\"', '"'))
    return text


@given(parsers.parse('a {kind}-flag with key "{key}" and a fallback value "{default}"'))
def a_flag(state: State, kind: str, key: str, default: str) -> None:
    state.kind, state.key, state.default = kind.lower(), key, _parse(kind, default)


@given(
    parsers.parse('a context containing a key "{key}", with type "{kind}" and with value "{value}"')
)
def context_entry(state: State, key: str, kind: str, value: str) -> None:
    state.attributes[key] = _parse(kind, value)


@given(parsers.parse('a context containing a key "{key}" with null value'))
def context_null(state: State, key: str) -> None:
    state.attributes[key] = None


@given("an evaluation context with modifiable data")
def modifiable_context(state: State) -> None:
    state.attributes["email"] = "ballmer@macrosoft.com"
    state.original_context = EvaluationContext(attributes=dict(state.attributes))


@given("a client with added hook")
def client_with_hook(state: State) -> None:
    state.hook = RecordingHook()
    assert state.client is not None
    state.client.add_hooks([state.hook])


@given("evaluation options containing specific hooks")
def option_hooks(state: State) -> None:
    state.hooks = [RecordingHook("first", state.order), RecordingHook("second", state.order)]


# -- evaluation ---------------------------------------------------------------------------


def _evaluate(state: State, options: FlagEvaluationOptions | None = None) -> None:
    assert state.client is not None
    method = getattr(state.client, f"get_{state.kind}_details")
    context = EvaluationContext(attributes=state.attributes)
    state.details = method(state.key, state.default, context, options)


@when("the flag was evaluated with details")
def evaluated(state: State) -> None:
    _evaluate(state)


@when("the flag was evaluated with details using the evaluation options")
def evaluated_with_options(state: State) -> None:
    _evaluate(state, FlagEvaluationOptions(hooks=list(state.hooks)))


@when("the flag was evaluated with details asynchronously")
def evaluated_async(state: State) -> None:
    assert state.client is not None
    method = getattr(state.client, f"get_{state.kind}_details_async")

    async def run() -> FlagEvaluationDetails[Any]:
        started = time.perf_counter()
        details: FlagEvaluationDetails[Any] = await method(state.key, state.default)
        state.elapsed = time.perf_counter() - started
        return details

    state.details = asyncio.run(run())


# -- outcomes -----------------------------------------------------------------------------


def _details(state: State) -> FlagEvaluationDetails[Any]:
    assert state.details is not None, "no evaluation happened"
    return state.details


@then(parsers.re(r'the resolved details value should be "(?P<value>.*)"'))
def resolved_value(state: State, value: str) -> None:
    got = _details(state).value
    expected = _parse(state.kind, value)
    assert got == expected and type(got) is type(expected), (got, expected)


@then(parsers.parse('the reason should be "{reason}"'))
def reason_is(state: State, reason: str) -> None:
    assert _details(state).reason == reason


@then(parsers.parse('the error-code should be "{code}"'))
def error_code_is(state: State, code: str) -> None:
    assert _details(state).error_code == ErrorCode(code)


@then(parsers.parse('the flag key should be "{key}"'))
def flag_key_is(state: State, key: str) -> None:
    assert _details(state).flag_key == key


@then(parsers.parse('the variant should be "{variant}"'))
def variant_is(state: State, variant: str) -> None:
    assert _details(state).variant == variant


@then("the resolved metadata should contain")
def metadata_contains(state: State, datatable: list[list[str]]) -> None:
    metadata = _details(state).flag_metadata
    header, *rows = datatable
    assert header == ["key", "metadata_type", "value"]
    for key, kind, value in rows:
        expected = _parse(kind, value)
        assert metadata[key] == expected and type(metadata[key]) is type(expected), key


@then("the resolved metadata is empty")
def metadata_empty(state: State) -> None:
    # The provider adds FlagKit's own keys (version, rule, segment) only when asked to.
    metadata = _details(state).flag_metadata
    own = {k: v for k, v in metadata.items() if not k.startswith("flagkit.")}
    assert own == {} and metadata is not None


@then(parsers.parse('the provider status should be "{status}"'))
def provider_status(state: State, status: str) -> None:
    assert state.client is not None
    wait_until(lambda: state.client.get_provider_status() is ProviderStatus[status], timeout=5)


@then("the specified hooks should execute during evaluation")
def hooks_ran(state: State) -> None:
    assert all("before" in h.calls and "after" in h.calls for h in state.hooks)


@then("the hook order should be maintained")
def hook_order(state: State) -> None:
    assert state.order == [
        "first.before",
        "second.before",
        "second.after",
        "first.after",
        "second.finally",
        "first.finally",
    ]


@then("the original evaluation context should remain unmodified")
def context_unmodified(state: State) -> None:
    assert state.original_context is not None
    assert dict(state.original_context.attributes) == state.attributes


@then("the evaluation should complete without blocking")
def completed(state: State) -> None:
    assert state.details is not None and state.elapsed < 5


@then(parsers.parse('the "{which}" hook should have been executed'))
def hook_executed(state: State, which: str) -> None:
    assert state.hook is not None and which in state.hook.calls


@then(parsers.parse('the "{which}" hooks should be called with evaluation details'))
def hooks_got_details(state: State, which: str, datatable: list[list[str]]) -> None:
    assert state.hook is not None
    _header, *rows = datatable
    for stage in (w.strip() for w in which.split(",")):
        details = state.hook.calls[stage]
        for kind, key, value in rows:
            got = getattr(details, key)
            expected: Any = None if value == "null" else _parse(kind, value)
            assert got == expected, (stage, key, got, expected)


# -- context merging ----------------------------------------------------------------------


def _add_level(state: State, level: str, key: str, value: str) -> None:
    context = EvaluationContext(attributes={key: value})
    if level == "API":
        api.set_evaluation_context(api.get_evaluation_context().merge(context))
    elif level == "Transaction":
        api.set_transaction_context(api.get_transaction_context().merge(context))
    elif level == "Client":
        assert state.client is not None
        state.client.context = state.client.context.merge(context)
    elif level == "Invocation":
        state.attributes[key] = value
    else:  # Before Hooks
        state.hooks.append(_ContextHook(context))


class _ContextHook(Hook):
    def __init__(self, context: EvaluationContext) -> None:
        self.context = context

    def before(self, hook_context: HookContext, hints: Any) -> EvaluationContext:
        return self.context


@given(
    parsers.parse(
        'A context entry with key "{key}" and value "{value}" is added to the "{level}" level'
    )
)
def context_level(state: State, key: str, value: str, level: str) -> None:
    _add_level(state, level, key, value)


@given("A table with levels of increasing precedence")
def level_table(state: State, datatable: list[list[str]]) -> None:
    state.levels = [row[0] for row in datatable]


@given(
    parsers.parse(
        'Context entries for each level from API level down to the "{level}" level, '
        'with key "{key}" and value "{value}"'
    )
)
def context_levels(state: State, level: str, key: str, value: str) -> None:
    for name in state.levels[: state.levels.index(level) + 1]:
        _add_level(state, name, key, name if name != level else value)


@when("Some flag was evaluated")
def some_flag(state: State) -> None:
    state.kind, state.key, state.default = "boolean", "boolean-flag", False
    _evaluate(state, FlagEvaluationOptions(hooks=list(state.hooks)))


@then(parsers.parse('The merged context contains an entry with key "{key}" and value "{value}"'))
def merged_contains(state: State, key: str, value: str) -> None:
    provider = state.provider
    assert isinstance(provider, RecordingProvider) and provider.last_context is not None
    assert provider.last_context.attributes[key] == value
    # ... and FlagKit sees it as a custom attribute of the per-call context.
    flagkit_context = to_flagkit_context(provider.last_context)
    assert flagkit_context is not None and flagkit_context.custom[key] == value
