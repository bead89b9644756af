"""The shared client of a Django process: created lazily, started from Django's lifecycle.

Lifecycle:

- import and ``AppConfig.ready()``: nothing (no client, thread, network or settings read),
  so ``migrate``, ``shell`` and a pre-fork master stay inert;
- first ``request_started`` (when ``START_ON_REQUEST``) or first evaluation, whichever is
  first: :func:`get_client` builds the client from ``conf.get_options()`` and calls its
  non-blocking ``start()``; a forked worker's client restarts its own threads (the core's
  ``os.register_at_fork`` handling). The first requests of the process then wait up to
  ``START_WAIT`` seconds (default 2) for the first flags (:mod:`flagkit.web.startup`);
- an invalid ``FLAGKIT`` at request time (a production server runs no system checks):
  the error is logged once at ERROR with its hint and the client is an offline one that
  serves defaults — a flag library never takes a site down;
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
import threading
import weakref
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured

from flagkit.flagkit import FlagKit
from flagkit.web.overrides import OverrideStack
from flagkit.web.startup import StartWait
from flagkit_django import conf
from flagkit_django.signals import client_error, client_ready, flags_updated, send_robustly

if TYPE_CHECKING:
    from flagkit.client import FlagKitClient
    from flagkit.types.flag import FlagState

__all__ = [
    "apply_overrides",
    "get_client",
    "on_request_started",
    "on_setting_changed",
    "overrides",
    "peek_client",
    "reset_client",
]

logger = logging.getLogger("flagkit.django")

#: Flag overrides of the process (pushed by :mod:`flagkit_django.testing`), put on every
#: shared client the adapter wires; empty in production.
overrides = OverrideStack()


class _Wiring:
    """Which client the adapter has wired (signals, test overrides) and started.

    Bookkeeping only: the client itself is held by the ``FlagKit`` factory. A weak reference,
    so a client closed and dropped elsewhere is not kept alive.
    """

    lock = threading.Lock()
    ref: weakref.ReferenceType[FlagKitClient] | None = None
    started = False
    atexit_registered = False
    #: The first requests' wait for the wired client's first flags.
    start_wait = StartWait(0.0)


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

    When ``FLAGKIT`` is invalid the error is logged once (with its hint) and the client is
    an offline one serving defaults. Thread-safe.
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
            _Wiring.start_wait = StartWait(conf.request_adapter_settings().start_wait)
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

    try:
        options = conf.get_options()
    except ImproperlyConfigured as exc:
        conf.report_configuration_error(exc)
        options = conf.fallback_options()
    logger.debug("creating the shared FlagKit client for %s", options.resolved_base_url)
    return FlagKitClient(options)


def _wire(client: FlagKitClient) -> None:
    client.add_update_listener(lambda flags: _send_updated(client, flags))
    client.add_ready_listener(lambda: send_robustly(client_ready, sender=client))
    client.add_error_listener(lambda error: send_robustly(client_error, sender=client, error=error))
    if len(overrides):
        overrides.apply_to(client)


def apply_overrides() -> None:
    """Put the merged :data:`overrides` on the shared client, creating it (unstarted) if
    there is none yet — the test helpers call this after pushing or popping a layer."""
    client = peek_client()
    overrides.apply_to(client if client is not None else get_client(start=False))


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
    """``request_started`` receiver: start the shared client on the first request and let
    the first requests wait up to ``START_WAIT`` seconds for its first flags. Never
    raises (an exception here would be a bare 500 outside Django's error handling)."""
    if _Wiring.started and _Wiring.start_wait.done and FlagKit.get_instance() is not None:
        return
    try:
        if conf.request_adapter_settings().start_on_request:
            client = get_client()
            _Wiring.start_wait.wait(client)
    except Exception:
        logger.exception("starting the FlagKit client failed; flags serve their defaults")


def on_setting_changed(sender: object, setting: str, **kwargs: Any) -> None:
    """``setting_changed`` receiver: forget options and the client when ``FLAGKIT`` changes."""
    if setting == conf.SETTING_NAME:
        conf.clear_cache()
        reset_client()
