"""``FlagKitServer``: the local FlagKit-compatible server, in-process or behind ``flagkit serve``.

It serves the SDK endpoints of docs/protocol.md §4 and §17 under ``/api/v1``
(``/sdk/init``, ``/sdk/updates``, ``/sdk/events/batch``, ``/sdk/stream/token``,
``/sdk/stream``) plus a token-protected admin API (``/api/v1/admin/...``, see
``docs/server.md``), and mirrors the admin API in Python for tests. Standard library only.

This class wires the parts together: the store and the rules for changing it
(:mod:`~flagkit.server.flag_state`), the flags-file watcher, the event recorder, faults,
stream tokens and the HTTP layer, which is given a :class:`ServerContext` and never reads
this object's internals.
"""

from __future__ import annotations

import copy
import enum
import itertools
import logging
import os
import secrets
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace as dc_replace
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal

from flagkit.server.context import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_REQUEST_TIMEOUT,
    KeyRing,
    Limits,
    ServerContext,
)
from flagkit.server.dashboard.state import DashboardState
from flagkit.server.events import EventRecorder
from flagkit.server.faults import FaultInjector
from flagkit.server.file_watch import FlagsFileWatcher
from flagkit.server.flag_state import FlagState
from flagkit.server.flags_file import (
    EnvironmentInfo,
    FlagsDocument,
    FlagsFileError,
    check_targeting,
    normalize_flags,
    normalize_segment,
    validate_api_key,
)
from flagkit.server.handler import BASE_PATH, RequestHandler
from flagkit.server.httpd import LocalHTTPServer
from flagkit.server.inspection import InspectionAPI
from flagkit.server.requests_log import RequestLog
from flagkit.server.store import FlagStore
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
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero) or value == float("inf"):
        allowed = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")
    return float(value)


