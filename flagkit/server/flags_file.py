"""Flags files: parse and validate the document the local server serves (JSON or YAML).

All validation of flags-file content lives here, in :func:`parse_flags_document`; the
Python API and the admin API reuse :func:`normalize_flag` and :func:`normalize_segment`
for single objects. A file looks like this (every top-level key is optional)::

    {
      "environment": "development",          # /sdk/init "environment"
      "environmentId": "env_local",
      "projectId": "proj_local",
      "organizationId": "org_local",
      "pollingIntervalSeconds": 30,
      "metadata": {},                        # /sdk/init "metadata", served untouched
      "apiKeys": ["sdk_demo_key_123456"],
      "flags": [
        {"key": "dark-mode", "value": true},                       # flagType inferred
        {"key": "banner", "flagType": "string", "value": "Hi", "enabled": false,
         "rules": [...]}                                           # targeting: untouched
      ],
      "segments": [{"key": "beta-users", ...}]                    # untouched
    }

``version`` and ``lastModified`` of a flag are managed by the server and ignored here.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from flagkit.server.file_lines import json_line, path_tokens, yaml_line
from flagkit.types.flag import FlagType
from flagkit.utils.validators import api_key_problem, flag_key_problem

__all__ = [
    "EnvironmentInfo",
    "FlagsDocument",
    "FlagsFileError",
    "InvalidFieldError",
    "load_flags_file",
    "normalize_flag",
    "normalize_flags",
    "normalize_segment",
    "parse_flags_bytes",
    "parse_flags_document",
    "validate_api_key",
]

logger = logging.getLogger("flagkit.server")

_SERVER_MANAGED: Final = frozenset({"version", "lastModified"})
_KNOWN_TOP_LEVEL: Final = frozenset(
    {
        "$schema",
        "description",
        "environment",
        "environmentId",
        "projectId",
        "organizationId",
        "pollingIntervalSeconds",
        "metadata",
        "apiKeys",
        "flags",
        "segments",
    }
)
_MAX_DEPTH: Final = 64
_MAX_SEGMENT_KEY_LENGTH: Final = 256
_FLAG_TYPES: Final = tuple(t.value for t in FlagType)


class InvalidFieldError(ValueError):
    """A field of a flag, segment or document is invalid.

    ``field`` is the path of the field (``flags[2].flagType``), ``reason`` what is wrong.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class FlagsFileError(ValueError):
    """A flags file cannot be read, parsed or validated.

    Attributes: ``path`` (the file), ``line`` (1-based, ``None`` when unknown), ``field``
    (path of the offending field, ``None`` for syntax errors) and ``reason``.
    ``str(error)`` reads ``flags.json:12: flags[2].flagType: must be one of ...``.
    """

    def __init__(self, path: str, line: int | None, reason: str, field: str | None = None):
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {field}: {reason}" if field else f"{where}: {reason}")
        self.path = path
        self.line = line
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class EnvironmentInfo:
    """Environment metadata served by ``/sdk/init`` (all from the flags file, if given)."""

    name: str = "development"
    id: str = "env_local"
    project_id: str = "proj_local"
    organization_id: str = "org_local"
    polling_interval_seconds: int | None = None  # None: not set (the server then sends 0)
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FlagsDocument:
    """A validated flags file: normalized flags, untouched segments, keys, environment.

    Each flag is a dict with ``key``, ``value``, ``enabled``, ``flagType`` and any extra
    (targeting) fields; ``version``/``lastModified`` are added by the server's store.
    """

    flags: tuple[dict[str, Any], ...] = ()
    segments: tuple[dict[str, Any], ...] = ()
    api_keys: tuple[str, ...] = ()
    environment: EnvironmentInfo = field(default_factory=EnvironmentInfo)


# --------------------------------------------------------------------------------------
# Single objects (shared with the Python and admin APIs)
# --------------------------------------------------------------------------------------


def _describe(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _check_json(value: object, where: str, depth: int = 0) -> None:
    """Raise InvalidFieldError unless ``value`` is plain JSON (finite numbers, str keys)."""
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidFieldError(where, f"must be a finite number, got {value!r}")
        return
    if depth >= _MAX_DEPTH:
        raise InvalidFieldError(where, f"is nested deeper than {_MAX_DEPTH} levels")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidFieldError(where, f"has a non-string key {k!r}")
            _check_json(v, f"{where}.{k}", depth + 1)
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]", depth + 1)
        return
    raise InvalidFieldError(where, f"is not a JSON value (got {_describe(value)})")


