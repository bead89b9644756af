"""The event pipeline, by concern.

- :mod:`~flagkit.core.events.queue`: :class:`EventQueue`, the façade the client uses
  (``track``, ``flush``, ``close``, ``stats``, ``start``, ``set_environment_id``,
  ``after_fork``).
- :mod:`~flagkit.core.events.validation`: the cheap checks ``track()`` makes.
- :mod:`~flagkit.core.events.wire`: the wire event (ids, timestamps, context).
- :mod:`~flagkit.core.events.worker`: the events thread, one loop over typed messages
  (:mod:`~flagkit.core.events.messages`: the messages, the send thread, send outcomes).
- :mod:`~flagkit.core.events.log`: the crash-resilient JSON-lines event log;
  :mod:`~flagkit.core.events.records`: its lines, written and read back.
- :mod:`~flagkit.core.events.counters`: the shared counters behind ``stats``.

See ``docs/events.md``.
"""

from __future__ import annotations

from flagkit.core.events.queue import EventQueue, Sender

__all__ = ["EventQueue", "Sender"]
