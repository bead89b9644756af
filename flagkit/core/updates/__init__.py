"""Keeping the flag store current: the data source and its transports.

- :mod:`~flagkit.core.updates.source` — :class:`DataSource`, the first-load/retry state
  machine, the cursor, and the switch between streaming and polling; it writes the store
  itself and tells its owner ``ready`` / ``failed`` / ``changed`` through
  :class:`SourceListener`.
- :mod:`~flagkit.core.updates.wire` — ``/sdk/init``, ``/sdk/updates`` and stream payloads
  parsed into store changes (pure functions).
- :mod:`~flagkit.core.updates.polling` — the ``flagkit-poller`` loop with backoff.
- :mod:`~flagkit.core.updates.streaming` — the SSE connection (``flagkit-stream``).

This package imports nothing eagerly, so :mod:`flagkit.core.store` can use the wire
parsers without importing the data source.
"""
