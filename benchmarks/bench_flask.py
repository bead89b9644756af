"""Flask benchmark: request overhead of the ``flagkit_flask`` extension plus a ``{% flag %}``
block, as a ratio against the same view without them, measured in the same run.

Run::

    .venv/bin/python benchmarks/bench_flask.py

Two apps serve the same minimal view, which renders a one-line template:

- **baseline** — no FlagKit; the template is ``<p>on</p>``;
- **flagkit** — ``FlagKit().init_app(app)`` (before/after/teardown request hooks, the
  request's context scope) and the template
  ``<p>{% flag "new-checkout" %}on{% else %}off{% endflag %}</p>``, the flag served by a
  loopback :class:`flagkit.testing.FlagKitServer` (client started and loaded first, like a
  warm server).

Two ways of sending the requests, both printed:

1. ``app.test_client().get("/")`` — the same method as ``bench_django.py`` (Django's test
   client); this is the figure the target applies to: flagkit / baseline <= 1.10;
2. raw WSGI calls straight into ``app(environ, start_response)`` with a prebuilt environ —
   stricter: no test-client work at all, less than any real server does per request, so
   the extension's share looks larger. Reported for reading.

Each figure is the calling thread's CPU time per request (``time.thread_time``: other
processes on a busy machine do not inflate it), the minimum over alternating rounds, so
drift affects every app alike.

Also printed, for reading: the same with a targeted flag for an anonymous visitor (the
request's context is built, and the anonymous-key cookie set), against the same baseline.
Always exits 0: the numbers are for reading, not gating.
"""

from __future__ import annotations

import platform
import sys
import time
import timeit
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROUNDS = 15
NUMBER = 1000
TARGET = 1.10

FLAGS: list[dict[str, Any]] = [
    {"key": "new-checkout", "value": True},
    {
        "key": "targeted",
        "flagType": "boolean",
        "value": False,
        "variations": [{"id": "on", "value": True}, {"id": "off", "value": False}],
        "rules": [
            {
                "id": "anonymous",
                "clauses": [{"attribute": "anonymous", "op": "in", "values": [True]}],
                "variation": "on",
            }
        ],
        "fallthrough": {"variation": "off"},
    },
]


def build_app(template: str, config: dict[str, Any] | None) -> Any:
    """A Flask app whose only view renders ``template``; FlagKit registered if ``config``."""
    from flask import Flask, render_template
    from jinja2 import DictLoader

    from flagkit_flask import FlagKit

    app = Flask(__name__)
    app.config.update(SECRET_KEY="benchmark-only")
    app.jinja_loader = DictLoader({"page.html": template})
    if config is not None:
        app.config.update(config)
        FlagKit().init_app(app)

    @app.get("/")
    def page() -> str:
        return render_template("page.html")

    return app


def wsgi_caller(app: Any) -> Callable[[], bytes]:
    """A zero-argument function doing one GET / through ``app``'s WSGI interface."""
    from werkzeug.test import EnvironBuilder

    builder = EnvironBuilder(path="/", method="GET")
    environ = builder.get_environ()
    builder.close()

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return None

    def call() -> bytes:
        body: Iterable[bytes] = app(dict(environ), start_response)
        try:
            return b"".join(body)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()

    return call


def test_client_caller(app: Any) -> Callable[[], bytes]:
    """A zero-argument function doing one GET / through ``app.test_client()``."""
    client = app.test_client()

    def call() -> bytes:
        return client.get("/").data  # type: ignore[no-any-return]

    return call


def measure(callers: dict[str, Callable[[], bytes]]) -> dict[str, float]:
    """CPU seconds of this thread per request of each caller (minimum over alternating
    rounds); CPU time, not wall time, so other processes on a busy machine do not count."""
    best = dict.fromkeys(callers, float("inf"))
    for _ in range(ROUNDS):
        for name, call in callers.items():
            timer = timeit.Timer(call, timer=time.thread_time)
            best[name] = min(best[name], timer.timeit(number=NUMBER) / NUMBER)
    return best


def main() -> None:
    """Measure and print the ratios."""
    from flagkit.testing import FlagKitServer

    with FlagKitServer(flags=FLAGS) as server:
        config = {
            "FLAGKIT_API_KEY": server.api_key,
            "FLAGKIT_BASE_URL": server.base_url,
            "FLAGKIT_STREAMING": {"ENABLED": False},
            "FLAGKIT_POLLING_INTERVAL": 600,
        }
        baseline = build_app("<p>on</p>", None)
        flagged = build_app('<p>{% flag "new-checkout" %}on{% else %}off{% endflag %}</p>', config)
        targeted = build_app('<p>{% flag "targeted" %}on{% else %}off{% endflag %}</p>', config)
        for app in (flagged, targeted):
            client = app.extensions["flagkit"].client
            if not client.wait_for_ready(10):
                raise SystemExit(f"the FlagKit client did not load flags: {client.last_error}")
        callers: dict[str, Callable[[], bytes]] = {}
        for how, make in (("client", test_client_caller), ("wsgi", wsgi_caller)):
            callers[f"{how}:baseline"] = make(baseline)
            callers[f"{how}:flagkit"] = make(flagged)
            callers[f"{how}:targeted"] = make(targeted)
        for name, call in callers.items():
            assert call() == b"<p>on</p>", (name, call())
        best = measure(callers)
        for app in (flagged, targeted):
            app.extensions["flagkit"].close()

    print(f"Python {platform.python_version()} on {platform.machine()}; {ROUNDS} rounds x {NUMBER}")
    for how, title, target in (
        ("client", "through app.test_client() (as bench_django.py)", TARGET),
        ("wsgi", "raw WSGI calls (stricter; for reading)", None),
    ):
        base = best[f"{how}:baseline"]
        flagkit = best[f"{how}:flagkit"]
        targeted_cost = best[f"{how}:targeted"]
        ratio = flagkit / base
        verdict = (
            f"target <= {target:.2f}x: {'PASS' if ratio <= target else 'MISS'}"
            if target is not None
            else "no target"
        )
        print(f"\n{title}")
        print(f"  baseline (no FlagKit, <p>on</p>):         {base * 1e6:8.1f} us/request")
        print(f"  flagkit (extension + {{% flag %}}, simple): {flagkit * 1e6:8.1f} us/request")
        print(
            f"    overhead {(flagkit - base) * 1e6:.1f} us/request, ratio {ratio:.3f}x ({verdict})"
        )
        print(
            f"  targeted flag, anonymous visitor:          {targeted_cost * 1e6:8.1f} us/request "
            f"(ratio {targeted_cost / base:.3f}x; builds the context, sets the cookie)"
        )


if __name__ == "__main__":
    main()
