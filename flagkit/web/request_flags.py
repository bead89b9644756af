"""Flag lookups for one web request, memoised: the logic both web adapters share.

>>> flags = RequestFlags(client, lambda: EvaluationContext(user_id="u-42"))  # doctest: +SKIP
>>> flags.is_enabled("new-checkout"), flags.is_enabled("!new-checkout")     # doctest: +SKIP
(True, False)
>>> flags.value("banner-text", "Welcome")                                   # doctest: +SKIP
'Spring sale'

:class:`RequestFlags` evaluates each flag at most once per request and keeps what the
request saw, so a page never shows a flag both on and off while an update lands. The
context is supplied lazily (a factory, or an adapter's :meth:`RequestFlags.scope_context`)
so a request that only reads flags without targeting never builds it. The Django
middleware (``request.flags``) and the Flask extension (``g._flagkit``) subclass it to add
how their framework reads the user and sets the anonymous-key cookie.

The module-level functions are the same rules for lookups made outside a request, and
:func:`parse_flag_key` is the one rule for a key written in a template, a decorator or a
mixin: ``"key"`` or ``"!key"`` (negated), one ``!`` at most. Framework-neutral: imports
neither Django nor Flask.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from flagkit.types.flag import EvaluationReason, EvaluationResult

if TYPE_CHECKING:
    from flagkit.client import FlagKitClient
    from flagkit.types.context import EvaluationContext

__all__ = [
    "RequestFlags",
    "check_flag_key",
    "client_is_enabled",
    "client_value",
    "is_fallback",
    "needs_context",
    "parse_flag_key",
    "same_kind",
    "value_or_default",
]

logger = logging.getLogger("flagkit.web")

_FALLBACK_REASONS = frozenset(
    {
        EvaluationReason.FLAG_NOT_FOUND,
        EvaluationReason.EVALUATION_ERROR,
        EvaluationReason.DEFAULT,
    }
)


def _kind(value: object) -> type:
    for kind in (bool, str, dict, list):
        if isinstance(value, kind):
            return kind
    if isinstance(value, (int, float)):
        return float
    return type(value)


def same_kind(value: object, default: object) -> bool:
    """Whether ``value`` and ``default`` are both bools, strs (subclasses such as Django's
    ``SafeString`` or Jinja's ``Markup`` included), numbers, dicts or lists.

    >>> same_kind(3, 1.5), same_kind(True, 0), same_kind("a", "b")
    (True, False, True)
    """
    return _kind(value) is _kind(default)


def is_fallback(result: EvaluationResult[Any]) -> bool:
    """Whether ``result`` carries no flag value: the flag is missing, failed, or served the
    default."""
    return result.reason in _FALLBACK_REASONS or result.error_code is not None


def value_or_default(result: EvaluationResult[Any], default: Any) -> Any:
    """``result.value``, or ``default`` when the result is a fallback or (``default`` not
    None) its value is of another kind (see :func:`same_kind`)."""
    if is_fallback(result) or (default is not None and not same_kind(result.value, default)):
        return default
    return result.value


_warned_keys: set[str] = set()
_warned_lock = threading.Lock()


def _key_problem(key: str) -> str | None:
    if key == "":
        return "an empty flag key"
    if key == "!":
        return "a bare '!' with no flag key"
    if key[:2] == "!!":
        return "'!!' is not allowed (one '!' negates)"
    return None


def _invalid_key(key: str) -> None:
    """Warn once per process about an invalid key (a template typo must not flood logs)."""
    with _warned_lock:
        if key in _warned_keys or len(_warned_keys) >= 1000:
            return
        _warned_keys.add(key)
    logger.warning("flag key %r is invalid: %s; it counts as off", key, _key_problem(key))


def parse_flag_key(key: object) -> tuple[str, bool] | None:
    """``(flag key, negated)`` of a key written in a template, decorator or mixin.

    >>> parse_flag_key("beta"), parse_flag_key("!beta")
    (('beta', False), ('beta', True))
    >>> parse_flag_key("!!beta") is None and parse_flag_key("!") is None
    True

    ``"!key"`` negates; one ``!`` at most. None for an invalid key: not a string, empty,
    a bare ``!``, or ``!!...`` (a string one is logged once per process at WARNING). An
    invalid key is off, whatever it is negated to.
    """
    if key.__class__ is not str:
        if not isinstance(key, str):
            return None
        key = str.__str__(key)  # a plain str: a subclass may override hashing or slicing
    if key[:1] == "!":
        name = key[1:]
        if name and name[0] != "!":
            return name, True
    elif key:
        return key, False
    _invalid_key(key)
    return None


def check_flag_key(key: object, what: str) -> str:
    """``key`` if :func:`parse_flag_key` accepts it, else ``ValueError`` naming ``what``
    (a decorator or guard checks its key once, when it is applied)."""
    if not isinstance(key, str) or _key_problem(key) is not None:
        reason = _key_problem(key) if isinstance(key, str) else "not a string"
        raise ValueError(
            f"{what} needs a flag key such as 'new-checkout' or '!new-checkout' "
            f"(one '!' negates), got {key!r}: {reason}"
        )
    return key


def client_is_enabled(get_client: Callable[[], FlagKitClient], key: object) -> bool:
    """Whether flag ``key`` is on for whatever context is in scope: a lookup made outside
    a request (a template rendered by a job, a CLI command).

    ``"!key"`` negates (see :func:`parse_flag_key`). An invalid key is off without asking
    for a client (``get_client`` is called only for a usable key). Never raises for
    lookups.
    """
    parsed = parse_flag_key(key)
    if parsed is None:
        return False
    name, negate = parsed
    return (get_client().evaluate(name).value is True) is not negate


def client_value(get_client: Callable[[], FlagKitClient], key: object, default: Any = None) -> Any:
    """The value of ``key`` for whatever context is in scope, or ``default`` (see
    :func:`value_or_default`); a non-string or empty key gives ``default``."""
    if not isinstance(key, str) or not key:
        return default
    return value_or_default(get_client().evaluate(key), default)


# [(snapshot, whether it has a flag with targeting)] of the last snapshot asked about
# (one tuple, replaced whole, so threads never read a torn pair).
_targeting_seen: list[tuple[object, bool]] = [(None, True)]


def needs_context(client: FlagKitClient) -> bool:
    """Whether evaluating ``client``'s flags may need a user's context: True while it holds
    no flags (they may arrive any moment) or when one of them has targeting rules. An
    async adapter loads the user before the view only then. Cached per flag snapshot."""
    try:
        snapshot = client.snapshot
        seen, answer = _targeting_seen[0]
        if seen is snapshot:
            return answer
        models = snapshot.models
        answer = not models or any(not model.is_simple for model in models.values())
        _targeting_seen[0] = (snapshot, answer)
        return answer
    except Exception:  # when in doubt, load the user
        return True


class RequestFlags:
    """Flag lookups for one request and its user, memoised per request.

    >>> flags = RequestFlags(client, lambda: EvaluationContext(user_id="u-42"))  # doctest: +SKIP
    >>> flags.is_enabled("new-checkout")                                        # doctest: +SKIP
    True

    ``context_factory`` is called at most once, when an evaluation first needs the
    context (a flag with targeting rules, :meth:`track`, reading :attr:`context`); web
    adapters pass none and override :meth:`scope_context` instead. Each flag is evaluated
    at most once per request: later lookups of the same key return the same value even if
    an update arrives meanwhile (:meth:`evaluate` of a flag first read by
    :meth:`is_enabled` keeps that value). A ``"!key"`` passed to :meth:`is_enabled` is
    negated. Lookups never raise (a missing flag is off / the default).

    While a request's scope is active (an adapter entered ``client.context_scope`` with
    :meth:`scope_context` and set :attr:`_active` to this object), lookups use it;
    otherwise each lookup enters a scope of its own for this request's context (e.g. from a
    thread the view started). Not thread-safe: one instance belongs to one request.
    """

    __slots__ = ("_bools", "_client", "_context", "_context_factory", "_results")

    #: The instance whose request scope is active in this thread/task; each adapter
    #: subclass sets its own variable (and the adapter sets and resets it per request).
    _active: ClassVar[contextvars.ContextVar[Any]] = contextvars.ContextVar(
        "flagkit_request_flags", default=None
    )

    def __init__(
        self,
        client: FlagKitClient | None,
        context_factory: Callable[[], EvaluationContext | None] | None = None,
    ) -> None:
        # ``client`` None: an adapter whose client is created on first use (it overrides
        # :attr:`client`).
        self._client: FlagKitClient | None = client
        self._context_factory = context_factory
        self._context: EvaluationContext | None = None
        self._results: dict[str, EvaluationResult[Any]] = {}
        self._bools: dict[str, bool] = {}

    # -- the client and the context ------------------------------------------------------

    @property
    def client(self) -> FlagKitClient:
        """The client the lookups go through (an adapter whose client is created lazily
        overrides this and leaves ``_client`` None until then)."""
        client = self._client
        if client is None:
            raise RuntimeError("RequestFlags has no client")
        return client

    @property
    def context(self) -> EvaluationContext | None:
        """This request's evaluation context (built on first access)."""
        return self.scope_context()

    def scope_context(self) -> EvaluationContext | None:
        """The context, built on first call: the factory given to ``client.context_scope``.

        Calls ``context_factory`` once and keeps its result; adapters override this to
        build the context from their request and user.
        """
        factory = self._context_factory
        if factory is not None:
            self._context_factory = None
            self._context = factory()
        return self._context

    def _scoped(self) -> contextlib.AbstractContextManager[None]:
        """A scope for a lookup: none needed when this request's scope is active in this
        thread/task, else one for this request's lazy context."""
        if self._active.get() is self:
            return contextlib.nullcontext()
        return self.client.context_scope(self.scope_context)

    # -- lookups --------------------------------------------------------------------------

    def is_enabled(self, key: str) -> bool:
        """Whether boolean flag ``key`` is on for this request's user; ``"!key"`` negates.

        A missing flag, a non-boolean flag, a fault, and an invalid key (see
        :func:`parse_flag_key`: ``"!"``, ``"!!x"``, a non-string) count as off.
        """
        # Hot path (a template tag per flag): a plain key, memoised or looked up once.
        if key.__class__ is str and key and key[0] != "!":
            value = self._bools.get(key)
            return self._lookup_bool(key) if value is None else value
        if not isinstance(key, str):
            return False
        key = str.__str__(key)  # a plain str: a subclass may override hashing
        negate = key[:1] == "!"
        if negate:
            key = key[1:]
            if key[:1] == "!" or not key:
                parse_flag_key("!" + key)  # warns once
                return False
        elif not key:
            parse_flag_key(key)
            return False
        value = self._bools.get(key)
        if value is None:
            value = self._lookup_bool(key)
        return value is not negate

    def _lookup_bool(self, key: str) -> bool:
        """Evaluate boolean flag ``key`` for this request (first time only) and memoise it."""
        result = self._results.get(key)
        if result is not None:
            value = result.value is True
        else:
            client = self._client
            if client is None:
                client = self.client
            if self._active.get() is self:
                value = client.get_boolean_value(key, False)
            else:
                with client.context_scope(self.scope_context):
                    value = client.get_boolean_value(key, False)
        self._bools[key] = value
        return value

    def evaluate(self, key: str) -> EvaluationResult[Any]:
        """The full :class:`~flagkit.EvaluationResult` of ``key`` (memoised). Never raises."""
        if key.__class__ is not str and isinstance(key, str):
            key = str.__str__(key)  # a plain str: a subclass may override hashing
        result = self._results.get(key)
        if result is None:
            with self._scoped():
                result = self.client.evaluate(key)
            seen = self._bools.get(key)
            if seen is not None and isinstance(result.value, bool) and result.value is not seen:
                # An update landed since this request read the flag: keep what it saw.
                result = dataclasses.replace(result, value=seen)
            self._results[key] = result
        return result

    def value(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` for this request's user, or ``default``.

        ``default`` is returned when the flag is missing or could not be evaluated, when
        ``default`` is not None and the flag's value is of another kind (bool, number, str,
        dict, list), and for a non-string or empty key.
        """
        if key.__class__ is not str:
            if not isinstance(key, str):
                return default
            key = str.__str__(key)  # a plain str: a subclass may override hashing
        if not key:
            return default
        return value_or_default(self.evaluate(key), default)

    def all(self) -> dict[str, Any]:
        """``{key: value}`` of every flag the client knows, for this request's user
        (memoised per key)."""
        client = self.client
        keys = client.get_all_flag_keys()
        results = self._results
        if any(key not in results for key in keys):
            with self._scoped():
                fresh = client.evaluate_all()
            for key, result in fresh.items():
                if key not in results:
                    seen = self._bools.get(key)
                    if seen is not None and isinstance(result.value, bool):
                        result = dataclasses.replace(result, value=seen)
                    results[key] = result
        return {key: results[key].value for key in sorted(keys) if key in results}

    def track(self, event_type: str, data: Mapping[str, Any] | None = None) -> None:
        """Track an analytics event for this request's user (``FlagKitClient.track``).

        Raises what ``track`` raises for invalid input (``EventError``), unless the client
        uses lenient tracking.
        """
        with self._scoped():
            self.client.track(event_type, data)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} evaluated={sorted({*self._results, *self._bools})!r}>"
