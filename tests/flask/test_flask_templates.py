"""Jinja helpers: ``flag()``, ``flag_value()`` and the ``{% flag %}`` block tag."""

from __future__ import annotations

import jinja2
import pytest
from flask import Flask, render_template_string

from flagkit.testing import FlagKitServer
from flagkit_flask import FlagKit
from flagkit_flask.extension import get_state
from tests.flask.factory import server_config

BLOCK = '{% flag "new-checkout" %}NEW{% else %}OLD{% endflag %}'


def _render(app: Flask, template: str, user: str | None = None) -> str:
    headers = {"X-User": user} if user else {}
    response = app.test_client().get("/template", query_string={"t": template}, headers=headers)
    assert response.status_code == 200, response.text
    return response.text


def test_block_tag_renders_per_user(app: Flask) -> None:
    """The block renders its body when the flag is on for the user, else the else-part."""
    assert _render(app, BLOCK, "alice") == "NEW"
    assert _render(app, BLOCK, "bob") == "OLD"


def test_block_tag_without_else_and_negated(app: Flask) -> None:
    """Without {% else %} nothing renders when off; ``!key`` negates."""
    template = (
        '[{% flag "new-checkout" %}new{% endflag %}|{% flag "!new-checkout" %}old{% endflag %}]'
    )
    assert _render(app, template, "alice") == "[new|]"
    assert _render(app, template, "bob") == "[|old]"


def test_invalid_negations_are_off(app: Flask) -> None:
    """One ``!`` at most: ``flag('!')``, ``'!!nonexistent'`` and ``!!key`` are invalid keys,
    off in the globals and the block tag, in a request and outside one."""
    template = (
        "{{ flag('!') }}|{{ flag('!!nonexistent') }}|{{ flag('!!new-checkout') }}|"
        '{% flag "!!nonexistent" %}on{% else %}off{% endflag %}|'
        '{% flag "!" %}on{% else %}off{% endflag %}'
    )
    assert _render(app, template, "alice") == "False|False|False|off|off"
    with app.app_context():
        assert render_template_string(template) == "False|False|False|off|off"


def test_block_tag_key_from_a_variable_and_nesting(app: Flask) -> None:
    """The key may be any expression; blocks nest and see template variables."""
    template = (
        '{% set k = "beta" %}{% flag k %}B{% flag "maintenance" %}M{% else %}'
        "{{ 1 + 1 }}{% endflag %}{% endflag %}"
    )
    assert _render(app, template) == "B2"


def test_globals(app: Flask) -> None:
    """flag() and flag_value() work in expressions, with defaults for missing flags."""
    template = (
        "{{ flag('new-checkout') }} {{ flag('!beta') }} {{ flag_value('banner-text', 'x') }} "
        "{{ flag_value('missing', 'fallback') }} {{ flag_value('banner-text', 3) }} "
        "{{ flag('missing') }}"
    )
    assert _render(app, template, "alice") == "True False Spring sale fallback 3 False"


def test_block_tag_and_view_agree_within_a_request(app: Flask) -> None:
    """A template and the view share the request's memoised lookups."""
    template = "{{ flag('rollout') }}{% flag 'rollout' %}=on{% else %}=off{% endflag %}"
    for _ in range(5):
        text = _render(app, template)
        assert text in ("True=on", "False=off")


def test_syntax_error_for_a_missing_endflag(app: Flask) -> None:
    """A block without {% endflag %} is a template syntax error."""
    with app.app_context(), pytest.raises(jinja2.TemplateSyntaxError):
        app.jinja_env.from_string('{% flag "beta" %}unclosed')


def test_render_outside_a_request_has_no_user(app: Flask) -> None:
    """Rendered in an app context only (a job, an e-mail), helpers evaluate without a user."""
    with app.app_context():
        assert render_template_string(BLOCK + "{{ flag_value('banner-text') }}") == (
            "OLDSpring sale"
        )


def test_render_without_any_app_context(app: Flask) -> None:
    """The environment knows its app, so rendering works even without an app context."""
    template = app.jinja_env.from_string("{% flag 'beta' %}yes{% endflag %}")
    assert template.render() == "yes"


def test_extension_added_when_jinja_env_exists_before_init_app(server: FlagKitServer) -> None:
    """init_app adds the tag even when the app's Jinja environment was already created."""
    app = Flask("early-env")
    env = app.jinja_env  # created before init_app
    app.config.update(server_config(server.base_url, server.api_key))
    ext = FlagKit(app)
    try:
        assert ext.get_client(app).wait_for_ready(5)
        with app.test_request_context():
            assert env.from_string(BLOCK).render() == "OLD"
    finally:
        ext.close(app)


def test_jinja_options_are_copied_not_shared(app: Flask) -> None:
    """init_app never mutates Flask's class-level jinja_options."""
    assert "extensions" not in Flask.jinja_options
    assert "flag" in app.jinja_env.globals


def test_autoescape_is_kept(app: Flask) -> None:
    """Flag values printed with flag_value are autoescaped in HTML templates."""
    state = get_state(app)
    state.client.set_overrides({"banner-text": "<b>sale</b>"})
    with app.test_request_context():
        text = render_template_string("{{ flag_value('banner-text') }}")
    assert text == "&lt;b&gt;sale&lt;/b&gt;"


def test_cached_template_is_evaluated_per_request(app: Flask) -> None:
    """A template loaded once and cached still evaluates the flag on every render (the
    constant key must not be folded into the compiled template)."""
    from flask import render_template
    from jinja2 import DictLoader

    app.jinja_loader = DictLoader({"page.html": BLOCK})

    @app.get("/cached")
    def cached() -> str:
        return render_template("page.html")

    web = app.test_client()
    assert web.get("/cached", headers={"X-User": "bob"}).text == "OLD"
    assert web.get("/cached", headers={"X-User": "alice"}).text == "NEW"
    assert web.get("/cached", headers={"X-User": "bob"}).text == "OLD"
