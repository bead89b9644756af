"""Blinker signals sent by ``flagkit_flask``, one set shared by every app.

Connect a receiver for one app (the sender is always the real Flask app, never the
``current_app`` proxy)::

    from flagkit_flask.signals import flags_updated

    @flags_updated.connect_via(app)
    def on_flags_updated(sender, flags, **extra):
        for state in flags:
            app.logger.info("flag %s is now %r", state.key, state.value)

Signals and their keyword arguments:

- ``flags_updated`` — ``flags``: the list of changed :class:`~flagkit.FlagState` (added or
  updated flags; empty when only deletions or segments changed). Sent after each update
  (streaming event or poll) that changed something.
- ``client_ready`` — no arguments. Sent once the app's client has loaded its flags (at once
  in offline mode).
- ``client_error`` — ``error``: the ``Exception`` (a :class:`~flagkit.FlagKitError`) the
  client reported: a failed load or poll (the first of a failing streak), a rejected API
  key, an event batch that could not be delivered.

**Thread:** receivers run on the client's ``flagkit-dispatch`` thread — never on a request
thread, never while the client holds a lock, and with **no application context pushed**
(use ``with sender.app_context():`` if a receiver needs one). A receiver that raises is
logged (logger ``flagkit.flask``, with traceback) and neither stops the other receivers
nor affects flag values. Keep receivers short: the next callback waits for them.
"""

from __future__ import annotations

import logging
from typing import Any

from blinker import Namespace, Signal

__all__ = ["client_error", "client_ready", "flags_updated", "send_robustly"]

logger = logging.getLogger("flagkit.flask")

_signals = Namespace()

flags_updated = _signals.signal("flagkit-flags-updated")
client_ready = _signals.signal("flagkit-client-ready")
client_error = _signals.signal("flagkit-client-error")


def send_robustly(signal: Signal, sender: object, **kwargs: Any) -> None:
    """Call every receiver of ``signal`` for ``sender``; log (don't raise) any failure.

    Never raises. Thread-safe (blinker's receiver registry is).
    """
    if not signal.receivers:
        return
    for receiver in signal.receivers_for(sender):
        try:
            receiver(sender, **kwargs)
        except Exception:
            logger.exception(
                "flagkit_flask %s receiver %s raised",
                getattr(signal, "name", "signal"),
                getattr(receiver, "__qualname__", repr(receiver)),
            )