def _type_matches(flag_type: str, value: object) -> bool:
    if flag_type == "boolean":
        return isinstance(value, bool)
    if flag_type == "string":
        return isinstance(value, str)
    if flag_type == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return value is None or isinstance(value, (dict, list))


def _check_flag_key(key: object, where: str) -> str:
    """The client's flag-key rule, so that every flag the server serves is usable."""
    if key is None:
        raise InvalidFieldError(
            where, "is required: a non-empty string of letters, digits, '_' and '-'"
        )
    problem = flag_key_problem(key)
    if problem is not None:
        raise InvalidFieldError(where, problem)
    assert isinstance(key, str)
    return key


def _check_segment_key(key: object, where: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise InvalidFieldError(where, f"segment key must be a non-empty string, got {key!r}")
    if len(key) > _MAX_SEGMENT_KEY_LENGTH:
        raise InvalidFieldError(
            where, f"segment key is longer than {_MAX_SEGMENT_KEY_LENGTH} characters"
        )
    if any(ord(ch) < 32 or ch in "/?#" for ch in key):
        raise InvalidFieldError(
            where, f"segment key {key!r} contains '/', '?', '#' or a control character"
        )
    return key


def normalize_flag(
    raw: object, where: str = "flag", *, previous: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Validate one flag object and return it normalized (without version/lastModified).

    ``flagType`` is inferred from ``value`` when absent (bool -> boolean, str -> string,
    int/float -> number, object/array/null -> json) and must match ``value`` when given;
    ``enabled`` defaults to true; other fields are kept untouched. With ``previous`` (the
    stored flag), missing fields are taken from it (a merge), and a previous ``flagType``
    that no longer fits a new ``value`` is re-inferred.

    Raises :class:`InvalidFieldError` naming the field (``{where}.enabled``, ...).
    Thread-safe (pure).
    """
    if not isinstance(raw, Mapping):
        raise InvalidFieldError(where, f"must be an object, got {_describe(raw)}")
    merged: dict[str, Any] = {}
    if previous is not None:
        merged.update((k, v) for k, v in previous.items() if k not in _SERVER_MANAGED)
        if (
            "value" in raw
            and "flagType" not in raw
            and "flagType" in merged
            and not _type_matches(merged["flagType"], raw["value"])
        ):
            del merged["flagType"]
    merged.update((k, v) for k, v in raw.items() if k not in _SERVER_MANAGED)
    key = _check_flag_key(merged.get("key"), f"{where}.key")
    if "value" not in merged:
        raise InvalidFieldError(f"{where}.value", "is required")
    value = merged["value"]
    _check_json(value, f"{where}.value")
    enabled = merged.get("enabled", True)
    if not isinstance(enabled, bool):
        raise InvalidFieldError(f"{where}.enabled", f"must be a boolean, got {enabled!r}")
    flag_type = merged.get("flagType")
    if flag_type is None:
        flag_type = FlagType.infer(value).value
    elif flag_type not in _FLAG_TYPES:
        raise InvalidFieldError(
            f"{where}.flagType", f"must be one of {', '.join(_FLAG_TYPES)}, got {flag_type!r}"
        )
    elif not _type_matches(flag_type, value):
        allowed = "an object, an array or null" if flag_type == "json" else f"a {flag_type}"
        raise InvalidFieldError(
            f"{where}.value", f"must be {allowed} for flagType {flag_type!r}, got {value!r}"
        )
    out: dict[str, Any] = {"key": key, "value": value, "enabled": enabled, "flagType": flag_type}
    for name, extra in merged.items():
        if name not in out:
            if not isinstance(name, str):
                raise InvalidFieldError(where, f"has a non-string field name {name!r}")
            _check_json(extra, f"{where}.{name}")
            out[name] = extra
    return out


def normalize_flags(
    flags: Sequence[Mapping[str, Any]] | Mapping[str, Any] | None, where: str = "flags"
) -> list[dict[str, Any]]:
    """Normalize the ``flags=`` argument of the Python API.

    Accepts a list of flag objects (each as in a flags file) or a ``{key: value}`` mapping
    (type inferred; a dict value is a JSON flag's value, not a flag object).
    Raises :class:`InvalidFieldError` for a bad flag or a duplicate key.
    """
    if flags is None:
        return []
    if isinstance(flags, Mapping):
        items: list[object] = [{"key": k, "value": v} for k, v in flags.items()]
    elif isinstance(flags, (str, bytes)) or not isinstance(flags, Sequence):
        raise InvalidFieldError(
            where, f"must be a list of flags or a mapping, got {_describe(flags)}"
        )
    else:
        items = list(flags)
    return _normalize_keyed(items, where, "flag", normalize_flag)


def _normalize_keyed(
    items: Sequence[object],
    where: str,
    what: str,
    normalize: Callable[[object, str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """``normalize(item, "where[i]")`` for each item, insisting the ``key``s are unique.

    Raises :class:`InvalidFieldError` at ``where[i].key`` for a repeated key (naming the
    first position that has it), or whatever ``normalize`` raises.
    """
    out: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        entry = normalize(item, f"{where}[{index}]")
        key = entry["key"]
        if key in seen:
            raise InvalidFieldError(
                f"{where}[{index}].key",
                f"duplicate {what} key {key!r} (also {where}[{seen[key]}])",
            )
        seen[key] = index
        out.append(entry)
    return out


def normalize_segment(raw: object, where: str = "segment") -> dict[str, Any]:
    """Validate a segment object (a JSON object with a non-empty string ``key``); copy it.

    The rest of the segment is kept untouched (its meaning belongs to targeting).
    Raises :class:`InvalidFieldError`.
    """
    if not isinstance(raw, Mapping):
        raise InvalidFieldError(where, f"must be an object, got {_describe(raw)}")
    _check_segment_key(raw.get("key"), f"{where}.key")
    segment = dict(raw)
    _check_json(segment, where)
    return segment


def validate_api_key(key: object, where: str = "api key") -> str:
    """Return ``key`` if the client would accept it, else raise :class:`InvalidFieldError`.

    The one rule of :func:`flagkit.utils.validators.api_key_problem`: a ``sdk_``, ``srv_``
    or ``cli_`` prefix, something after it, printable ASCII without whitespace (so the
    README's ``sdk_...`` placeholder is accepted). The message never contains the key.
    """
    problem = api_key_problem(key)
    if problem is not None:
        raise InvalidFieldError(where, problem)
    assert isinstance(key, str)
    return key


# --------------------------------------------------------------------------------------
# Whole documents
# --------------------------------------------------------------------------------------


def _validate_targeting(doc: Mapping[str, Any]) -> None:
    """Validate the targeting fields (rules, segments, rollouts, ...) of a flags document.

    ==> LEAD: wire ``flagkit.core.targeting.validate_flags_document(doc)`` here. <==

    It raises ``TargetingError`` (a ``ValueError`` with a ``.path`` such as
    ``flags[2].rules[0].clauses[1].op``); every caller of this function already turns a
    ``ValueError`` carrying ``path`` into a :class:`FlagsFileError` with the line of that
    path (or a 400 from the admin API). ``doc`` has top-level ``flags`` and ``segments``
    lists in the same order as in the file. This is the single place that needs the call.
    """
    from flagkit.core.targeting import validate_flags_document

    validate_flags_document(doc)


def check_targeting(doc: Mapping[str, Any]) -> None:
    """Run :func:`_validate_targeting`, turning its error into :class:`InvalidFieldError`."""
    try:
        _validate_targeting(doc)
    except InvalidFieldError:
        raise
    except ValueError as exc:
        path = getattr(exc, "path", None)
        reason = getattr(exc, "reason", None)
        raise InvalidFieldError(
            path if isinstance(path, str) and path else "(targeting)",
            reason if isinstance(reason, str) and reason else str(exc),
        ) from exc


def _environment(doc: Mapping[str, Any]) -> EnvironmentInfo:
    defaults = EnvironmentInfo()
    strings: dict[str, str] = {}
    for name, default in (
        ("environment", defaults.name),
        ("environmentId", defaults.id),
        ("projectId", defaults.project_id),
        ("organizationId", defaults.organization_id),
    ):
        value = doc.get(name, default)
        if not isinstance(value, str) or not value:
            raise InvalidFieldError(name, f"must be a non-empty string, got {value!r}")
        strings[name] = value
    interval = doc.get("pollingIntervalSeconds")
    if interval is not None and (
        isinstance(interval, bool) or not isinstance(interval, int) or interval < 0
    ):
        raise InvalidFieldError(
            "pollingIntervalSeconds", f"must be an integer >= 0, got {interval!r}"
        )
    metadata = doc.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InvalidFieldError("metadata", f"must be an object, got {_describe(metadata)}")
    _check_json(metadata, "metadata")
    return EnvironmentInfo(
        name=strings["environment"],
        id=strings["environmentId"],
        project_id=strings["projectId"],
        organization_id=strings["organizationId"],
        polling_interval_seconds=interval,
        metadata=metadata,
    )


def _build_document(doc: object) -> FlagsDocument:
    if isinstance(doc, list):  # a bare list of flags is accepted as a whole document
        doc = {"flags": doc}
    if not isinstance(doc, dict):
        raise InvalidFieldError("(document)", f"must be an object, got {_describe(doc)}")
    unknown = sorted(str(k) for k in doc if k not in _KNOWN_TOP_LEVEL)
    if unknown:
        logger.warning("flags file: ignoring unknown top-level keys: %s", ", ".join(unknown))
    raw_flags = doc.get("flags", [])
    if not isinstance(raw_flags, list):
        raise InvalidFieldError("flags", f"must be an array, got {_describe(raw_flags)}")
    flags = normalize_flags(raw_flags)
    raw_segments = doc.get("segments", [])
    if not isinstance(raw_segments, list):
        raise InvalidFieldError("segments", f"must be an array, got {_describe(raw_segments)}")
    segments = _normalize_keyed(raw_segments, "segments", "segment", normalize_segment)
    raw_keys = doc.get("apiKeys", [])
    if not isinstance(raw_keys, list):
        raise InvalidFieldError(
            "apiKeys", f"must be an array of strings, got {_describe(raw_keys)}"
        )
    keys = tuple(validate_api_key(k, f"apiKeys[{i}]") for i, k in enumerate(raw_keys))
    environment = _environment(doc)
    check_targeting(doc)
    return FlagsDocument(tuple(flags), tuple(segments), keys, environment)


def _is_yaml(path: str) -> bool:
    return path.lower().endswith((".yaml", ".yml"))


def parse_flags_document(text: str, path: str = "<flags>") -> FlagsDocument:
    """Parse and validate the text of a flags file (YAML when ``path`` ends in .yaml/.yml).

    >>> doc = parse_flags_document('{"flags": [{"key": "a", "value": true}]}', "f.json")
    >>> doc.flags[0]["flagType"]
    'boolean'

    Raises :class:`FlagsFileError` with the path, the line (when known), the offending
    field and the reason, for syntax errors and invalid content alike. Thread-safe.
    """
    if not text.strip():
        raise FlagsFileError(path, None, "the file is empty")
    yaml_mode = _is_yaml(path)
    if yaml_mode:
        loaded = _load_yaml(text, path)
    else:
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FlagsFileError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
        except RecursionError:
            raise FlagsFileError(path, None, "invalid JSON: nested too deeply") from None
    try:
        return _build_document(loaded)
    except InvalidFieldError as exc:
        tokens = path_tokens(exc.field)
        line = yaml_line(text, tokens) if yaml_mode else json_line(text, tokens)
        raise FlagsFileError(path, line, exc.reason, exc.field) from None


def load_flags_file(path: str | Path) -> FlagsDocument:
    """Read and parse a flags file; raises :class:`FlagsFileError` (also when unreadable)."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise FlagsFileError(name, None, f"cannot read the file: {exc.strerror or exc}") from None
    return parse_flags_bytes(data, name)


def parse_flags_bytes(data: bytes, path: str = "<flags>") -> FlagsDocument:
    """Decode a flags file's bytes (UTF-8, optional BOM) and parse them.

    Raises :class:`FlagsFileError` (with the line of the first bad byte when the bytes are
    not UTF-8).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FlagsFileError(path, line, "the file is not valid UTF-8") from None
    return parse_flags_document(text, path)


def _load_yaml(text: str, path: str) -> object:
    try:
        import yaml
    except ImportError:
        raise FlagsFileError(
            path, None, "YAML flags files need PyYAML (pip install pyyaml), or use JSON"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(p for p in (exc.context, exc.problem) if p) or "invalid YAML"
        raise FlagsFileError(path, line, f"invalid YAML: {reason}") from None
    except yaml.YAMLError as exc:
        raise FlagsFileError(path, None, f"invalid YAML: {exc}") from None
