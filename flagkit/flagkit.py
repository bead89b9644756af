"""The ``FlagKit`` static factory: one shared client per process.

This module holds the SDK's **only process-global state**: the default
:class:`~flagkit.FlagKitClient` created by :meth:`FlagKit.initialize` (or, for web
integrations, :meth:`FlagKit.get_or_create` / :meth:`FlagKit.get_or_start`), guarded by
one lock. Everything else lives on client instances. Tests reset it with
:func:`_reset_default_client`.

>>> from flagkit import FlagKit
>>> client = FlagKit.initialize(api_key="sdk_...", offline=True)  # doctest: +SKIP
>>> FlagKit.get_boolean_value("dark-mode", default=False)           # doctest: +SKIP
>>> FlagKit.close()                                                 # doctest: +SKIP
"""

from __future__ import annotations

import difflib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, overload

from flagkit.core.evaluation import safe_key
from flagkit.errors import InitializationError
from flagkit.types.config import FlagKitOptions
from flagkit.types.flag import EvaluationReason, EvaluationResult

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from flagkit.client import FlagKitClient
    from flagkit.types.config import FlagKitOptionsKwargs
    from flagkit.types.context import EvaluationContext
    from flagkit.types.events import FlushResult

__all__ = ["FlagKit"]

_log = logging.getLogger("flagkit")

_WAIT_MARGIN = 1.0  # seconds a waiter allows beyond the initializing client's timeout


def _new_client(options: FlagKitOptions) -> FlagKitClient:
    from flagkit.client import FlagKitClient  # the client module imports this one's siblings

    return FlagKitClient(options)


