"""Template tags, the Jinja2 helpers and the context processor."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.template import Context, Template, TemplateSyntaxError
from django.test import Client, RequestFactory

from flagkit.testing import FlagKitServer
from flagkit_django.jinja2 import environment
from flagkit_django.testing import override_flags

BOOTSTRAP = {
    "new-checkout": True,
    "maintenance": False,
    "banner-text": "Spring sale",
    "html-text": "<b>bold</b>",
}


@pytest.fixture
def offline(settings: Any) -> None:
    """Offline client with bootstrap flags (no server)."""
    settings.FLAGKIT = {"OFFLINE": True, "BOOTSTRAP": BOOTSTRAP}


def lines(content: bytes) -> list[str]:
    return [line for line in content.decode().splitlines() if line]


def test_flag_tags_render(offline: None, client: Client) -> None:
    """{% flag %} with literal, variable and negated keys; {% flag_value %} with default,
    ``as``, a missing flag and autoescaping."""
    response = client.get("/tags/")
    assert lines(response.content) == [
        "[literal:on]",
        "[variable:on]",
        "[negated:open]",
        "[negated-variable:open]",
        "[no-else:]",
        "[staff:not-staff]",
        "[value:Spring sale]",
        "[value-missing:Fallback]",
        "[value-as:SPRING SALE]",
        "[value-escaped:&lt;b&gt;bold&lt;/b&gt;]",
    ]


def test_flag_tags_follow_overrides(offline: None, client: Client) -> None:
    """Turning flags over flips every branch."""
    with override_flags({"new-checkout": False, "maintenance": True, "banner-text": "Bye"}):
        content = client.get("/tags/").content
    assert lines(content)[:5] == [
        "[literal:off]",
        "[variable:off]",
        "[negated:closed]",
        "[negated-variable:closed]",
        "[no-else:maintenance]",
    ]
    assert "[value:Bye]" in lines(content)


@pytest.mark.django_db
def test_flag_tag_targets_the_request_user(
    live: FlagKitServer, client: Client, users: dict[str, User]
) -> None:
    """The tag evaluates for the template's request user (a targeted staff flag)."""
    assert "[staff:not-staff]" in lines(client.get("/tags/").content)
    client.force_login(users["staff"])
    assert "[staff:staff]" in lines(client.get("/tags/").content)


def test_tags_without_a_request(offline: None) -> None:
    """Without ``request`` in the context the tags fall back to the shared client."""
    template = Template(
        '{% load flagkit %}{% flag "new-checkout" %}on{% else %}off{% endflag %}'
        '|{% flag "!new-checkout" %}neg{% endflag %}'
        '|{% flag_value "banner-text" "x" %}|{% flag_value "nope" "dflt" %}'
        '|{% flag_value "nope" %}'
    )
    assert template.render(Context({})) == "on||Spring sale|dflt|"


def test_tags_with_a_bad_key_value(offline: None) -> None:
    """A variable resolving to nothing or a non-string is simply off / the default."""
    template = Template(
        "{% load flagkit %}{% flag missing_var %}on{% else %}off{% endflag %}"
        '|{% flag number %}on{% else %}off{% endflag %}|{% flag_value missing_var "d" %}'
    )
    assert template.render(Context({"number": 3})) == "off|off|d"


INVALID = (
    '{% load flagkit %}{% flag "!!new-checkout" %}a{% else %}-{% endflag %}'
    '{% flag "!!nonexistent" %}b{% else %}-{% endflag %}'
    '{% flag "!" %}c{% else %}-{% endflag %}{% flag bang %}d{% else %}-{% endflag %}'
)


