"""Flag overrides for one test, the object the adapters' ``flagkit_flags`` fixtures yield.

>>> flagkit_flags.set({"new-checkout": True})      # doctest: +SKIP

The web adapters' ``override_flags`` helpers and ``flagkit_flags`` fixtures push their
layers onto the adapter's :class:`~flagkit.web.overrides.OverrideStack` (re-exported
here), which puts the merged result on the client with the client's overrides API (they
win over everything, reason ``OVERRIDE``, no network). :class:`FlagOverrides` is the
fixture object both adapters subclass. Cheap to import (no client, server or framework is
loaded).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from flagkit.web.overrides import OverrideStack

_O = TypeVar("_O", bound="FlagOverrides")

__all__ = ["FlagOverrides", "OverrideStack", "checked_flags"]


def checked_flags(mapping: object) -> dict[str, Any]:
    """A copy of ``mapping`` (flag key -> forced value) after checking it.

    Raises ``TypeError`` for a non-mapping or a key that is not a non-empty string.
    """
    if not isinstance(mapping, Mapping):
        raise TypeError(f"override_flags takes a mapping of flag key -> value, got {mapping!r}")
    for key in mapping:
        if not isinstance(key, str) or not key:
            raise TypeError(f"flag keys must be non-empty strings, got {key!r}")
    return dict(mapping)


class FlagOverrides:
    """Overrides for one test, changed as it goes; removed by :meth:`close`.

    >>> flagkit_flags.set({"new-checkout": True})      # doctest: +SKIP
    >>> flagkit_flags["banner-text"] = "Sale"          # doctest: +SKIP
    >>> flagkit_flags.clear()                          # doctest: +SKIP

    The object the adapters' ``flagkit_flags`` fixtures yield; also a context manager.
    Subclasses say where the layer goes (:meth:`_push`, :meth:`_pop`) and how a changed
    layer reaches the client (:meth:`_refresh_client`). Not thread-safe (use it from the
    test).
    """

    def __init__(self) -> None:
        self._layer: dict[str, Any] = {}
        self._active = False

    def set(self, flags: Mapping[str, Any] | None = None, /, **by_name: Any) -> None:
        """Add or change overrides (``**by_name`` for keys that are valid identifiers)."""
        self._layer.update(checked_flags({**(flags or {}), **by_name}))
        self._refresh()

    def __setitem__(self, key: str, value: Any) -> None:
        self.set({key: value})

    def __delitem__(self, key: str) -> None:
        del self._layer[key]
        self._refresh()

    def clear(self) -> None:
        """Remove every override set through this object."""
        self._layer.clear()
        self._refresh()

    def close(self) -> None:
        """Remove the overrides (the fixture calls this at teardown). Idempotent."""
        if self._active:
            self._pop(self._layer)
            self._active = False

    def __enter__(self: _O) -> _O:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _refresh(self) -> None:
        if self._active:
            self._refresh_client()  # the layer changed in place
        else:
            self._push(self._layer)
            self._active = True

    # -- where the layer lives (subclasses) ------------------------------------------------

    def _push(self, layer: dict[str, Any]) -> None:
        """Add ``layer`` to the active overrides and apply them."""
        raise NotImplementedError

    def _pop(self, layer: dict[str, Any]) -> None:
        """Remove ``layer`` from the active overrides and apply them."""
        raise NotImplementedError

    def _refresh_client(self) -> None:
        """Apply the active overrides again after the layer changed in place."""
        raise NotImplementedError
