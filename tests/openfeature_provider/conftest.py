"""Fixtures of the OpenFeature provider tests: one local server with the spec's flags."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from flagkit.server import FlagKitServer

HERE = Path(__file__).parent
SPEC_FLAGS = HERE / "spec_flags.json"
SPEC_KEY = "sdk_openfeature_spec_key"

# Scenarios of the copied feature files that cannot apply to a FlagKit provider, with the
# reason; docs/openfeature.md lists the same ones. They are deselected, not skipped.
NOT_APPLICABLE = {
    "Multiple context attributes targeting": (
        "contradicts test-flags.json: complex-targeted requires the email "
        "ballmer@macrosoft.com, which the scenario does not set"
    ),
    "Evaluation context immutability": (
        "tests the OpenFeature SDK, not the provider: openfeature-sdk's "
        "FlagEvaluationDetails is a mutable dataclass"
    ),
    "CACHED reason": (
        "FlagKit evaluates locally from its snapshot on every call; no evaluation is "
        "a cache hit of an earlier one (reason CACHED is used for bootstrap/persisted values)"
    ),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        # pytest-bdd documents each scenario function as "<feature>: <scenario>".
        doc = getattr(getattr(item, "function", None), "__doc__", None) or ""
        name = doc.partition(": ")[2]
        (drop if name in NOT_APPLICABLE else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def spec_server() -> Iterator[FlagKitServer]:
    """A local server serving the FlagKit reproduction of the spec's test-flags.json."""
    with FlagKitServer(flags_file=SPEC_FLAGS, heartbeat_interval=0.5) as server:
        yield server


@pytest.fixture(autouse=True)
def _reset_openfeature() -> Iterator[None]:
    yield
    api.set_transaction_context(EvaluationContext())
    api.shutdown()
    api.clear_providers()
    api.clear_hooks()
    api.set_evaluation_context(EvaluationContext())
    api.clear_transaction_context_propagator()


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so no one else takes it), not
    listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def pytest_configure(config: pytest.Config) -> None:
    # The spec's gherkin tags (``@spec-1.4.7``, ``@booleans``) become pytest markers;
    # register them so --strict-markers accepts them.
    tags = set()
    for feature in (HERE / "spec").glob("*.feature"):
        tags.update(re.findall(r"@([\w.-]+)", feature.read_text(encoding="utf-8")))
    for tag in sorted(tags):
        config.addinivalue_line("markers", f"{tag}: OpenFeature specification tag")
