"""FlagKitMiddleware: per-request contexts for anonymous, regular, staff and grouped users,
the sticky anonymous cookie, the request scope and per-request memoisation."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpResponse
from django.test import Client, RequestFactory

from flagkit.testing import FlagKitServer
from flagkit.types.context import EvaluationContext
from flagkit_django import get_client, middleware
from flagkit_django.middleware import FlagKitMiddleware, RequestFlags
from flagkit_django.testing import override_flags
from tests.django.conftest import reconfigure

pytestmark = pytest.mark.django_db

COOKIE = "flagkit_anon"


def whoami(client: Client, **extra: Any) -> dict[str, Any]:
    response = client.get("/whoami/", **extra)
    assert response.status_code == 200
    return json.loads(response.content)


def test_anonymous_context_and_cookie(live: FlagKitServer, client: Client) -> None:
    """An anonymous visitor is evaluated with a random key that a signed cookie keeps."""
    response = client.get("/whoami/", HTTP_USER_AGENT="pytest-agent/1.0")
    data = json.loads(response.content)
    assert data["user_id"] is None
    assert data["anonymous"] is True
    assert re.fullmatch(r"[0-9a-f]{32}", data["user_key"])
    assert data["user_agent"] == "pytest-agent/1.0"
    assert data["ip"] == "127.0.0.1"
    assert data["flags"]["staff-feature"] is False
    cookie = response.cookies[COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 365 * 24 * 60 * 60
    # The value is signed: the raw key is not what the browser stores.
    assert cookie.value != data["user_key"]
    assert cookie.value.startswith(data["user_key"])


def test_anonymous_key_is_sticky(live: FlagKitServer, client: Client) -> None:
    """The same browser keeps its key (and its rollout variation); no new cookie is set."""
    first = client.get("/whoami/")
    key = json.loads(first.content)["user_key"]
    variation = json.loads(first.content)["rollout_variation"]
    for _ in range(3):
        again = client.get("/whoami/")
        data = json.loads(again.content)
        assert data["user_key"] == key
        assert data["rollout_variation"] == variation
        assert COOKIE not in again.cookies


def test_rollout_differs_between_browsers(live: FlagKitServer) -> None:
    """Different browsers get different keys, and a 50% rollout splits them both ways."""
    seen = set()
    keys = set()
    for _ in range(40):
        data = whoami(Client())
        keys.add(data["user_key"])
        seen.add(data["rollout_variation"])
    assert len(keys) == 40
    assert seen == {"on", "off"}


def test_tampered_cookie_gets_a_new_key(live: FlagKitServer, client: Client) -> None:
    """A cookie whose signature does not verify is replaced by a fresh key."""
    client.cookies[COOKIE] = "0" * 32 + ":forged:signature"
    response = client.get("/whoami/")
    data = json.loads(response.content)
    assert data["user_key"] != "0" * 32
    assert COOKIE in response.cookies


def test_no_cookie_without_a_targeted_evaluation(live: FlagKitServer, client: Client) -> None:
    """A view that evaluates nothing, or only flags without targeting, sets no cookie."""
    assert COOKIE not in client.get("/no-flags/").cookies
    response = client.get("/memo/")
    assert json.loads(response.content) == {"first": "Spring sale", "second": "Spring sale"}
    assert COOKIE not in response.cookies


def test_no_cookie_for_authenticated_users(
    live: FlagKitServer, client: Client, users: dict[str, User]
) -> None:
    """Logged-in users are keyed by their id; they get no anonymous cookie."""
    client.force_login(users["regular"])
    response = client.get("/whoami/")
    assert json.loads(response.content)["user_key"] is None
    assert COOKIE not in response.cookies


def test_regular_user_context(live: FlagKitServer, client: Client, users: dict[str, User]) -> None:
    """A regular user's context: id, private e-mail and name, staff flags, groups, joined."""
    user = users["regular"]
    client.force_login(user)
    data = whoami(client, HTTP_ACCEPT_LANGUAGE="nl-NL,nl;q=0.9,en;q=0.5")
    assert data["user_id"] == str(user.pk)
    assert data["anonymous"] is False
    assert data["email"] == "regular@example.com"
    assert data["private"] == ["email", "ip", "name"]
    assert data["custom"] == {
        "is_staff": False,
        "is_superuser": False,
        "groups": [],
        "date_joined": user.date_joined.isoformat(),
        "language": "nl-NL",
    }
    assert data["flags"]["staff-feature"] is False
    assert data["flags"]["beta-feature"] is False


def test_staff_user_gets_the_staff_flag(
    live: FlagKitServer, client: Client, users: dict[str, User]
) -> None:
    """A rule on ``is_staff`` turns the flag on for staff only, in request.flags and in a
    plain client lookup."""
    client.force_login(users["staff"])
    data = whoami(client)
    assert data["custom"]["is_staff"] is True
    assert data["flags"]["staff-feature"] is True
    assert data["plain"]["staff-feature"] is True


