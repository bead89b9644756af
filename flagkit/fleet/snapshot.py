"""The fleet snapshot: what a syncer writes to Redis and readers load (docs/fleet.md).

One JSON document holds every flag and segment, so a reader sees one complete version or
the previous one, never half of a change. It carries its version — the fencing token of
the syncer that wrote it and that syncer's sequence number — and, when a signing key is
configured, an HMAC-SHA256 over its canonical JSON (the scheme of docs/protocol.md §20.3),
so a client holding the key refuses snapshots written by anyone without it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from flagkit.utils.signing import canonical_json, hmac_sha256_hex, signature_matches

__all__ = ["FORMAT_VERSION", "FleetSnapshot", "SnapshotRejected", "decode", "encode"]

FORMAT_VERSION: Final = 1


class SnapshotRejected(ValueError):
    """A snapshot that must not be applied (malformed, unsigned or badly signed)."""


@dataclass(frozen=True)
class FleetSnapshot:
    """A decoded snapshot. ``version`` orders snapshots: (fencing token, sequence)."""

    token: int
    seq: int
    flags: list[dict[str, Any]]
    segments: list[dict[str, Any]] = field(default_factory=list)
    environment_id: str = ""
    written_at: float = 0.0

    @property
    def version(self) -> tuple[int, int]:
        """(token, seq): a newer syncer always wins; one syncer's writes are ordered."""
        return (self.token, self.seq)


def encode(snapshot: FleetSnapshot, signing_key: str | None) -> str:
    """The JSON text written to Redis, signed when ``signing_key`` is set."""
    body: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "token": snapshot.token,
        "seq": snapshot.seq,
        "environmentId": snapshot.environment_id,
        "writtenAt": int((snapshot.written_at or time.time()) * 1000),
        "flags": snapshot.flags,
        "segments": snapshot.segments,
    }
    text = canonical_json(body)
    if signing_key is None:
        return text
    signature = hmac_sha256_hex(signing_key, text)
    return canonical_json({"signed": text, "signature": signature})


def decode(text: str | bytes, signing_key: str | None) -> FleetSnapshot:
    """Parse and (with ``signing_key``) verify a snapshot; raises :class:`SnapshotRejected`.

    With a key, only a signed snapshot whose HMAC matches is accepted. Without one, a signed
    snapshot is read without checking (the key is what makes a check meaningful).
    """
    try:
        outer = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise SnapshotRejected(f"not JSON: {exc}") from None
    if not isinstance(outer, dict):
        raise SnapshotRejected("not a JSON object")
    signed = outer.get("signed")
    if isinstance(signed, str):
        if signing_key is not None:
            given = outer.get("signature")
            expected = hmac_sha256_hex(signing_key, signed)
            if not isinstance(given, str) or not signature_matches(expected, given):
                raise SnapshotRejected("its signature does not match redis_signing_key")
        try:
            body = json.loads(signed)
        except ValueError as exc:
            raise SnapshotRejected(f"signed body is not JSON: {exc}") from None
    elif signing_key is not None:
        raise SnapshotRejected("it is not signed and redis_signing_key is set")
    else:
        body = outer
    return _from_body(body)


def _from_body(body: object) -> FleetSnapshot:
    if not isinstance(body, Mapping) or body.get("format") != FORMAT_VERSION:
        raise SnapshotRejected(f"unknown format (expected format {FORMAT_VERSION})")
    token, seq = body.get("token"), body.get("seq")
    flags, segments = body.get("flags"), body.get("segments", [])
    if not (_is_int(token) and _is_int(seq)):
        raise SnapshotRejected("token and seq must be integers")
    if not isinstance(flags, list) or not isinstance(segments, list):
        raise SnapshotRejected("flags and segments must be arrays")
    environment_id = body.get("environmentId")
    written = body.get("writtenAt")
    return FleetSnapshot(
        token=int(token),  # type: ignore[arg-type]
        seq=int(seq),  # type: ignore[arg-type]
        flags=flags,
        segments=segments,
        environment_id=environment_id if isinstance(environment_id, str) else "",
        written_at=written / 1000.0 if isinstance(written, int) else 0.0,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
