"""Template context processor exposing the request's flags as ``flagkit_flags``.

::

    TEMPLATES = [{..., "OPTIONS": {"context_processors": [
        ..., "flagkit_django.context_processors.flags"]}}]

    {% if flagkit_flags.dark_mode %}...{% endif %}     {# "dark_mode" or "dark-mode" #}
    {% for key, value in flagkit_flags.items %}{{ key }}={{ value }}{% endfor %}

Nothing is evaluated until a template reads a flag; each flag is then evaluated once per
request (through ``request.flags``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.http import HttpRequest

from flagkit_django.middleware import RequestFlags, get_request_flags

__all__ = ["FlagsMapping", "flags"]


class FlagsMapping(Mapping[str, Any]):
    """A read-only, lazy mapping of flag key to value for one request.

    A key with underscores also finds the flag spelled with hyphens (templates cannot
    write ``flagkit_flags.dark-mode``). A missing key is ``None`` in templates (a
    ``KeyError`` in Python, as for any mapping). Not thread-safe (one per request).
    """

    __slots__ = ("_flags",)

    def __init__(self, flags: RequestFlags) -> None:
        self._flags = flags

    def _resolve(self, key: str) -> str | None:
        known = self._flags.client.get_all_flag_keys()
        if key in known:
            return key
        hyphenated = key.replace("_", "-")
        return hyphenated if hyphenated in known else None

    def __getitem__(self, key: str) -> Any:
        resolved = self._resolve(key)
        if resolved is None:
            raise KeyError(key)
        return self._flags.evaluate(resolved).value

    def __iter__(self) -> Iterator[str]:
        return iter(self._flags.all())

    def __len__(self) -> int:
        return len(self._flags.all())

    def __repr__(self) -> str:
        return f"<FlagsMapping {self._flags!r}>"


def flags(request: HttpRequest) -> dict[str, Any]:
    """Context processor: ``{"flagkit_flags": FlagsMapping}`` for ``request``."""
    return {"flagkit_flags": FlagsMapping(get_request_flags(request))}
