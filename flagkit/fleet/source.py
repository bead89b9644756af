""":class:`FleetSource`: the data source of a client with ``redis_url`` (docs/fleet.md).

It has the interface of :class:`~flagkit.core.updates.source.DataSource` (the client wires
either) and plays one of three roles, decided on its ``flagkit-fleet`` thread every third
of the lease time:

- **syncer** — holds the Redis lease. It runs an ordinary ``DataSource`` (first load,
  streaming, polling: the only connection to the FlagKit service) which writes this
  process's store as always; after each change the whole store is written to Redis as one
  fenced snapshot and a notice is published.
- **reader** — everyone else. It loads the snapshot at start (waiting, within the start
  timeout, for a syncer's first one when Redis is empty), applies each newer one through
  the store's usual swap (``FlagStore.apply``), woken by the notices of its
  ``flagkit-fleet-sub`` thread, and so reports changes exactly as a direct connection does.
- **direct** — Redis is unreachable: an ordinary ``DataSource`` loads from the service
  (``redis_role="auto"`` only) until Redis answers again. A Redis outage is never a flag
  outage.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from flagkit.core.store import FlagStore
from flagkit.core.updates.source import ClientState, DataSource, ReadyWait, SourceListener
from flagkit.core.updates.wire import parse_flags, parse_segments
from flagkit.errors import FlagKitError, InitializationError
from flagkit.fleet.redis_io import RedisError, RedisFleet
from flagkit.fleet.snapshot import FleetSnapshot, SnapshotRejected, decode, encode
from flagkit.types.config import FlagKitOptions
from flagkit.types.flag import FlagState

if TYPE_CHECKING:
    from flagkit.http.http_client import HttpClient

__all__ = ["FleetSource"]

_SUB_RETRY_MAX: Final = 2.0  # seconds between pub/sub reconnection attempts, at most


class _Inner:
    """The listener of the inner ``DataSource``: forwards to the fleet source."""

    def __init__(self, fleet: FleetSource) -> None:
        self._fleet = fleet

    def source_ready(self) -> None:
        self._fleet._inner_ready()

    def source_failed(self, error: FlagKitError) -> None:
        self._fleet._inner_failed(error)

    def source_error(self, error: FlagKitError) -> None:
        self._fleet._listener.source_error(error)

    def source_changed(self, flags: list[FlagState] | None) -> None:
        self._fleet._inner_changed(flags)


class FleetSource(ReadyWait):
    """Keeps ``store`` current through Redis; see the module docstring. Thread-safe."""

    def __init__(
        self,
        options: FlagKitOptions,
        store: FlagStore,
        http: Callable[[], HttpClient],
        listener: SourceListener,
        logger: logging.Logger,
    ) -> None:
        if options.redis_url is None:  # pragma: no cover - the client checks
            raise ValueError("FleetSource needs redis_url")
        self._options = options
        self._store = store
        self._http = http
        self._listener = listener
        self._logger = logger.getChild("fleet")
        self._lease_s = float(options.redis_lease_time)
        self._lease_ms = max(100, int(self._lease_s * 1000))
        self._tick_s = self._lease_s / 3.0
        self._key = options.redis_signing_key
        self._auto = options.redis_role == "auto"
        self._redis = RedisFleet(
            options.redis_url,
            options.redis_prefix,
            timeout=max(0.1, min(2.0, self._lease_s / 4.0)),
            logger=self._logger,
        )
        self._init_runtime()
        self._state = ClientState.NEW
        self._last_error: FlagKitError | None = None
        self._environment_id = ""
        self._held: tuple[int, int] = (-1, -1)  # version of the last snapshot applied/written
        self._key_rejected = False

    def _init_runtime(self) -> None:
        """Locks, events and per-process roles (also after a fork)."""
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._ready = threading.Event()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sub_thread: threading.Thread | None = None
        self._inner: DataSource | None = None
        self._lease: tuple[int, str] | None = None  # (token, lease value) while syncer
        self._seq = 0
        self._redis_down = False
        self._written_once = False

    # -- what the client reads ------------------------------------------------------------

    @property
    def state(self) -> ClientState:
        """The lifecycle state."""
        return self._state

    @property
    def last_error(self) -> FlagKitError | None:
        """The most recent error (``None`` after a success)."""
        inner = self._inner
        if inner is not None and inner.last_error is not None:
            return inner.last_error
        return self._last_error

    @property
    def environment_id(self) -> str:
        """The environment id (from the service, or from the snapshot)."""
        inner = self._inner
        if inner is not None and inner.environment_id:
            return inner.environment_id
        return self._environment_id

    @property
    def role(self) -> str:
        """``"syncer"``, ``"reader"`` or ``"direct"`` (Redis unreachable); for diagnostics."""
        if self._redis_down:
            return "direct"
        if self._lease is not None:
            return "syncer"
        return "direct" if self._inner is not None else "reader"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the fleet threads (idempotent)."""
        with self._lock:
            if self._state is not ClientState.NEW:
                return
            self._state = ClientState.STARTING
        self._start_threads()

    def initialize(self, timeout: float) -> None:
        """Start, and wait up to ``timeout`` seconds for flags (from Redis or the service).

        Raises the rejected key's ``AuthenticationError``, ``InitializationError``
        (``INIT_TIMEOUT``) when no flags arrived in time (loading goes on in the background),
        and ``RuntimeError`` after :meth:`close`.
        """
        if self._state is ClientState.CLOSED:
            raise RuntimeError("this FlagKitClient is closed; create a new one")
        self.start()
        if self.wait_ready(timeout):
            return
        error = self.last_error
        if self._state is ClientState.FAILED and error is not None:
            raise error
        detail = f" (last error: {error})" if error is not None else ""
        raise InitializationError(
            "INIT_TIMEOUT", f"flags not loaded from Redis or the service within {timeout}s{detail}"
        )

    def refresh(self, timeout: float) -> bool:
        """Fetch changes now: the syncer (or a direct client) asks the service, a reader
        reloads the snapshot. Errors are logged, never raised."""
        if self._state in (ClientState.CLOSED, ClientState.FAILED):
            return False
        inner = self._inner
        if inner is not None:
            ok = inner.refresh(timeout)
            if ok and self._lease is not None:
                self._write_snapshot()
            return ok
        try:
            self._load_snapshot(force=True)
        except (RedisError, OSError) as exc:
            self._logger.warning("refresh from Redis failed: %s", exc)
            return False
        return True

    def close(self) -> None:
        """Stop the threads and the inner source; give the lease up. Idempotent."""
        with self._lock:
            if self._state is ClientState.CLOSED:
                return
            self._state = ClientState.CLOSED
            lease, self._lease = self._lease, None
            inner, self._inner = self._inner, None
        self._stop.set()
        self._wake.set()
        self._ready.set()
        if inner is not None:
            inner.close()
        if lease is not None:
            with contextlib.suppress(RedisError, OSError):
                self._redis.release(lease[1])  # the next syncer need not wait for expiry
        for thread in (self._thread, self._sub_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=self._tick_s + 2.5)
        self._redis.close()

    def after_fork(self) -> None:
        """In a forked child: new locks and connections; the parent's lease, inner source
        and threads are left untouched (they are the parent's); the roles are decided
        again on new threads."""
        state = self._state
        self._init_runtime()
        self._redis.after_fork()
        if state in (ClientState.READY, ClientState.CLOSED, ClientState.FAILED):
            self._ready.set()
        if state in (ClientState.STARTING, ClientState.READY):
            self._start_threads()

    def _start_threads(self) -> None:
        self._thread = threading.Thread(target=self._run, name="flagkit-fleet", daemon=True)
        self._sub_thread = threading.Thread(
            target=self._listen, name="flagkit-fleet-sub", daemon=True
        )
        self._thread.start()
        self._sub_thread.start()

    # -- the role loop (flagkit-fleet) ----------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:  # one bad iteration must never end the loop
                self._logger.exception("fleet iteration failed")
            self._wake.wait(self._tick_s)
            self._wake.clear()

    def _tick(self) -> None:
        try:
            self._elect()
            if self._state is not ClientState.READY:
                self._load_snapshot(force=False)  # start from Redis, whatever our role
            if self._lease is not None:
                self._sync()
            else:
                self._stop_inner()
                self._load_snapshot(force=False)
            if self._redis_down:
                self._redis_down = False
                # Redis may have restarted empty (its fencing counter reseeded): what we
                # held is no measure of what comes next.
                self._held = (-1, -1)
                self._logger.warning("Redis is reachable again; fleet mode resumed (%s)", self.role)
        except (RedisError, OSError) as exc:
            # A syncer keeps its lease value: if Redis comes back before the lease expires,
            # renewing it keeps this process the syncer (and its connection to the service);
            # if not, the fence refuses its writes. What it could not write is written again.
            self._written_once = False
            if not self._redis_down:
                self._redis_down = True
                self._logger.warning(
                    "Redis unreachable (%s: %s); %s",
                    type(exc).__name__,
                    exc,
                    "loading flags from the FlagKit service directly until it is back"
                    if self._auto
                    else "keeping the last flags (redis_role='reader' never calls the service)",
                )
            if self._auto and not self._key_rejected:
                self._ensure_inner()

    def _elect(self) -> None:
        """Renew the lease we hold, or take it when it is free (``redis_role="auto"``)."""
        if not self._auto or self._key_rejected:
            self._redis.ping()
            return
        lease = self._lease
        if lease is not None and not self._redis.renew(lease[1], self._lease_ms):
            self._logger.warning("lost the syncer lease (token %d)", lease[0])
            self._lease = None  # the role loop stops the service connection unless re-elected
        if self._lease is None:
            taken = self._redis.acquire(self._lease_ms)
            if taken is not None:
                self._logger.info("took the syncer lease (token %d)", taken[0])
                self._lease = taken
                self._seq = 0
                self._written_once = False

    def _sync(self) -> None:
        lease = self._lease
        inner = self._ensure_inner()
        if lease is None or inner is None:
            return
        if inner.state is ClientState.READY and not self._written_once:
            self._write_snapshot()
        if self._lease is not None and self._store.snapshot.is_fresh():
            self._redis.mark_fresh(lease[0], self._lease_ms)

    def _ensure_inner(self) -> DataSource | None:
        with self._lock:
            if self._state is ClientState.CLOSED:
                return None
            inner = self._inner
            if inner is not None:
                return inner
            inner = DataSource(self._options, self._store, self._http, _Inner(self), self._logger)
            self._inner = inner
        inner.start()
        return inner

    def _stop_inner(self) -> None:
        with self._lock:
            inner, self._inner = self._inner, None
        if inner is not None:
            inner.close()

    # -- the syncer's writes ----------------------------------------------------------------

    def _write_snapshot(self) -> None:
        """Write this process's store to Redis as the next snapshot (syncer only)."""
        lease = self._lease
        if lease is None:
            return
        token, value = lease
        with self._load_lock:
            self._seq += 1
            snapshot = self._store.snapshot
            fleet = FleetSnapshot(
                token=token,
                seq=self._seq,
                flags=[entry.to_wire(key) for key, entry in snapshot.entries.items()],
                segments=list(snapshot.segment_data.values()),
                environment_id=self.environment_id,
                written_at=time.time(),
            )
            text = encode(fleet, self._key)
            try:
                outcome = self._redis.write(value, token, text, f"{token}:{self._seq}")
            except (RedisError, OSError) as exc:
                self._logger.warning("could not write the flags to Redis: %s", exc)
                self._wake.set()
                return
            if outcome == 1:
                self._held = fleet.version
                self._written_once = True
                return
        self._logger.warning(
            "not writing the flags to Redis: %s",
            "the syncer lease is no longer ours" if outcome == 0 else "a newer syncer has written",
        )
        if self._lease == lease:
            self._lease = None
        self._wake.set()  # the role loop stops the inner source and reads Redis

    # -- the reader's loads ---------------------------------------------------------------

    def _load_snapshot(self, *, force: bool) -> None:
        """Apply the snapshot in Redis if it is newer than the one held (raises
        ``RedisError`` when Redis cannot be read)."""
        hint, fresh = self._redis.status()
        loaded = self._state is ClientState.READY
        if hint is not None and not force and loaded and _parse_version(hint) <= self._held:
            if fresh:
                self._store.renew()  # the syncer says its flags are current
            return
        raw = self._redis.read_snapshot()
        if raw is None:
            return  # no syncer has written yet: keep waiting (within the start timeout)
        try:
            snapshot = decode(raw, self._key)
        except SnapshotRejected as exc:
            self._logger.error("refusing the flag snapshot in Redis: %s", exc)
            return
        self._apply(snapshot)

    def _apply(self, snapshot: FleetSnapshot) -> None:
        with self._load_lock:
            inner = self._inner
            syncing = (
                self._lease is not None and inner is not None and inner.state is ClientState.READY
            )
            if syncing or self._state is ClientState.CLOSED:
                return  # the syncer's own store is the source of what it writes
            if snapshot.version <= self._held:
                if snapshot.version < self._held:
                    self._logger.warning(
                        "ignoring an older flag snapshot in Redis (version %s < %s)",
                        snapshot.version,
                        self._held,
                    )
                return
            try:
                states, _bad = parse_flags(snapshot.flags, stream=False, logger=self._logger)
                segments = parse_segments(snapshot.segments, logger=self._logger)
            except (TypeError, ValueError) as exc:
                self._logger.error("refusing a malformed flag snapshot in Redis: %s", exc)
                return
            changes = self._store.apply(full=states, segments_full=segments)
            self._held = snapshot.version
            if snapshot.environment_id:
                self._environment_id = snapshot.environment_id
        self._logger.debug("applied flag snapshot %s from Redis", snapshot.version)
        self._last_error = None
        if self._become_ready():
            return
        if changes:
            self._listener.source_changed(changes.updated)

    # -- pub/sub (flagkit-fleet-sub) ------------------------------------------------------

    def _listen(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            pubsub = None
            try:
                pubsub = self._redis.pubsub()
                delay = 0.1
                self._load_snapshot(force=False)  # what was published before we listened
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        self._load_snapshot(force=False)
            except (RedisError, OSError) as exc:
                self._logger.debug("change notices unavailable: %s", exc)
                self._wake.set()  # let the role loop decide about a fallback now
                self._stop.wait(delay)
                delay = min(delay * 2.0, _SUB_RETRY_MAX)
            except Exception:
                self._logger.exception("reading change notices failed")
                self._stop.wait(delay)
            finally:
                if pubsub is not None:
                    try:
                        pubsub.close()
                    except Exception:
                        self._logger.debug("closing pub/sub failed", exc_info=True)

    # -- what the inner source reports ----------------------------------------------------

    def _inner_ready(self) -> None:
        if self._lease is not None:
            self._write_snapshot()
        self._become_ready()

    def _inner_changed(self, flags: list[FlagState] | None) -> None:
        if self._lease is not None:
            self._write_snapshot()
        if self._state is ClientState.READY:
            self._listener.source_changed(flags)

    def _inner_failed(self, error: FlagKitError) -> None:
        """The service rejected the API key: stop syncing, keep reading Redis."""
        self._key_rejected = True
        self._last_error = error
        lease, self._lease = self._lease, None
        if lease is not None:
            with contextlib.suppress(RedisError, OSError):
                self._redis.release(lease[1])
        self._wake.set()
        if self._state is not ClientState.READY:
            with self._lock:
                if self._state is not ClientState.CLOSED:
                    self._state = ClientState.FAILED
            self._ready.set()
        self._listener.source_failed(error)

    def _become_ready(self) -> bool:
        """Mark READY and tell the owner, once; returns whether this call did it."""
        with self._lock:
            if self._state not in (ClientState.STARTING, ClientState.NEW, ClientState.FAILED):
                return False
            self._state = ClientState.READY
        self._ready.set()
        self._listener.source_ready()
        return True


def _parse_version(text: str) -> tuple[int, int]:
    token, _, seq = text.partition(":")
    try:
        return int(token), int(seq)
    except ValueError:
        return (-1, -1)
