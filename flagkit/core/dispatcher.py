"""Delivery of user callbacks (``on_ready``, ``on_update``, ``on_error``, listeners) off the
caller's thread.

One named daemon thread, ``flagkit-dispatch``, runs queued jobs in order. Jobs are queued by
whoever noticed the change (the updates thread, the streaming thread, ``initialize()``) and
run later with no SDK lock held, so a slow or re-entrant callback can neither deadlock the
client nor delay an update. A raising callback is logged with its traceback and the next job
runs as usual.

:class:`Listeners` is the small registry behind ``add_update_listener`` and friends: adding
returns an unsubscribe function; the set is an immutable tuple swapped under a lock, so
dispatching iterates it without locking.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from flagkit.errors.flagkit_error import apply_error_sanitization
from flagkit.errors.sanitizer import ErrorSanitizationConfig

__all__ = ["Callbacks", "Dispatcher", "Listeners"]

F = TypeVar("F", bound=Callable[..., Any])

_STOP = object()


class Listeners(Generic[F]):
    """A thread-safe, ordered set of callbacks.

    >>> listeners: Listeners[Callable[[], None]] = Listeners()
    >>> unsubscribe = listeners.add(lambda: None)
    >>> len(listeners.snapshot())
    1
    >>> unsubscribe(); len(listeners.snapshot())
    0

    Adding the same function twice registers it twice (each unsubscribe removes one).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: tuple[F, ...] = ()

    def add(self, fn: F) -> Callable[[], None]:
        """Register ``fn``; returns a function that removes it (idempotent)."""
        if not callable(fn):
            raise TypeError(f"listener must be callable, got {type(fn).__name__}")
        with self._lock:
            self._items = (*self._items, fn)
        removed = False

        def unsubscribe() -> None:
            nonlocal removed
            with self._lock:
                if removed:
                    return
                removed = True
                items = list(self._items)
                for index, item in enumerate(items):
                    if item is fn:
                        del items[index]
                        break
                self._items = tuple(items)

        return unsubscribe

    def snapshot(self) -> tuple[F, ...]:
        """The registered callbacks at this instant (no lock needed to iterate)."""
        return self._items

    def clear(self) -> None:
        """Remove every callback."""
        with self._lock:
            self._items = ()

    def after_fork(self) -> None:
        """Replace the lock (a forked child may have inherited it held)."""
        self._lock = threading.Lock()


class Dispatcher:
    """Runs callbacks in order on the ``flagkit-dispatch`` daemon thread.

    >>> d = Dispatcher(logging.getLogger("flagkit"))
    >>> d.submit(print, "hello")      # starts the thread on first use
    >>> d.wait_idle(1.0)
    True
    >>> d.close()

    The thread starts lazily on the first :meth:`submit` (never at construction) and is
    restarted in a forked child by :meth:`after_fork`. Thread-safe.
    """

    def __init__(self, logger: logging.Logger, *, name: str = "flagkit-dispatch") -> None:
        self._logger = logger
        self._name = name
        self._init_state()

    def _init_state(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._thread: threading.Thread | None = None
        self._closed = False
        self._pid = os.getpid()

    @property
    def is_running(self) -> bool:
        """Whether the dispatch thread is alive."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def submit(self, fn: Callable[..., Any], *args: Any) -> bool:
        """Queue ``fn(*args)``; returns False (and drops it) once the dispatcher is closed."""
        with self._lock:
            if self._closed:
                return False
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._queue.put((fn, args))
        return True

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued job has run; False if ``timeout`` passed first.

        Returns at once when called from the dispatch thread itself (a callback waiting on
        its own queue would never finish).
        """
        if threading.current_thread() is self._thread:
            return self._pending <= 1
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._pending > 0:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._idle.wait(remaining)
        return True

    def close(self, timeout: float | None = 2.0) -> None:
        """Run what is queued (up to ``timeout`` seconds), then stop the thread. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self._queue.put(_STOP)
        if thread is not threading.current_thread():
            thread.join(timeout)

    def after_fork(self) -> None:
        """In a forked child: forget the parent's thread, queue and locks.

        Jobs queued in the parent but not yet run are dropped (they belong to the parent).
        """
        closed = self._closed
        self._init_state()
        self._closed = closed

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            fn, args = job
            try:
                fn(*args)
            except Exception:
                name = getattr(fn, "__qualname__", repr(fn))
                self._logger.exception("callback %s raised; the client carries on", name)
            finally:
                with self._idle:
                    self._pending -= 1
                    if self._pending <= 0:
                        self._pending = 0
                        self._idle.notify_all()


class Callbacks:
    """A client's user callbacks: the ``on_ready``/``on_update``/``on_error`` options plus
    the listeners added later, all delivered through one :class:`Dispatcher`.

    >>> callbacks = Callbacks(Dispatcher(logging.getLogger("flagkit")), None, None, None)
    >>> unsubscribe = callbacks.updates.add(print)
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        on_ready: Callable[[], None] | None,
        on_update: Callable[[list[Any]], None] | None,
        on_error: Callable[[Exception], None] | None,
        sanitization: ErrorSanitizationConfig | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self._sanitization = sanitization
        self._on_ready = on_ready
        self._on_update = on_update
        self._on_error = on_error
        self.ready: Listeners[Callable[[], None]] = Listeners()
        self.updates: Listeners[Callable[[list[Any]], None]] = Listeners()
        self.errors: Listeners[Callable[[Exception], None]] = Listeners()

    def notify_ready(self, listeners: tuple[Callable[[], None], ...]) -> None:
        """Queue ``on_ready`` and ``listeners`` (taken by the caller with the READY change)."""
        if self._on_ready is not None:
            self.dispatcher.submit(self._on_ready)
        for listener in listeners:
            self.dispatcher.submit(listener)

    def notify_update(self, flags: list[Any]) -> None:
        """Queue ``on_update`` and the update listeners, each with its own copy of ``flags``."""
        if self._on_update is not None:
            self.dispatcher.submit(self._on_update, list(flags))
        for listener in self.updates.snapshot():
            self.dispatcher.submit(listener, list(flags))

    def report_error(self, error: Exception) -> None:
        """Queue ``on_error`` and the error listeners, with the error sanitized under the
        client's ``error_sanitization`` option."""
        error = apply_error_sanitization(error, self._sanitization)
        if self._on_error is not None:
            self.dispatcher.submit(self._on_error, error)
        for listener in self.errors.snapshot():
            self.dispatcher.submit(listener, error)

    def after_fork(self) -> None:
        """In a forked child: fresh dispatcher thread state and listener locks."""
        self.dispatcher.after_fork()
        for listeners in (self.ready, self.updates, self.errors):
            listeners.after_fork()
