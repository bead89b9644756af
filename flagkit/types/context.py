"""The evaluation context: who a flag is evaluated for."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

# Python field name -> wire/targeting attribute name (docs/protocol.md §9.1).
CONTEXT_FIELDS: Final[dict[str, str]] = {
    "user_id": "userId",
    "user_key": "userKey",
    "email": "email",
    "name": "name",
    "anonymous": "anonymous",
    "country": "country",
    "ip": "ip",
    "user_agent": "userAgent",
}
_SCALARS: Final = tuple(CONTEXT_FIELDS)


@dataclass
class EvaluationContext:
    """Attributes of the user (or anonymous visitor) a flag is evaluated for.

    >>> ctx = EvaluationContext(user_id="u-1", country="NL", custom={"plan": "pro"},
    ...                         private_attributes=["email"])

    ``user_key`` is the stable key of an anonymous visitor (used for percentage rollouts when
    there is no ``user_id``). ``private_attributes`` lists attributes that are used for local
    evaluation but never leave the process: Python field names (``email``) or
    ``custom.<key>``. Treat instances as immutable once handed to the client.
    """

    user_id: str | None = None
    user_key: str | None = None
    email: str | None = None
    name: str | None = None
    anonymous: bool | None = None
    country: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    private_attributes: list[str] = field(default_factory=list)

    def merged_with(self, override: EvaluationContext | None) -> EvaluationContext:
        """A new context: ``override``'s non-None fields win, ``custom`` is a dict union
        (override wins) and ``private_attributes`` the union of both (docs/protocol.md §9.3)."""
        if override is None:
            return self
        values: dict[str, Any] = {}
        for name in _SCALARS:
            mine = getattr(override, name)
            values[name] = mine if mine is not None else getattr(self, name)
        custom = {**self.custom, **override.custom} if override.custom else dict(self.custom)
        private = list(dict.fromkeys([*self.private_attributes, *override.private_attributes]))
        return EvaluationContext(**values, custom=custom, private_attributes=private)

    def to_dict(self, *, strip_private: bool = True) -> dict[str, Any]:
        """The wire form: camelCase, None fields omitted, empty ``custom`` omitted.

        With ``strip_private`` (the default) every private attribute is removed (§9.2).
        """
        private = set(self.private_attributes) if strip_private else set()
        out: dict[str, Any] = {}
        for name, wire in CONTEXT_FIELDS.items():
            value = getattr(self, name)
            if value is not None and (name not in private or name == "anonymous"):
                out[wire] = value
        custom = {k: v for k, v in self.custom.items() if f"custom.{k}" not in private}
        if custom:
            out["custom"] = custom
        return out

    def __repr__(self) -> str:
        # Private attribute values stay out of logs and tracebacks.
        shown = self.to_dict(strip_private=True)
        hidden = sorted(self.private_attributes)
        return f"EvaluationContext({shown!r}, private={hidden!r})"
