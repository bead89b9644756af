"""Template tags: ``{% load flagkit %}``.

``{% flag %}`` renders its first block when a boolean flag is on for the request's user::

    {% flag "new-checkout" %}<a href="/checkout/v2">Try it</a>{% else %}...{% endflag %}
    {% flag checkout_flag_name %}...{% endflag %}        {# key from a variable #}
    {% flag "!new-checkout" %}old checkout{% endflag %}  {# negation #}

``{% flag_value %}`` prints a flag's value, or stores it::

    {% flag_value "banner-text" "Welcome" %}
    {% flag_value "max-items" 10 as limit %}

Both use ``request`` from the template context (``django.template.context_processors
.request`` puts it there) and its memoised ``request.flags``. Without a request they
evaluate through the shared client with whatever context is in scope (none outside a
request), so a template rendered by a management command or an e-mail job still renders.
"""

from __future__ import annotations

from django import template
from django.http import HttpRequest
from django.template.base import (
    FilterExpression,
    Node,
    NodeList,
    Parser,
    Token,
    render_value_in_context,
)
from django.template.context import Context

from flagkit_django.middleware import RequestFlags, flag_is_active, flag_value

register = template.Library()

__all__ = ["FlagNode", "FlagValueNode", "register"]


def _request(context: Context) -> HttpRequest | None:
    request = context.get("request")
    return request if isinstance(request, HttpRequest) else None


class FlagNode(Node):  # type: ignore[misc]
    """``{% flag key %}…{% else %}…{% endflag %}``."""

    child_nodelists = ("nodelist_true", "nodelist_false")

    def __init__(self, key: FilterExpression, nodelist_true: NodeList, nodelist_false: NodeList):
        self.key = key
        self.nodelist_true = nodelist_true
        self.nodelist_false = nodelist_false
        # A quoted key without filters is resolved once, here, not on every render.
        literal = key.var if not key.filters and isinstance(key.var, str) else None
        self.literal = str(literal) if literal is not None else None

    def __repr__(self) -> str:
        return f"<FlagNode {self.key.token!r}>"

    def render(self, context: Context) -> str:
        """Render the first block if the flag is on, else the ``{% else %}`` block."""
        key = self.literal
        if key is None:
            active = flag_is_active(_request(context), self.key.resolve(context))
        else:
            # Hot path: a literal key and the request's memoised flags.
            flags = getattr(context.get("request"), "flags", None)
            if flags.__class__ is RequestFlags:
                active = flags.is_enabled(key)
            else:
                active = flag_is_active(_request(context), key)
        if active:
            return self.nodelist_true.render(context)  # type: ignore[no-any-return]
        return self.nodelist_false.render(context)  # type: ignore[no-any-return]


@register.tag("flag")  # type: ignore[untyped-decorator]
def do_flag(parser: Parser, token: Token) -> FlagNode:
    """Parse ``{% flag key %}…[{% else %}…]{% endflag %}``."""
    bits = token.split_contents()
    if len(bits) != 2:
        raise template.TemplateSyntaxError(
            f'{bits[0]!r} takes one argument, the flag key: {{% flag "my-flag" %}}'
        )
    key = parser.compile_filter(bits[1])
    nodelist_true = parser.parse(("else", "endflag"))
    next_token = parser.next_token()
    if next_token.contents == "else":
        nodelist_false = parser.parse(("endflag",))
        parser.delete_first_token()
    else:
        nodelist_false = NodeList()
    return FlagNode(key, nodelist_true, nodelist_false)


class FlagValueNode(Node):  # type: ignore[misc]
    """``{% flag_value key [default] [as var] %}``."""

    def __init__(self, key: FilterExpression, default: FilterExpression | None, target: str | None):
        self.key = key
        self.default = default
        self.target = target

    def __repr__(self) -> str:
        return f"<FlagValueNode {self.key.token!r}>"

    def render(self, context: Context) -> str:
        """Print the value (autoescaped), or store it in ``target`` and print nothing."""
        default = None if self.default is None else self.default.resolve(context)
        value = flag_value(_request(context), self.key.resolve(context), default)
        if self.target is not None:
            context[self.target] = value
            return ""
        if value is None:
            return ""
        return str(render_value_in_context(value, context))


@register.tag("flag_value")  # type: ignore[untyped-decorator]
def do_flag_value(parser: Parser, token: Token) -> FlagValueNode:
    """Parse ``{% flag_value key [default] [as var] %}``."""
    bits = token.split_contents()
    target: str | None = None
    if len(bits) >= 4 and bits[-2] == "as":
        target = bits[-1]
        bits = bits[:-2]
    if len(bits) not in (2, 3):
        raise template.TemplateSyntaxError(
            f'{bits[0]!r} usage: {{% flag_value "key" [default] [as variable] %}}'
        )
    key = parser.compile_filter(bits[1])
    default = parser.compile_filter(bits[2]) if len(bits) == 3 else None
    return FlagValueNode(key, default, target)
