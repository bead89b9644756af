"""docs/protocol.md §18 vectors for canonical JSON and HMAC signatures (flagkit.utils.signing)."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from flagkit.utils.signing import (
    canonical_json,
    hmac_sha256_hex,
    key_id,
    sign_body,
    signature_matches,
)
from tests.support.signing_vector import VECTOR_BODY, VECTOR_CANONICAL, VECTOR_SIGNATURE, VECTOR_TS

API_KEY = "sdk_test_key_123456"

BOOTSTRAP_FLAGS = {
    "feature-b": "value",
    "feature-a": True,
    "limits": {"max": 10, "ratio": 0.5},
    "list": [3, 1, 2],
}
BOOTSTRAP_CANONICAL = (
    '{"feature-a":true,"feature-b":"value","limits":{"max":10,"ratio":0.5},"list":[3,1,2]}'
)
BOOTSTRAP_SIG_WITH_TS = "605f0fbefe9bd7963a806d62f1ec74e3c2db7783302b04576157edccfd7973c0"
BOOTSTRAP_SIG_NO_TS = "76bd435a0d25cbd84323a362a527470c4c8df2496e0a897e47fa7ea30738bac1"


def test_event_batch_canonical_form_matches_vector() -> None:
    """The §18 event body canonicalises to sorted, compact, ASCII-escaped JSON."""
    assert canonical_json(VECTOR_BODY) == VECTOR_CANONICAL


def test_event_batch_signature_matches_vector() -> None:
    """Signing the §18 body at the §18 timestamp gives the published X-Signature."""
    assert sign_body(canonical_json(VECTOR_BODY), API_KEY, VECTOR_TS) == VECTOR_SIGNATURE


def test_signature_is_hmac_over_timestamp_dot_payload() -> None:
    """sign_body is HMAC-SHA256(key, "{ts}.{payload}") in lowercase hex, 64 characters."""
    expected = hmac.new(
        API_KEY.encode(), f"{VECTOR_TS}.{VECTOR_CANONICAL}".encode(), hashlib.sha256
    ).hexdigest()
    signature = sign_body(VECTOR_CANONICAL, API_KEY, VECTOR_TS)
    assert signature == expected
    assert len(signature) == 64 and signature == signature.lower()


def test_key_id_is_first_eight_characters() -> None:
    """The key id sent as X-Key-Id is the key's first 8 characters (§18: sdk_test)."""
    assert key_id(API_KEY) == "sdk_test"
    assert key_id("short") == "short"


def test_number_formatting_vector() -> None:
    """Floats keep Python's repr (42.0, 1e+20, 1e-07) and only non-ASCII is escaped."""
    assert (
        canonical_json({"x": 42.0, "y": 1e20, "z": 1e-7, "u": "é<&>"})
        == '{"u":"\\u00e9<&>","x":42.0,"y":1e+20,"z":1e-07}'
    )


def test_astral_characters_become_surrogate_pairs() -> None:
    """Characters above U+FFFF are escaped as a lowercase UTF-16 surrogate pair."""
    assert canonical_json({"e": "😀"}) == '{"e":"\\ud83d\\ude00"}'


def test_canonical_json_rejects_non_finite_numbers() -> None:
    """NaN and Infinity have no JSON form, so canonicalisation refuses them."""
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})
    with pytest.raises(ValueError):
        canonical_json({"x": float("inf")})


def test_canonical_json_round_trips() -> None:
    """The canonical text parses back to the original object (lists keep their order)."""
    assert json.loads(canonical_json(BOOTSTRAP_FLAGS)) == BOOTSTRAP_FLAGS


def test_bootstrap_canonical_and_signatures_match_vectors() -> None:
    """The §18 bootstrap flags give the published canonical form and both signatures."""
    canonical = canonical_json(BOOTSTRAP_FLAGS)
    assert canonical == BOOTSTRAP_CANONICAL
    assert hmac_sha256_hex(API_KEY, f"{VECTOR_TS}.{canonical}") == BOOTSTRAP_SIG_WITH_TS
    assert hmac_sha256_hex(API_KEY, canonical) == BOOTSTRAP_SIG_NO_TS


def test_signature_matches_compares_exactly() -> None:
    """Only the identical signature matches: case, length and one flipped digit all fail."""
    assert signature_matches(VECTOR_SIGNATURE, VECTOR_SIGNATURE)
    assert not signature_matches(VECTOR_SIGNATURE, VECTOR_SIGNATURE.upper())
    assert not signature_matches(VECTOR_SIGNATURE, VECTOR_SIGNATURE[:-1])
    flipped = VECTOR_SIGNATURE[:-1] + ("0" if VECTOR_SIGNATURE[-1] != "0" else "1")
    assert not signature_matches(VECTOR_SIGNATURE, flipped)
    assert not signature_matches(VECTOR_SIGNATURE, "é" * 64)
