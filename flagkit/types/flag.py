"""Flag state as served by the FlagKit API, and the result of an evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any, Generic, TypeVar

FlagValue = bool | str | int | float | dict[str, Any] | list[Any] | None
T = TypeVar("T")


class FlagType(str, Enum):
    """The declared type of a flag's value (``flagType`` on the wire)."""

    BOOLEAN = "boolean"
    STRING = "string"
    NUMBER = "number"
    JSON = "json"

    @classmethod
    def infer(cls, value: object) -> FlagType:
        """The type of ``value`` (bool before number; dict, list and None are JSON)."""
        if isinstance(value, bool):
            return cls.BOOLEAN
        if isinstance(value, str):
            return cls.STRING
        if isinstance(value, (int, float)):
            return cls.NUMBER
        return cls.JSON


class EvaluationReason(str, Enum):
    """Why an evaluation returned its value (exact strings of docs/protocol.md §8.3)."""

    FLAG_NOT_FOUND = "FLAG_NOT_FOUND"
    FLAG_DISABLED = "FLAG_DISABLED"
    ENVIRONMENT_NOT_CONFIGURED = "ENVIRONMENT_NOT_CONFIGURED"
    FALLTHROUGH = "FALLTHROUGH"
    RULE_MATCH = "RULE_MATCH"
    SEGMENT_MATCH = "SEGMENT_MATCH"
    TARGET_MATCH = "TARGET_MATCH"
    PREREQUISITE_FAILED = "PREREQUISITE_FAILED"
    DEFAULT = "DEFAULT"
    EVALUATION_ERROR = "EVALUATION_ERROR"
    CACHED = "CACHED"
    STALE_CACHE = "STALE_CACHE"
    BOOTSTRAP = "BOOTSTRAP"
    OVERRIDE = "OVERRIDE"

    def __str__(self) -> str:
        return self.value


_FLAG_TYPES: dict[str, FlagType] = {member.value: member for member in FlagType}


@dataclass(slots=True)  # no per-instance __dict__: 100,000 flags load faster, hold less
class FlagState:
    """One flag as the server sends it (docs/protocol.md §4.1), plus optional targeting fields.

    ``raw`` keeps the wire object untouched (targeting fields included) so the evaluator
    and the persisted cache see exactly what the server sent.
    """

    key: str
    value: FlagValue
    enabled: bool = True
    version: int = 0
    flag_type: FlagType = FlagType.BOOLEAN
    last_modified: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], *, stream: bool = False, copy: bool = True
    ) -> FlagState:
        """Parse a wire object; raises ``ValueError``/``TypeError`` on a malformed one.

        ``stream=True`` applies the streaming defaults of §4.1 (``enabled`` true,
        ``version`` 0, missing ``flagType`` inferred from the value). ``copy=False`` keeps
        ``data`` itself as ``raw`` (for a freshly decoded payload nobody else holds: a large
        flag set then loads without a second dict per flag).
        """
        if not isinstance(data, dict):
            raise TypeError(f"flag must be a JSON object, got {type(data).__name__}")
        key = data["key"]
        if not isinstance(key, str) or not key:
            raise ValueError(f"flag key must be a non-empty string, got {key!r}")
        if "value" not in data:
            raise ValueError(f"flag {key!r} has no 'value'")
        value = data["value"]
        enabled = data.get("enabled", True) if stream else data["enabled"]
        if not isinstance(enabled, bool):
            raise TypeError(f"flag {key!r}: 'enabled' must be a boolean, got {enabled!r}")
        version = data.get("version", 0) if stream else data["version"]
        if isinstance(version, bool) or not isinstance(version, int):
            raise TypeError(f"flag {key!r}: 'version' must be an integer, got {version!r}")
        raw_type = data.get("flagType")
        if raw_type is None:
            flag_type = FlagType.infer(value) if stream else FlagType.BOOLEAN
        else:
            # A dict lookup: ``FlagType(raw_type)`` costs microseconds per flag.
            found = _FLAG_TYPES.get(raw_type) if isinstance(raw_type, str) else None
            if found is None:
                raise ValueError(f"flag {key!r}: unknown flagType {raw_type!r}")
            flag_type = found
        last_modified = data.get("lastModified") or ""
        if not isinstance(last_modified, str):
            raise TypeError(f"flag {key!r}: 'lastModified' must be a string")
        return cls(
            key, value, enabled, version, flag_type, last_modified, dict(data) if copy else data
        )

    def to_dict(self) -> dict[str, Any]:
        """The wire object (the original one, with the six core fields as held)."""
        out = dict(self.raw)
        out.update(
            key=self.key,
            value=self.value,
            enabled=self.enabled,
            version=self.version,
            flagType=self.flag_type.value,
            lastModified=self.last_modified,
        )
        return out


@dataclass
class EvaluationResult(Generic[T]):
    """The full outcome of evaluating one flag.

    ``error_code`` is set (e.g. ``"EVAL_TYPE_MISMATCH"``) when the caller's default was
    served because something went wrong; ``error_message`` says what.
    """

    flag_key: str
    value: T
    enabled: bool
    reason: EvaluationReason
    version: int = 0
    variation_id: str | None = None
    rule_id: str | None = None
    segment_id: str | None = None
    timestamp: datetime = field(default_factory=datetime.now)
    error_code: str | None = None
    error_message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (camelCase, as in docs/protocol.md §4.7)."""
        return {
            "flagKey": self.flag_key,
            "value": self.value,
            "enabled": self.enabled,
            "reason": self.reason.value,
            "version": self.version,
            "variationId": self.variation_id,
            "ruleId": self.rule_id,
            "segmentId": self.segment_id,
            "timestamp": self.timestamp.isoformat(),
            "errorCode": self.error_code,
        }