def test_group_targeting(live: FlagKitServer, client: Client, users: dict[str, User]) -> None:
    """A rule on ``groups`` containing "beta" targets members of the beta group."""
    client.force_login(users["tester"])
    data = whoami(client)
    assert data["custom"]["groups"] == ["alpha", "beta"]
    assert data["flags"]["beta-feature"] is True
    assert data["plain"]["beta-feature"] is True
    assert data["flags"]["staff-feature"] is False


def test_plain_client_lookup_uses_the_request_scope(
    live: FlagKitServer, users: dict[str, User]
) -> None:
    """``get_client().get_boolean_value`` in a view (no request.flags) sees the user."""
    staff, regular = Client(), Client()
    staff.force_login(users["staff"])
    regular.force_login(users["regular"])
    assert json.loads(staff.get("/plain/").content)["staff-feature"] is True
    assert json.loads(regular.get("/plain/").content)["staff-feature"] is False


def test_global_context_is_never_written(
    live: FlagKitServer, client: Client, users: dict[str, User]
) -> None:
    """After requests for a staff user, the client's process-wide context is still empty."""
    client.force_login(users["staff"])
    whoami(client)
    shared = get_client()
    assert shared.get_context() is None
    assert shared.get_boolean_value("staff-feature", False) is False


def test_country_header_and_proxy_ip(live: FlagKitServer, settings: Any, client: Client) -> None:
    """COUNTRY_HEADER sets ``country`` (targetable); TRUST_PROXY_HEADERS takes the first
    forwarded IP."""
    reconfigure(settings, live, COUNTRY_HEADER="HTTP_CF_IPCOUNTRY", TRUST_PROXY_HEADERS=True)
    data = whoami(client, HTTP_CF_IPCOUNTRY="nl", HTTP_X_FORWARDED_FOR="203.0.113.7, 10.0.0.1")
    assert data["country"] == "NL"
    assert data["ip"] == "203.0.113.7"
    assert data["flags"]["nl-only"] is True
    german = whoami(client, HTTP_CF_IPCOUNTRY="DE")
    assert german["country"] == "DE"
    assert german["flags"]["nl-only"] is False


def test_forwarded_for_is_ignored_by_default(live: FlagKitServer, client: Client) -> None:
    """Without TRUST_PROXY_HEADERS a visitor cannot choose their IP with X-Forwarded-For."""
    data = whoami(client, HTTP_X_FORWARDED_FOR="203.0.113.7")
    assert data["ip"] == "127.0.0.1"


def test_user_id_attribute(
    live: FlagKitServer, settings: Any, client: Client, users: dict[str, User]
) -> None:
    """USER_ID_ATTRIBUTE picks the attribute sent as ``user_id``."""
    reconfigure(settings, live, USER_ID_ATTRIBUTE="username")
    client.force_login(users["regular"])
    assert whoami(client)["user_id"] == "regular"


def add_plan(request: Any, context: EvaluationContext) -> EvaluationContext:
    """A CONTEXT_BUILDER used by the tests: adds ``custom.plan`` and drops the IP."""
    return EvaluationContext(
        user_id=context.user_id,
        user_key=context.user_key,
        anonymous=context.anonymous,
        custom={**context.custom, "plan": request.GET.get("plan", "free")},
        private_attributes=context.private_attributes,
    )


def test_context_builder(live: FlagKitServer, settings: Any, client: Client) -> None:
    """CONTEXT_BUILDER (a dotted path) can add and remove attributes."""
    reconfigure(settings, live, CONTEXT_BUILDER="tests.django.test_django_middleware.add_plan")
    data = json.loads(client.get("/whoami/?plan=pro").content)
    assert data["custom"]["plan"] == "pro"
    assert data["ip"] is None


