"""Django benchmark: request overhead of FlagKitMiddleware and the cost of ``{% flag %}``,
as ratios against baselines measured in the same run.

Run::

    .venv/bin/python benchmarks/bench_django.py

For the django-waffle comparison run it through ``make bench``, which builds a separate
venv (``.venv-bench``) with the benchmark-only requirements (waffle is *not* a FlagKit
dependency; this script installs nothing).

Prints:

1. a minimal view through ``django.test.Client`` with Session + Authentication middleware,
   against the same with ``FlagKitMiddleware`` added -- target <= 1.10x;
2. per-tag cost of ``{% flag "key" %}on{% else %}off{% endflag %}`` (20 distinct boolean
   flags, a fresh request -- so every tag really evaluates -- per render) against the same
   template written with ``{% if var %}`` -- target <= 2.0x;
3. the same page with django-waffle's ``{% flag %}`` (20 waffle flags in SQLite, waffle's
   cache warm) against ``{% if %}`` -- reported, no target (waffle's is ~22x); when waffle is
   missing, says it was not measured.

Per-tag costs subtract the render time of an empty template. Each figure is the minimum
over several ``timeit`` repeats. Always exits 0: the numbers are for reading, not gating.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPEATS = 7
TAGS = 20
HAVE_WAFFLE = importlib.util.find_spec("waffle") is not None


def configure() -> None:
    """Standalone settings: in-memory SQLite, signed-cookie sessions, offline FlagKit."""
    from django.conf import settings

    apps = ["django.contrib.auth", "django.contrib.contenttypes", "flagkit_django"]
    if HAVE_WAFFLE:
        apps.append("waffle")
    settings.configure(
        SECRET_KEY="benchmark-only",
        DEBUG=False,
        ALLOWED_HOSTS=["testserver"],
        INSTALLED_APPS=apps,
        MIDDLEWARE=[],
        ROOT_URLCONF=__name__,
        SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        TEMPLATES=[{"BACKEND": "django.template.backends.django.DjangoTemplates"}],
        USE_TZ=True,
        FLAGKIT={
            "OFFLINE": True,
            "BOOTSTRAP": {f"flag-{i}": i % 2 == 0 for i in range(TAGS)},
        },
        WAFFLE_CREATE_MISSING_FLAGS=False,
        LOGGING_CONFIG=None,
    )
    import django

    django.setup()


def minimal_view(request: Any) -> Any:
    """The view under test: no work at all."""
    from django.http import HttpResponse

    return HttpResponse("ok")


urlpatterns: list[Any] = []


def best_call(fn: Callable[[], object], number: int) -> float:
    """Seconds per call of ``fn`` (minimum over the repeats)."""
    return min(timeit.repeat(fn, repeat=REPEATS, number=number)) / number


def verdict(ratio: float, target: float) -> str:
    """PASS/MISS against a target ratio."""
    return f"target <= {target:.2f}x: {'PASS' if ratio <= target else 'MISS'}"


def request_costs(stacks: list[list[str]], rounds: int = 15) -> list[float]:
    """Seconds per GET of the minimal view through the test client, one figure per
    middleware stack; stacks are measured in alternating rounds (minimum kept), so drift
    on a shared machine affects them alike."""
    from django.test import Client, override_settings

    clients = []
    for middleware in stacks:
        with override_settings(MIDDLEWARE=middleware):
            client = Client()
            client.get("/")  # builds the handler's middleware chain with these settings
            assert client.get("/").status_code == 200
        clients.append(client)
    best = [float("inf")] * len(stacks)
    for _ in range(rounds):
        for index, client in enumerate(clients):
            best[index] = min(best[index], best_call(lambda c=client: c.get("/"), 200))
    return best


def template_costs() -> dict[str, float]:
    """Per-tag seconds of ``{% if %}``, FlagKit's ``{% flag %}`` and (if installed)
    waffle's ``{% flag %}``."""
    from django.contrib.auth.models import AnonymousUser
    from django.http import HttpResponse
    from django.template import Context, Template
    from django.test import RequestFactory

    from flagkit_django import get_client
    from flagkit_django.middleware import FlagKitMiddleware

    get_client()  # started and loaded once, like a warm server
    factory = RequestFactory()
    request = factory.get("/")
    request.user = AnonymousUser()

    empty = Template("")
    plain = Template("".join(f"{{% if f{i} %}}on{{% else %}}off{{% endif %}}" for i in range(TAGS)))
    flagkit = Template(
        "{% load flagkit %}"
        + "".join(f'{{% flag "flag-{i}" %}}on{{% else %}}off{{% endflag %}}' for i in range(TAGS))
    )
    values = {f"f{i}": i % 2 == 0 for i in range(TAGS)}

    def through_middleware(page: Template, extra: dict[str, Any]) -> Callable[[], object]:
        # Pages render inside FlagKitMiddleware, as in production: each call is a new
        # request (new request.flags, nothing memoised), the same for every variant.
        def view(req: Any) -> HttpResponse:
            req.waffles = {}  # what waffle's middleware does per request (harmless otherwise)
            return HttpResponse(page.render(Context({"request": req, **extra})))

        middleware = FlagKitMiddleware(view)
        return lambda: middleware(request)

    render_empty = through_middleware(empty, {})
    render_plain = through_middleware(plain, values)
    render_flagkit = through_middleware(flagkit, {})

    expected = "".join("on" if i % 2 == 0 else "off" for i in range(TAGS))
    assert render_flagkit().content.decode() == expected  # type: ignore[attr-defined]
    assert render_plain().content.decode() == expected  # type: ignore[attr-defined]

    number = 500
    variants = {"empty": render_empty, "if": render_plain, "flagkit": render_flagkit}
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(9):  # alternating rounds: machine drift hits every variant alike
        for name, render in variants.items():
            best[name] = min(best[name], best_call(render, number))
    base = best["empty"]
    costs = {
        "if": (best["if"] - base) / TAGS,
        "flagkit": (best["flagkit"] - base) / TAGS,
    }
    if HAVE_WAFFLE:
        costs["waffle"] = (waffle_cost(through_middleware, number // 10) - base) / TAGS
    return costs


def waffle_cost(
    through_middleware: Callable[[Any, dict[str, Any]], Callable[[], object]], number: int
) -> float:
    """Seconds per request of the same page with waffle's ``{% flag %}`` (flags in SQLite,
    waffle's cache warm)."""
    from django.core.management import call_command
    from django.template import Template
    from waffle.models import Flag  # type: ignore[import-not-found]

    call_command("migrate", run_syncdb=True, verbosity=0)
    for i in range(TAGS):
        Flag.objects.create(name=f"flag-{i}", everyone=i % 2 == 0)
    page = Template(
        "{% load waffle_tags %}"
        + "".join(f'{{% flag "flag-{i}" %}}on{{% else %}}off{{% endflag %}}' for i in range(TAGS))
    )
    render = through_middleware(page, {})
    render()  # warms waffle's cache
    return best_call(render, number)


def main() -> None:
    """Measure and print the ratios."""
    configure()
    from django.urls import path

    urlpatterns.append(path("", minimal_view))

    import django

    print(
        f"flagkit_django benchmark -- Python {platform.python_version()}, "
        f"Django {django.get_version()}, {TAGS} tags per page, best of {REPEATS}"
    )
    base_stack = [
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
    without, with_flagkit = request_costs(
        [base_stack, [*base_stack, "flagkit_django.middleware.FlagKitMiddleware"]]
    )
    ratio = with_flagkit / without
    print(f"minimal view, session+auth middleware        {without * 1e6:8.1f} us/request")
    print(f"  + FlagKitMiddleware                          {with_flagkit * 1e6:8.1f} us/request")
    print(f"  ratio {ratio:.3f}x  ({verdict(ratio, 1.10)})")

    costs = template_costs()
    print(f"{{% if %}} per tag                             {costs['if'] * 1e6:8.2f} us")
    flag_ratio = costs["flagkit"] / costs["if"]
    print(f"flagkit {{% flag %}} per tag                    {costs['flagkit'] * 1e6:8.2f} us")
    print(f"  ratio {flag_ratio:.2f}x  ({verdict(flag_ratio, 2.0)})")
    if "waffle" in costs:
        waffle_ratio = costs["waffle"] / costs["if"]
        print(f"django-waffle {{% flag %}} per tag              {costs['waffle'] * 1e6:8.2f} us")
        print(
            f"  ratio {waffle_ratio:.2f}x against {{% if %}}; "
            f"{costs['waffle'] / costs['flagkit']:.1f}x flagkit's tag"
        )
    else:
        print(
            "django-waffle {% flag %}: not measured -- django-waffle is not installed "
            "(pip install -r benchmarks/requirements-bench.txt)"
        )
    from flagkit_django._engine import reset_client

    reset_client()


if __name__ == "__main__":
    main()
