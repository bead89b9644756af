"""Reading a targeting attribute (``country``, ``custom.plan``, ``anonymous``) from a context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from flagkit.types.context import EvaluationContext

__all__ = [
    "BUILTIN_ATTRIBUTES",
    "EMPTY_CONTEXT",
    "anonymous_of",
    "context_key",
    "custom_name",
    "read_attribute",
]

BUILTIN_ATTRIBUTES: Final[Mapping[str, str]] = {
    "userId": "user_id",
    "userKey": "user_key",
    "key": "user_key",
    "email": "email",
    "name": "name",
    "country": "country",
    "ip": "ip",
    "userAgent": "user_agent",
}
"""Targeting attribute name -> ``EvaluationContext`` field (``anonymous`` is derived)."""

EMPTY_CONTEXT: Final = EvaluationContext()
"""Stands in for a missing context: every attribute is absent."""

EMPTY_MAPPING: Final[Mapping[str, Any]] = {}


def anonymous_of(ctx: EvaluationContext) -> bool:
    """The ``anonymous`` attribute: the context's flag if set, else "has no user id"."""
    flag = ctx.anonymous
    return ctx.user_id is None if flag is None else bool(flag)


def custom_name(attribute: str) -> str | None:
    """The custom key an attribute name refers to, or None for a built-in attribute.

    ``custom.<name>`` is always custom (dots in ``<name>`` included); any other name that
    is not built in is a custom key too (``plan`` reads ``custom["plan"]``).
    """
    if attribute.startswith("custom."):
        return attribute[7:]
    if attribute in BUILTIN_ATTRIBUTES or attribute == "anonymous":
        return None
    return attribute


def read_attribute(ctx: EvaluationContext, attribute: str) -> Any:
    """The value of ``attribute`` in ``ctx``; None when absent.

    A ``custom`` that is not a mapping raises (``AttributeError``): the flag then
    evaluates to ``EVALUATION_ERROR``.
    """
    name = custom_name(attribute)
    if name is not None:
        return (ctx.custom or EMPTY_MAPPING).get(name)
    if attribute == "anonymous":
        return anonymous_of(ctx)
    return getattr(ctx, BUILTIN_ATTRIBUTES[attribute])


def context_key(ctx: EvaluationContext) -> str | None:
    """The key that targets and segment lists name: the user id, else the user key."""
    key = ctx.user_id
    return ctx.user_key if key is None else key
