"""Core machinery, grouped by concern.

- :mod:`~flagkit.core.snapshot` and :mod:`~flagkit.core.store` — the flags the client holds;
- :mod:`~flagkit.core.updates` — the data source that loads and updates them;
- :mod:`~flagkit.core.evaluation` — the rules of one lookup;
- :mod:`~flagkit.core.targeting` / ``evaluator`` — flag models and targeting;
- :mod:`~flagkit.core.context_manager` — who a flag is evaluated for;
- the event queue — ``track()`` and delivery;
- :mod:`~flagkit.core.dispatcher` — user callbacks on their own thread;
- :mod:`~flagkit.core.fork` — the one fork hook.
"""
