"""The move from django-waffle: real waffle rows imported by ``flagkit_import_waffle``
and served by a local FlagKit server answer exactly as ``waffle.flag_is_active`` does,
and the compatibility layer (functions, decorators, mixins, ``waffle_tags``) agrees."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import waffle
from django.contrib.auth.models import AnonymousUser, Group, User
from django.core.management import CommandError, call_command
from django.http import Http404, HttpRequest, HttpResponse
from django.template import Context, Engine
from django.test import RequestFactory
from django.views import View
from waffle.models import Flag, Sample, Switch

from flagkit.testing import FlagKitServer
from flagkit_django import conf, get_client
from flagkit_django._engine import reset_client
from flagkit_django.waffle_compat import (
    WaffleFlagMixin,
    flag_is_active,
    sample_is_active,
    switch_is_active,
    waffle_flag,
    waffle_key,
    waffle_switch,
)
from flagkit_django.waffle_compat.importer import convert

pytestmark = pytest.mark.django_db

FIELDS = ("staff", "authenticated", "superusers", "groups", "users", "languages")


def _import(**options: Any) -> tuple[dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("flagkit_import_waffle", stdout=out, stderr=err, **options)
    return (json.loads(out.getvalue()) if out.getvalue() else {}), err.getvalue()


@pytest.fixture
def people(db: None) -> dict[str, Any]:
    """Users of every kind waffle distinguishes, and a group."""
    beta = Group.objects.create(name="beta")
    plain = User.objects.create_user("plain")
    staff = User.objects.create_user("staffer", is_staff=True)
    superuser = User.objects.create_user("root", is_superuser=True)
    member = User.objects.create_user("member")
    member.groups.add(beta)
    listed = User.objects.create_user("listed")
    return {
        "anonymous": AnonymousUser(),
        "plain": plain,
        "staff": staff,
        "superuser": superuser,
        "member": member,
        "listed": listed,
        "beta": beta,
    }


@pytest.fixture
def serve(settings: Any) -> Iterator[Any]:
    """Serve an imported flags document from a local server, FLAGKIT pointing at it."""
    servers: list[FlagKitServer] = []

    def start(document: dict[str, Any]) -> FlagKitServer:
        server = FlagKitServer(flags=document["flags"]).start()
        servers.append(server)
        settings.FLAGKIT = {
            "API_KEY": server.api_key,
            "BASE_URL": server.base_url,
            "TIMEOUT": 2,
            "POLLING_INTERVAL": 60,
        }
        conf.clear_cache()
        reset_client()
        assert get_client().wait_for_ready(5)
        return server

    yield start
    reset_client()
    for server in servers:
        server.stop()


def _request(user: Any, language: str | None = None) -> HttpRequest:
    request = RequestFactory().get("/")
    request.user = user
    if language is not None:
        request.LANGUAGE_CODE = language
    return request


def _make_flag(name: str, people: dict[str, Any], **fields: Any) -> Flag:
    groups = fields.pop("groups", False)
    users = fields.pop("users", False)
    languages = fields.pop("languages", False)
    flag = Flag.objects.create(name=name, languages="de, fr" if languages else "", **fields)
    if groups:
        flag.groups.add(people["beta"])
    if users:
        flag.users.add(people["listed"])
    return flag


def test_every_non_random_configuration_answers_as_waffle_does(
    people: dict[str, Any], serve: Any, settings: Any
) -> None:
    """Each field alone and in every combination, with everyone unset, on and off, for
    anonymous, plain, staff, superuser, group-member, listed and German-speaking users."""
    settings.FLAGKIT = {"OFFLINE": True}  # the import reads settings; no server needed yet
    flags: list[str] = []
    for i, combo in enumerate(itertools.product([False, True], repeat=len(FIELDS))):
        fields = dict(zip(FIELDS, combo, strict=True))
        flags.append(_make_flag(f"combo-{i}", people, **fields).name)
    for everyone in (True, False):
        flags.append(_make_flag(f"everyone-{everyone}", people, everyone=everyone, staff=True).name)
    document, report = _import()
    assert "LOSS" not in report
    serve(document)
    requests = [
        _request(people[kind])
        for kind in ("anonymous", "plain", "staff", "superuser", "member", "listed")
    ]
    requests += [
        _request(people["plain"], "de"),
        _request(people["anonymous"], "fr"),
        _request(people["plain"], "en"),
    ]
    compared = 0
    for name in flags:
        for request in requests:
            expected = bool(waffle.flag_is_active(request, name))
            got = flag_is_active(_copy(request), name)
            assert got is expected, (name, request.user, getattr(request, "LANGUAGE_CODE", None))
            compared += 1
    assert compared == len(flags) * len(requests) == 66 * 9


def _copy(request: HttpRequest) -> HttpRequest:
    """A fresh request for the same user and language (FlagKit memoises per request)."""
    return _request(request.user, getattr(request, "LANGUAGE_CODE", None))


def test_percent_is_a_stable_rollout_within_two_points(
    people: dict[str, Any], serve: Any, settings: Any
) -> None:
    """A 30 % flag is on for 28 to 32 % of 10,000 users, and always the same users."""
    settings.FLAGKIT = {"OFFLINE": True}
    Flag.objects.create(name="thirty", percent=Decimal("30.0"), superusers=False)
    Sample.objects.create(name="half", percent=Decimal("50.0"))
    document, report = _import()
    assert "thirty', percent: 30.0 % as a rollout by user id" in report
    serve(document)
    client = get_client()
    from flagkit import EvaluationContext

    on = [
        client.get_boolean_value("thirty", False, EvaluationContext(user_id=str(i)))
        for i in range(10_000)
    ]
    assert 2800 <= sum(on) <= 3200
    again = [
        client.get_boolean_value("thirty", False, EvaluationContext(user_id=str(i)))
        for i in range(10_000)
    ]
    assert on == again
    samples = [sample_is_active("half") for _ in range(4000)]
    assert 1800 <= sum(samples) <= 2200  # random per call, like waffle's sample


def test_switches_samples_and_missing_names_follow_waffle(
    people: dict[str, Any], serve: Any, settings: Any
) -> None:
    """Switches map to simple flags; missing names give waffle's *_DEFAULT settings."""
    settings.FLAGKIT = {"OFFLINE": True}
    Switch.objects.create(name="maintenance", active=True, note="Shown during deploys")
    Switch.objects.create(name="old-api", active=False)
    Sample.objects.create(name="never", percent=Decimal("0.0"))
    document, _report = _import()
    maintenance = next(f for f in document["flags"] if f["key"] == "maintenance")
    assert maintenance == {
        "key": "maintenance",
        "flagType": "boolean",
        "value": True,
        "description": "Shown during deploys",
    }
    serve(document)
    assert switch_is_active("maintenance") is True and switch_is_active("old-api") is False
    assert not any(sample_is_active("never") for _ in range(200))
    assert flag_is_active(_request(people["plain"]), "no-such-flag") is False
    settings.WAFFLE_FLAG_DEFAULT = True
    settings.WAFFLE_SWITCH_DEFAULT = True
    assert flag_is_active(_request(people["plain"]), "no-such-flag") is True
    assert switch_is_active("no-such-switch") is True


