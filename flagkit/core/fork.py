"""Fork handling in one place: one ``os.register_at_fork`` hook, one method name.

A process forked from one running FlagKit clients (gunicorn ``--preload``, uWSGI, Celery
prefork) inherits their objects but none of their threads, and may inherit a lock held by
a thread that no longer exists. Objects that need to react register here with
:func:`register`; in the child, the hook calls ``after_fork()`` on each of them, in the
order they registered, so each replaces its locks and restarts its own threads.

Parts that rebuild their resources lazily (the HTTP client checks the pid before a
request) need no registration. The hook is installed on the first :func:`register` call,
never at import time.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Protocol

__all__ = ["ForkAware", "register", "unregister"]

_log = logging.getLogger("flagkit")


class ForkAware(Protocol):
    """Something that must act in a forked child."""

    def after_fork(self) -> None:
        """Runs in the child, on its only thread, right after ``fork()``."""


_registered: list[weakref.ref[ForkAware]] = []
_lock = threading.Lock()
_installed = False


def register(component: ForkAware) -> None:
    """Call ``component.after_fork()`` in every child forked from now on (held weakly)."""
    global _installed
    with _lock:
        _registered[:] = [ref for ref in _registered if ref() is not None]
        _registered.append(weakref.ref(component))
        if not _installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _installed = True


def unregister(component: ForkAware) -> None:
    """Stop calling ``component.after_fork()`` (no-op when it is not registered)."""
    with _lock:
        _registered[:] = [ref for ref in _registered if ref() not in (None, component)]


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # the parent may have held it while forking
    for ref in list(_registered):
        component = ref()
        if component is None:
            continue
        try:
            component.after_fork()
        except Exception:  # one broken component must not stop the others
            _log.exception("restarting %s after fork failed", type(component).__name__)
