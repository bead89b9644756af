"""Everything fleet mode says to Redis; the only module of FlagKit that imports ``redis``.

Keys (``{prefix}`` is a Redis Cluster hash tag, so every key of one fleet lives in one
slot and the Lua scripts may touch them together)::

    {prefix}:lease     "<token>:<holder id>" of the syncer, expires after the lease time
    {prefix}:token     the fencing counter (INCR): every new lease gets a larger token
    {prefix}:snapshot  the current snapshot (flagkit.fleet.snapshot), one JSON document
    {prefix}:version   "<token>:<seq>" of that snapshot (a cheap hint for readers)
    {prefix}:written   the largest token that ever wrote the snapshot
    {prefix}:fresh     set by the syncer while its flags are current (expires like the lease)
    {prefix}:changes   the pub/sub channel of change notices ("<token>:<seq>")

The lease is taken with ``SET NX PX`` inside a script that first draws the next token, and
renewed only by its holder. A snapshot is written by a script that checks, atomically,
that the writer still holds the lease and that no larger token has written: a syncer
paused past its lease (SIGSTOP, a long GC pause) can never overwrite a newer snapshot.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

__all__ = ["RedisError", "RedisFleet"]

RedisError = redis.RedisError

_ACQUIRE: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then
  -- seed the counter from the clock: tokens keep growing if Redis ever loses its data
  local now = redis.call('TIME')
  local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  redis.call('SET', KEYS[2], string.format('%d', ms))
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. ':' .. ARGV[2], 'PX', ARGV[1])
return token
"""

_RENEW: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

_RELEASE: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: lease, snapshot, version, written; ARGV: lease value, token, snapshot, version, channel
_WRITE: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local written = tonumber(redis.call('GET', KEYS[4]) or '0')
if tonumber(ARGV[2]) < written then return -1 end
redis.call('SET', KEYS[2], ARGV[3])
redis.call('SET', KEYS[3], ARGV[4])
redis.call('SET', KEYS[4], ARGV[2])
redis.call('PUBLISH', ARGV[5], ARGV[4])
return 1
"""


class RedisFleet:
    """One fleet's keys on one Redis server. Thread-safe (redis-py's pool is).

    ``timeout`` bounds every command and connection attempt (no retries inside redis-py:
    the caller decides what an unreachable Redis means).
    """

    def __init__(self, url: str, prefix: str, *, timeout: float, logger: logging.Logger) -> None:
        self._url = url
        self._timeout = timeout
        self._logger = logger
        self.holder_id = uuid.uuid4().hex[:12]
        tag = "{" + prefix + "}"
        self.lease_key = f"{tag}:lease"
        self.token_key = f"{tag}:token"
        self.snapshot_key = f"{tag}:snapshot"
        self.version_key = f"{tag}:version"
        self.written_key = f"{tag}:written"
        self.fresh_key = f"{tag}:fresh"
        self.channel = f"{tag}:changes"
        self._client = self._connect()

    def _connect(self) -> redis.Redis:
        client = redis.Redis.from_url(
            self._url,
            socket_timeout=self._timeout,
            socket_connect_timeout=self._timeout,
            retry=Retry(NoBackoff(), 0),
            client_name="flagkit",
        )
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._write = client.register_script(_WRITE)
        return client

    def after_fork(self) -> None:
        """A child process builds its own connections (the parent's sockets stay its own)."""
        self.holder_id = uuid.uuid4().hex[:12]
        self._client = self._connect()

    def close(self) -> None:
        """Close the pooled connections."""
        try:
            self._client.close()
        except Exception:  # closing never matters more than the caller's work
            self._logger.debug("closing the Redis connection failed", exc_info=True)

    # -- lease ----------------------------------------------------------------------------

    def acquire(self, lease_ms: int) -> tuple[int, str] | None:
        """Take the lease if nobody holds it: (fencing token, lease value), else ``None``."""
        keys = [self.lease_key, self.token_key]
        token = int(self._acquire(keys=keys, args=[lease_ms, self.holder_id]))
        if token <= 0:
            return None
        return token, f"{token}:{self.holder_id}"

    def renew(self, value: str, lease_ms: int) -> bool:
        """Extend the lease; False when it is no longer ours (expired, taken)."""
        return bool(self._renew(keys=[self.lease_key], args=[value, lease_ms]))

    def release(self, value: str) -> None:
        """Give the lease up (only if it is still ours), so another can take it at once."""
        self._release(keys=[self.lease_key], args=[value])

    def lease_holder(self) -> str | None:
        """The current lease value (for diagnostics and tests)."""
        raw = self._client.get(self.lease_key)
        return None if raw is None else _text(raw)

    # -- snapshot -------------------------------------------------------------------------

    def write(self, lease_value: str, token: int, snapshot: str, version: str) -> int:
        """Write the snapshot and publish its version, fenced: 1 written, 0 the lease is
        not ours, -1 a newer syncer has written."""
        keys = [self.lease_key, self.snapshot_key, self.version_key, self.written_key]
        args: list[str | int] = [lease_value, token, snapshot, version, self.channel]
        return int(self._write(keys=keys, args=args))

    def mark_fresh(self, token: int, lease_ms: int) -> None:
        """Tell readers the syncer's flags are current (for the next ``lease_ms``)."""
        self._client.set(self.fresh_key, str(token), px=lease_ms)

    def status(self) -> tuple[str | None, bool]:
        """(version hint, whether a syncer says the flags are current), in one round trip."""
        version, fresh = self._client.mget([self.version_key, self.fresh_key])
        return (None if version is None else _text(version)), fresh is not None

    def read_snapshot(self) -> bytes | None:
        """The snapshot document, or ``None`` when no syncer has written one."""
        raw: Any = self._client.get(self.snapshot_key)
        return None if raw is None else bytes(raw)

    def ping(self) -> None:
        """Raise ``RedisError`` unless Redis answers."""
        self._client.ping()

    def pubsub(self) -> Any:
        """A pub/sub connection subscribed to the change notices."""
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
        pubsub.subscribe(self.channel)
        return pubsub


def _text(raw: object) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
