"""A flag's ``metadata`` field: free-form facts about the flag (docs/targeting.md).

OpenFeature calls them flag metadata (the provider in ``flagkit.openfeature`` reports them);
the local server checks them when it loads a flags file, through ``check_document``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from flagkit.core.targeting.model import TargetingError, describe

__all__ = ["check_metadata"]


def check_metadata(raw: object, path: str) -> None:
    """A flag's ``metadata``: None, or an object of strings, finite numbers and booleans
    (OpenFeature's flag metadata); raise :class:`TargetingError` naming the field."""
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        raise TargetingError(path, f"must be an object, got {describe(raw)}")
    for name, value in raw.items():
        where = f"{path}.{name}"
        if isinstance(value, float) and not math.isfinite(value):
            raise TargetingError(where, f"must be a finite number, got {value!r}")
        if not isinstance(value, (str, bool, int, float)):
            raise TargetingError(
                where, f"must be a string, a number or a boolean, got {describe(value)}"
            )
