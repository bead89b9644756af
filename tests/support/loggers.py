"""A ``LoggerProtocol`` object that records every call, for tests of custom ``logger=``."""

from __future__ import annotations


class RecordingLogger:
    """Keeps ``(level, message)`` for each ``debug/info/warn/error`` call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def debug(self, message: str, **kwargs: object) -> None:
        self.calls.append(("debug", message))

    def info(self, message: str, **kwargs: object) -> None:
        self.calls.append(("info", message))

    def warn(self, message: str, **kwargs: object) -> None:
        self.calls.append(("warn", message))

    def error(self, message: str, **kwargs: object) -> None:
        self.calls.append(("error", message))
