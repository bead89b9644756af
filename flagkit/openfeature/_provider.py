"""``FlagKitProvider``: a FlagKit client behind OpenFeature's provider interface.

Every resolver is one ``FlagKitClient.evaluate()`` plus a translation of its result:
the value is checked against the requested type, FlagKit's reason and error code are
mapped to OpenFeature's (table in docs/openfeature.md), and the flag's own ``metadata``
(plus, by default, its version and the rule/segment that decided) becomes
``flag_metadata``. Provider events come from the client's listeners and from one small
status thread, so OpenFeature's handlers never run on the caller's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeVar

from openfeature.evaluation_context import EvaluationContext as OFContext
from openfeature.event import ProviderEvent, ProviderEventDetails
from openfeature.exception import (
    ErrorCode,
    InvalidContextError,
    ProviderFatalError,
    ProviderNotReadyError,
)
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata, ProviderStatus
from openfeature.track import TrackingEventDetails

from flagkit.client import ClientState, FlagKitClient
from flagkit.errors import AuthenticationError, ConfigurationError, FlagKitError
from flagkit.types.config import FlagKitOptions
from flagkit.types.flag import EvaluationReason, EvaluationResult, FlagState, FlagType

from ._context import to_flagkit_context

__all__ = ["FlagKitProvider"]

logger = logging.getLogger("flagkit.openfeature")

T = TypeVar("T")
_Object = Sequence[FlagValueType] | Mapping[str, FlagValueType]

_REASONS: Final[dict[EvaluationReason, str]] = {
    EvaluationReason.TARGET_MATCH: Reason.TARGETING_MATCH,
    EvaluationReason.SEGMENT_MATCH: Reason.TARGETING_MATCH,
    EvaluationReason.RULE_MATCH: Reason.TARGETING_MATCH,
    EvaluationReason.CACHED: Reason.STATIC,
    EvaluationReason.OVERRIDE: Reason.STATIC,
    EvaluationReason.BOOTSTRAP: Reason.CACHED,
    EvaluationReason.STALE_CACHE: Reason.STALE,
    EvaluationReason.DEFAULT: Reason.DEFAULT,
    EvaluationReason.FLAG_DISABLED: Reason.DISABLED,
    EvaluationReason.PREREQUISITE_FAILED: "PREREQUISITE_FAILED",
}
_ERRORS: Final[dict[str, ErrorCode]] = {
    "EVAL_FLAG_NOT_FOUND": ErrorCode.FLAG_NOT_FOUND,
    "EVAL_DEFAULT_USED": ErrorCode.FLAG_NOT_FOUND,  # a key that cannot name a flag
    "EVAL_TYPE_MISMATCH": ErrorCode.TYPE_MISMATCH,
    "EVAL_INVALID_CONTEXT": ErrorCode.INVALID_CONTEXT,
    "EVAL_RULE_ERROR": ErrorCode.PARSE_ERROR,
    "EVAL_SEGMENT_ERROR": ErrorCode.PARSE_ERROR,
}
_SIMPLE: Final = frozenset({EvaluationReason.CACHED, EvaluationReason.STALE_CACHE})
_KINDS: Final[dict[str, FlagType]] = {
    "boolean": FlagType.BOOLEAN,
    "string": FlagType.STRING,
    "integer": FlagType.NUMBER,
    "float": FlagType.NUMBER,
    "object": FlagType.JSON,
}


class _FlagInfo:
    """What the provider needs to know about one flag version beyond its result."""

    __slots__ = (
        "flag_type",
        "metadata",
        "rollout_fallthrough",
        "rollout_rules",
        "targeted",
        "version",
    )

    def __init__(self, state: FlagState | None, value: Any, version: int) -> None:
        raw = state.raw if state is not None else {}
        self.version = version
        self.flag_type = state.flag_type if state is not None else FlagType.infer(value)
        rules = raw.get("rules") or []
        fallthrough = raw.get("fallthrough") or {}
        self.targeted = bool(rules or raw.get("targets") or raw.get("prerequisites"))
        self.rollout_fallthrough = isinstance(fallthrough, dict) and "rollout" in fallthrough
        self.rollout_rules = frozenset(
            str(rule.get("id", f"rule-{index}"))
            for index, rule in enumerate(rules)
            if isinstance(rule, dict) and rule.get("rollout") is not None
        )
        meta = raw.get("metadata")
        self.metadata: dict[str, bool | int | float | str] = (
            {str(k): v for k, v in meta.items() if isinstance(v, (bool, int, float, str))}
            if isinstance(meta, dict)
            else {}
        )


class FlagKitProvider(AbstractProvider):
    """OpenFeature provider answering from a FlagKit client.

    >>> from openfeature import api                                   # doctest: +SKIP
    >>> api.set_provider(FlagKitProvider(api_key="sdk_...", local_port=8200))

    Build it from FlagKit options (the same keyword names as ``FlagKitOptions``: the
    provider owns that client, starting it in ``initialize`` and closing it in
    ``shutdown``), or around an existing client with ``client=`` (the provider then
    neither starts nor closes it: its owner does).

    ``evaluation_metadata`` (default ``True``) adds ``flagkit.version`` and, when a rule
    or segment decided, ``flagkit.ruleId``/``flagkit.segmentId`` to ``flag_metadata``;
    with ``False`` it holds only the flag's own ``metadata``. ``status_interval`` is how
    often (seconds) the status thread checks for stale flags.

    Raises ``ConfigurationError`` for invalid options, or for both ``client`` and options.
    Resolvers never raise and are thread-safe.
    """

    def __init__(
        self,
        client: FlagKitClient | None = None,
        *,
        evaluation_metadata: bool = True,
        status_interval: float = 1.0,
        **options: Any,
    ) -> None:
        super().__init__()
        if client is not None and options:
            raise ConfigurationError(
                f"FlagKitProvider: pass either client= or FlagKit options, not both "
                f"(got client and {sorted(options)})"
            )
        if not (isinstance(status_interval, (int, float)) and status_interval > 0):
            raise ConfigurationError(
                f"FlagKitProvider: status_interval must be a number of seconds > 0, "
                f"got {status_interval!r}"
            )
        self._owns = client is None
        self._client = client if client is not None else FlagKitClient(FlagKitOptions(**options))
        self._evaluation_metadata = bool(evaluation_metadata)
        self._interval = float(status_interval)
        self._info: dict[str, _FlagInfo] = {}
        self._lock = threading.Lock()
        self._status = ProviderStatus.NOT_READY
        self._error_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: list[Any] = []

    @property
    def client(self) -> FlagKitClient:
        """The FlagKit client this provider answers from."""
        return self._client

    def get_metadata(self) -> Metadata:
        return Metadata(name="FlagKit")

    # -- lifecycle ----------------------------------------------------------------------

    def initialize(self, evaluation_context: OFContext) -> None:
        """Start (owned client) or wait for (shared client) the first load.

        Raises ``ProviderFatalError`` for a rejected API key and ``ProviderNotReadyError``
        when the flags did not load within the client's ``timeout``; the client keeps
        retrying, and ``PROVIDER_READY`` follows when it succeeds.
        """
        client = self._client
        self._stop.clear()
        self._unsubscribe = [
            client.add_update_listener(self._on_update),
            client.add_ready_listener(self._on_ready),
            client.add_error_listener(self._on_error),
        ]
        self._thread = threading.Thread(target=self._watch, name="flagkit-openfeature", daemon=True)
        self._thread.start()
        try:
            if self._owns:
                client.initialize()
            elif not client.wait_for_ready(client.options.timeout):
                if client.state is ClientState.FAILED:
                    raise AuthenticationError("AUTH_INVALID_KEY", "the API key was rejected")
                raise ProviderNotReadyError("FlagKit flags not loaded yet")
        except AuthenticationError as exc:
            self._set_status(ProviderStatus.FATAL)
            raise ProviderFatalError(f"FlagKit rejected the API key: {exc.code}") from exc
        except FlagKitError as exc:
            self._set_status(ProviderStatus.ERROR)
            raise ProviderNotReadyError(f"FlagKit flags not loaded: {exc}") from exc
        self._set_status(ProviderStatus.READY)

    def shutdown(self) -> None:
        """Stop the status thread, drop the listeners, and close an owned client."""
        self._stop.set()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        if self._owns:
            self._client.close()
        self._set_status(ProviderStatus.NOT_READY)

    # -- resolvers ----------------------------------------------------------------------

    def resolve_boolean_details(
        self, flag_key: str, default_value: bool, evaluation_context: OFContext | None = None
    ) -> FlagResolutionDetails[bool]:
        return self._resolve("boolean", flag_key, default_value, evaluation_context)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: OFContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve("string", flag_key, default_value, evaluation_context)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: OFContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve("integer", flag_key, default_value, evaluation_context)

    def resolve_float_details(
        self, flag_key: str, default_value: float, evaluation_context: OFContext | None = None
    ) -> FlagResolutionDetails[float]:
        return self._resolve("float", flag_key, default_value, evaluation_context)

    def resolve_object_details(
        self, flag_key: str, default_value: _Object, evaluation_context: OFContext | None = None
    ) -> FlagResolutionDetails[_Object]:
        return self._resolve("object", flag_key, default_value, evaluation_context)

    def _resolve(
        self, kind: str, key: str, default: T, context: OFContext | None
    ) -> FlagResolutionDetails[T]:
        try:
            return self._resolve_unsafe(kind, key, default, context)
        except InvalidContextError as exc:
            return _error(default, ErrorCode.INVALID_CONTEXT, exc.error_message)
        except Exception as exc:  # the lookup boundary: never raise to the caller
            logger.exception("resolving %s failed; serving the default", key)
            return _error(default, ErrorCode.GENERAL, f"{type(exc).__name__}: {exc}")

    def _resolve_unsafe(
        self, kind: str, key: str, default: T, context: OFContext | None
    ) -> FlagResolutionDetails[T]:
        client = self._client
        result = client.evaluate(key, to_flagkit_context(context), default=default)
        code = result.error_code
        if code is not None:
            state = client.state
            if state is ClientState.FAILED:
                return _error(default, ErrorCode.PROVIDER_FATAL, "FlagKit rejected the API key")
            if code == "EVAL_FLAG_NOT_FOUND" and state is not ClientState.READY:
                return _error(default, ErrorCode.PROVIDER_NOT_READY, "FlagKit flags not loaded yet")
            return _error(default, _ERRORS.get(code, ErrorCode.GENERAL), result.error_message)
        info = self._flag_info(key, result)
        value = _coerce(kind, result.value, info.flag_type)
        if value is _MISMATCH:
            return _error(
                default,
                ErrorCode.TYPE_MISMATCH,
                f"flag {key!r} is a {info.flag_type.value} flag, asked for as {kind}",
            )
        metadata = self._metadata(info, result)
        if result.reason is EvaluationReason.FLAG_DISABLED or (
            # A disabled flag without targeting still carries its value in FlagKit (what
            # SDKs that know no targeting serve); to OpenFeature it is off.
            not result.enabled and result.reason in _SIMPLE
        ):
            return FlagResolutionDetails(default, reason=Reason.DISABLED, flag_metadata=metadata)
        return FlagResolutionDetails(
            value,
            reason=self._reason(info, result),
            variant=result.variation_id,
            flag_metadata=metadata,
        )

    def _flag_info(self, key: str, result: EvaluationResult[Any]) -> _FlagInfo:
        info = self._info.get(key)
        if info is None or info.version != result.version:
            info = _FlagInfo(self._client.snapshot.get_state(key), result.value, result.version)
            self._info[key] = info
        return info

    def _reason(self, info: _FlagInfo, result: EvaluationResult[Any]) -> str:
        reason = result.reason
        if reason is EvaluationReason.FALLTHROUGH:
            if info.rollout_fallthrough and result.variation_id is not None:
                return Reason.SPLIT
            return Reason.DEFAULT if info.targeted else Reason.STATIC
        if reason is EvaluationReason.RULE_MATCH and result.rule_id in info.rollout_rules:
            return Reason.SPLIT
        return _REASONS.get(reason, Reason.UNKNOWN)

    def _metadata(
        self, info: _FlagInfo, result: EvaluationResult[Any]
    ) -> dict[str, bool | int | float | str]:
        if not self._evaluation_metadata:
            return dict(info.metadata)
        out = dict(info.metadata)
        out["flagkit.version"] = result.version
        if result.rule_id is not None:
            out["flagkit.ruleId"] = result.rule_id
        if result.segment_id is not None:
            out["flagkit.segmentId"] = result.segment_id
        return out

    # -- tracking -----------------------------------------------------------------------

    def track(
        self,
        tracking_event_name: str,
        evaluation_context: OFContext | None = None,
        tracking_event_details: TrackingEventDetails | None = None,
    ) -> None:
        """Record ``tracking_event_name`` through FlagKit's event pipeline.

        The details' ``value`` is the event data's ``value``, its attributes the other
        data keys; the event carries ``evaluation_context`` (mapped to a FlagKit context).
        An invalid event or context is logged and dropped, like ``FlagKitClient.track``.
        """
        data: dict[str, Any] = {}
        if tracking_event_details is not None:
            data.update(tracking_event_details.attributes)
            if tracking_event_details.value is not None:
                data["value"] = tracking_event_details.value
        try:
            context = to_flagkit_context(evaluation_context)
        except InvalidContextError as exc:
            logger.warning("track(%r): %s; event dropped", tracking_event_name, exc.error_message)
            return
        if context is None:
            self._client.track(tracking_event_name, data or None)
            return
        with self._client.context_scope(context):
            self._client.track(tracking_event_name, data or None)

    # -- status and events --------------------------------------------------------------

    def _set_status(self, status: ProviderStatus) -> bool:
        with self._lock:
            if self._status is status:
                return False
            self._status = status
            return True

    def _on_update(self, flags: list[FlagState]) -> None:
        keys = [flag.key for flag in flags]
        for key in keys:
            self._info.pop(key, None)
        self.emit(
            ProviderEvent.PROVIDER_CONFIGURATION_CHANGED,
            ProviderEventDetails(flags_changed=keys, message="FlagKit flags updated"),
        )

    def _on_ready(self) -> None:
        # After a failed initialize the client keeps retrying; its success is READY.
        if self._set_status(ProviderStatus.READY):
            self.emit(ProviderEvent.PROVIDER_READY, ProviderEventDetails(message="flags loaded"))

    def _on_error(self, error: Exception) -> None:
        if isinstance(error, AuthenticationError):
            if self._set_status(ProviderStatus.FATAL):
                self.emit(
                    ProviderEvent.PROVIDER_ERROR,
                    ProviderEventDetails(
                        message="FlagKit rejected the API key", error_code=ErrorCode.PROVIDER_FATAL
                    ),
                )
            return
        self._error_at = time.time()

    def _watch(self) -> None:
        """Report STALE while the flags are older than ``cache_ttl`` or the last update
        failed, and READY again once fresh flags arrive."""
        while not self._stop.wait(self._interval):
            try:
                self._check_freshness()
            except Exception:  # one failed check must not end the thread
                logger.exception("FlagKit OpenFeature status check failed")

    def _check_freshness(self) -> None:
        client = self._client
        if client.state is not ClientState.READY:
            return
        snapshot = client.snapshot
        error_at = self._error_at
        failing = error_at is not None and snapshot.fetched_at <= error_at
        stale = failing or not snapshot.is_fresh()
        current = self._status
        if stale and current is ProviderStatus.READY:
            if self._set_status(ProviderStatus.STALE):
                why = "updates are failing" if failing else "flags are older than cache_ttl"
                self.emit(ProviderEvent.PROVIDER_STALE, ProviderEventDetails(message=why))
        elif not stale and current in (ProviderStatus.STALE, ProviderStatus.ERROR):
            self._error_at = None
            if self._set_status(ProviderStatus.READY):
                self.emit(
                    ProviderEvent.PROVIDER_READY, ProviderEventDetails(message="flags fresh again")
                )


_MISMATCH: Final = object()


def _coerce(kind: str, value: Any, flag_type: FlagType) -> Any:
    """``value`` as the requested OpenFeature type, or ``_MISMATCH``.

    The flag's declared type decides first (a boolean flag is never an integer, although
    Python's ``bool`` is an ``int``); numbers convert between integer and float when no
    information is lost.
    """
    if _KINDS[kind] is not flag_type:
        return _MISMATCH
    if kind == "boolean":
        return value if isinstance(value, bool) else _MISMATCH
    if kind == "string":
        return value if isinstance(value, str) else _MISMATCH
    if kind == "object":
        return value if isinstance(value, (dict, list)) else _MISMATCH
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _MISMATCH
    if kind == "float":
        return float(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else _MISMATCH
    return value


def _error(default: T, code: ErrorCode, message: str | None) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        default, error_code=code, error_message=message, reason=Reason.ERROR
    )