def test_context_builder_must_return_a_context(
    settings: Any, rf: RequestFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A CONTEXT_BUILDER returning something else is logged (naming the setting) and the
    request is evaluated as an anonymous visitor instead of failing."""
    middleware._degraded_logged.clear()
    settings.FLAGKIT = {"OFFLINE": True, "CONTEXT_BUILDER": lambda request, context: {}}
    request = rf.get("/")
    request.user = AnonymousUser()
    with caplog.at_level(logging.ERROR, logger="flagkit.django"):
        context = RequestFlags(request).context
    assert context == EvaluationContext(anonymous=True)
    assert "FLAGKIT['CONTEXT_BUILDER'] must return" in caplog.text


def test_invalid_setting_serves_defaults_and_is_logged_once(
    settings: Any, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A bad FLAGKIT value at request time (no system checks ran) does not fail requests:
    it is logged once at ERROR naming the key, with a hint, and flags serve defaults."""
    settings.FLAGKIT = {"API_KEY": "sdk_x_key_value", "TIMEOUT": "soon"}
    with caplog.at_level(logging.ERROR, logger="flagkit.django"):
        first = client.get("/whoami/")
        second = client.get("/whoami/")
    assert first.status_code == second.status_code == 200
    errors = [r for r in caplog.records if "FLAGKIT['TIMEOUT']" in r.getMessage()]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    assert "Hint:" in errors[0].getMessage()


def test_value_is_memoised_per_request(settings: Any, rf: RequestFactory) -> None:
    """One request sees one value per flag, even when the flag changes meanwhile."""
    settings.FLAGKIT = {"OFFLINE": True, "BOOTSTRAP": {"banner-text": "first", "dark": True}}
    request = rf.get("/")
    request.user = AnonymousUser()
    flags = RequestFlags(request)
    assert flags.value("banner-text", "x") == "first"
    assert flags.is_enabled("dark") is True
    with override_flags({"banner-text": "second", "dark": False}):
        assert flags.value("banner-text", "x") == "first"
        assert flags.is_enabled("dark") is True
        assert flags.evaluate("dark").value is True
        fresh = RequestFlags(request)
        assert fresh.value("banner-text", "x") == "second"
        assert fresh.is_enabled("dark") is False


def test_value_defaults(settings: Any, rf: RequestFactory) -> None:
    """``value`` returns the default for a missing flag or a value of another kind."""
    settings.FLAGKIT = {"OFFLINE": True, "BOOTSTRAP": {"text": "hi", "count": 3, "on": True}}
    request = rf.get("/")
    request.user = AnonymousUser()
    flags = RequestFlags(request)
    assert flags.value("missing", "dflt") == "dflt"
    assert flags.value("text", 5) == 5
    assert flags.value("count", 1) == 3
    assert flags.value("count", 1.5) == 3
    assert flags.value("on", 0) == 0
    assert flags.value("text") == "hi"
    assert flags.is_enabled("text") is False
    assert flags.is_enabled("!missing") is True
    assert flags.all() == {"count": 3, "on": True, "text": "hi"}


def test_request_flags_work_after_the_middleware_returned(
    settings: Any, rf: RequestFactory
) -> None:
    """request.flags used after the middleware returned (e.g. a streaming body) still
    evaluates for its own user."""
    settings.FLAGKIT = {"OFFLINE": True}
    request = rf.get("/")
    request.user = AnonymousUser()
    seen: list[Any] = []

    def view(req: Any) -> HttpResponse:
        seen.append(req.flags)
        return HttpResponse("ok")

    FlagKitMiddleware(view)(request)
    flags = seen[0]
    assert isinstance(flags, RequestFlags)
    assert flags.context.anonymous is True
    assert flags.context.user_key is not None


def test_track_sends_the_request_users_context(
    live: FlagKitServer, client: Client, users: dict[str, User]
) -> None:
    """request.flags.track() records the event for the request's user, private attributes
    stripped."""
    client.force_login(users["staff"])
    assert client.get("/track/").content == b"tracked"
    get_client().flush(5)
    (event,) = live.wait_for_events(1, event_type="checkout_clicked")
    assert event["eventData"] == {"step": 2}
    assert event["context"]["userId"] == str(users["staff"].pk)
    assert event["context"]["custom"]["is_staff"] is True
    assert not {"email", "name", "ip"} & set(event["context"])
    assert "staff@example.com" not in json.dumps(event)


@pytest.mark.django_db(transaction=True)
def test_async_path_without_auser(
    live: FlagKitServer, rf: RequestFactory, users: dict[str, User]
) -> None:
    """Under ASGI without ``request.auser`` (Django < 5), the lazy ``request.user`` is
    resolved in a worker thread, so the event loop never queries the database."""
    from django.utils.functional import SimpleLazyObject

    staff_pk = users["staff"].pk
    request = rf.get("/")
    request.user = SimpleLazyObject(lambda: User.objects.get(pk=staff_pk))
    assert not hasattr(request, "auser")

    async def view(req: Any) -> HttpResponse:
        return HttpResponse(str(req.flags.is_enabled("staff-feature")))

    async def run() -> HttpResponse:
        return await FlagKitMiddleware(view)(request)  # type: ignore[no-any-return]

    response = asyncio.run(run())
    assert response.content == b"True"
    assert request.flags.context.user_id == str(staff_pk)


def test_request_flags_sets_every_slot_it_inherits(rf: RequestFactory) -> None:
    """The adapter's inlined ``__init__`` sets every slot of the core class and its own."""
    flags = RequestFlags(rf.get("/"))
    names = [name for cls in type(flags).__mro__ for name in getattr(cls, "__slots__", ())]
    assert "_bools" in names and "_request" in names
    for name in names:
        getattr(flags, name)  # AttributeError if the slot was never set
