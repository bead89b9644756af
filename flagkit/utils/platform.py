"""Platform detection: the ``User-Agent`` the SDK sends and the runtime it runs in.

Also whether the process looks like production (:func:`is_production_environment`), which
``local_port`` is checked against. Everything is computed when called, never at import
time.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from typing import Final

__all__ = [
    "PRODUCTION_ENV_VARS",
    "SDK_LANGUAGE",
    "USER_AGENT_PREFIX",
    "is_browser_runtime",
    "is_production_environment",
    "platform_info",
    "production_marker",
    "user_agent",
]

SDK_LANGUAGE: Final = "python"
"""Value of the ``X-FlagKit-SDK-Language`` header (docs/protocol.md §2.1)."""

USER_AGENT_PREFIX: Final = "FlagKit-Python"

_BROWSER_MODULES: Final = ("brython", "pyodide", "js")


def platform_info() -> dict[str, str]:
    """The four parts of the ``User-Agent`` comment.

    >>> sorted(platform_info())
    ['os_name', 'os_release', 'python_implementation', 'python_version']
    """
    return {
        "python_implementation": platform.python_implementation(),
        "python_version": platform.python_version(),
        "os_name": platform.system() or "unknown",
        "os_release": platform.release() or "unknown",
    }


def user_agent(sdk_version: str) -> str:
    """``FlagKit-Python/{version} ({impl}/{py}; {os}/{release})`` (docs/protocol.md §2.1).

    >>> user_agent("1.1.0").startswith("FlagKit-Python/1.1.0 (")
    True
    """
    info = platform_info()
    return (
        f"{USER_AGENT_PREFIX}/{sdk_version} "
        f"({info['python_implementation']}/{info['python_version']}; "
        f"{info['os_name']}/{info['os_release']})"
    )


def is_browser_runtime() -> bool:
    """Whether Python runs in a browser (Brython or Pyodide), where a ``srv_`` key is exposed."""
    return any(name in sys.modules for name in _BROWSER_MODULES)


PRODUCTION_ENV_VARS: Final = ("PYTHON_ENV", "NODE_ENV", "ENV", "ENVIRONMENT")
"""Environment variables that mark a production process when set to ``production``."""


def production_marker(environ: Mapping[str, str] | None = None) -> str | None:
    """The first ``NAME=value`` that marks the process as production, or ``None``.

    >>> production_marker({"ENV": " Production "}), production_marker({"ENV": "dev"})
    ('ENV= Production ', None)

    ``environ`` defaults to ``os.environ`` read at call time. Used in error messages, so a
    user sees which variable made the SDK think it runs in production.
    """
    if environ is None:
        environ = os.environ
    for name in PRODUCTION_ENV_VARS:
        value = environ.get(name) or ""
        if value.strip().lower() == "production":
            return f"{name}={value}"
    return None


def is_production_environment(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the process looks like production (``docs/protocol.md`` §1).

    True when any of ``PYTHON_ENV``, ``NODE_ENV``, ``ENV`` or ``ENVIRONMENT`` equals
    ``production`` (case-insensitive, surrounding whitespace ignored). ``environ`` defaults
    to ``os.environ`` read at call time.

    >>> is_production_environment({"ENV": "Production"}), is_production_environment({})
    (True, False)
    """
    return production_marker(environ) is not None
