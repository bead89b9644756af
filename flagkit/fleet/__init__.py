"""Fleet mode: many processes share one copy of the flags through Redis (docs/fleet.md).

An optional extra (``pip install 'flagkit[redis]'``): the client imports this package only
when ``redis_url`` is set, and no other module of the core imports it.

- :mod:`~flagkit.fleet.snapshot` — the signed, versioned snapshot written to Redis (pure).
- :mod:`~flagkit.fleet.redis_io` — the only module importing ``redis``: keys, the lease and
  fencing Lua scripts, the snapshot write, reads, pub/sub.
- :mod:`~flagkit.fleet.source` — :class:`FleetSource`, the data source of a client in a
  fleet: syncer (lease holder, talks to the FlagKit service and writes Redis), reader
  (reads Redis), or direct (Redis unreachable: today's connection).
"""

from __future__ import annotations

from flagkit.fleet.source import FleetSource

__all__ = ["FleetSource"]
