"""Request headers that identify and authenticate the SDK (docs/protocol.md §2.1, §3.2).

:class:`RequestSigner` computes the ``X-Signature``/``X-Timestamp``/``X-Key-Id`` headers
of one logical POST over the exact bytes sent (docs/protocol.md §20.4); :func:`user_agent`
builds the ``FlagKit-Python/...`` User-Agent and :func:`sdk_headers` the headers of every
REST call.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable

from flagkit.utils.signing import key_id, sign_body

__all__ = ["RequestSigner", "sdk_headers", "user_agent"]


class RequestSigner:
    """Signature headers of one logical POST: computed once per key, reused across retries."""

    def __init__(self, payload: str) -> None:
        self.payload = payload
        self._slot: int | None = None
        self._headers: dict[str, str] = {}

    def headers_for(self, slot: int, api_key: str) -> dict[str, str]:
        if self._slot != slot:
            timestamp = int(time.time() * 1000)
            self._headers = {
                "X-Signature": sign_body(self.payload, api_key, timestamp),
                "X-Timestamp": str(timestamp),
                "X-Key-Id": key_id(api_key),
            }
            self._slot = slot
        return self._headers


def user_agent(version: str) -> str:
    return (
        f"FlagKit-Python/{version} ({platform.python_implementation()}/"
        f"{platform.python_version()}; {platform.system()}/{platform.release()})"
    )


def sdk_headers(agent: str, sdk_version: str) -> Callable[[str], dict[str, str]]:
    """A function giving the headers of a REST call made with an API key (§2.1)."""

    def headers(api_key: str) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-API-Key": api_key,
            "User-Agent": agent,
            "X-FlagKit-SDK-Version": sdk_version,
            "X-FlagKit-SDK-Language": "python",
        }

    return headers
