"""Jinja helpers: the ``flag()`` and ``flag_value()`` globals and a ``{% flag %}`` block.

``init_app`` adds :class:`FlagKitExtension` to the app's Jinja environment, so every
template can use::

    {% flag "new-checkout" %}<a href="/checkout/v2">Try it</a>{% else %}...{% endflag %}
    {% flag checkout_flag_name %}...{% endflag %}        {# key from a variable #}
    {% flag "!new-checkout" %}old checkout{% endflag %}  {# negation #}

    {% if flag("beta") %}...{% endif %}
    {{ flag_value("banner-text", "Welcome") }}

(the same block tag and ``!key`` negation as the Django adapter's ``{% flag %}``). Inside a
request the helpers use the request's memoised lookups for its user; outside one (a
template rendered by a CLI command or a job) they evaluate without a user. To use them in
your own Jinja environment, add ``"flagkit_flask.templating.FlagKitExtension"`` to its
extensions and set ``environment.flagkit_app = app``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import Flask
from jinja2 import nodes, pass_context
from jinja2.ext import Extension

from flagkit_flask.state import FlagKitState, _active, get_state

if TYPE_CHECKING:
    from jinja2 import Environment
    from jinja2.parser import Parser

__all__ = ["FlagKitExtension", "install"]

_TEST_NAME = "flagkit_flag_on"  # the test behind {% flag %}; usable as `is flagkit_flag_on`


def _per_render(extension: FlagKitExtension) -> Callable[..., bool]:
    """The extension's ``flag`` as a ``pass_context`` test: Jinja's optimizer folds a test
    whose arguments are constants at compile time (``{% flag "key" %}`` would keep the first
    request's value in the cached template); a context test is evaluated on every render.
    Inside a request of the bound app it goes straight to the request's lookups."""

    @pass_context
    def flag_test(context: Any, key: str) -> bool:
        flags = _active.get()
        if flags is not None and flags._state is extension._bound:
            return flags.is_enabled(key)
        return extension.flag(key)

    return flag_test


class FlagKitExtension(Extension):
    """The ``{% flag key %}…{% else %}…{% endflag %}`` tag plus the ``flag`` and
    ``flag_value`` globals. Stateless apart from the app it is bound to; thread-safe."""

    tags = {"flag"}

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self._bound: FlagKitState | None = None
        environment.globals["flag"] = self.flag
        environment.globals["flag_value"] = self.flag_value
        # The block tag compiles to a test: Jinja calls tests directly (globals go through
        # context.call), which keeps {% flag %} about as cheap as {% if %}.
        environment.tests[_TEST_NAME] = _per_render(self)

    # -- the app ----------------------------------------------------------------------------

    def _state(self) -> FlagKitState:
        state = self._bound
        if state is not None:
            return state
        # A Flask environment knows its app (works without an app context); otherwise use
        # current_app.
        app = getattr(self.environment, "flagkit_app", None) or getattr(
            self.environment, "app", None
        )
        if isinstance(app, Flask):
            found = app.extensions.get("flagkit")
            if isinstance(found, FlagKitState):
                self._bound = found  # an app's state never changes once registered
                return found
        return get_state()

    # -- helpers ----------------------------------------------------------------------------

    def flag(self, key: str) -> bool:
        """Whether boolean flag ``key`` is on (``"!key"`` negates); off on any problem."""
        return (self._bound or self._state()).is_enabled(key)

    def flag_value(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when missing, failed or of another kind."""
        return self._state().value(key, default)

    # -- the block tag ----------------------------------------------------------------------

    def parse(self, parser: Parser) -> nodes.Node:
        """Parse ``{% flag key %}body[{% else %}other]{% endflag %}`` into an ``if``."""
        lineno = next(parser.stream).lineno
        key = parser.parse_expression()
        body = parser.parse_statements(("name:else", "name:endflag"))
        if next(parser.stream).value == "else":
            else_ = parser.parse_statements(("name:endflag",), drop_needle=True)
        else:
            else_ = []
        test = nodes.Test(key, _TEST_NAME, [], [], None, None, lineno=lineno)
        return nodes.If(test, body, [], else_, lineno=lineno)


def install(app: Flask) -> None:
    """Add :class:`FlagKitExtension` to ``app``'s Jinja environment (called by ``init_app``).

    Before the environment exists, the extension is added to ``app.jinja_options`` (a copy,
    never the class-level dict); if it exists already, it is added to it directly.
    """
    if "jinja_env" in app.__dict__:  # the cached environment was created already
        env = app.jinja_env
        if FlagKitExtension.identifier not in env.extensions:
            env.add_extension(FlagKitExtension)
        env.flagkit_app = app  # type: ignore[attr-defined]
        return
    options = dict(app.jinja_options)
    extensions = list(options.get("extensions", ()))
    if FlagKitExtension not in extensions and FlagKitExtension.identifier not in extensions:
        extensions.append(FlagKitExtension)
    options["extensions"] = extensions
    app.jinja_options = options
