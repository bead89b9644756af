"""Django signals bridging the shared client's callbacks.

Connect receivers as usual::

    from django.dispatch import receiver
    from flagkit_django.signals import flags_updated

    @receiver(flags_updated)
    def on_flags_updated(sender, flags, **kwargs):
        for state in flags:
            print(state.key, state.value)

**Thread:** all three are sent from the client's ``flagkit-dispatch`` thread, never from
a request thread and never while the client holds a lock. Keep receivers short; a
receiver that touches the database gets that thread's own connection (close it with
``django.db.close_old_connections()`` if you use one). Signals are sent with
``send_robust``: a raising receiver is logged (logger ``flagkit.django``, with traceback)
and neither stops other receivers nor affects flag values.

Sender and keyword arguments:

- ``flags_updated`` — sender: the :class:`~flagkit.FlagKitClient`; ``flags``: the list of
  changed :class:`~flagkit.types.flag.FlagState` (a deleted flag is reported as the last
  state the client held, as the core's update listeners report it).
- ``client_ready`` — sender: the client; no extra arguments. Sent once the first flag set
  is loaded (or at once in offline mode).
- ``client_error`` — sender: the client; ``error``: the ``Exception`` (a
  :class:`~flagkit.FlagKitError`) the client reported, e.g. a failed load or poll.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

__all__ = ["client_error", "client_ready", "flags_updated", "send_robustly"]

logger = logging.getLogger("flagkit.django")

flags_updated = Signal()
client_ready = Signal()
client_error = Signal()


def send_robustly(signal: Signal, sender: object, **kwargs: Any) -> None:
    """Send ``signal`` with ``send_robust`` and log every receiver that raised.

    Never raises. Thread-safe (Django signals are).
    """
    for receiver, result in signal.send_robust(sender, **kwargs):
        if isinstance(result, Exception):
            name = getattr(receiver, "__qualname__", repr(receiver))
            logger.error(
                "flagkit signal receiver %s raised %s",
                name,
                type(result).__name__,
                exc_info=(type(result), result, result.__traceback__),
            )
