"""Framework-neutral helpers of the web adapters (``flagkit_django``, ``flagkit_flask``).

- :mod:`flagkit.web.request_flags`: memoised per-request lookups and the one rule for
  ``"!key"`` negation;
- :mod:`flagkit.web.context`: how a request and its user become an evaluation context;
- :mod:`flagkit.web.options`: the settings both adapters share and how they split from
  the core options;
- :mod:`flagkit.web.explain`: what the ``explain`` commands print;
- :mod:`flagkit.web.startup`: the bounded wait for the first flags on a worker's first
  request.

Nothing here imports Django or Flask, and nothing runs at import.
"""
