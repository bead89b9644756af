"""The messages of the event pipeline, and what a send failure means.

Callers reach the events thread only through its inbox: the event tuples ``track()``
queues, :class:`FlushRequest` (``flush()``, or ``close()`` with ``final``) and
:class:`Abort`. :class:`SendThread` calls the sender and hands back each outcome, which
:func:`classify` sorts.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from queue import SimpleQueue
from typing import Any, Final

from flagkit.core.events.wire import Incoming
from flagkit.errors import AuthenticationError, FlagKitError
from flagkit.types.events import FlushResult

__all__ = ["Abort", "FlushRequest", "Message", "SendThread", "Sender", "classify"]

Sender = Callable[[list[dict[str, Any]]], object]  # the return value is ignored

#: Client errors that say "this request will never succeed as it is".
_PERMANENT_STATUSES: Final = frozenset({400, 403, 405, 410, 411, 413, 414, 415, 422})


class FlushRequest:
    """A ``flush()``/``close()`` waiting for the events queued before it."""

    __slots__ = ("attempted", "done", "dropped_base", "final", "result", "sent_base", "target")

    def __init__(self, *, final: bool = False) -> None:
        self.final = final
        self.done = threading.Event()
        self.result: FlushResult | None = None
        self.target = 0  # the last event it waits for (set by the worker)
        self.sent_base = 0
        self.dropped_base = 0
        self.attempted = False


class Abort:
    """``close()`` timed out: stop without sending more."""

    __slots__ = ()


Message = Incoming | FlushRequest | Abort


def classify(error: BaseException) -> str:
    """What a send failure means for its batch.

    - ``"key"``: the API key was rejected (an ``AuthenticationError`` other than a rate
      limit: a 401 or 403, or the HTTP layer refusing to send with a key it saw rejected):
      stop sending for good.
    - ``"batch"``: a permanent client error for this request (400, a refused signature,
      413, ...): drop the batch.
    - ``"retry"``: anything else (5xx, 408, 429, network, a sender bug).
    """
    status = error.status_code if isinstance(error, FlagKitError) else None
    if isinstance(error, AuthenticationError):
        rate_limited = status == 429 or error.code == "AUTH_RATE_LIMITED"
        details = error.details or {}
        signature = details.get("server_error") == "SECURITY_SIGNATURE_INVALID"
        if not rate_limited and not signature:
            return "key"
    if status in _PERMANENT_STATUSES:
        return "batch"
    return "retry"


class SendThread:
    """The ``flagkit-events-send`` thread: calls ``sender`` for each submitted batch and
    appends the outcome (``None`` or the exception) to ``outcomes``, then sets ``wake``.
    Started on the first batch, so a queue that never sends never starts it."""

    def __init__(self, sender: Sender, wake: threading.Event) -> None:
        self._sender = sender
        self._wake = wake
        self._jobs: SimpleQueue[list[dict[str, Any]] | None] = SimpleQueue()
        self.outcomes: deque[BaseException | None] = deque()
        self.thread: threading.Thread | None = None

    def submit(self, batch: list[dict[str, Any]]) -> None:
        if self.thread is None:
            self.thread = threading.Thread(
                target=self._run, name="flagkit-events-send", daemon=True
            )
            self.thread.start()
        self._jobs.put(batch)

    def stop(self) -> None:
        """Ask the thread to exit after its current POST."""
        self._jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            outcome: BaseException | None = None
            try:
                self._sender(job)
            except BaseException as exc:  # handed to the events thread, which decides
                outcome = exc
            self.outcomes.append(outcome)
            self._wake.set()
            if outcome is not None and not isinstance(outcome, Exception):
                raise outcome  # KeyboardInterrupt, SystemExit: not ours to swallow
