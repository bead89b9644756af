"""Logging for the SDK: one ``logging.Logger`` per client that never lets an API key through.

The client turns its ``logger=`` and ``debug=`` options into a :class:`logging.Logger` with
:func:`build_logger`; every component (HTTP, streaming, events) logs through that object or
one of its children (``logger.getChild("http")``). Whatever the target — the stdlib logger
``flagkit`` (the default), the caller's own ``logging.Logger``, or any object with
``debug/info/warn/error(message, **kwargs)`` methods (:class:`LoggerProtocol`, the published
SDK's interface) — each record passes through :func:`~flagkit.errors.sanitizer.redact_api_keys`
(message and traceback text) before it reaches a handler.

Nothing here runs at import time; building a logger touches no global logging state except
``debug=True`` with the default target, which lowers the ``flagkit`` logger to ``DEBUG``.
"""

from __future__ import annotations

import logging
from typing import Any, Final, Protocol, runtime_checkable

from flagkit.errors.sanitizer import redact_api_keys

__all__ = ["DEFAULT_LOGGER_NAME", "LoggerProtocol", "build_logger", "is_logger_like"]

DEFAULT_LOGGER_NAME: Final = "flagkit"

# A handler added by ``debug=True`` when nothing else would print the records; one per process.
_DEBUG_HANDLER_MARK: Final = "_flagkit_debug_handler"


@runtime_checkable
class LoggerProtocol(Protocol):
    """What a custom ``logger=`` must offer (the published SDK's interface).

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


def is_logger_like(obj: object) -> bool:
    """Whether ``obj`` can be a ``logger=`` value: a stdlib logger or a :class:`LoggerProtocol`."""
    if isinstance(obj, (logging.Logger, logging.LoggerAdapter)):
        return True
    methods = ("debug", "info", "error")
    if not all(callable(getattr(obj, name, None)) for name in methods):
        return False
    return callable(getattr(obj, "warn", None)) or callable(getattr(obj, "warning", None))


def _redacted_copy(record: logging.LogRecord) -> logging.LogRecord:
    """A copy of ``record`` whose message and traceback text carry no API key."""
    clean = logging.makeLogRecord(record.__dict__)
    try:
        message = record.getMessage()
    except (TypeError, ValueError):  # bad %-args: keep the template, drop the args
        message = str(record.msg)
    clean.msg = redact_api_keys(message)
    clean.args = None
    if record.exc_info and not record.exc_text:
        clean.exc_text = logging.Formatter().formatException(record.exc_info)
    if clean.exc_text:
        clean.exc_text = redact_api_keys(clean.exc_text)
    if record.stack_info:
        clean.stack_info = redact_api_keys(record.stack_info)
    return clean


class _StdlibForwarder(logging.Handler):
    """Hands redacted records to a stdlib logger (or adapter), honouring its level."""

    def __init__(self, target: logging.Logger | logging.LoggerAdapter[Any]) -> None:
        super().__init__(logging.NOTSET)
        self.target = target

    def emit(self, record: logging.LogRecord) -> None:
        try:
            clean = _redacted_copy(record)
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

    def __init__(self, target: object) -> None:
        super().__init__(logging.NOTSET)
        self.target = target
        warn = getattr(target, "warn", None)
        self._warn = warn if callable(warn) else target.warning  # type: ignore[attr-defined]

    def emit(self, record: logging.LogRecord) -> None:
        try:
            clean = _redacted_copy(record)
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
    ) -> None:
        super().__init__(name, logging.NOTSET)
        self.propagate = False
        self._target = target
        self._protocol_level = protocol_level
        handler: logging.Handler
        if isinstance(target, (logging.Logger, logging.LoggerAdapter)):
            handler = _StdlibForwarder(target)
        else:
            handler = _ProtocolForwarder(target)
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
            f"{self.name}.{suffix}", child_target, protocol_level=self._protocol_level
        )

    def __repr__(self) -> str:
        return f"<FlagKitLogger {self.name} -> {self._target!r}>"


def build_logger(
    logger: LoggerProtocol | logging.Logger | logging.LoggerAdapter[Any] | None = None,
    *,
    debug: bool = False,
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

    Raises ``TypeError`` for anything else. Thread-safe (``logging`` handlers lock).
    """
    protocol_level = logging.DEBUG if debug else logging.INFO
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
        return _FlagKitLogger(DEFAULT_LOGGER_NAME, target, protocol_level=protocol_level)
    if not is_logger_like(logger):
        raise TypeError(
            "logger must be a logging.Logger or an object with debug/info/warn/error "
            f"methods, got {type(logger).__name__}"
        )
    return _FlagKitLogger(DEFAULT_LOGGER_NAME, logger, protocol_level=protocol_level)
