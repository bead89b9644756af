"""Logging for the SDK: one ``logging.Logger`` per client that never lets an API key through.

The client turns its ``logger=`` and ``debug=`` options into a :class:`logging.Logger` with
:func:`build_logger`; every component (HTTP, streaming, events) logs through that object or
one of its children (``logger.getChild("http")``). Whatever the target — the stdlib logger
``flagkit`` (the default), the caller's own ``logging.Logger``, or any object with
``debug/info/warn/error(message, **kwargs)`` methods (:class:`LoggerProtocol`, the interface
the other FlagKit SDKs take) — each record's message and traceback text pass through
:func:`~flagkit.errors.sanitizer.redact_secrets` for the client's own keys (``secrets=``,
whatever characters they hold) and :func:`~flagkit.errors.sanitizer.redact_api_keys` (any
key of the usual shape) before they reach a handler.

:func:`log_to` writes one message to any accepted ``logger=`` value (helpers that take a
logger argument use it).

Nothing here runs at import time; building a logger touches no global logging state except
``debug=True`` with the default target, which lowers the ``flagkit`` logger to ``DEBUG``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Final, Protocol, TypeAlias, runtime_checkable

from flagkit.errors.sanitizer import redact_api_keys, redact_secrets

__all__ = [
    "DEFAULT_LOGGER_NAME",
    "AnyLogger",
    "LoggerProtocol",
    "build_logger",
    "is_logger_like",
    "log_to",
]

DEFAULT_LOGGER_NAME: Final = "flagkit"

# A handler added by ``debug=True`` when nothing else would print the records; one per process.
_DEBUG_HANDLER_MARK: Final = "_flagkit_debug_handler"


@runtime_checkable
class LoggerProtocol(Protocol):
    """What a custom ``logger=`` must offer (the interface the other FlagKit SDKs take too).

    >>> class PrintLogger:
    ...     def debug(self, message: str, **kwargs: object) -> None: print("D", message)
    ...     def info(self, message: str, **kwargs: object) -> None: print("I", message)
    ...     def warn(self, message: str, **kwargs: object) -> None: print("W", message)
    ...     def error(self, message: str, **kwargs: object) -> None: print("E", message)

    The SDK calls these with the message only (no keyword arguments), from any thread. A
    ``logging.Logger`` (or ``LoggerAdapter``) works too, and an object with ``warning``
    instead of ``warn`` is accepted.
    """

    def debug(self, message: str, **kwargs: Any) -> None: ...
    def info(self, message: str, **kwargs: Any) -> None: ...
    def warn(self, message: str, **kwargs: Any) -> None: ...
    def error(self, message: str, **kwargs: Any) -> None: ...


# A string alias: ``LoggerAdapter[...]`` is not subscriptable at runtime before Python 3.11.
AnyLogger: TypeAlias = "logging.Logger | logging.LoggerAdapter[Any] | LoggerProtocol"
"""A stdlib logger (or adapter) or any object with ``debug/info/warn/error(message)``."""


def log_to(logger: AnyLogger | None, level: int, message: str) -> None:
    """Log ``message`` at ``level`` through ``logger``; ``None`` means the ``flagkit`` logger.

    A :class:`LoggerProtocol` object gets ``error``/``warn``/``info``/``debug`` (``warning``
    if it has no ``warn``) by level.
    """
    if logger is None:
        logging.getLogger(DEFAULT_LOGGER_NAME).log(level, message)
    elif isinstance(logger, (logging.Logger, logging.LoggerAdapter)):
        logger.log(level, message)
    elif level >= logging.ERROR:
        logger.error(message)
    elif level >= logging.WARNING:
        warn = getattr(logger, "warn", None)
        (warn if callable(warn) else logger.warning)(message)  # type: ignore[attr-defined]
    elif level >= logging.INFO:
        logger.info(message)
    else:
        logger.debug(message)


def is_logger_like(obj: object) -> bool:
    """Whether ``obj`` can be a ``logger=`` value: a stdlib logger or a :class:`LoggerProtocol`."""
    if isinstance(obj, (logging.Logger, logging.LoggerAdapter)):
        return True
    methods = ("debug", "info", "error")
    if not all(callable(getattr(obj, name, None)) for name in methods):
        return False
    return callable(getattr(obj, "warn", None)) or callable(getattr(obj, "warning", None))


def _redacted_copy(record: logging.LogRecord, secrets: tuple[str, ...]) -> logging.LogRecord:
    """A copy of ``record`` whose message and traceback text carry no API key."""

    def redact(text: str) -> str:
        # By value first: the pattern could cut a key with unusual characters in two.
        return redact_api_keys(redact_secrets(text, secrets) if secrets else text)

    clean = logging.makeLogRecord(record.__dict__)
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # bad %-args: keep the template, drop the args
        message = str(record.msg)
    clean.msg = redact(message)
    clean.args = None
    if record.exc_info and not record.exc_text:
        clean.exc_text = logging.Formatter().formatException(record.exc_info)
    if clean.exc_text:
        clean.exc_text = redact(clean.exc_text)
    if record.stack_info:
        clean.stack_info = redact(record.stack_info)
    return clean


class _StdlibForwarder(logging.Handler):
    """Hands redacted records to a stdlib logger (or adapter), honouring its level."""

    def __init__(
        self, target: logging.Logger | logging.LoggerAdapter[Any], secrets: tuple[str, ...]
    ) -> None:
        super().__init__(logging.NOTSET)
        self.target = target
        self.secrets = secrets

    def emit(self, record: logging.LogRecord) -> None:
        try:
            clean = _redacted_copy(record, self.secrets)
            target = self.target
            if isinstance(target, logging.LoggerAdapter):
                # The traceback is already in exc_text; exc_info would print it unredacted.
                text = clean.getMessage()
                if clean.exc_text:
                    text = f"{text}\n{clean.exc_text}"
                target.log(clean.levelno, text)
            elif target.isEnabledFor(clean.levelno):
                target.handle(clean)
        except Exception:  # logging must never break the SDK
            self.handleError(record)


class _ProtocolForwarder(logging.Handler):
    """Calls ``debug/info/warn/error(message)`` on a user object; its failures are contained."""

    def __init__(self, target: object, secrets: tuple[str, ...]) -> None:
        super().__init__(logging.NOTSET)
        self.target = target
        self.secrets = secrets
        warn = getattr(target, "warn", None)
        self._warn = warn if callable(warn) else target.warning  # type: ignore[attr-defined]

    def emit(self, record: logging.LogRecord) -> None:
        try:
            clean = _redacted_copy(record, self.secrets)
            text = clean.getMessage()
            if clean.exc_text:
                text = f"{text}\n{clean.exc_text}"
            level = clean.levelno
            if level >= logging.ERROR:
                self.target.error(text)  # type: ignore[attr-defined]
            elif level >= logging.WARNING:
                self._warn(text)
            elif level >= logging.INFO:
                self.target.info(text)  # type: ignore[attr-defined]
            else:
                self.target.debug(text)  # type: ignore[attr-defined]
        except Exception:  # a broken user logger must not break the SDK
            self.handleError(record)


class _FlagKitLogger(logging.Logger):
    """An unregistered logger whose only handler forwards redacted records to the target.

    It is not in ``logging``'s registry (one per client, no global state); ``getChild``
    returns another such logger forwarding to the target's matching child.
    """

    def __init__(
        self,
        name: str,
        target: logging.Logger | logging.LoggerAdapter[Any] | object,
        *,
        protocol_level: int,
        secrets: tuple[str, ...] = (),
    ) -> None:
        super().__init__(name, logging.NOTSET)
        self.propagate = False
        self._target = target
        self._protocol_level = protocol_level
        self._secrets = secrets
        handler: logging.Handler
        if isinstance(target, (logging.Logger, logging.LoggerAdapter)):
            handler = _StdlibForwarder(target, secrets)
        else:
            handler = _ProtocolForwarder(target, secrets)
        self.addHandler(handler)

    @property
    def target(self) -> object:
        """Where records end up (a stdlib logger or the user's logger object)."""
        return self._target

    def isEnabledFor(self, level: int) -> bool:
        """Mirror the target's level so disabled messages are never formatted."""
        target = self._target
        if isinstance(target, (logging.Logger, logging.LoggerAdapter)):
            return target.isEnabledFor(level)
        return level >= self._protocol_level

    def getEffectiveLevel(self) -> int:
        """The target's effective level (for ``logging.Logger`` callers that ask)."""
        target = self._target
        if isinstance(target, logging.Logger):
            return target.getEffectiveLevel()
        if isinstance(target, logging.LoggerAdapter):
            return int(target.getEffectiveLevel())
        return self._protocol_level

    def getChild(self, suffix: str) -> _FlagKitLogger:
        """A child (``flagkit.http``) that forwards to the target's child of the same name."""
        target = self._target
        child_target = target.getChild(suffix) if isinstance(target, logging.Logger) else target
        return _FlagKitLogger(
            f"{self.name}.{suffix}",
            child_target,
            protocol_level=self._protocol_level,
            secrets=self._secrets,
        )

    def __repr__(self) -> str:
        return f"<FlagKitLogger {self.name} -> {self._target!r}>"


def build_logger(
    logger: LoggerProtocol | logging.Logger | logging.LoggerAdapter[Any] | None = None,
    *,
    debug: bool = False,
    secrets: Iterable[str | None] = (),
) -> logging.Logger:
    """The ``logging.Logger`` a client logs through, built from its ``logger``/``debug`` options.

    >>> log = build_logger(None, debug=False)   # forwards to logging.getLogger("flagkit")
    >>> log.info("key sdk_abcdefgh12345 rejected")   # handlers see "key sdk_[REDACTED] rejected"

    - ``None``: the stdlib logger ``flagkit``; ``debug=True`` sets it to ``DEBUG`` and, when
      no handler anywhere would show the records, adds one ``StreamHandler`` to it.
    - a ``logging.Logger`` / ``LoggerAdapter``: records go to it with its own level and
      handlers (``debug`` does not change its level).
    - a :class:`LoggerProtocol` object: INFO and above are forwarded, DEBUG too with
      ``debug=True``; an exception raised by the object is reported by ``logging`` and
      swallowed.

    ``secrets`` are strings removed by value from every record (the client passes its
    ``api_key`` and ``secondary_api_key``), on top of the pattern that finds usual API keys.

    Raises ``TypeError`` for anything else. Thread-safe (``logging`` handlers lock).
    """
    protocol_level = logging.DEBUG if debug else logging.INFO
    hidden = tuple(secret for secret in secrets if secret)
    if logger is None:
        target = logging.getLogger(DEFAULT_LOGGER_NAME)
        if debug:
            target.setLevel(logging.DEBUG)
            if not target.hasHandlers():
                handler = logging.StreamHandler()
                handler.setFormatter(
                    logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s")
                )
                setattr(handler, _DEBUG_HANDLER_MARK, True)
                target.addHandler(handler)
        return _FlagKitLogger(
            DEFAULT_LOGGER_NAME, target, protocol_level=protocol_level, secrets=hidden
        )
    if not is_logger_like(logger):
        raise TypeError(
            "logger must be a logging.Logger or an object with debug/info/warn/error "
            f"methods, got {type(logger).__name__}"
        )
    return _FlagKitLogger(
        DEFAULT_LOGGER_NAME, logger, protocol_level=protocol_level, secrets=hidden
    )
