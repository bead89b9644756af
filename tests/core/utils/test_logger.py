"""The client logger: stdlib and user loggers, levels, children and API-key redaction."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from flagkit.utils.logger import LoggerProtocol, build_logger, is_logger_like
from tests.support.loggers import RecordingLogger as Recorder

KEY = "sdk_abcdefgh12345678"


class ListHandler(logging.Handler):
    """Collects formatted records."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s|%(levelname)s|%(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def flagkit_handler() -> Iterator[ListHandler]:
    """A handler on the stdlib 'flagkit' logger at DEBUG, removed afterwards."""
    target = logging.getLogger("flagkit")
    handler = ListHandler()
    old_level = target.level
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    yield handler
    target.removeHandler(handler)
    target.setLevel(old_level)


def test_default_logger_forwards_to_the_stdlib_flagkit_logger(flagkit_handler: ListHandler) -> None:
    """With no logger option, records reach handlers of logging.getLogger('flagkit')."""
    log = build_logger(None)
    log.info("loaded %d flags", 3)
    assert flagkit_handler.lines == ["flagkit|INFO|loaded 3 flags"]


def test_api_keys_are_redacted_from_messages_and_args(flagkit_handler: ListHandler) -> None:
    """A key in the template or in %-args never reaches a handler."""
    log = build_logger(None)
    log.warning("rejected key %s", KEY)
    log.error(f"key {KEY} again")
    assert all(KEY not in line for line in flagkit_handler.lines)
    assert flagkit_handler.lines[0] == "flagkit|WARNING|rejected key sdk_[REDACTED]"


def test_api_keys_are_redacted_from_tracebacks(flagkit_handler: ListHandler) -> None:
    """logger.exception() output carries no key even when the exception text has one."""
    log = build_logger(None)
    try:
        raise RuntimeError(f"boom with {KEY}")
    except RuntimeError:
        log.exception("poll failed")
    text = "\n".join(flagkit_handler.lines)
    assert "RuntimeError: boom with sdk_[REDACTED]" in text
    assert KEY not in text


def test_children_forward_to_stdlib_children(flagkit_handler: ListHandler) -> None:
    """getChild('http') logs as flagkit.http and still redacts."""
    child = build_logger(None).getChild("http")
    assert child.name == "flagkit.http"
    child.info("using %s", KEY)
    assert flagkit_handler.lines == ["flagkit.http|INFO|using sdk_[REDACTED]"]


def test_children_are_not_registered_globally() -> None:
    """The per-client logger is not the global 'flagkit.http' object."""
    child = build_logger(None).getChild("http")
    assert child is not logging.getLogger("flagkit.http")


def test_stdlib_level_is_respected(flagkit_handler: ListHandler) -> None:
    """A record below the target's level is neither formatted nor forwarded."""
    logging.getLogger("flagkit").setLevel(logging.WARNING)
    log = build_logger(None)
    assert not log.isEnabledFor(logging.INFO)
    log.info("quiet")
    log.warning("loud")
    assert flagkit_handler.lines == ["flagkit|WARNING|loud"]


def test_debug_true_lowers_the_default_logger_to_debug(flagkit_handler: ListHandler) -> None:
    """debug=True makes DEBUG records of the default logger visible."""
    logging.getLogger("flagkit").setLevel(logging.WARNING)
    log = build_logger(None, debug=True)
    log.debug("details")
    assert flagkit_handler.lines == ["flagkit|DEBUG|details"]


def test_user_stdlib_logger_receives_records_at_its_own_level() -> None:
    """A user logging.Logger gets the records; debug=True does not change its level."""
    target = logging.getLogger("tests.logger.user")
    handler = ListHandler()
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    try:
        log = build_logger(target, debug=True)
        log.debug("hidden")
        log.info("shown %s", KEY)
        assert target.level == logging.INFO
        assert handler.lines == ["flagkit|INFO|shown sdk_[REDACTED]"]
        log.getChild("events").error("x")
        assert handler.lines[-1] == "flagkit.events|ERROR|x"
    finally:
        target.removeHandler(handler)


def test_logger_adapter_target() -> None:
    """A LoggerAdapter target gets redacted text via its log() method."""
    target = logging.getLogger("tests.logger.adapter")
    handler = ListHandler()
    target.addHandler(handler)
    target.setLevel(logging.DEBUG)
    try:
        build_logger(logging.LoggerAdapter(target, {})).info("key %s", KEY)
        assert handler.lines == ["tests.logger.adapter|INFO|key sdk_[REDACTED]"]
    finally:
        target.removeHandler(handler)


def test_protocol_logger_gets_each_level_by_method() -> None:
    """debug/info/warn/error map to the protocol's four methods."""
    recorder = Recorder()
    log = build_logger(recorder, debug=True)
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log.critical("c")
    assert recorder.calls == [
        ("debug", "d"),
        ("info", "i"),
        ("warn", "w"),
        ("error", "e"),
        ("error", "c"),
    ]


def test_protocol_logger_skips_debug_unless_debug_is_set() -> None:
    """Without debug=True, DEBUG records are not sent to a protocol logger."""
    recorder = Recorder()
    log = build_logger(recorder)
    log.debug("d")
    log.info("i")
    assert recorder.calls == [("info", "i")]


def test_protocol_logger_never_sees_a_key() -> None:
    """Messages and traceback text are redacted before the user's object sees them."""
    recorder = Recorder()
    log = build_logger(recorder)
    try:
        raise ValueError(KEY)
    except ValueError:
        log.exception("failed for %s", KEY)
    assert len(recorder.calls) == 1
    level, text = recorder.calls[0]
    assert level == "error" and KEY not in text
    assert text.startswith("failed for sdk_[REDACTED]\nTraceback")


def test_warning_method_is_used_when_warn_is_missing() -> None:
    """An object with warning() instead of warn() is accepted and called."""

    class WarningOnly:
        def __init__(self) -> None:
            self.seen: list[str] = []

        def debug(self, message: str) -> None: ...
        def info(self, message: str) -> None: ...
        def warning(self, message: str) -> None:
            self.seen.append(message)

        def error(self, message: str) -> None: ...

    target = WarningOnly()
    build_logger(target).warning("careful")  # type: ignore[arg-type]
    assert target.seen == ["careful"]


def test_a_raising_user_logger_does_not_break_the_caller(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An exception inside the user's logger is contained by logging's error handling."""

    class Broken(Recorder):
        def info(self, message: str, **kwargs: object) -> None:
            raise RuntimeError("logger down")

    monkeypatch.setattr(logging, "raiseExceptions", False)
    build_logger(Broken()).info("hello")  # must not raise


def test_build_logger_rejects_non_loggers() -> None:
    """Anything without the logging methods is a TypeError."""
    with pytest.raises(TypeError, match=r"logger must be a logging\.Logger"):
        build_logger(object())  # type: ignore[arg-type]


def test_is_logger_like() -> None:
    """Stdlib loggers, adapters and protocol objects qualify; plain objects do not."""
    assert is_logger_like(logging.getLogger("x"))
    assert is_logger_like(logging.LoggerAdapter(logging.getLogger("x"), {}))
    assert is_logger_like(Recorder())
    assert not is_logger_like(object())
    assert isinstance(Recorder(), LoggerProtocol)