class FlagKit:
    """Static factory and holder of the default client (the documented singleton).

    >>> client = FlagKit.initialize(api_key="sdk_...", polling_interval=30)  # doctest: +SKIP

    Every method is a class method; the class is never instantiated. Thread-safe: one lock
    guards the stored client, and no network call or user callback runs while it is held
    (``initialize`` marks itself in progress, releases the lock, loads, then stores).
    """

    _cond: ClassVar[threading.Condition] = threading.Condition(threading.RLock())
    _instance: ClassVar[FlagKitClient | None] = None
    _initializing: ClassVar[bool] = False
    # How long another thread may wait for the initialize() in progress: its own timeout
    # plus a margin (set when it starts; time.monotonic() clock).
    _initializing_until: ClassVar[float] = 0.0

    def __init__(self) -> None:
        raise TypeError("FlagKit is a static factory: call FlagKit.initialize(...)")

    # --- lifecycle -----------------------------------------------------------------------

    @classmethod
    def initialize(cls, api_key: str, **options: Unpack[FlagKitOptionsKwargs]) -> FlagKitClient:
        """Create the default client from keyword options, load flags (blocking), store it.

        >>> client = FlagKit.initialize(api_key="sdk_...", local_port=8200)  # doctest: +SKIP

        Accepts every :class:`~flagkit.FlagKitOptions` field as a keyword. Calls
        ``client.initialize()`` (docs/protocol.md §15); if that raises, the client is closed, the
        error propagates and no instance is stored, so a later ``initialize`` may retry.

        Raises ``InitializationError`` (``INIT_ALREADY_INITIALIZED``) when a default client
        exists or another thread is initializing one; ``ConfigurationError`` /
        ``SecurityError`` for bad options; ``TypeError`` for an unknown keyword; whatever
        ``FlagKitClient.initialize`` raises (``AuthenticationError``, ``NetworkError``).
        """
        unknown = sorted(set(options) - FlagKitOptions.option_names())
        if unknown:
            close = difflib.get_close_matches(unknown[0], FlagKitOptions.option_names(), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(
                f"FlagKit.initialize() got an unexpected keyword argument {unknown[0]!r}{hint}"
            )
        opts = FlagKitOptions(api_key=api_key, **options)
        return cls.initialize_from_options(opts)

    @classmethod
    def initialize_from_options(cls, options: FlagKitOptions) -> FlagKitClient:
        """Like :meth:`initialize`, from a built :class:`~flagkit.FlagKitOptions`.

        Raises as :meth:`initialize` does.
        """
        with cls._cond:
            if cls._instance is not None or cls._initializing:
                raise InitializationError(
                    "INIT_ALREADY_INITIALIZED",
                    "FlagKit is already initialized; use FlagKit.get_client(), or call "
                    "FlagKit.close() before initializing again",
                )
            cls._initializing = True
            cls._initializing_until = time.monotonic() + options.timeout * 1.1 + _WAIT_MARGIN
        try:
            client = _new_client(options)
            try:
                client.initialize()
            except BaseException:
                client.close()
                raise
        except BaseException:
            with cls._cond:
                cls._initializing = False
                cls._cond.notify_all()
            raise
        with cls._cond:
            cls._instance = client
            cls._initializing = False
            cls._cond.notify_all()
        return client

    @classmethod
    def get_or_create(cls, build: Callable[[], FlagKitClient]) -> FlagKitClient:
        """The default client; if there is none, ``build()`` one and store it.

        >>> client = FlagKit.get_or_create(lambda: FlagKitClient(options))  # doctest: +SKIP
        >>> client.start()                                                   # doctest: +SKIP

        The building block for integrations that configure the client themselves (listeners,
        test overrides) and start it when they choose. ``build`` runs under the factory's
        lock, so it is called at most once and must not block on the network or call back
        into user code (constructing a ``FlagKitClient`` does neither). If ``initialize``
        is running in another thread, waits for it — at most its ``timeout`` option plus a
        moment — and returns its client when it succeeded (or builds one when it failed).
        Raises what ``build`` raises (nothing is stored then), and ``InitializationError``
        (``INIT_TIMEOUT``) when the ``initialize`` in progress outlives that bound.
        """
        with cls._cond:
            while cls._initializing:
                remaining = cls._initializing_until - time.monotonic()
                if remaining <= 0:
                    raise InitializationError(
                        "INIT_TIMEOUT",
                        "FlagKit.initialize() in another thread has not finished within its "
                        "timeout; no default client is available yet",
                    )
                cls._cond.wait(remaining)
            if cls._instance is None:
                cls._instance = build()
            return cls._instance

    @classmethod
    def get_or_start(cls, options: FlagKitOptions | Callable[[], FlagKitOptions]) -> FlagKitClient:
        """The default client, created and started without blocking if there is none.

        >>> FlagKit.get_or_start(lambda: FlagKitOptions.from_mapping(conf))  # doctest: +SKIP

        ``options`` (or the factory, called only when a client must be created) configures
        the new client, whose ``start()`` loads flags in the background and never raises for
        network faults; an existing client is returned as it is. Raises what the factory or
        the options raise (``ConfigurationError``, ``SecurityError``).
        """

        def build() -> FlagKitClient:
            opts = options() if callable(options) else options
            client = _new_client(opts)
            client.start()  # non-blocking: spawns the background threads only
            return client

        return cls.get_or_create(build)

    @classmethod
    def get_instance(cls) -> FlagKitClient | None:
        """The default client, or ``None`` when there is none."""
        return cls._instance

    @classmethod
    def get_client(cls) -> FlagKitClient:
        """The default client.

        Raises ``InitializationError`` (``INIT_NOT_INITIALIZED``) when there is none.
        """
        client = cls._instance
        if client is None:
            raise InitializationError(
                "INIT_NOT_INITIALIZED",
                "FlagKit is not initialized; call FlagKit.initialize(api_key=...) first",
            )
        return client

    @classmethod
    def is_initialized(cls) -> bool:
        """Whether a default client is stored."""
        return cls._instance is not None

    @classmethod
    def close(cls) -> None:
        """Close and forget the default client (no-op without one); idempotent."""
        with cls._cond:
            client = cls._instance
            cls._instance = None
        if client is not None:
            client.close()

    @classmethod
    def reset(cls) -> None:
        """Same as :meth:`close` (kept for code written against earlier versions)."""
        cls.close()

    # --- delegation to the default client ------------------------------------------------
    # Lookups never raise (a flag lookup returns the caller's default on any fault), so
    # without a client they log and return the default; the other calls raise
    # ``INIT_NOT_INITIALIZED`` like ``get_client``.

    @classmethod
    def _client_or_none(cls, key: object) -> FlagKitClient | None:
        client = cls._instance
        if client is None:
            _log.warning(
                "FlagKit is not initialized: flag %r served the caller's default", safe_key(key)
            )
        return client

    @classmethod
    def get_boolean_value(
        cls, key: str, default: bool = False, context: EvaluationContext | None = None
    ) -> bool:
        """``get_boolean_value`` on the default client; ``default`` when there is none."""
        client = cls._client_or_none(key)
        if client is None:
            return default
        return client.get_boolean_value(key, default, context)

    @classmethod
    def get_string_value(
        cls, key: str, default: str = "", context: EvaluationContext | None = None
    ) -> str:
        """``get_string_value`` on the default client; ``default`` when there is none."""
        client = cls._client_or_none(key)
        if client is None:
            return default
        return client.get_string_value(key, default, context)

    @classmethod
    def get_number_value(
        cls, key: str, default: float = 0.0, context: EvaluationContext | None = None
    ) -> float:
        """``get_number_value`` on the default client; ``default`` when there is none."""
        client = cls._client_or_none(key)
        if client is None:
            return default
        return client.get_number_value(key, default, context)

    @overload
    @classmethod
    def get_json_value(
        cls, key: str, default: dict[str, Any], context: EvaluationContext | None = None
    ) -> dict[str, Any]: ...

    @overload
    @classmethod
    def get_json_value(
        cls, key: str, default: None = None, context: EvaluationContext | None = None
    ) -> dict[str, Any] | None: ...

    @classmethod
    def get_json_value(
        cls,
        key: str,
        default: dict[str, Any] | None = None,
        context: EvaluationContext | None = None,
    ) -> dict[str, Any] | None:
        """``get_json_value`` on the default client; ``default`` when there is none."""
        client = cls._client_or_none(key)
        if client is None:
            return default
        return client.get_json_value(key, default, context)

    @classmethod
    def evaluate(
        cls, key: str, context: EvaluationContext | None = None, *, default: Any = None
    ) -> EvaluationResult[Any]:
        """``evaluate`` on the default client.

        Without a client: a result with ``default`` as value, reason ``DEFAULT`` and error
        code ``INIT_NOT_INITIALIZED``.
        """
        client = cls._client_or_none(key)
        if client is None:
            return EvaluationResult(
                flag_key=safe_key(key),
                value=default,
                enabled=False,
                reason=EvaluationReason.DEFAULT,
                error_code="INIT_NOT_INITIALIZED",
                error_message="FlagKit is not initialized",
            )
        return client.evaluate(key, context, default=default)

    @classmethod
    def identify(cls, user_id: str, attributes: Mapping[str, Any] | None = None) -> None:
        """``identify`` on the default client. Raises ``INIT_NOT_INITIALIZED`` without one."""
        cls.get_client().identify(user_id, attributes)

    @classmethod
    def track(cls, event_type: str, data: Mapping[str, Any] | None = None) -> None:
        """``track`` on the default client. Raises ``INIT_NOT_INITIALIZED`` without one."""
        cls.get_client().track(event_type, data)

    @classmethod
    def flush(cls, timeout: float | None = None) -> FlushResult:
        """``flush`` on the default client. Raises ``INIT_NOT_INITIALIZED`` without one."""
        return cls.get_client().flush(timeout)


def _reset_default_client() -> None:
    """Test-only: close and forget the default client, and clear an unfinished initialize."""
    FlagKit.close()
    with FlagKit._cond:
        FlagKit._initializing = False
        FlagKit._cond.notify_all()
