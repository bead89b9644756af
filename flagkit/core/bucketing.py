"""Deterministic percentage bucketing for rollouts (see ``docs/targeting.md``).

A bucket is a whole number in ``[0, 100000)`` (weights are in 1/100000 units, so one unit
is 0.001 %). It is derived from SHA-256 over one byte string::

    message = utf8(flag_key) + b"\\x00" + utf8(salt) + b"\\x00" + utf8(value)
    digest  = sha256(message)
    bucket  = (int.from_bytes(digest[:8], "big") * 100000) >> 64

UTF-8 uses ``surrogatepass`` so every Python ``str`` encodes (a lone surrogate becomes its
three-byte form). Nothing else goes in: no other flag, rule, variation or weight, so a
user's bucket for a flag depends only on that flag's key and salt and the bucketing value.
Integer arithmetic throughout, so the result is identical on every platform and Python
version. Variations own consecutive ranges of buckets in their listed order (cumulative
weights), which is why raising a rollout from 20 % to 30 % keeps everyone who had it.

>>> bucket("new-checkout", "", "user-1")
43670
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Final

__all__ = [
    "BUCKET_SCALE",
    "bucket",
    "bucket_message",
    "bucket_prefix",
    "bucketing_string",
    "make_bucketer",
    "select_index",
]

BUCKET_SCALE: Final = 100_000
"""Number of buckets; rollout weights are integers in these units and sum to it."""

_SHA256: Final = hashlib.sha256
_FROM_BYTES: Final = int.from_bytes


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def bucket_message(flag_key: str, salt: str, value: str) -> bytes:
    """The exact bytes hashed for ``(flag_key, salt, value)``.

    >>> bucket_message("f", "s", "u")
    b'f\\x00s\\x00u'
    """
    return _utf8(flag_key) + b"\x00" + _utf8(salt) + b"\x00" + _utf8(value)


def bucket_prefix(flag_key: str, salt: str) -> bytes:
    """The constant start of every message hashed for one flag: key NUL salt NUL."""
    return _utf8(flag_key) + b"\x00" + _utf8(salt) + b"\x00"


def bucket(flag_key: str, salt: str, value: str) -> int:
    """The bucket (``0 <= b < 100000``) of ``value`` for a flag with this key and salt.

    Pure and thread-safe.
    """
    digest = _SHA256(bucket_message(flag_key, salt, value)).digest()
    return (_FROM_BYTES(digest[:8], "big") * BUCKET_SCALE) >> 64


def make_bucketer(flag_key: str, salt: str) -> Callable[[str], int]:
    """A function ``value -> bucket`` for one flag, with the constant prefix precomputed.

    ``make_bucketer(k, s)(v) == bucket(k, s, v)`` for every ``v``. Thread-safe.
    """
    prefix = bucket_prefix(flag_key, salt)
    sha256 = _SHA256
    from_bytes = _FROM_BYTES

    def bucketer(value: str) -> int:
        try:
            data = prefix + value.encode()
        except UnicodeEncodeError:  # a lone surrogate: encode it the documented way
            data = prefix + _utf8(value)
        return (from_bytes(sha256(data).digest()[:8], "big") * BUCKET_SCALE) >> 64

    return bucketer


def bucketing_string(value: object) -> str | None:
    """The string hashed for an attribute value: a ``str`` as is, an ``int`` (not a bool)
    in decimal; ``None`` for anything else (the value cannot be bucketed)."""
    if isinstance(value, str):
        return str(value) if value.__class__ is not str else value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    return None


def select_index(bucket_value: int, weights: Sequence[int]) -> int:
    """Index of the variation owning ``bucket_value`` given weights in variation order.

    Variation ``i`` owns buckets ``[sum(weights[:i]), sum(weights[:i + 1]))``.

    >>> select_index(29999, [30000, 70000]), select_index(30000, [30000, 70000])
    (0, 1)
    """
    upper = 0
    for index, weight in enumerate(weights):
        upper += weight
        if bucket_value < upper:
            return index
    return len(weights) - 1