def _positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class FlagKitServer(InspectionAPI):
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
      accepted together with the file's keys. Any key the client accepts is accepted.
    - ``flags_file``: a JSON (or YAML, with PyYAML) flags file, watched for changes every
      ``watch_interval`` seconds; a broken edit is logged and the last good flags stay.
    - ``verify_signatures``: verify ``X-Signature`` on event batches (403 when wrong).
    - ``admin_token``: bearer token of the admin API (default: a random one).
    - ``host`` / ``port``: where to listen (port 0 picks a free port; read :attr:`port`).
    - ``heartbeat_interval``: seconds between SSE heartbeats; ``token_ttl``: stream token
      lifetime in seconds.
    - ``events_log``: append every recorded event to this JSONL file.
    - ``max_body_bytes`` (413 above it, also for chunked bodies), ``max_connections``
      served at once (more wait in the backlog), ``request_timeout`` seconds to receive
      a whole request (then the connection ends); see "Limits" in docs/server.md.
    - ``max_events`` kept in memory, ``dedup_window`` ids remembered, ``max_requests``
      kept in :attr:`requests`.
    - ``dashboard_readonly_open``: the dashboard at :attr:`dashboard_url` shows flags,
      events and explanations without signing in (changes still need the admin token);
      off by default. See docs/dashboard.md.
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
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        max_events: int = 10_000,
        dedup_window: int = 100_000,
        max_requests: int = 1000,
        watch_interval: float = 0.2,
        environment: str | None = None,
        environment_id: str | None = None,
        polling_interval_seconds: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        dashboard_readonly_open: bool = False,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise ValueError(f"host must be a non-empty string, got {host!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer in 0..65535, got {port!r}")
        self._host = host
        self._requested_port = port
        self._limits = Limits(
            max_body_bytes=_positive_int("max_body_bytes", max_body_bytes),
            max_connections=_positive_int("max_connections", max_connections),
            request_timeout=_positive("request_timeout", request_timeout),
            heartbeat_interval=_positive("heartbeat_interval", heartbeat_interval),
        )
        self._verify_signatures = bool(verify_signatures)
        if admin_token is not None and (
            not isinstance(admin_token, str)
            or not admin_token
            or any(c.isspace() for c in admin_token)
        ):
            raise ValueError("admin_token must be a non-empty string without whitespace")
        self._admin_token = admin_token or _new_admin_token()
        if isinstance(api_keys, str):
            api_keys = (api_keys,)
        self._explicit_keys = tuple(
            validate_api_key(k, f"api_keys[{i}]") for i, k in enumerate(api_keys or ())
        )
        self._env_overrides = _environment_overrides(
            environment, environment_id, polling_interval_seconds, metadata
        )

        self._broadcaster = Broadcaster()
        self._state = FlagState(FlagStore(), self._broadcaster)
        self._events = EventRecorder(
            max_events=max_events, dedup_window=dedup_window, log_path=events_log
        )
        self._faults = FaultInjector()
        self._tokens = TokenRegistry(_positive("token_ttl", token_ttl))
        self._requests = RequestLog(_positive_int("max_requests", max_requests))
        self._keys = KeyRing(())
        self._lifecycle_lock = threading.Lock()
        self._lifecycle: Literal["new", "running", "stopped"] = "new"
        self._stop_event = threading.Event()
        self._httpd: LocalHTTPServer | None = None
        self._watch_thread: threading.Thread | None = None
        self._rid_prefix = secrets.token_hex(3)
        self._rid_counter = itertools.count(1)

        self._file_doc = FlagsDocument()
        self._watcher: FlagsFileWatcher | None = None
        if flags_file is not None:
            self._watcher = FlagsFileWatcher(
                Path(flags_file), self._apply_file, _positive("watch_interval", watch_interval)
            )
            self._file_doc = self._watcher.load()
        self._initial_flags = normalize_flags(flags)
        self._initial_segments = [
            normalize_segment(s, f"segments[{i}]") for i, s in enumerate(segments or ())
        ]
        self._refresh_keys()
        initial_flags, initial_segments = self._initial_state()
        check_targeting({"flags": initial_flags, "segments": initial_segments})
        self._state.load(initial_flags, initial_segments)
        if not isinstance(dashboard_readonly_open, bool):
            raise ValueError(
                f"dashboard_readonly_open must be True or False, got {dashboard_readonly_open!r}"
            )
        self._dashboard = DashboardState(readonly_open=dashboard_readonly_open)
        self._dashboard.history.seed(self._state.store.flags())
        self._broadcaster.add_tap(self._dashboard.history.tap)

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> FlagKitServer:
        """Bind and serve in daemon threads; returns self. Idempotent while running.

        Raises ``OSError`` when the address cannot be bound (e.g. the port is in use) and
        ``RuntimeError`` after :meth:`stop` (create a new server instead).
        """
        with self._lifecycle_lock:
            if self._lifecycle == "running":
                return self
            if self._lifecycle == "stopped":
                raise RuntimeError("a stopped FlagKitServer cannot be restarted; create a new one")
            httpd = LocalHTTPServer(
                (self._host, self._requested_port),
                self._context(),
                RequestHandler,
                ipv6=":" in self._host,
            )
            self._httpd = httpd
            httpd.start()
            if self._watcher is not None:
                self._watch_thread = threading.Thread(
                    target=self._watcher.run,
                    args=(self._stop_event,),
                    name="flagkit-server-watch",
                    daemon=True,
                )
                self._watch_thread.start()
            self._lifecycle = "running"
        logger.info("FlagKit local server listening on %s", self.base_url)
        return self

    def _context(self) -> ServerContext:
        return ServerContext(
            store=self._state.store,
            events=self._events,
            faults=self._faults,
            tokens=self._tokens,
            broadcaster=self._broadcaster,
            requests=self._requests,
            keys=self._keys,
            limits=self._limits,
            admin_token=self._admin_token,
            verify_signatures=self._verify_signatures,
            stopping=self._stop_event,
            next_request_id=self._next_request_id,
            admin=self,
            dashboard=self._dashboard,
        )

    def stop(self) -> None:
        """Stop serving: end open streams and connections, join the threads. Idempotent."""
        with self._lifecycle_lock:
            if self._lifecycle != "running":
                self._lifecycle = "stopped"
                return
            self._lifecycle = "stopped"
        self._stop_event.set()
        self._broadcaster.close()
        assert self._httpd is not None
        self._httpd.stop(_STOP_JOIN_SECONDS)
        if self._watch_thread is not None:
            self._watch_thread.join(_STOP_JOIN_SECONDS)
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
        where = self.base_url if self._lifecycle == "running" else self._lifecycle
        return f"<FlagKitServer {where} flags={len(self._state.store.flags())}>"

    # addresses, credentials and limits ---------------------------------------------------

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._lifecycle == "running"

    @property
    def host(self) -> str:
        """The address the server binds."""
        return self._host

    @property
    def port(self) -> int:
        """The bound port (the requested one before :meth:`start`)."""
        return self._httpd.port if self._httpd is not None else self._requested_port

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (a wildcard host is shown as the loopback address)."""
        host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(self._host, self._host)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def dashboard_url(self) -> str:
        """``http://HOST:PORT/``: the web dashboard (sign in with :attr:`admin_token`)."""
        return self.url + "/"

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/api/v1``: pass it as the client's ``base_url``."""
        return self.url + BASE_PATH

    @property
    def api_key(self) -> str:
        """The first accepted API key."""
        return self._keys.keys[0]

    @property
    def api_keys(self) -> tuple[str, ...]:
        """Every accepted API key (explicit keys first, then the flags file's)."""
        return self._keys.keys

    @property
    def admin_token(self) -> str:
        """Bearer token of the admin API."""
        return self._admin_token

    @property
    def verify_signatures(self) -> bool:
        """Whether event batches must carry a valid ``X-Signature`` (403 otherwise)."""
        return self._verify_signatures

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between SSE heartbeats."""
        return self._limits.heartbeat_interval

    @property
    def max_body_bytes(self) -> int:
        """The largest accepted request body (413 above it)."""
        return self._limits.max_body_bytes

    @property
    def limits(self) -> Limits:
        """Request size, connection cap, per-request read deadline and heartbeat interval."""
        return self._limits

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
        return self._watcher.path if self._watcher is not None else None

    @property
    def last_reload_error(self) -> FlagsFileError | None:
        """The error of the last failed reload of the flags file (None after a good one)."""
        return self._watcher.last_error if self._watcher is not None else None

    def _refresh_keys(self) -> None:
        keys = list(self._explicit_keys)
        keys += [k for k in self._file_doc.api_keys if k not in keys]
        self._keys.replace(keys or [DEFAULT_API_KEY])

    # flags -----------------------------------------------------------------------------

    def flags(self) -> list[dict[str, Any]]:
        """Every flag as its full wire object (copies)."""
        return copy.deepcopy(self._state.store.flags())

    def get_flag(self, key: str) -> dict[str, Any] | None:
        """One flag's wire object (a copy), or None."""
        flag = self._state.store.get_flag(key)
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
        return copy.deepcopy(self._state.set_flag(raw, replace=replace, version=version))

    def delete_flag(self, key: str) -> bool:
        """Delete a flag and push ``flag_deleted``; False if there was no such flag."""
        return self._state.delete_flag(key)

    # segments --------------------------------------------------------------------------

    def segments(self) -> list[dict[str, Any]]:
        """Every segment object (copies)."""
        return copy.deepcopy(self._state.store.segments())

    def get_segment(self, key: str) -> dict[str, Any] | None:
        """One segment (a copy), or None."""
        segment = self._state.store.get_segment(key)
        return copy.deepcopy(segment) if segment is not None else None

    def set_segment(self, key: str, /, **fields: Any) -> dict[str, Any]:
        """Create or replace a segment and push ``segment_updated`` to streams.

        >>> server.set_segment("beta-users", included=["u1", "u2"])     # doctest: +SKIP

        Raises :class:`InvalidFieldError` naming the bad field.
        """
        return copy.deepcopy(self._state.set_segment(key, fields))

    def delete_segment(self, key: str) -> bool:
        """Delete a segment and push ``segment_deleted``; False if absent."""
        return self._state.delete_segment(key)

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
        self._state.reset(new_flags, new_segments)
        if events:
            self.clear_events()
        if faults:
            self.clear_faults()
        if requests:
            self.clear_requests()

    # flags file ------------------------------------------------------------------------------

    def reload_flags_file(self) -> list[str]:
        """Re-read the flags file now and apply what changed; returns the changed keys.

        Flags whose content changed in the file get a new version and are pushed
        (``flag_updated``); flags removed from the file are deleted (``flag_deleted``).
        Flags the file did not change keep any value set through the admin API.
        Raises :class:`FlagsFileError` (and keeps serving the last good flags) when the
        file cannot be read or is invalid; it is also kept in :attr:`last_reload_error`.
        """
        if self._watcher is None:
            raise RuntimeError("this server has no flags file")
        return self._watcher.reload()

    def _apply_file(self, document: FlagsDocument) -> list[str]:
        """Apply a new version of the flags file (called by the watcher, one at a time)."""
        changed = self._state.apply_file(document, self._file_doc)
        self._file_doc = document
        self._refresh_keys()
        return changed

    # internals ---------------------------------------------------------------------------

    def _next_request_id(self) -> str:
        return f"req_{self._rid_prefix}{next(self._rid_counter):06d}"


def _environment_overrides(
    environment: str | None,
    environment_id: str | None,
    polling_interval_seconds: int | None,
    metadata: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The constructor's overrides of the flags file's environment fields, validated."""
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
    return overrides


def _new_admin_token() -> str:
    """A random admin token that never starts with ``-`` (a command line would read
    ``--admin-token -x...`` as an option)."""
    token = secrets.token_urlsafe(18)
    return "a" + token[1:] if token.startswith("-") else token
