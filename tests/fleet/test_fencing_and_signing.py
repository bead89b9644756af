"""The lease, the fenced write and snapshot signatures, against the real redis-server."""

from __future__ import annotations

import json
import logging

import pytest

from flagkit import FlagKitClient
from flagkit.fleet.redis_io import RedisFleet
from flagkit.fleet.snapshot import FleetSnapshot, SnapshotRejected, decode, encode
from flagkit.testing import FlagKitServer
from tests.fleet.conftest import API_KEY
from tests.support import wait_until

KEY = "fleet-signing-key-0123456789"
_log = logging.getLogger("tests.fleet")


def _fleet(url: str, prefix: str) -> RedisFleet:
    return RedisFleet(url, prefix, timeout=2.0, logger=_log)


def _doc(token: int, seq: int, value: str, key: str | None = None) -> str:
    flags = [{"key": "probe", "value": value, "type": "string", "enabled": True, "version": 1}]
    return encode(FleetSnapshot(token=token, seq=seq, flags=flags), key)


def test_only_the_lease_holder_writes_and_an_expired_holder_is_fenced(
    redis_url: str, prefix: str
) -> None:
    old, new = _fleet(redis_url, prefix), _fleet(redis_url, prefix)
    taken = old.acquire(150)
    assert taken is not None
    token, value = taken
    assert new.acquire(150) is None  # held
    assert old.write(value, token, _doc(token, 1, "old"), f"{token}:1") == 1

    wait_until(lambda: old.lease_holder() is None, timeout=5, message="lease expiry")
    retaken = new.acquire(10_000)
    assert retaken is not None and retaken[0] > token  # fencing tokens only grow
    assert not old.renew(value, 10_000)
    assert old.write(value, token, _doc(token, 2, "stale"), f"{token}:2") == 0
    assert new.write(retaken[1], retaken[0], _doc(retaken[0], 1, "new"), "x") == 1

    # Even holding a lease value again, a smaller token than the last writer's is refused.
    new.release(retaken[1])
    old._client.set(old.lease_key, value)
    assert old.write(value, token, _doc(token, 3, "stale"), f"{token}:3") == -1
    raw = new.read_snapshot()
    assert raw is not None and decode(raw, None).flags[0]["value"] == "new"
    old.close()
    new.close()


def test_signed_snapshots_verify_and_tampering_is_refused() -> None:
    text = _doc(7, 1, "on", KEY)
    assert decode(text, KEY).version == (7, 1)
    tampered = json.loads(text)
    tampered["signed"] = tampered["signed"].replace('"on"', '"off"')
    with pytest.raises(SnapshotRejected, match="signature"):
        decode(json.dumps(tampered), KEY)
    with pytest.raises(SnapshotRejected, match="not signed"):
        decode(_doc(7, 2, "unsigned"), KEY)
    with pytest.raises(SnapshotRejected, match="signature"):
        decode(text, "another-key-0123456789")


def test_a_client_with_the_key_refuses_a_snapshot_written_without_it(
    redis_url: str, prefix: str
) -> None:
    service = FlagKitServer(
        port=0, api_keys=[API_KEY], flags=[{"key": "probe", "value": "real", "type": "string"}]
    )
    service.start()
    common = {
        "api_key": API_KEY,
        "local_port": service.port,
        "redis_url": redis_url,
        "redis_prefix": prefix,
        "redis_lease_time": 1.0,
        "redis_signing_key": KEY,
    }
    syncer = FlagKitClient(**common)
    reader = FlagKitClient(**common, redis_role="reader")
    try:
        syncer.initialize()
        reader.initialize()
        assert reader.get_string_value("probe", "") == "real"
        # Someone with write access to Redis but without the key publishes a newer snapshot.
        attacker = _fleet(redis_url, prefix)
        attacker._client.set(attacker.snapshot_key, _doc(10**15, 1, "forged"))
        attacker._client.set(attacker.version_key, f"{10**15}:1")
        attacker._client.publish(attacker.channel, f"{10**15}:1")
        reader.refresh()  # reads the forged snapshot now, and refuses it
        assert reader.get_string_value("probe", "") == "real"
        # The signed snapshots of the real syncer still get through.
        service.set_flag("probe", value="real-2")
        wait_until(lambda: reader.get_string_value("probe", "") == "real-2", timeout=5)
        attacker.close()
    finally:
        reader.close()
        syncer.close()
        service.close()
