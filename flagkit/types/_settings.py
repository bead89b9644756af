"""Options from settings: the conversions behind :meth:`FlagKitOptions.from_mapping`.

Django's ``FLAGKIT`` dict and Flask's ``FLAGKIT_*`` keys hold option names in any case and,
when they come from environment variables, strings. :func:`normalise` lower-cases the
names, rejects unknown ones (suggesting the closest), converts strings to the option's type,
builds option groups from nested mappings and imports dotted paths for callables. The
dataclasses then validate the values as for any other caller.
"""

from __future__ import annotations

import difflib
import importlib
import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, Final

from flagkit.errors import ConfigurationError
from flagkit.errors.sanitizer import ErrorSanitizationConfig
from flagkit.types.option_groups import (
    CircuitBreakerOptions,
    EvaluationJitterConfig,
    RetryOptions,
    StreamingOptions,
)
from flagkit.utils.bootstrap import BootstrapVerificationOptions

__all__ = ["GROUP_TYPES", "normalise"]

GROUP_TYPES: Final[dict[str, type]] = {
    "retry": RetryOptions,
    "circuit_breaker": CircuitBreakerOptions,
    "streaming": StreamingOptions,
    "bootstrap_verification": BootstrapVerificationOptions,
    "evaluation_jitter": EvaluationJitterConfig,
    "error_sanitization": ErrorSanitizationConfig,
}
"""Option name -> the dataclass of that option group."""

_IMPORTABLE: Final = frozenset({"logger", "on_ready", "on_error", "on_update"})

_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off"})
_NONE: Final = frozenset({"", "none", "null"})


def _display(key: str, name: str) -> str:
    """``name`` spelt the way the user spells keys (upper case if ``key`` is)."""
    return name.upper() if key.isupper() else name


def normalise(
    cls: type, mapping: Mapping[str, Any], *, source: str, path: str = "", shown: str = ""
) -> dict[str, Any]:
    """Lower-case the keys of ``mapping``, reject unknown ones, convert strings and groups.

    ``path`` is the canonical prefix of nested option names (``"streaming."``), ``shown``
    the same prefix as the user spelt it (``"STREAMING."``), for messages.
    """
    if not isinstance(mapping, Mapping):
        where = shown.rstrip(".") or source
        raise ConfigurationError(
            f"{where} must be a mapping of option names to values, got a {type(mapping).__name__}",
            option=path.rstrip("."),
        )
    known = {f.name: f for f in fields(cls) if f.init}
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise ConfigurationError(
                f"{source} keys must be option names (str), got {key!r}",
                code="CONFIG_INVALID_OPTION",
                option=repr(key),
            )
        name = key.strip().lower()
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
            hint = f"; did you mean {shown}{_display(key, close[0])}?" if close else ""
            raise ConfigurationError(
                f"unknown option {shown}{key} in {source}{hint} (known: "
                f"{', '.join(sorted(_display(key, n) for n in known))})",
                code="CONFIG_INVALID_OPTION",
                option=f"{path}{key}",
            )
        if name in given:
            raise ConfigurationError(
                f"option {path}{name} is given twice in {source} (as {given[name]!r} and {key!r})",
                option=f"{path}{name}",
            )
        given[name] = key
        if not path and name in GROUP_TYPES and isinstance(value, Mapping):
            group = GROUP_TYPES[name]
            nested = normalise(group, value, source=source, path=f"{name}.", shown=f"{key}.")
            out[name] = group(**nested)
        else:
            out[name] = _convert(known[name].type, f"{path}{name}", name, value, top=not path)
    return out


def _convert(annotation: object, option: str, name: str, value: object, *, top: bool) -> object:
    """Convert one string from settings to the option's type; other values pass unchanged."""
    if top and name in _IMPORTABLE and isinstance(value, str):
        return _import_object(option, value)
    if not isinstance(value, str) or not isinstance(annotation, str):
        return value
    kind = annotation.replace(" ", "")
    optional = kind.endswith("|None")
    base = kind.removesuffix("|None")
    text = value.strip()
    if optional and text.lower() in _NONE:
        return None
    if base == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ConfigurationError(
            f"{option} must be a bool (true/false, 1/0, yes/no, on/off), got {value!r}",
            option=option,
        )
    if base == "int":
        try:
            return int(text)
        except ValueError:
            raise ConfigurationError(
                f"{option} must be an int, got {value!r}", option=option
            ) from None
    if base == "float":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise ConfigurationError(
                f"{option} must be a finite number, got {value!r}", option=option
            )
        return number
    return value


def _import_object(option: str, path: str) -> object:
    """Import ``"pkg.module.attr"`` or ``"pkg.module:attr"``; errors name the option."""
    text = path.strip()
    if ":" in text:
        module_name, _, attr_path = text.partition(":")
        candidates = [(module_name, attr_path.split("."))]
    else:
        parts = text.split(".")
        candidates = [(".".join(parts[:i]), parts[i:]) for i in range(len(parts) - 1, 0, -1)]
    if not text or not candidates or not all(candidates[0]):
        raise ConfigurationError(
            f"{option} must be an object or a dotted import path like 'pkg.module.attr', "
            f"got {path!r}",
            option=option,
        )
    problem = "nothing importable"
    for module_name, attrs in candidates:
        try:
            obj: object = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                problem = f"no module named {exc.name!r}"
                continue  # a shorter prefix may be the module
            raise ConfigurationError(
                f"{option}: importing {path!r} failed: {exc}", option=option
            ) from exc
        except ImportError as exc:  # the module exists but is broken
            raise ConfigurationError(
                f"{option}: importing {path!r} failed: {exc}", option=option
            ) from exc
        try:
            for attr in attrs:
                obj = getattr(obj, attr)
        except AttributeError:
            problem = f"module {module_name!r} has no attribute {'.'.join(attrs)!r}"
            continue
        return obj
    raise ConfigurationError(
        f"{option} must be an object or a dotted import path like 'pkg.module.attr', "
        f"got {path!r} ({problem})",
        option=option,
    )
