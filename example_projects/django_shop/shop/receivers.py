"""Signal receivers: log every flag change the FlagKit client receives.

``flags_updated`` is sent from the client's ``flagkit-dispatch`` thread when the server
streams a change (edit ``flags.json`` or run ``flagkit flags set ...`` while the demo runs).
The last changes are also kept in memory for the staff tools page.
"""

from __future__ import annotations

import collections
import logging
import threading
from datetime import datetime, timezone
from typing import Any

from flagkit import FlagState
from flagkit_django.signals import client_ready, flags_updated

logger = logging.getLogger("shop.flags")

_lock = threading.Lock()
_recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=20)


def on_flags_updated(sender: object, flags: list[FlagState], **kwargs: Any) -> None:
    """Log each changed flag (key, value, enabled, version) and remember it."""
    now = datetime.now(timezone.utc)
    for state in flags:
        logger.info(
            "flag changed: %s = %r (enabled=%s, version %s)",
            state.key,
            state.value,
            state.enabled,
            state.version,
        )
        with _lock:
            _recent.appendleft(
                {
                    "key": state.key,
                    "value": state.value,
                    "enabled": state.enabled,
                    "version": state.version,
                    "at": now,
                }
            )


def on_client_ready(sender: object, **kwargs: Any) -> None:
    """Log once the first flag set is loaded."""
    logger.info("FlagKit client ready")


def recent_changes() -> list[dict[str, Any]]:
    """The last flag changes this process saw, newest first (thread-safe copy)."""
    with _lock:
        return list(_recent)


def connect() -> None:
    """Connect the receivers (idempotent: ``dispatch_uid``)."""
    flags_updated.connect(on_flags_updated, dispatch_uid="shop.flags_updated")
    client_ready.connect(on_client_ready, dispatch_uid="shop.client_ready")
