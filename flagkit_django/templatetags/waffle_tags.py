"""``{% load waffle_tags %}``: django-waffle's template tags, answered by FlagKit.

``{% flag name %}…{% else %}…{% endflag %}``, ``{% switch name %}…{% endswitch %}`` and
``{% sample name %}…{% endsample %}`` with waffle's syntax: ``name`` is a template
variable, or — when no such variable exists — the literal name, quoted or not. Part of the
move from waffle (flagkit_django.waffle_compat); waffle's ``{% wafflejs %}`` is not
provided.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import template
from django.http import HttpRequest
from django.template.base import FilterExpression, NodeList, Parser, Token, VariableDoesNotExist
from django.template.context import Context

from flagkit_django.waffle_compat import flag_is_active, sample_is_active, switch_is_active

register = template.Library()

__all__ = ["WaffleNode", "register"]

Condition = Callable[[HttpRequest | None, str], bool]


def _flag(request: HttpRequest | None, name: str) -> bool:
    # Without a request (e.g. a template rendered in a task), the client's context in scope.
    return flag_is_active(request, name)


class WaffleNode(template.Node):  # type: ignore[misc]
    """A waffle-style block tag whose condition FlagKit answers."""

    child_nodelists = ("nodelist_true", "nodelist_false")

    def __init__(
        self,
        nodelist_true: NodeList,
        nodelist_false: NodeList,
        condition: Condition,
        name: str,
        compiled_name: FilterExpression,
    ) -> None:
        self.nodelist_true = nodelist_true
        self.nodelist_false = nodelist_false
        self.condition = condition
        self.name = name
        self.compiled_name = compiled_name

    def __repr__(self) -> str:
        return f"<WaffleNode {self.name}>"

    def render(self, context: Context) -> str:
        try:
            name = self.compiled_name.resolve(context)
        except VariableDoesNotExist:
            name = self.name
        if not name or not isinstance(name, str):
            name = self.name
        request = context.get("request")
        if not isinstance(request, HttpRequest):
            request = None
        branch = self.nodelist_true if self.condition(request, name) else self.nodelist_false
        return branch.render(context)  # type: ignore[no-any-return]

    @classmethod
    def parse(cls, parser: Parser, token: Token, kind: str, condition: Condition) -> WaffleNode:
        bits = token.split_contents()
        if len(bits) < 2:
            raise template.TemplateSyntaxError(f"{bits[0]!r} tag requires an argument")
        name = bits[1]
        compiled_name = parser.compile_filter(name)
        nodelist_true = parser.parse(("else", f"end{kind}"))
        following = parser.next_token()
        if following.contents == "else":
            nodelist_false = parser.parse((f"end{kind}",))
            parser.delete_first_token()
        else:
            nodelist_false = NodeList()
        return cls(nodelist_true, nodelist_false, condition, name.strip("\"'"), compiled_name)


@register.tag  # type: ignore[untyped-decorator]
def flag(parser: Parser, token: Token) -> WaffleNode:
    """``{% flag name %}…[{% else %}…]{% endflag %}``: the flag for the request's user."""
    return WaffleNode.parse(parser, token, "flag", _flag)


@register.tag  # type: ignore[untyped-decorator]
def switch(parser: Parser, token: Token) -> WaffleNode:
    """``{% switch name %}…[{% else %}…]{% endswitch %}``."""
    return WaffleNode.parse(parser, token, "switch", lambda _request, name: switch_is_active(name))


@register.tag  # type: ignore[untyped-decorator]
def sample(parser: Parser, token: Token) -> WaffleNode:
    """``{% sample name %}…[{% else %}…]{% endsample %}``."""
    return WaffleNode.parse(parser, token, "sample", lambda _request, name: sample_is_active(name))


@register.tag  # type: ignore[untyped-decorator]
def wafflejs(parser: Parser, token: Any) -> None:
    """waffle's JavaScript endpoint has no FlagKit counterpart: fail at template load."""
    raise template.TemplateSyntaxError(
        "{% wafflejs %} is not provided by FlagKit's waffle_tags; render the flags your "
        "JavaScript needs into the page (e.g. with {% flag_value %} from {% load flagkit %})"
    )
