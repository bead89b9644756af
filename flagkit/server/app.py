"""``FlagKitServer``: the local FlagKit-compatible server, in-process or behind ``flagkit serve``.

It serves PROTOCOL §4 and §17 under ``/api/v1`` (``/sdk/init``, ``/sdk/updates``,
``/sdk/events/batch``, ``/sdk/stream/token``, ``/sdk/stream``) plus a token-protected
admin API (``/api/v1/admin/...``, see ``docs/server.md``), and mirrors the admin API in
Python for tests. Standard library only.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import hashlib
import hmac
import itertools
import logging
import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace as dc_replace
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal

from flagkit.server._handler import BASE_PATH, LocalHTTPServer
from flagkit.server.events import EventRecorder, event_type_of
from flagkit.server.faults import FaultInjector
from flagkit.server.flags_file import (
    EnvironmentInfo,
    FlagsDocument,
    FlagsFileError,
    InvalidFieldError,
    check_targeting,
    normalize_flag,
    normalize_flags,
    normalize_segment,
    parse_flags_bytes,
    validate_api_key,
)
from flagkit.server.requests_log import RecordedRequest, RequestLog
from flagkit.server.store import FlagStore, same_flag_content
from flagkit.server.streaming import Broadcaster, TokenRegistry

__all__ = ["DEFAULT_API_KEY", "MISSING", "FlagKitServer"]

logger = logging.getLogger("flagkit.server")

DEFAULT_API_KEY: Final = "sdk_test_key_123456"
_STOP_JOIN_SECONDS: Final = 2.0


class _Missing(enum.Enum):
    MISSING = enum.auto()


MISSING: Final = _Missing.MISSING
"""Sentinel: "no value given" (``set_flag(key)`` keeps the current value)."""


def _positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class FlagKitServer:
    """A local FlagKit server: start it in-process on a free port, change flags, read events.

    >>> with FlagKitServer(flags={"dark-mode": True}) as server:       # doctest: +SKIP
    ...     client = FlagKitClient(api_key=server.api_key, base_url=server.base_url)

    Parameters (all keyword-only except ``flags``):

    - ``flags``: a list of flag objects (``{"key", "value", "flagType"?, "enabled"?, ...}``,
      extra targeting fields kept untouched) or a ``{key: value}`` mapping (type inferred).
      Applied on top of the flags file's flags.
    - ``segments``: a list of segment objects (each with a ``key``), kept untouched.
    - ``api_keys``: accepted keys (a single string is one key). Default: the flags file's
      ``apiKeys``, or ``sdk_test_key_123456`` when there are none. Explicit keys are
      accepted together with the file's keys.
    - ``flags_file``: a JSON (or YAML, with PyYAML) flags file, watched for changes every
      ``watch_interval`` seconds; a broken edit is logged and the last good flags stay.
    - ``verify_signatures``: verify ``X-Signature`` on event batches (403 when wrong).
    - ``admin_token``: bearer token of the admin API (default: a random one).
    - ``host`` / ``port``: where to listen (port 0 picks a free port; read :attr:`port`).
    - ``heartbeat_interval``: seconds between SSE heartbeats; ``token_ttl``: stream token
      lifetime in seconds.
    - ``events_log``: append every recorded event to this JSONL file.
    - ``max_body_bytes`` (413 above it), ``max_events`` kept in memory, ``dedup_window``
      ids remembered, ``max_requests`` kept in :attr:`requests`.
    - ``environment``, ``environment_id``, ``polling_interval_seconds``, ``metadata``:
      override the ``/sdk/init`` fields of the flags file. ``pollingIntervalSeconds``
      defaults to 0, so a client's own ``polling_interval`` decides.

    Raises ``ValueError`` for a bad argument (:class:`InvalidFieldError` for a bad flag,
    :class:`FlagsFileError` for a bad flags file) at construction, and ``OSError`` from
    :meth:`start` when the port cannot be bound. All methods are thread-safe.
    """

    __test__ = False  # not a test class, even when imported under a Test* name

    def __init__(
        self,
        flags: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
        *,
        segments: Sequence[Mapping[str, Any]] | None = None,
        api_keys: Sequence[str] | str | None = None,
        flags_file: str | os.PathLike[str] | None = None,
        verify_signatures: bool = False,
        admin_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        heartbeat_interval: float = 15.0,
        token_ttl: float = 3600.0,
        events_log: str | os.PathLike[str] | None = None,
        max_body_bytes: int = 5 * 1024 * 1024,
        max_events: int = 10_000,
        dedup_window: int = 100_000,
        max_requests: int = 1000,
        watch_interval: float = 0.2,
        environment: str | None = None,
        environment_id: str | None = None,
        polling_interval_seconds: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ValueError(f"host must be a non-empty string, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer in 0..65535, got {port!r}")
        self._host = host
        self._requested_port = port
        self.heartbeat_interval = _positive("heartbeat_interval", heartbeat_interval)
        self.max_body_bytes = _positive_int("max_body_bytes", max_body_bytes)
        self._watch_interval = _positive("watch_interval", watch_interval)
        self.verify_signatures = bool(verify_signatures)
        if admin_token is not None and (
            not isinstance(admin_token, str)
            or not admin_token
            or any(c.isspace() for c in admin_token)
        ):
            raise ValueError("admin_token must be a non-empty string without whitespace")
        self._admin_token = admin_token or secrets.token_urlsafe(18)
        if isinstance(api_keys, str):
            api_keys = (api_keys,)
        self._explicit_keys = tuple(
            validate_api_key(k, f"api_keys[{i}]") for i, k in enumerate(api_keys or ())
        )
        overrides: dict[str, Any] = {}
        for name, value in (("name", environment), ("id", environment_id)):
            if value is not None:
                if not isinstance(value, str) or not value:
                    raise ValueError(
                        f"environment{'_id' if name == 'id' else ''} must be a non-empty string"
                    )
                overrides[name] = value
        if polling_interval_seconds is not None:
            overrides["polling_interval_seconds"] = _positive_int(
                "polling_interval_seconds", polling_interval_seconds, 0
            )
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise ValueError(f"metadata must be a mapping, got {metadata!r}")
            overrides["metadata"] = dict(metadata)
        self._env_overrides = overrides

        self._store = FlagStore()
        self._events = EventRecorder(
            max_events=max_events, dedup_window=dedup_window, log_path=events_log
        )
        self._faults = FaultInjector()
        self._tokens = TokenRegistry(_positive("token_ttl", token_ttl))
        self._broadcaster = Broadcaster()
        self._requests = RequestLog(_positive_int("max_requests", max_requests))
        self._mutation_lock = threading.RLock()
        self._file_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._state: Literal["new", "running", "stopped"] = "new"
        self._stop_event = threading.Event()
        self._httpd: LocalHTTPServer | None = None
        self._bound_port = 0
        self._threads: list[threading.Thread] = []
        self._conn_lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._rid_prefix = secrets.token_hex(3)
        self._rid_counter = itertools.count(1)

        self._flags_file = Path(flags_file) if flags_file is not None else None
        self._file_doc = FlagsDocument()
        self._file_signature: tuple[int, int, int] | None = None
        self._pending_signature: tuple[int, int, int] | None = None
        self._file_hash = b""
        self._file_missing_logged = False
        self._polls = 0
        self.last_reload_error: FlagsFileError | None = None
        """The error of the last failed reload of the flags file (None after a good one)."""
        if self._flags_file is not None:
            data = self._read_file_bytes()
            self._file_doc = self._parse_bytes(data)
            self._file_hash = hashlib.sha256(data).digest()
        self._initial_flags = normalize_flags(flags)
        self._initial_segments = [
            normalize_segment(s, f"segments[{i}]") for i, s in enumerate(segments or ())
        ]
        self._refresh_keys()
        initial_flags, initial_segments = self._initial_state()
        check_targeting({"flags": initial_flags, "segments": initial_segments})
        for segment in initial_segments:
            self._store.put_segment(segment)
        for flag in initial_flags:
            self._store.put_flag(flag)

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> FlagKitServer:
        """Bind and serve in daemon threads; returns self. Idempotent while running.

        Raises ``OSError`` when the address cannot be bound (e.g. the port is in use) and
        ``RuntimeError`` after :meth:`stop` (create a new server instead).
        """
        with self._state_lock:
            if self._state == "running":
                return self
            if self._state == "stopped":
                raise RuntimeError("a stopped FlagKitServer cannot be restarted; create a new one")
            httpd = LocalHTTPServer(
                (self._host, self._requested_port), self, ipv6=":" in self._host
            )
            self._httpd = httpd
            self._bound_port = int(httpd.server_address[1])
            serve = threading.Thread(
                target=httpd.serve_until_stopped,
                name=f"flagkit-server-{self._bound_port}",
                daemon=True,
            )
            serve.start()
            self._threads = [serve]
            if self._flags_file is not None:
                watch = threading.Thread(
                    target=self._watch_loop, name="flagkit-server-watch", daemon=True
                )
                watch.start()
                self._threads.append(watch)
            self._state = "running"
        logger.info("FlagKit local server listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving: end open streams and connections, join the threads. Idempotent."""
        with self._state_lock:
            if self._state != "running":
                self._state = "stopped"
                return
            self._state = "stopped"
        self._stop_event.set()
        self._broadcaster.close()
        httpd = self._httpd
        assert httpd is not None
        httpd.stop_serving()
        self._threads[0].join(_STOP_JOIN_SECONDS)
        with self._conn_lock:
            connections = dict(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        deadline = time.monotonic() + _STOP_JOIN_SECONDS
        for thread in [*self._threads, *connections.values()]:
            if thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._events.close()

    def close(self) -> None:
        """Alias of :meth:`stop`."""
        self.stop()

    def __enter__(self) -> FlagKitServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self._state == "running" else self._state
        return f"<FlagKitServer {where} flags={len(self._store.flags())}>"

    # addresses and credentials ------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._state == "running"

    @property
    def host(self) -> str:
        """The address the server binds."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the requested one before :meth:`start`)."""
        return self._bound_port or self._requested_port

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (a wildcard host is shown as the loopback address)."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self._host, self._host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/api/v1``: pass it as the client's ``base_url``."""
        return self.url + BASE_PATH

    @property
    def api_key(self) -> str:
        """The first accepted API key."""
        return self._api_keys[0]

    @property
    def api_keys(self) -> tuple[str, ...]:
        """Every accepted API key (explicit keys first, then the flags file's)."""
        return self._api_keys

    @property
    def admin_token(self) -> str:
        """Bearer token of the admin API."""
        return self._admin_token

    @property
    def environment(self) -> EnvironmentInfo:
        """The ``/sdk/init`` environment fields (flags file, then constructor overrides)."""
        env = dc_replace(self._file_doc.environment, **self._env_overrides)
        if env.polling_interval_seconds is None:
            env = dc_replace(env, polling_interval_seconds=0)
        return env

    @property
    def flags_file(self) -> Path | None:
        """The watched flags file, if any."""
        return self._flags_file

    def _refresh_keys(self) -> None:
        keys = list(self._explicit_keys)
        keys += [k for k in self._file_doc.api_keys if k not in keys]
        self._api_keys = tuple(keys) or (DEFAULT_API_KEY,)
        self._api_key_bytes = tuple(k.encode("utf-8") for k in self._api_keys)

    def _is_valid_key(self, key: str) -> bool:
        given = key.encode("utf-8", "replace")
        matched = False
        for candidate in self._api_key_bytes:
            matched |= hmac.compare_digest(given, candidate)
        return matched

    # flags -----------------------------------------------------------------------------

    def flags(self) -> list[dict[str, Any]]:
        """Every flag as its full wire object (copies)."""
        return copy.deepcopy(self._store.flags())

    def get_flag(self, key: str) -> dict[str, Any] | None:
        """One flag's wire object (a copy), or None."""
        flag = self._store.get_flag(key)
        return copy.deepcopy(flag) if flag is not None else None

    def set_flag(
        self,
        key: str,
        value: Any = MISSING,
        *,
        replace: bool = False,
        version: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Create or change a flag, bump its version and push ``flag_updated`` to streams.

        ``fields`` are wire fields (``enabled=False``, ``flagType="string"``, targeting
        fields such as ``rules=[...]``; ``flag_type=`` is accepted too). For an existing
        flag, fields not given keep their value unless ``replace=True``; a new flag needs
        ``value``. ``version`` sets the version explicitly (default: previous + 1).

        >>> server.set_flag("dark-mode", False)                 # doctest: +SKIP
        {'key': 'dark-mode', 'value': False, 'enabled': True, 'version': 2, ...}

        Raises :class:`InvalidFieldError` (a ``ValueError``) naming the bad field.
        """
        if "flag_type" in fields:
            fields["flagType"] = fields.pop("flag_type")
        raw = dict(fields)
        raw["key"] = key
        if value is not MISSING:
            raw["value"] = value
        if version is not None:
            _positive_int("version", version)
        with self._mutation_lock:
            previous = None if replace else self._store.get_flag(key)
            flag = normalize_flag(raw, f"flags[{key!r}]", previous=previous)
            self._check_candidate(flag=flag)
            wire = self._store.put_flag(flag, version=version)
            self._broadcaster.publish("flag_updated", wire)
        return copy.deepcopy(wire)

    def delete_flag(self, key: str) -> bool:
        """Delete a flag and push ``flag_deleted``; False if there was no such flag."""
        with self._mutation_lock:
            deleted = self._store.delete_flag(key)
            if deleted:
                self._broadcaster.publish("flag_deleted", {"key": key})
        return deleted

    # segments --------------------------------------------------------------------------

    def segments(self) -> list[dict[str, Any]]:
        """Every segment object (copies)."""
        return copy.deepcopy(self._store.segments())

    def get_segment(self, key: str) -> dict[str, Any] | None:
        """One segment (a copy), or None."""
        segment = self._store.get_segment(key)
        return copy.deepcopy(segment) if segment is not None else None

    def set_segment(self, key: str, /, **fields: Any) -> dict[str, Any]:
        """Create or replace a segment and push ``segment_updated`` to streams.

        >>> server.set_segment("beta-users", included=["u1", "u2"])     # doctest: +SKIP

        Raises :class:`InvalidFieldError` naming the bad field.
        """
        with self._mutation_lock:
            segment = normalize_segment({**fields, "key": key}, f"segments[{key!r}]")
            self._check_candidate(segment=segment)
            stored = self._store.put_segment(segment)
            self._broadcaster.publish("segment_updated", stored)
        return copy.deepcopy(stored)

    def delete_segment(self, key: str) -> bool:
        """Delete a segment and push ``segment_deleted``; False if absent."""
        with self._mutation_lock:
            deleted = self._store.delete_segment(key)
            if deleted:
                self._broadcaster.publish("segment_deleted", {"key": key})
        return deleted

    def _check_candidate(
        self, *, flag: dict[str, Any] | None = None, segment: dict[str, Any] | None = None
    ) -> None:
        flags = list(self._store.flags())
        segments = list(self._store.segments())
        for items, new in ((flags, flag), (segments, segment)):
            if new is not None:
                index = next((i for i, f in enumerate(items) if f["key"] == new["key"]), None)
                if index is None:
                    items.append(new)
                else:
                    items[index] = new
        try:
            check_targeting({"flags": flags, "segments": segments})
        except InvalidFieldError as exc:
            # Name the object by key: its index in this candidate list means nothing to callers.
            match = re.match(r"(flags|segments)\[(\d+)\]", exc.field)
            if match is None:
                raise
            items = flags if match.group(1) == "flags" else segments
            key = items[int(match.group(2))]["key"]
            field = f"{match.group(1)}[{key!r}]{exc.field[match.end() :]}"
            raise InvalidFieldError(field, exc.reason) from exc

    # reset -------------------------------------------------------------------------------

    def _initial_state(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        flags = {f["key"]: f for f in self._file_doc.flags}
        flags.update((f["key"], f) for f in self._initial_flags)
        segments = {s["key"]: s for s in self._file_doc.segments}
        segments.update((s["key"], s) for s in self._initial_segments)
        return list(flags.values()), list(segments.values())

    def reset(
        self,
        flags: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None = None,
        segments: Sequence[Mapping[str, Any]] | None = None,
        *,
        events: bool = True,
        faults: bool = True,
        requests: bool = True,
    ) -> None:
        """Replace all flags and segments and push ``flags_reset`` (and ``segments_reset``).

        ``flags``/``segments`` default to the initial ones (flags file plus constructor
        arguments). Unchanged flags keep their version; changed ones get a new one;
        versions never go back. Also clears events, faults and the request log unless told
        not to. Raises :class:`InvalidFieldError` for a bad flag or segment.
        """
        initial_flags, initial_segments = self._initial_state()
        new_flags = initial_flags if flags is None else normalize_flags(flags)
        new_segments = (
            initial_segments
            if segments is None
            else [normalize_segment(s, f"segments[{i}]") for i, s in enumerate(segments)]
        )
        check_targeting({"flags": new_flags, "segments": new_segments})
        with self._mutation_lock:
            segments_changed = self._apply_segments(new_segments, self._store.segments())
            self._apply_flags(new_flags, self._store.flags(), publish=False)
            self._broadcaster.publish("flags_reset", self._store.flags())
            if segments_changed:
                self._broadcaster.publish("segments_reset", self._store.segments())
        if events:
            self.clear_events()
        if faults:
            self.clear_faults()
        if requests:
            self.clear_requests()

    def _apply_flags(
        self,
        new: Iterable[dict[str, Any]],
        old: Iterable[Mapping[str, Any]],
        *,
        publish: bool,
    ) -> list[str]:
        """Make the store hold ``new`` instead of ``old``; returns the changed keys."""
        old_by_key = {f["key"]: f for f in old}
        changed: list[str] = []
        new_keys = set()
        for flag in new:
            new_keys.add(flag["key"])
            current = self._store.get_flag(flag["key"])
            if flag["key"] in old_by_key and same_flag_content(flag, old_by_key[flag["key"]]):
                continue
            if same_flag_content(flag, current):
                continue
            wire = self._store.put_flag(flag)
            changed.append(flag["key"])
            if publish:
                self._broadcaster.publish("flag_updated", wire)
        for key in old_by_key:
            if key not in new_keys and self._store.delete_flag(key):
                changed.append(key)
                if publish:
                    self._broadcaster.publish("flag_deleted", {"key": key})
        return changed

    def _apply_segments(
        self, new: Iterable[dict[str, Any]], old: Iterable[Mapping[str, Any]]
    ) -> bool:
        old_by_key = {s["key"]: s for s in old}
        changed = False
        new_keys = set()
        for segment in new:
            new_keys.add(segment["key"])
            if segment == old_by_key.get(segment["key"]) and segment == self._store.get_segment(
                segment["key"]
            ):
                continue
            self._store.put_segment(segment)
            changed = True
        for key in old_by_key:
            if key not in new_keys and self._store.delete_segment(key):
                changed = True
        return changed

    # flags file ------------------------------------------------------------------------------

    def _read_file_bytes(self) -> bytes:
        assert self._flags_file is not None
        try:
            stat = self._flags_file.stat()
            data = self._flags_file.read_bytes()
        except OSError as exc:
            raise FlagsFileError(
                str(self._flags_file), None, f"cannot read the file: {exc.strerror or exc}"
            ) from None
        self._file_signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        return data

    def _parse_bytes(self, data: bytes) -> FlagsDocument:
        return parse_flags_bytes(data, str(self._flags_file))

    def reload_flags_file(self) -> list[str]:
        """Re-read the flags file now and apply what changed; returns the changed keys.

        Flags whose content changed in the file get a new version and are pushed
        (``flag_updated``); flags removed from the file are deleted (``flag_deleted``).
        Flags the file did not change keep any value set through the admin API.
        Raises :class:`FlagsFileError` (and keeps serving the last good flags) when the
        file cannot be read or is invalid; it is also kept in :attr:`last_reload_error`.
        """
        if self._flags_file is None:
            raise RuntimeError("this server has no flags file")
        with self._file_lock:
            try:
                data = self._read_file_bytes()
                self._file_hash = hashlib.sha256(data).digest()
                return self._apply_document(self._parse_bytes(data))
            except InvalidFieldError as exc:
                error = FlagsFileError(str(self._flags_file), None, exc.reason, exc.field)
                self.last_reload_error = error
                raise error from None
            except FlagsFileError as exc:
                self.last_reload_error = exc
                raise

    def _apply_document(self, document: FlagsDocument) -> list[str]:
        with self._mutation_lock:
            old = self._file_doc
            check_targeting(
                {
                    "flags": self._merged(self._store.flags(), document.flags, old.flags),
                    "segments": self._merged(
                        self._store.segments(), document.segments, old.segments
                    ),
                }
            )
            self._file_doc = document
            self._refresh_keys()
            old_segments = {s["key"]: s for s in old.segments}
            for segment in document.segments:
                if old_segments.get(segment["key"]) != segment:
                    stored = self._store.put_segment(segment)
                    self._broadcaster.publish("segment_updated", stored)
            new_segment_keys = {s["key"] for s in document.segments}
            for key in old_segments:
                if key not in new_segment_keys and self._store.delete_segment(key):
                    self._broadcaster.publish("segment_deleted", {"key": key})
            changed = self._apply_flags(document.flags, old.flags, publish=True)
        self.last_reload_error = None
        logger.info(
            "flags file %s reloaded: %s",
            self._flags_file,
            ", ".join(changed) + " changed" if changed else "no flag changed",
        )
        return changed

    @staticmethod
    def _merged(
        current: list[dict[str, Any]],
        new_file: Sequence[dict[str, Any]],
        old_file: Sequence[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """What the store will hold after applying a new file (for validation)."""
        removed = {f["key"] for f in old_file} - {f["key"] for f in new_file}
        by_key = {f["key"]: f for f in current if f["key"] not in removed}
        by_key.update((f["key"], f) for f in new_file)
        return list(by_key.values())

    def _watch_loop(self) -> None:
        while not self._stop_event.wait(self._watch_interval):
            try:
                self._check_file()
            except Exception:
                logger.exception("flags file watcher: unexpected error (will retry)")

    def _check_file(self) -> None:
        path = self._flags_file
        assert path is not None
        self._polls += 1
        try:
            stat = path.stat()
        except FileNotFoundError:
            if not self._file_missing_logged:
                logger.warning("flags file %s is missing; keeping the last good flags", path)
                self._file_missing_logged = True
            return
        self._file_missing_logged = False
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if signature != self._file_signature:
            # Read only once the file has stopped changing for one poll, so a save caught
            # half-way (truncated, partly written) is not reported as a broken file.
            if signature != self._pending_signature:
                self._pending_signature = signature
                return
        elif self._polls % 5:
            return  # unchanged; but re-hash now and then: coarse mtimes can hide an edit
        with self._file_lock:
            try:
                data = path.read_bytes()
            except OSError as exc:
                logger.warning("cannot read flags file %s: %s", path, exc)
                return
            self._file_signature = signature
            digest = hashlib.sha256(data).digest()
            if digest == self._file_hash:
                return
            self._file_hash = digest
            try:
                document = self._parse_bytes(data)
            except FlagsFileError as exc:
                # Log before publishing the error: whoever sees it can rely on the log line.
                logger.error("%s -- keeping the last good flags", exc)
                self.last_reload_error = exc
                return
            try:
                self._apply_document(document)
            except InvalidFieldError as exc:
                error = FlagsFileError(str(path), None, exc.reason, exc.field)
                logger.error("%s -- keeping the last good flags", error)
                self.last_reload_error = error

    # events ----------------------------------------------------------------------------------

    def events(
        self,
        event_type: str | None = None,
        *,
        session_id: str | None = None,
        environment_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Recorded events (oldest first, as received; copies), optionally filtered.

        ``event_type`` matches ``eventType`` (or Go's ``type``). At most ``max_events``
        are kept; duplicates (same ``eventId``/``id``) are recorded once.
        """
        out: list[dict[str, Any]] = []
        for _, event in self._events.entries():
            if event_type is not None and event_type_of(event) != event_type:
                continue
            if session_id is not None and event.get("sessionId") != session_id:
                continue
            if environment_id is not None and event.get("environmentId") != environment_id:
                continue
            out.append(copy.deepcopy(event))
        return out

    def wait_for_events(
        self, n: int = 1, timeout: float = 5.0, *, event_type: str | None = None
    ) -> list[dict[str, Any]]:
        """Wait until at least ``n`` events (of ``event_type``) are recorded; return them.

        Raises ``TimeoutError`` saying how many arrived when ``timeout`` seconds pass.
        """
        if event_type is None:
            reached = self._events.wait_for_total(n, timeout)
        else:
            reached = self._events.wait_for(
                lambda events: sum(1 for e in events if event_type_of(e) == event_type) >= n,
                timeout,
            )
        if not reached:
            got = self.events(event_type)
            kinds = sorted({str(event_type_of(e)) for e in self.events()})
            raise TimeoutError(
                f"expected {n} events{f' of type {event_type!r}' if event_type else ''}, "
                f"got {len(got)} within {timeout} s (types received: {kinds or 'none'})"
            )
        return self.events(event_type)

    def clear_events(self) -> None:
        """Forget recorded events, remembered ids and counters."""
        self._events.clear()

    @property
    def event_stats(self) -> dict[str, int]:
        """``{"total", "duplicates", "errors"}`` since the last clear."""
        return {
            "total": self._events.total,
            "duplicates": self._events.duplicates,
            "errors": self._events.errors,
        }

    # requests ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Requests received (admin API excluded), oldest first; bounded."""
        return self._requests.entries()

    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        """Requests to ``init``, ``updates``, ``events``, ``stream_token`` or ``stream``."""
        return self._requests.entries(endpoint)

    def wait_for_requests(
        self, endpoint: str | None = None, n: int = 1, timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait for ``n`` requests to ``endpoint`` (None: any); raises TimeoutError."""
        return self._requests.wait_for(endpoint, n, timeout)

    def clear_requests(self) -> None:
        """Forget the request log."""
        self._requests.clear()

    def _record_request(self, request: RecordedRequest) -> RecordedRequest:
        return self._requests.append(request)

    # faults ------------------------------------------------------------------------------------

    def inject_fault(
        self,
        endpoint: str,
        *,
        statuses: Sequence[int] = (),
        latency: float = 0.0,
        drop: bool = False,
        malformed: bool = False,
        count: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Make the next requests to ``endpoint`` fail (see :mod:`flagkit.server.faults`).

        >>> server.inject_fault("init", statuses=[503, 503])   # two 503s, then normal
        ... # doctest: +SKIP
        >>> server.inject_fault("events", latency=0.5, count=1)  # doctest: +SKIP

        ``endpoint`` is ``init``, ``updates``, ``events``, ``stream_token`` or ``stream``.
        Replaces the endpoint's previous fault. Raises ``ValueError`` naming a bad argument.
        """
        self._faults.set(
            endpoint,
            statuses=statuses,
            latency=latency,
            drop=drop,
            malformed=malformed,
            count=count,
            retry_after=retry_after,
        )

    def clear_faults(self, endpoint: str | None = None) -> None:
        """Remove the fault of ``endpoint``, or all faults."""
        self._faults.clear(endpoint)

    def faults(self) -> list[dict[str, Any]]:
        """The active faults."""
        return self._faults.list()

    # streams ---------------------------------------------------------------------------------

    @property
    def stream_count(self) -> int:
        """Number of open SSE streams."""
        return self._broadcaster.count

    def wait_for_streams(self, n: int = 1, timeout: float = 5.0) -> None:
        """Wait until at least ``n`` SSE streams are open; raises TimeoutError."""
        if not self._broadcaster.wait_for_count(n, timeout):
            raise TimeoutError(
                f"expected {n} open streams, got {self.stream_count} within {timeout} s"
            )

    def publish_stream_event(self, event: str, data: object) -> int:
        """Send any SSE event to every open stream (e.g. ``error``); returns how many."""
        return self._broadcaster.publish(event, data)

    def disconnect_streams(self) -> int:
        """Close every open stream (clients see an end of stream); returns how many."""
        return self._broadcaster.disconnect_all()

    def expire_stream_tokens(self) -> None:
        """Invalidate every issued stream token (new connections get ``TOKEN_INVALID``)."""
        self._tokens.clear()

    # internals used by the handler ---------------------------------------------------------

    def _next_request_id(self) -> str:
        return f"req_{self._rid_prefix}{next(self._rid_counter):06d}"

    def _connection_opened(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._connections[conn] = threading.current_thread()
        if self._stop_event.is_set():
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def _connection_closed(self, conn: socket.socket) -> None:
        with self._conn_lock:
            self._connections.pop(conn, None)
