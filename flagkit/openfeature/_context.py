"""Evaluation contexts between OpenFeature and FlagKit, in both directions.

OpenFeature's context is a targeting key plus free-form attributes; FlagKit's has named
fields (``email``, ``country``, ...), ``custom`` attributes and ``private_attributes``. The
table in docs/openfeature.md is the contract; this module is its one implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from openfeature.evaluation_context import EvaluationContext as OFContext
from openfeature.exception import InvalidContextError

from flagkit.types.context import CONTEXT_FIELDS, EvaluationContext

__all__ = ["to_flagkit_context", "to_openfeature_context"]

# OpenFeature attribute name -> FlagKit field. Both the wire (camelCase) and the Python
# (snake_case) spelling are accepted; ``to_openfeature_context`` writes the wire spelling.
_FIELD_BY_ATTRIBUTE: Final[dict[str, str]] = {
    **{wire: name for name, wire in CONTEXT_FIELDS.items()},
    **{name: name for name in CONTEXT_FIELDS},
}
_PRIVATE: Final = ("privateAttributes", "private_attributes")


def _field_value(attribute: str, name: str, value: Any) -> Any:
    expected: type = bool if name == "anonymous" else str
    if value is None or isinstance(value, expected):
        return value
    raise InvalidContextError(
        f"context attribute {attribute!r} must be a {expected.__name__}, got {type(value).__name__}"
    )


def _custom_value(value: Any) -> Any:
    # FlagKit's targeting reads JSON values; datetimes (allowed by OpenFeature) travel as
    # ISO-8601 text, which FlagKit's date operators accept.
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _custom_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_custom_value(v) for v in value]
    return value


def to_flagkit_context(context: OFContext | None) -> EvaluationContext | None:
    """The FlagKit context for an OpenFeature one (``None`` for an empty or missing one).

    ``targeting_key`` becomes ``user_id`` — or, for an anonymous visitor (``anonymous``
    true, no ``userKey``/``userId`` attribute), ``user_key``. Attributes named like a
    FlagKit field (``email``, ``country``, ``userAgent``/``user_agent``, ...) fill that
    field, ``privateAttributes`` (a list of names) marks private attributes, and every
    other attribute goes to ``custom``.

    Raises :class:`openfeature.exception.InvalidContextError` when a named field has the
    wrong type (``email=5``) or ``privateAttributes`` is not a list of strings.
    """
    if context is None or (not context.targeting_key and not context.attributes):
        return None
    fields: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    private: list[str] = []
    for attribute, value in context.attributes.items():
        name = _FIELD_BY_ATTRIBUTE.get(attribute)
        if name is not None:
            fields[name] = _field_value(attribute, name, value)
        elif attribute in _PRIVATE:
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise InvalidContextError(f"context attribute {attribute!r} must be a list of str")
            private.extend(_private_name(v) for v in value)
        else:
            custom[attribute] = _custom_value(value)
    key = context.targeting_key
    if key is not None and not isinstance(key, str):
        raise InvalidContextError(f"targeting_key must be a str, got {type(key).__name__}")
    if key:
        anonymous_key = fields.get("anonymous") and "user_key" not in fields
        fields["user_key" if anonymous_key and "user_id" not in fields else "user_id"] = key
    return EvaluationContext(**fields, custom=custom, private_attributes=private)


def _private_name(name: str) -> str:
    # A private attribute may be given by its OpenFeature name: map named fields to their
    # Python name and anything else to FlagKit's ``custom.<name>``.
    if name.startswith("custom."):
        return name
    field = _FIELD_BY_ATTRIBUTE.get(name)
    return field if field is not None else f"custom.{name}"


def to_openfeature_context(context: EvaluationContext | None) -> OFContext:
    """The OpenFeature context for a FlagKit one; the inverse of :func:`to_flagkit_context`.

    ``user_id`` (or, for an anonymous visitor, ``user_key``) is the targeting key; named
    fields keep their wire names, custom attributes are top-level attributes and private
    attributes are listed under ``privateAttributes`` (their values are kept: the context
    stays in the process).
    """
    if context is None:
        return OFContext()
    key = context.user_id
    key_field = "user_id"
    if key is None and context.anonymous:
        key, key_field = context.user_key, "user_key"
    attributes: dict[str, Any] = {}
    for name, wire in CONTEXT_FIELDS.items():
        value = getattr(context, name)
        # An anonymous context's user id stays an attribute, so it does not read back as
        # the anonymous key.
        if value is not None and (name != key_field or (context.anonymous and name == "user_id")):
            attributes[wire] = value
    attributes.update(context.custom)
    if context.private_attributes:
        attributes["privateAttributes"] = [
            p.removeprefix("custom.") if p.startswith("custom.") else CONTEXT_FIELDS.get(p, p)
            for p in context.private_attributes
        ]
    return OFContext(targeting_key=key, attributes=attributes)