def test_decorators_mixins_and_tags_agree_with_the_functions(
    people: dict[str, Any], serve: Any, settings: Any
) -> None:
    """waffle_flag / waffle_switch (with ``!``), WaffleFlagMixin and {% flag %}/{% switch %}
    from the waffle_tags library give the compat functions' answers."""
    settings.FLAGKIT = {"OFFLINE": True}
    _make_flag("staff-only", people, staff=True, superusers=False)
    Switch.objects.create(name="on-switch", active=True)
    document, _ = _import()
    serve(document)

    @waffle_flag("staff-only")
    def staff_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("staff")

    @waffle_flag("!staff-only", redirect_to="/elsewhere/")
    def others_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("others")

    @waffle_switch("!on-switch")
    def switched_off_view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("off")

    assert staff_view(_request(people["staff"])).content == b"staff"
    with pytest.raises(Http404):
        staff_view(_request(people["plain"]))
    assert others_view(_request(people["plain"])).content == b"others"
    redirected = others_view(_request(people["staff"]))
    assert redirected.status_code == 302 and redirected["Location"] == "/elsewhere/"
    with pytest.raises(Http404):
        switched_off_view(_request(people["plain"]))

    class StaffPage(WaffleFlagMixin, View):
        waffle_flag = "staff-only"

        def get(self, request: HttpRequest) -> HttpResponse:
            return HttpResponse("page")

    assert StaffPage.as_view()(_request(people["staff"])).content == b"page"
    with pytest.raises(Http404):
        StaffPage.as_view()(_request(people["plain"]))

    engine = Engine(libraries={"waffle_tags": "flagkit_django.templatetags.waffle_tags"})
    page = engine.from_string(
        '{% load waffle_tags %}{% flag "staff-only" %}S{% else %}-{% endflag %}'
        '{% switch "on-switch" %}W{% endswitch %}{% flag name_var %}V{% endflag %}'
    )
    for kind, expected in (("staff", "SWV"), ("plain", "-W")):
        request = _request(people[kind])
        html = page.render(Context({"request": request, "name_var": "staff-only"}))
        assert html == expected, kind


