"""OpenFeature through FlagKitProvider, against its two parts measured in the same run.

Run: ``.venv-bench/bin/python benchmarks/bench_openfeature.py [--strict]``

Figures per lookup of a boolean flag with a per-call context:

1. a bare FlagKit call: ``client.get_boolean_value(key, False, context)``, and one full
   FlagKit evaluation, ``client.evaluate(key, context)`` (what the provider calls);
2. the OpenFeature SDK over its own ``InMemoryProvider`` (the SDK's overhead alone);
3. the OpenFeature SDK over ``FlagKitProvider`` (the same flag from a local server).

Target: (3) costs at most the SDK's overhead plus one FlagKit evaluation, i.e.
``(3) <= evaluate() + (2)`` within 10 % (the provider also maps the context and the
result). Timings are the best of several repeats.
"""

from __future__ import annotations

import sys
import timeit

from openfeature import api
from openfeature.evaluation_context import EvaluationContext as OFContext
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

from flagkit import EvaluationContext, StreamingOptions
from flagkit.client import FlagKitClient
from flagkit.openfeature import FlagKitProvider
from flagkit.testing import FlagKitServer

REPEAT = 9
NUMBER = 20_000
KEY = "sdk_bench_openfeature_key"


def best(stmt: object) -> float:
    """Best time per call, in seconds."""
    return min(timeit.repeat(stmt, number=NUMBER, repeat=REPEAT)) / NUMBER  # type: ignore[arg-type]


def main() -> int:
    strict = "--strict" in sys.argv
    flags = [{"key": "new-checkout", "value": True}]
    with FlagKitServer(flags=flags, api_keys=KEY) as server:
        options = {
            "api_key": KEY,
            "base_url": server.base_url,
            "streaming": StreamingOptions(enabled=False),
            "polling_interval": 3600,
        }
        client = FlagKitClient(**options)  # type: ignore[arg-type]
        client.initialize()
        ctx = EvaluationContext(user_id="user-1", country="NL")
        bare = best(lambda: client.get_boolean_value("new-checkout", False, ctx))
        full = best(lambda: client.evaluate("new-checkout", ctx))

        of_ctx = OFContext("user-1", {"country": "NL"})
        memory = InMemoryProvider({"new-checkout": InMemoryFlag("on", {"on": True, "off": False})})
        api.set_provider_and_wait(memory)
        of_client = api.get_client()
        in_memory = best(lambda: of_client.get_boolean_value("new-checkout", False, of_ctx))

        api.set_provider_and_wait(FlagKitProvider(**options))  # type: ignore[arg-type]
        of_client = api.get_client()
        assert of_client.get_boolean_value("new-checkout", False, of_ctx) is True
        provider = best(lambda: of_client.get_boolean_value("new-checkout", False, of_ctx))
        api.shutdown()
        client.close()

    budget = full + in_memory
    ratio = provider / budget
    print(f"bare FlagKit get_boolean_value     {bare * 1e6:8.2f} us")
    print(f"one FlagKit evaluate()             {full * 1e6:8.2f} us")
    print(f"OpenFeature + InMemoryProvider     {in_memory * 1e6:8.2f} us")
    print(f"OpenFeature + FlagKitProvider      {provider * 1e6:8.2f} us")
    print(
        f"provider / (SDK overhead + FlagKit) = {ratio:.2f}x (target <= 1.10x) "
        f"{'OK' if ratio <= 1.10 else 'MISSED'}"
    )
    return 1 if strict and ratio > 1.10 else 0


if __name__ == "__main__":
    sys.exit(main())
