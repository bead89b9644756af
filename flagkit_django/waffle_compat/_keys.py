"""How a django-waffle name becomes a FlagKit flag key: the one rule both the importer and
the compatibility functions use, so a call site finds the flag the import wrote."""

from __future__ import annotations

import hashlib
import re
from typing import Final

from flagkit.utils.validators import MAX_FLAG_KEY_LENGTH, is_valid_flag_key

__all__ = ["waffle_key"]

_INVALID: Final = re.compile(r"[^A-Za-z0-9_-]+")


def waffle_key(name: str) -> str:
    """The FlagKit key for waffle name ``name``.

    >>> waffle_key("new-checkout"), waffle_key("Feature.A"), waffle_key("spring sale!")
    ('new-checkout', 'Feature-A', 'spring-sale')

    A valid FlagKit key (letters, digits, ``_``, ``-``; at most 256 characters) is kept
    as it is; otherwise each run of other characters becomes ``-`` and leading or trailing
    ``-`` are dropped. A name with no usable character maps to ``waffle-<hash>``.
    """
    if is_valid_flag_key(name):
        return name
    key = _INVALID.sub("-", name).strip("-")[:MAX_FLAG_KEY_LENGTH]
    if not key:
        key = "waffle-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]
    return key
