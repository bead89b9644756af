"""Send simulated visitors through the running demo shops, then print the experiment report.

Start the demo (``make demo``), then in another shell::

    .venv/bin/python example_projects/simulate_traffic.py            # 2000 visitors
    .venv/bin/python example_projects/simulate_traffic.py --fresh --visitors 3000 \\
        --rates blue=0.10,green=0.15,orange=0.10 --drop orange=0.3

Every visitor is a real HTTP client with its own cookies: it opens the home page of the
Django or the Flask shop (most anonymously, a few after logging in as a demo user), puts a
product in the cart, opens the checkout page — which evaluates the experiment flag
``checkout-button-color``, so the shop's SDK records the visitor's exposure — reads the
button colour it was shown, and places the order with that colour's conversion rate
(``--rates``; by default green converts better: the planted effect). The shops send the
``purchase`` events themselves (``track()``), so the server joins them to the exposures
exactly as it would for real visitors.

``--drop VARIATION=SHARE`` plants a sample-ratio mismatch on purpose: that share of the
visitors who would be shown VARIATION leave before the checkout page (the visitor's
variation is predicted with the SDK's own targeting from the live flag and the visitor's
anonymous key), as a page that fails before its exposure is logged would. The report's
SRM check must flag it.

When the visitors are done, the script waits until the server has received the exposures
and purchases the shops sent (they flush every second), then prints the same report as
``flagkit experiments report checkout-button-color --metric purchase``. ``--json`` prints
``{"simulation": {...what the visitors did}, "report": {...}}`` instead (for scripts and
tests). Needs the project's virtualenv (it imports ``flagkit``).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from flagkit.core.targeting import compile_flag, evaluate
from flagkit.server.experiment_text import report_lines
from flagkit.types.context import EvaluationContext
from flagkit.types.flag import FlagState

FLAG = "checkout-button-color"
DEMO_USERS = ("alice", "bob", "carol")
DEMO_PASSWORD = "flagkit-demo"
ANONYMOUS_COOKIE = "flagkit_anon"
PRODUCTS = ("rocket-socks", "flag-mug", "rollout-hoodie")
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_BUTTON = re.compile(r'id="place-order" class="btn ([a-z]+)"')


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Keep 30x answers as they are: a visitor does not need the page after a form."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Shop:
    """One demo shop: its base URL and its paths."""

    name: str
    url: str
    login: str
    add: str
    checkout: str


def shops(django_url: str, flask_url: str) -> list[Shop]:
    """The two demo shops (Django paths end with a slash, Flask paths do not)."""
    return [
        Shop("django", django_url.rstrip("/"), "/accounts/login/", "/cart/add/{}/", "/checkout/"),
        Shop("flask", flask_url.rstrip("/"), "/login", "/cart/add/{}", "/checkout"),
    ]


@dataclass
class Tally:
    """What the visitors did, by user key (thread-safe through ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    exposed: dict[str, str] = field(default_factory=dict)  # user key -> colour shown
    bought: set[str] = field(default_factory=set)
    logged_in: set[str] = field(default_factory=set)  # demo users (keys seen before)
    dropped: int = 0
    errors: list[str] = field(default_factory=list)
    mispredicted: int = 0


class Visitor:
    """One simulated visitor: a cookie jar and an HTTP opener of its own."""

    def __init__(self, shop: Shop, timeout: float) -> None:
        self.shop = shop
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect()
        )
        self.timeout = timeout

    def request(self, path: str, form: dict[str, str] | None = None) -> str:
        """GET (or POST ``form``) a page; returns the body (30x answers give "")."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            with self.opener.open(self.shop.url + path, data, timeout=self.timeout) as answer:
                body: bytes = answer.read()
                return body.decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:
                return ""
            raise

    def csrf(self, page: str) -> dict[str, str]:
        """The Django CSRF form field found in ``page`` (Flask's forms have none)."""
        found = _CSRF.search(page)
        return {"csrfmiddlewaretoken": found.group(1)} if found else {}

    def anonymous_key(self) -> str | None:
        """The visitor's anonymous key: the value part of the shop's signed cookie."""
        for cookie in self.jar:
            if cookie.name == ANONYMOUS_COOKIE and cookie.value:
                key = cookie.value.strip('"')[:32]
                if re.fullmatch(r"[0-9a-f]{32}", key):
                    return key
        return None


def predicted_variation(flag: dict[str, Any], key: str, logged_in: bool) -> str | None:
    """The variation the SDK will serve this visitor (the same targeting code)."""
    model = compile_flag(FlagState.from_dict(flag))
    context = (
        EvaluationContext(user_id=key)
        if logged_in
        else EvaluationContext(user_key=key, anonymous=True)
    )
    return evaluate(model, context, flags={}, segments={}).variation_id


def visit(
    shop: Shop,
    rnd: random.Random,
    args: argparse.Namespace,
    flag: dict[str, Any],
    tally: Tally,
) -> None:
    """One visit: (log in), home, add to cart, (checkout page, (buy))."""
    visitor = Visitor(shop, args.timeout)
    user: str | None = None
    if rnd.random() < args.login_share:
        user = rnd.choice(DEMO_USERS)
        page = visitor.request(shop.login)
        credentials = {"username": user, "password": DEMO_PASSWORD}
        visitor.request(shop.login, {**visitor.csrf(page), **credentials})
    home = visitor.request("/")
    key = user or visitor.anonymous_key()
    if key is None:
        raise RuntimeError(f"{shop.name}: the home page set no {ANONYMOUS_COOKIE} cookie")
    visitor.request(shop.add.format(rnd.choice(PRODUCTS)), visitor.csrf(home))
    predicted = predicted_variation(flag, key, user is not None)
    if predicted in args.drop and rnd.random() < args.drop[predicted]:
        with tally.lock:  # leaves before the page that logs the exposure
            tally.dropped += 1
        return
    page = visitor.request(shop.checkout)
    shown = _BUTTON.search(page)
    if shown is None:
        raise RuntimeError(f"{shop.name}: no checkout button on {shop.checkout}")
    colour = shown.group(1)
    buys = rnd.random() < args.rates.get(colour, args.base_rate)
    with tally.lock:
        if user is not None:
            tally.logged_in.add(key)
        tally.exposed.setdefault(key, colour)
        tally.mispredicted += predicted != colour
    if buys:
        visitor.request(shop.checkout, visitor.csrf(page))
        with tally.lock:
            tally.bought.add(key)


def _shares(text: str, option: str) -> dict[str, float]:
    """``"green=0.15,orange=0.1"`` -> ``{"green": 0.15, "orange": 0.1}``."""
    shares: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, raw = item.partition("=")
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not sep or not name or not 0.0 <= value <= 1.0:
            raise SystemExit(
                f"{option}: expected VARIATION=SHARE with SHARE in [0, 1], got {item!r}"
            )
        shares[name] = value
    return shares


class Admin:
    """The server's admin API (the flag, its report, clearing events)."""

    def __init__(self, url: str, token: str, timeout: float) -> None:
        self.url = url.rstrip("/").removesuffix("/api/v1") + "/api/v1/admin"
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str) -> Any:
        """Call the admin API; the JSON answer."""
        request = urllib.request.Request(
            self.url + path, method=method, headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:
            return json.loads(answer.read())


def wait_for_delivery(admin: Admin, tally: Tally, deadline: float) -> dict[str, Any]:
    """The conversion report once the server holds the exposures and purchases of every
    anonymous visitor (or at the deadline, with a warning on stderr).

    Anonymous visitors are new users every run. The demo users are not: a shop's SDK
    records a user's exposure once per process, so after ``--fresh`` the server may not
    hear again of a demo user who was exposed in an earlier run."""
    path = f"/experiments/{FLAG}?metric=purchase"
    pause = threading.Event()
    while True:
        report: dict[str, Any] = admin.call("GET", path)
        exposed = sum(v["exposed"] for v in report["variations"]) + report["excludedMultiExposed"]
        converted = sum(v["converted"] for v in report["variations"])
        new_exposed = len(set(tally.exposed) - tally.logged_in)
        new_bought = len(tally.bought - tally.logged_in)
        if exposed >= new_exposed and converted >= new_bought:
            return report
        if time.monotonic() > deadline:
            print(
                f"warning: the server has {exposed} exposed users and {converted} buyers, "
                f"expected at least {new_exposed} and {new_bought}; reporting what it has "
                "(are the shops running with the SDK's exposure events?)",
                file=sys.stderr,
            )
            return report
        pause.wait(0.5)


def build_parser() -> argparse.ArgumentParser:
    """The command line (defaults: the ports of ``make demo``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--server-url", default=os.environ.get("FLAGKIT_URL", "http://127.0.0.1:8200")
    )
    parser.add_argument("--django-url", default="http://127.0.0.1:8000")
    parser.add_argument("--flask-url", default="http://127.0.0.1:5000")
    parser.add_argument(
        "--admin-token", default=os.environ.get("FLAGKIT_ADMIN_TOKEN", "demo-admin-token")
    )
    parser.add_argument("--visitors", type=int, default=2000, help="how many (default 2000)")
    parser.add_argument("--concurrency", type=int, default=8, help="visitors at once (default 8)")
    parser.add_argument(
        "--rates",
        default="blue=0.10,green=0.15,orange=0.10",
        help="conversion rate per colour shown (the planted effect; default "
        "blue=0.10,green=0.15,orange=0.10)",
    )
    parser.add_argument("--base-rate", type=float, default=0.10, help="rate of other colours")
    parser.add_argument(
        "--drop", default="", help="VARIATION=SHARE: plant an SRM (visitors who leave first)"
    )
    parser.add_argument("--login-share", type=float, default=0.02, help="share logging in")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the visitors")
    parser.add_argument("--fresh", action="store_true", help="clear the server's events first")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for events")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the visitors, wait for the events, print the report; 0 unless a visit failed."""
    args = build_parser().parse_args(argv)
    args.rates = _shares(args.rates, "--rates")
    args.drop = _shares(args.drop, "--drop")
    admin = Admin(args.server_url, args.admin_token, args.timeout)
    if args.fresh:
        admin.call("DELETE", "/events")
    flag = admin.call("GET", f"/flags/{FLAG}")
    targets = shops(args.django_url, args.flask_url)
    seeds = random.Random(args.seed)
    tally = Tally()
    started = time.monotonic()

    def one(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            visit(rnd.choice(targets), rnd, args, flag, tally)
        except (OSError, RuntimeError) as exc:
            with tally.lock:
                tally.errors.append(str(exc))

    with ThreadPoolExecutor(args.concurrency, thread_name_prefix="visitor") as pool:
        list(pool.map(one, [seeds.getrandbits(64) for _ in range(args.visitors)]))
    elapsed = time.monotonic() - started
    print(
        f"{args.visitors} visitors in {elapsed:.1f} s: {len(tally.exposed)} saw the checkout "
        f"(exposed), {len(tally.bought)} bought, {tally.dropped} left early (--drop), "
        f"{len(tally.errors)} failed",
        file=sys.stderr,
    )
    if tally.mispredicted:
        print(
            f"note: {tally.mispredicted} visitors saw another colour than predicted",
            file=sys.stderr,
        )
    for error in tally.errors[:5]:
        print(f"  error: {error}", file=sys.stderr)
    wait_for_delivery(admin, tally, time.monotonic() + args.wait)
    report = admin.call("GET", f"/experiments/{FLAG}?metric=purchase")
    if args.json:
        simulation = {
            "visitors": args.visitors,
            "exposed": len(tally.exposed),
            "bought": len(tally.bought),
            "loggedIn": len(tally.logged_in),
            "exposedAnonymous": len(set(tally.exposed) - tally.logged_in),
            "boughtAnonymous": len(tally.bought - tally.logged_in),
            "dropped": tally.dropped,
            "errors": len(tally.errors),
            "mispredicted": tally.mispredicted,
        }
        print(json.dumps({"simulation": simulation, "report": report}, indent=2))
    else:
        print("\n".join(report_lines(report)))
    return 1 if tally.errors else 0


if __name__ == "__main__":
    sys.exit(main())
