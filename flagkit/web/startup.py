"""The bounded wait for a worker's first flags: Django ``START_WAIT``, Flask
``FLAGKIT_START_WAIT``.

A web worker creates its client on its first request, and the client loads the flags in
the background; without a wait that request (and a few after it) would serve defaults —
a feature flickers off on every deploy. :class:`StartWait` makes the first requests of a
process wait up to ``seconds`` for the first load:

- with a reachable server they get the real flags (the wait ends as soon as they load);
- with a dead or slow server only the requests that arrive within the first ``seconds``
  wait, never longer than until that one deadline; later requests never wait;
- when the client already holds flags (a persisted last-known cache, bootstrap values) or
  is ready (offline mode), nobody waits;
- ``seconds == 0`` turns it off.

>>> wait = StartWait(2.0)
>>> wait.wait(client)            # doctest: +SKIP  (blocks up to 2 s, once per process)

Framework-neutral; thread-safe (a race between two first requests only lets both wait up
to the same deadline).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from flagkit.client import FlagKitClient

__all__ = ["DEFAULT_START_WAIT", "StartWait"]

logger = logging.getLogger("flagkit.web")

#: Seconds a worker's first request waits for the first flags by default.
DEFAULT_START_WAIT: Final = 2.0


class StartWait:
    """Up to ``seconds`` of waiting for a client's first load, shared by the requests that
    arrive before the deadline set by the first of them. One per client."""

    __slots__ = ("_deadline", "done", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        #: True once the wait is over for good (the hot path reads only this).
        self.done = seconds <= 0
        self._deadline: float | None = None

    def wait(self, client: FlagKitClient) -> None:
        """Wait (at most until the shared deadline) for ``client``'s first flags. Never
        raises for a client problem: a lookup then serves defaults as it would anyway."""
        if self.done:
            return
        deadline = self._deadline
        if deadline is None:
            deadline = self._deadline = time.monotonic() + self.seconds
        try:
            if not client.is_ready() and not client.get_all_flag_keys():
                left = deadline - time.monotonic()
                if left > 0 and not client.wait_for_ready(left):
                    logger.warning(
                        "FlagKit flags not loaded within the %gs start wait; serving defaults "
                        "until they arrive",
                        self.seconds,
                    )
        except Exception:  # a flag library never fails a request
            logger.exception("waiting for the first FlagKit flags failed")
        self.done = True
