"""Stacked flag overrides: nested blocks merge, leaving one restores.

>>> stack = OverrideStack()
>>> outer, inner = {"a": 1, "b": 1}, {"b": 2}
>>> stack.push(outer); stack.push(inner)
>>> stack.merged()
{'a': 1, 'b': 2}
>>> stack.remove(inner); stack.merged()
{'a': 1, 'b': 1}

Each web adapter owns one stack per client it manages (Django: the process's shared
client; Flask: each app's client) and puts the merged layers on every client it creates,
so overrides entered before a client exists still reach it. The adapters' test helpers
(``override_flags``, the ``flagkit_flags`` fixtures) push and pop the layers through the
adapter; production code never imports the test helpers. Framework-neutral.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flagkit.client import FlagKitClient

__all__ = ["OverrideStack"]


class OverrideStack:
    """Active override layers, innermost last; the inner layer wins a key.

    Layers are dicts held by identity: a caller may change its layer in place and call
    :meth:`apply_to` again. Thread-safe (a lock guards the list; clients are called
    outside it).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._layers: list[dict[str, Any]] = []

    def push(self, layer: dict[str, Any]) -> None:
        """Add ``layer`` as the innermost one."""
        with self._lock:
            self._layers.append(layer)

    def remove(self, layer: dict[str, Any]) -> None:
        """Remove ``layer`` (by identity; the innermost occurrence), restoring the outer
        values exactly. Unknown layers are ignored."""
        with self._lock:
            for index in range(len(self._layers) - 1, -1, -1):
                if self._layers[index] is layer:
                    del self._layers[index]
                    break

    def merged(self) -> dict[str, Any]:
        """The layers merged into one dict (inner wins)."""
        with self._lock:
            layers = list(self._layers)
        merged: dict[str, Any] = {}
        for layer in layers:
            merged.update(layer)
        return merged

    def apply_to(self, client: FlagKitClient) -> None:
        """Make ``client``'s overrides exactly :meth:`merged` (removed keys go)."""
        merged = self.merged()
        # set_overrides() adds to what is there: start from a clean slate.
        client.clear_overrides()
        if merged:
            client.set_overrides(merged)

    def __len__(self) -> int:
        with self._lock:
            return len(self._layers)