def test_waffle_tags_library_replaces_waffles_own_when_listed_first() -> None:
    """With waffle before flagkit_django in INSTALLED_APPS, {% load waffle_tags %} is ours."""
    from django.template import engines

    libraries = engines["django"].engine.template_libraries
    assert (
        libraries["waffle_tags"].tags["flag"].__module__
        == "flagkit_django.templatetags.waffle_tags"
    )


def test_testing_and_rollout_modes_are_reported_and_strict_refuses(
    people: dict[str, Any], settings: Any, tmp_path: Path
) -> None:
    """Losses are listed one by one; --strict writes nothing and fails."""
    settings.FLAGKIT = {"OFFLINE": True}
    Flag.objects.create(name="beta.v2", testing=True, rollout=True, percent=Decimal("10"))
    out = tmp_path / "flags.json"
    _document, report = _import(output=str(out))
    data = json.loads(out.read_text())
    assert [f["key"] for f in data["flags"]] == ["beta-v2"]
    assert "LOSS: flag 'beta.v2', testing:" in report
    assert "LOSS: flag 'beta.v2', rollout:" in report
    assert "LOSS: flag 'beta.v2', name: not a valid FlagKit key; imported as 'beta-v2'" in report
    out.unlink()
    with pytest.raises(CommandError, match="--strict: 3 losses"):
        _import(output=str(out), strict=True)
    assert not out.exists()


def test_name_collisions_are_refused(people: dict[str, Any], settings: Any) -> None:
    settings.FLAGKIT = {"OFFLINE": True}
    Flag.objects.create(name="promo", everyone=True)
    Switch.objects.create(name="promo", active=False)
    document, report = _import()
    assert [f["key"] for f in document["flags"]] == ["promo"]
    assert "already taken by flag 'promo'" in report


def test_push_sends_the_flags_to_a_running_server(people: dict[str, Any], settings: Any) -> None:
    """--push writes each flag through the admin API; a wrong token is a clear error."""
    settings.FLAGKIT = {"OFFLINE": True}
    Switch.objects.create(name="pushed", active=True)
    with FlagKitServer(admin_token="adm-token-1") as server:
        _import(push=server.url, admin_token="adm-token-1")
        assert server.get_flag("pushed")["value"] is True
        with pytest.raises(CommandError, match="refused the admin token"):
            _import(push=server.url, admin_token="wrong")


@pytest.mark.django_db(transaction=True)
def test_missing_waffle_tables_is_a_clear_error(settings: Any) -> None:
    """A database without waffle's tables names the migrate command."""
    from django.db import connection

    settings.FLAGKIT = {"OFFLINE": True}
    with connection.schema_editor() as editor:
        editor.delete_model(Switch)
    try:
        with pytest.raises(CommandError, match="migrate waffle"):
            _import()
    finally:
        with connection.schema_editor() as editor:
            editor.create_model(Switch)


def test_key_mapping() -> None:
    assert waffle_key("ok_name-1") == "ok_name-1"
    assert waffle_key("Feature.A") == "Feature-A"
    assert waffle_key("café au lait") == "caf-au-lait"
    assert waffle_key("...").startswith("waffle-")
    assert len(waffle_key("x" * 400)) == 256


def test_convert_reports_extra_fields_of_custom_models() -> None:
    """A field that waffle's own model lacks is reported as a loss, never dropped silently."""

    class Meta:
        @staticmethod
        def get_fields() -> list[Any]:
            class F:
                auto_created = False
                concrete = True

                def __init__(self, name: str) -> None:
                    self.name = name

            return [F(n) for n in ("id", "name", "active", "note", "region")]

    class CustomSwitch:
        _meta = Meta
        name = "regional"
        active = True
        note = ""

    result = convert([], [CustomSwitch()], [])
    assert [str(f) for f in result.losses] == [
        "LOSS: switch 'regional', region: field of a custom model with no FlagKit equivalent; ignored"  # noqa: E501
    ]


def test_testutils_override_like_waffles(people: dict[str, Any], serve: Any, settings: Any) -> None:
    """override_flag/override_switch/override_sample force values as waffle.testutils do."""
    from flagkit_django.waffle_compat.testutils import (
        override_flag,
        override_sample,
        override_switch,
    )

    settings.FLAGKIT = {"OFFLINE": True}
    _make_flag("staff-only", people, staff=True, superusers=False)
    Switch.objects.create(name="on-switch", active=True)
    Sample.objects.create(name="never", percent=Decimal("0.0"))
    document, _ = _import()
    serve(document)
    assert flag_is_active(_request(people["plain"]), "staff-only") is False
    with override_flag("staff-only", active=True), override_switch("on-switch", active=False):
        assert flag_is_active(_request(people["plain"]), "staff-only") is True
        assert switch_is_active("on-switch") is False
    with override_sample("never", active=True):
        assert sample_is_active("never") is True
    assert switch_is_active("on-switch") is True
