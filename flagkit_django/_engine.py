"""The shared client of a Django process: created lazily, started from Django's lifecycle.

Lifecycle:

- import and ``AppConfig.ready()``: nothing (no client, thread, network or settings read),
  so ``migrate``, ``shell`` and a pre-fork master stay inert;
- first ``request_started`` (when ``START_ON_REQUEST``) or first evaluation, whichever is
  first: :func:`get_client` builds the client from ``conf.get_options()`` and calls its
  non-blocking ``start()``; a forked worker's client restarts its own threads (the core's
  ``os.register_at_fork`` handling);
- ``setting_changed`` for ``FLAGKIT`` (``override_settings``, pytest-django's ``settings``):
  the cached options are cleared and the client is closed and discarded;
- process exit: an ``atexit`` hook (registered when the first client is created) closes it.

The client is the core's documented singleton: :meth:`flagkit.FlagKit.get_or_create` holds
it, so ``FlagKit.get_instance()`` and ``flagkit_django.get_client()`` return the same object.
If the project already called ``FlagKit.initialize(...)`` itself, that client is used.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import weakref
from typing import TYPE_CHECKING, Any

from flagkit.flagkit import FlagKit
from flagkit_django import conf
from flagkit_django.signals import client_error, client_ready, flags_updated, send_robustly

if TYPE_CHECKING:
    from flagkit.client import FlagKitClient
    from flagkit.types.flag import FlagState

__all__ = [
    "get_client",
    "on_request_started",
    "on_setting_changed",
    "peek_client",
    "reset_client",
]

logger = logging.getLogger("flagkit.django")


class _Wiring:
    """Which client the adapter has wired (signals, test overrides) and started.

    Bookkeeping only: the client itself is held by the ``FlagKit`` factory. A weak reference,
    so a client closed and dropped elsewhere is not kept alive.
    """

    lock = threading.Lock()
    ref: weakref.ReferenceType[FlagKitClient] | None = None
    started = False
    atexit_registered = False


def peek_client() -> FlagKitClient | None:
    """The current shared client, or None if none was created yet (never creates one)."""
    return FlagKit.get_instance()


def get_client(*, start: bool = True) -> FlagKitClient:
    """The process's shared :class:`~flagkit.FlagKitClient`, created on first use.

    >>> from flagkit_django import get_client
    >>> get_client().get_boolean_value("new-checkout", False)
    False

    Built from ``settings.FLAGKIT`` (``FlagKit.get_or_create``, under the factory's lock)
    and started with the non-blocking ``start()``: it never raises for network faults, and
    flags arrive in the background (``client.wait_for_ready(timeout)`` tells when).
    ``start=False`` returns it without starting it (the testing helpers use this).

    Raises ``ImproperlyConfigured`` (naming the key) when ``FLAGKIT`` is invalid.
    Thread-safe.
    """
    client = FlagKit.get_instance()
    if client is not None and _Wiring.started:
        ref = _Wiring.ref
        if ref is not None and ref() is client:
            return client
    if client is None:
        client = FlagKit.get_or_create(_build)
    must_start = False
    wire = False
    with _Wiring.lock:
        ref = _Wiring.ref
        if ref is None or ref() is not client:
            _Wiring.ref = weakref.ref(client)
            _Wiring.started = False
            wire = True
            register_atexit = not _Wiring.atexit_registered
            _Wiring.atexit_registered = True
        else:
            register_atexit = False
        if start and not _Wiring.started:
            _Wiring.started = must_start = True
    # Act outside the lock: listeners, overrides and start() may take the client's locks.
    if wire:
        _wire(client)
        if register_atexit:
            atexit.register(_close_at_exit)
    if must_start:
        client.start()
    return client


def _build() -> FlagKitClient:
    from flagkit.client import FlagKitClient

    options = conf.get_options()
    logger.debug("creating the shared FlagKit client for %s", options.resolved_base_url)
    return FlagKitClient(options)


def _wire(client: FlagKitClient) -> None:
    client.add_update_listener(lambda flags: _send_updated(client, flags))
    client.add_ready_listener(lambda: send_robustly(client_ready, sender=client))
    client.add_error_listener(lambda error: send_robustly(client_error, sender=client, error=error))
    # flagkit_django.testing is imported by tests only; production never pays for this.
    testing = sys.modules.get("flagkit_django.testing")
    if testing is not None:
        testing._apply_to(client)


def _send_updated(client: FlagKitClient, flags: list[FlagState]) -> None:
    send_robustly(flags_updated, sender=client, flags=flags)


def reset_client() -> None:
    """Close and discard the shared client (the next :func:`get_client` builds a new one).

    Called when ``FLAGKIT`` changes; tests call it to start from a clean slate. Idempotent.
    """
    with _Wiring.lock:
        _Wiring.ref = None
        _Wiring.started = False
    try:
        FlagKit.close()
    except Exception:  # a settings change or test teardown must not fail on close
        logger.exception("closing the FlagKit client failed")


def _close_at_exit() -> None:
    try:
        FlagKit.close()
    except Exception:
        logger.exception("closing the FlagKit client at exit failed")


def on_request_started(sender: object, **kwargs: Any) -> None:
    """``request_started`` receiver: start the shared client on the first request."""
    if _Wiring.started and FlagKit.get_instance() is not None:
        return
    if conf.get_adapter_settings().start_on_request:
        get_client()


def on_setting_changed(sender: object, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: forget options and the client when ``FLAGKIT`` changes."""
    if setting == conf.SETTING_NAME:
        conf.clear_cache()
        reset_client()
