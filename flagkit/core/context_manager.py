"""Who a flag is evaluated for: the global context, the request scope and per-call contexts.

Three layers, merged with :meth:`EvaluationContext.merged_with` (docs/protocol.md §9.3: non-None
fields of the upper layer win, ``custom`` is a dict union, ``private_attributes`` a union):

1. the process-wide **global** context (``set_context``, ``identify`` outside a scope) —
   what a script or a single-user app sets once;
2. the **request scope** (``with client.context_scope(ctx):``), held in a
   :class:`contextvars.ContextVar`, so each thread and each asyncio task sees only its own
   user — what the Django and Flask integrations use; they never write the global context;
3. the **per-call** context passed to an evaluation method.

Merging happens only when a caller asks for the resolved context (a targeted flag, a
``track()`` call), never on the fast path of a simple flag. Reads take no lock; writes of the
global context swap one reference.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeAlias

from flagkit.types.context import EvaluationContext

__all__ = ["ContextManager", "ContextSource", "build_context", "context_from_mapping"]

# Attribute names understood by identify() / context_from_mapping(), in both spellings.
_FIELD_ALIASES: Final[dict[str, str]] = {
    "user_id": "user_id",
    "userId": "user_id",
    "user_key": "user_key",
    "userKey": "user_key",
    "email": "email",
    "name": "name",
    "country": "country",
    "ip": "ip",
    "user_agent": "user_agent",
    "userAgent": "user_agent",
}


ContextSource: TypeAlias = "EvaluationContext | Callable[[], EvaluationContext | None] | None"
"""What a scope holds: a context, ``None``, or a zero-argument factory built on first use."""


class _Scope:
    """The value held by the context variable: the scoped context (``None`` = no user).

    A factory is called at most once per scope, the first time a lookup needs the context
    (a targeted flag, ``track()``), so a web request that only reads simple flags never
    builds one. A factory that raises (logged as a warning) or returns something else
    counts as no context.
    """

    __slots__ = ("_factory", "_logger", "_value", "error")

    def __init__(self, source: ContextSource, logger: logging.Logger | None = None) -> None:
        self.error: Exception | None = None
        self._logger = logger
        if source is None or isinstance(source, EvaluationContext):
            self._factory: Callable[[], EvaluationContext | None] | None = None
            self._value: EvaluationContext | None = source
        else:
            self._factory = source
            self._value = None

    @property
    def context(self) -> EvaluationContext | None:
        factory = self._factory
        if factory is not None:
            self._factory = None
            try:
                value = factory()
            except Exception as exc:
                self.error = exc
                value = None
                if self._logger is not None:
                    self._logger.warning(
                        "the context_scope() factory raised; evaluating without it",
                        exc_info=True,
                    )
            self._value = value if isinstance(value, EvaluationContext) else None
        return self._value


def build_context(user_id: str | None, attributes: Mapping[str, Any] | None) -> EvaluationContext:
    """An :class:`EvaluationContext` keeping every attribute.

    >>> ctx = build_context("u-1", {"email": "a@b.c", "plan": "pro", "custom": {"beta": True}})
    >>> ctx.email, ctx.custom
    ('a@b.c', {'beta': True, 'plan': 'pro'})

    Known fields (``email``, ``name``, ``country``, ``ip``, ``user_agent``/``userAgent``,
    ``user_key``/``userKey``, ``anonymous``) go to their fields when their value has the right
    type; ``custom`` (a mapping) is merged into ``custom``; ``private_attributes`` /
    ``privateAttributes`` (a list of str) are kept; every other attribute, and a known one
    with a value of another type, goes to ``custom`` under its own name. Never raises for
    odd values; raises ``TypeError`` only if ``attributes`` is not a mapping.
    """
    if attributes is not None and not isinstance(attributes, Mapping):
        raise TypeError(f"attributes must be a mapping, got {type(attributes).__name__}")
    fields: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    private: list[str] = []
    anonymous: bool | None = None
    for raw_name, value in (attributes or {}).items():
        name = str(raw_name)
        target = _FIELD_ALIASES.get(name)
        if target is not None and target != "user_id":
            if isinstance(value, str):
                fields[target] = value
            elif value is not None:
                custom[name] = value
        elif target == "user_id":
            if isinstance(value, str) and user_id is None:
                user_id = value
            elif value is not None and not isinstance(value, str):
                custom[name] = value
        elif name == "custom" and isinstance(value, Mapping):
            custom.update({str(k): v for k, v in value.items()})
        elif name in ("private_attributes", "privateAttributes") and isinstance(
            value, (list, tuple, set, frozenset)
        ):
            private.extend(str(item) for item in value)
        elif name == "anonymous" and isinstance(value, bool):
            anonymous = value
        else:
            custom[name] = value
    if anonymous is None:
        anonymous = False if user_id is not None else None
    return EvaluationContext(
        user_id=user_id,
        anonymous=anonymous,
        custom=custom,
        private_attributes=list(dict.fromkeys(private)),
        **fields,
    )


def context_from_mapping(data: Mapping[str, Any]) -> EvaluationContext:
    """An :class:`EvaluationContext` from a plain dict (snake_case or camelCase keys).

    >>> context_from_mapping({"userId": "u-1", "plan": "pro"}).custom
    {'plan': 'pro'}

    Lets callers pass ``context={"user_id": ...}`` to evaluation methods.
    """
    return build_context(None, data)


class _ScopeGuard(contextlib.AbstractContextManager[None]):
    """Sets the context variable on enter and restores it on exit.

    A plain class rather than ``@contextlib.contextmanager``: web integrations enter one per
    request, and the generator machinery tripled the cost.
    """

    __slots__ = ("_scope", "_token", "_var")

    def __init__(self, var: contextvars.ContextVar[_Scope | None], scope: _Scope) -> None:
        self._var = var
        self._scope = scope
        self._token: contextvars.Token[_Scope | None] | None = None

    def __enter__(self) -> None:
        self._token = self._var.set(self._scope)

    def __exit__(self, *exc_info: object) -> None:
        token, self._token = self._token, None
        if token is not None:
            self._var.reset(token)


class ContextManager:
    """Holds the global context and the request scope of one client.

    >>> cm = ContextManager()
    >>> cm.set_global(EvaluationContext(user_id="u-1", country="NL"))
    >>> with cm.scope(EvaluationContext(user_id="u-2")):
    ...     cm.resolve(EvaluationContext(custom={"plan": "pro"})).user_id
    'u-2'

    Thread-safe and asyncio-safe: the scope lives in a ``ContextVar`` (each thread and task
    has its own), the global context is one reference swapped under a lock.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger
        self._lock = threading.Lock()
        self._global: EvaluationContext | None = None
        self._var: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar(
            "flagkit_context_scope", default=None
        )
        # Set for good by the first scope(): until then no thread or task can be inside one,
        # and readers skip the ContextVar lookup (the targeted getters' short path).
        self.scoped = False

    # -- layers ---------------------------------------------------------------------------

    @property
    def global_context(self) -> EvaluationContext | None:
        """The process-wide context (``None`` when unset)."""
        return self._global

    def set_global(self, context: EvaluationContext | None) -> None:
        """Replace the global context (``None`` clears it)."""
        with self._lock:
            self._global = context

    def in_scope(self) -> bool:
        """Whether the calling thread/task is inside :meth:`scope`."""
        return self._var.get() is not None

    def scoped_context(self) -> EvaluationContext | None:
        """The context of the innermost active scope (``None`` outside a scope)."""
        scope = self._var.get()
        return None if scope is None else scope.context

    def scope(self, context: ContextSource) -> contextlib.AbstractContextManager[None]:
        """Use ``context`` between the global and the per-call context inside the block.

        ``context`` may be a zero-argument callable returning the context: it is called at
        most once, when a lookup first needs the context. Nested scopes replace the outer one
        for their duration; leaving restores it, even when ``identify``/``reset`` changed the
        scope inside.
        """
        if not (context is None or isinstance(context, EvaluationContext) or callable(context)):
            raise TypeError(
                "context_scope() takes an EvaluationContext, a callable returning one, or "
                f"None; got {type(context).__name__}"
            )
        self.scoped = True
        return _ScopeGuard(self._var, _Scope(context, self._logger))

    def replace_current_layer(self, context: EvaluationContext | None) -> None:
        """Set the scope's context when inside a scope, else the global one."""
        if self._var.get() is not None:
            self._var.set(_Scope(context))
        else:
            self.set_global(context)

    def current_layer(self) -> EvaluationContext | None:
        """The scope's context inside a scope, else the global context."""
        scope = self._var.get()
        if scope is not None:
            return scope.context
        return self._global

    # -- resolution -----------------------------------------------------------------------

    def current(self) -> EvaluationContext | None:
        """Global merged with the request scope (what ``get_context()`` reports)."""
        return self.resolve(None)

    def resolve(self, per_call: EvaluationContext | None) -> EvaluationContext | None:
        """Global, then the request scope, then ``per_call``; ``None`` when all are unset."""
        result = self._global
        scope = self._var.get()
        if scope is not None:
            scoped = scope.context
            if scoped is not None:
                result = scoped if result is None else result.merged_with(scoped)
        if per_call is not None:
            result = per_call if result is None else result.merged_with(per_call)
        return result

    # -- identify / reset -----------------------------------------------------------------

    def identify(
        self, user_id: str, attributes: Mapping[str, Any] | None = None
    ) -> EvaluationContext:
        """Make ``user_id`` (with ``attributes``) the current user of the active layer.

        The same user as before keeps the attributes it had (merged, new values win); a
        different user starts from a clean context, so one user's attributes never stick to
        the next. Returns the new layer context.
        """
        incoming = build_context(user_id, attributes)
        previous = self.current_layer()
        if previous is not None and previous.user_id in (None, user_id):
            new = previous.merged_with(incoming)
        else:
            new = incoming
        self.replace_current_layer(new)
        return new

    def reset(self) -> EvaluationContext:
        """Make the active layer anonymous (``EvaluationContext(anonymous=True)``)."""
        new = EvaluationContext(anonymous=True)
        self.replace_current_layer(new)
        return new

    def after_fork(self) -> None:
        """Replace the lock in a forked child (it may have been held at fork time)."""
        self._lock = threading.Lock()
