"""Deterministic percentage bucketing for rollouts: the one place it is defined.

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

The interpreter calls :func:`bucket` and :func:`select_index`. The compiler inlines the
same computation into generated code from :data:`DIGEST_STATEMENTS` and compares the
digest with :func:`digest_threshold` instead of computing the bucket (the comparison is
exact; see that function).

>>> bucket(bucket_prefix("new-checkout", ""), "user-1")
43670
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

from flagkit.types.context import EvaluationContext

__all__ = [
    "BUCKET_SCALE",
    "DIGEST_NAMESPACE",
    "DIGEST_STATEMENTS",
    "bucket",
    "bucket_prefix",
    "bucketing_string",
    "bucketing_value",
    "digest_threshold",
    "select_index",
]

BUCKET_SCALE: Final = 100_000
"""Number of buckets; rollout weights are integers in these units and sum to it."""


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def bucket_prefix(flag_key: str, salt: str) -> bytes:
    """The constant start of every message hashed for one flag: key NUL salt NUL.

    >>> bucket_prefix("f", "s") + "u".encode()
    b'f\\x00s\\x00u'
    """
    return _utf8(flag_key) + b"\x00" + _utf8(salt) + b"\x00"


def bucket(prefix: bytes, value: str) -> int:
    """The bucket (``0 <= b < 100000``) of ``value`` for the flag whose
    :func:`bucket_prefix` is ``prefix``. Pure and thread-safe."""
    digest = hashlib.sha256(prefix + _utf8(value)).digest()
    return (int.from_bytes(digest[:8], "big") * BUCKET_SCALE) >> 64


DIGEST_STATEMENTS: Final = (
    "try:",
    "    {digest} = _sha256({prefix} + {value}.encode()).digest()",
    "except UnicodeEncodeError:",
    "    {digest} = _sha256({prefix} + {value}.encode('utf-8', 'surrogatepass')).digest()",
)
"""Generated-code template binding ``{digest}`` to the SHA-256 digest of the message for
the string ``{value}`` (``{prefix}`` names the flag's :func:`bucket_prefix`). Plain
``encode()`` is UTF-8 and is faster; it fails only on a lone surrogate, which then takes
the documented ``surrogatepass`` form. Needs :data:`DIGEST_NAMESPACE`."""

DIGEST_NAMESPACE: Final = {"_sha256": hashlib.sha256}
"""The names :data:`DIGEST_STATEMENTS` uses."""


def digest_threshold(bound: int) -> bytes:
    """Eight bytes ``t`` such that ``digest < t`` exactly when the digest's bucket is
    below ``bound`` (``0 < bound < 100000``).

    With ``x`` the first eight digest bytes as an integer, ``bucket < bound`` holds iff
    ``x * 100000 < bound * 2**64`` iff ``x < ceil(bound * 2**64 / 100000)``. Comparing the
    32-byte digest with that integer's eight big-endian bytes compares ``x`` with it
    (bytes compare element-wise, and a digest equal in its first eight bytes is longer,
    so not smaller). This spares generated code the slice, the integer conversion and the
    multiplication.
    """
    if not 0 < bound < BUCKET_SCALE:
        raise ValueError(f"bound must be between 1 and {BUCKET_SCALE - 1}, got {bound}")
    return (-((-bound << 64) // BUCKET_SCALE)).to_bytes(8, "big")


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


def bucketing_string(value: object) -> str | None:
    """The string hashed for an attribute value: a ``str`` as is, an ``int`` (not a bool)
    in decimal; ``None`` for anything else (the value cannot be bucketed)."""
    if isinstance(value, str):
        return str(value) if value.__class__ is not str else value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(int(value))
    return None


def bucketing_value(ctx: EvaluationContext, preferred: object) -> str | None:
    """The string a rollout hashes for ``ctx``: ``preferred`` (the rollout's ``bucketBy``
    attribute value, None without one) when it is a string or an integer, else the user
    id, else the user key; None when there is none of them (it cannot be bucketed)."""
    for candidate in (preferred, ctx.user_id, ctx.user_key):
        found = bucketing_string(candidate)
        if found is not None:
            return found
    return None
