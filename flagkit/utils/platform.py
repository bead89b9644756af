"""Platform detection: the ``User-Agent`` the SDK sends and the runtime it runs in.

Everything is computed when called, never at import time.
"""

from __future__ import annotations

import platform
import sys
from typing import Final

__all__ = ["SDK_LANGUAGE", "USER_AGENT_PREFIX", "is_browser_runtime", "platform_info", "user_agent"]

SDK_LANGUAGE: Final = "python"
"""Value of the ``X-FlagKit-SDK-Language`` header (PROTOCOL §2.1)."""

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
    """``FlagKit-Python/{version} ({impl}/{py}; {os}/{release})`` (PROTOCOL §2.1).

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