def test_invalid_negations_are_off_with_and_without_a_request(
    offline: None, rf: RequestFactory
) -> None:
    """``!!key``, a bare ``!`` (literal or from a variable) are invalid keys: off, the same
    with a request (``request.flags``) and without one (the shared client)."""
    request = rf.get("/")
    request.user = AnonymousUser()
    template = Template(INVALID)
    assert template.render(Context({"request": request, "bang": "!!maintenance"})) == "----"
    assert template.render(Context({"bang": "!!maintenance"})) == "----"
    jinja = environment()
    source = "{{ flagkit.flag('!!nonexistent') }}|{{ flagkit.flag('!') }}"
    assert jinja.from_string(source).render(request=request) == "False|False"
    assert jinja.from_string(source).render() == "False|False"


def test_tags_reuse_request_flags(offline: None, rf: RequestFactory) -> None:
    """Tags memoise through ``request.flags`` even when the middleware did not run."""
    request = rf.get("/")
    request.user = AnonymousUser()
    template = Template('{% load flagkit %}{% flag "new-checkout" %}on{% endflag %}')
    with override_flags({"new-checkout": True}):
        assert template.render(Context({"request": request})) == "on"
    # Overrides gone, but this request already saw the flag on.
    assert template.render(Context({"request": request})) == "on"
    assert "new-checkout" in repr(request.flags)


@pytest.mark.parametrize(
    "source",
    [
        "{% load flagkit %}{% flag %}x{% endflag %}",
        '{% load flagkit %}{% flag "a" "b" %}x{% endflag %}',
        "{% load flagkit %}{% flag_value %}",
        '{% load flagkit %}{% flag_value "a" "b" "c" %}',
        '{% load flagkit %}{% flag "a" %}never closed',
    ],
)
def test_tag_syntax_errors(source: str) -> None:
    """Malformed tags fail at template compile time."""
    with pytest.raises(TemplateSyntaxError):
        Template(source)


def test_jinja2_helpers(offline: None, client: Client) -> None:
    """The ``flagkit`` Jinja2 global: flag(), negation, value() with a default."""
    assert lines(client.get("/jinja/").content) == [
        "[flag:on]",
        "[negated:open]",
        "[value:Spring sale]",
        "[missing:Fallback]",
    ]
    with override_flags({"new-checkout": False, "maintenance": True}):
        assert lines(client.get("/jinja/").content)[:2] == ["[flag:off]", "[negated:closed]"]


def test_jinja2_without_a_request(offline: None) -> None:
    """The Jinja2 helpers work in templates rendered without a request."""
    from flagkit_django.jinja2 import environment

    env = environment()
    template = env.from_string(
        '{{ flagkit.flag("new-checkout") }}|{{ flagkit.flag("!new-checkout") }}'
        '|{{ flagkit.value("banner-text", "x") }}|{{ flagkit.value("nope", "d") }}'
    )
    assert template.render() == "True|False|Spring sale|d"


def test_jinja2_extension_on_a_custom_environment(offline: None) -> None:
    """The extension can be added to a project's own environment by dotted path."""
    from jinja2 import Environment

    env = Environment(extensions=["flagkit_django.jinja2.FlagKitExtension"])
    assert env.from_string('{{ flagkit.flag("new-checkout") }}').render() == "True"


def test_context_processor(offline: None, client: Client) -> None:
    """``flagkit_flags`` maps keys (underscores find hyphenated keys) to values."""
    assert lines(client.get("/processor/").content) == [
        "[underscore:True]",
        "[exact:Spring sale]",
        "[missing:none]",
        "[all:banner-text=Spring sale;html-text=&lt;b&gt;bold&lt;/b&gt;;maintenance=False;"
        "new-checkout=True;]",
    ]


def test_context_processor_is_lazy(offline: None, rf: RequestFactory) -> None:
    """The processor evaluates nothing until a template reads a flag."""
    from flagkit_django.context_processors import flags

    request = rf.get("/")
    request.user = AnonymousUser()
    mapping = flags(request)["flagkit_flags"]
    assert repr(request.flags) == "<RequestFlags evaluated=[]>"
    assert mapping["new_checkout"] is True
    assert len(mapping) == 4
    with pytest.raises(KeyError):
        mapping["no_such_flag"]
