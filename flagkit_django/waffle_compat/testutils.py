"""django-waffle's test helpers (``waffle.testutils``) answered by FlagKit's overrides.

``override_flag``, ``override_switch`` and ``override_sample`` work as decorators (of
test functions and ``TestCase`` classes) and context managers, like waffle's, through
:class:`flagkit_django.testing.override_flags`: no database rows, no network.
"""

from __future__ import annotations

from flagkit_django.testing import override_flags

from ._keys import waffle_key

__all__ = ["override_flag", "override_sample", "override_switch"]


def override_flag(name: str, active: bool) -> override_flags:
    """Force waffle flag ``name`` on (``active=True``) or off for every user."""
    return override_flags({waffle_key(name): bool(active)})


def override_switch(name: str, active: bool) -> override_flags:
    """Force waffle switch ``name`` on or off."""
    return override_flags({waffle_key(name): bool(active)})


def override_sample(name: str, active: bool) -> override_flags:
    """Force waffle sample ``name`` on or off for every call."""
    return override_flags({waffle_key(name): bool(active)})
