"""Django REST framework permissions guarded by a flag (needs ``djangorestframework``).

DRF is not a dependency of FlagKit. This module imports without it; ``FlagPermission``
and :func:`flag_permission` import ``rest_framework`` when first used and raise
``ImportError`` with an explanation when it is missing::

    from flagkit_django.permissions import flag_permission

    class ReportViewSet(viewsets.ModelViewSet):
        permission_classes = [IsAuthenticated, flag_permission("reports-api")]

    # or subclass:
    from flagkit_django.permissions import FlagPermission

    class BetaApi(FlagPermission):
        flag_key = "beta-api"          # "!key" negates

A denied request gets DRF's 403 with ``message``. The logic lives in
:class:`FlagPermissionMixin`, which needs no DRF.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagkit.web.request_flags import check_flag_key
from flagkit_django.middleware import get_request_flags

if TYPE_CHECKING:
    from django.http import HttpRequest

__all__ = ["FlagPermission", "FlagPermissionMixin", "flag_permission"]


class FlagPermissionMixin:
    """``has_permission`` that checks ``flag_key`` for the request's user.

    Works with DRF's ``Request`` (it unwraps the Django request) or a plain
    ``HttpRequest``. Thread-safe (stateless).
    """

    flag_key: str = ""
    message = "This feature is not available."

    def has_permission(self, request: Any, view: Any) -> bool:
        """True when the flag is on for the request's user."""
        check_flag_key(self.flag_key, f"{type(self).__name__}.flag_key")
        django_request: HttpRequest = getattr(request, "_request", request)
        return get_request_flags(django_request).is_enabled(self.flag_key)

    def has_object_permission(self, request: Any, view: Any, obj: Any) -> bool:
        """Same as :meth:`has_permission` (the flag does not depend on the object)."""
        return self.has_permission(request, view)


_cache: dict[str, type] = {}


def _base_permission() -> type:
    try:
        from rest_framework.permissions import BasePermission
    except ImportError as exc:  # pragma: no branch - depends on the environment
        raise ImportError(
            "flagkit_django.permissions.FlagPermission needs Django REST framework: "
            "pip install djangorestframework"
        ) from exc
    return BasePermission  # type: ignore[no-any-return]


def flag_permission(flag_key: str) -> type:
    """A DRF permission class allowing requests only when ``flag_key`` is on.

    Raises ``ImportError`` without DRF, ``ValueError`` for an invalid key (empty, ``"!"``,
    ``"!!key"``).
    """
    check_flag_key(flag_key, "flag_permission")
    base = __getattr__("FlagPermission")
    return type(f"FlagPermission[{flag_key}]", (base,), {"flag_key": flag_key})


def __getattr__(name: str) -> Any:
    # ``FlagPermission`` is built on first access so importing this module needs no DRF.
    if name == "FlagPermission":
        cls = _cache.get(name)
        if cls is None:
            cls = type(
                "FlagPermission",
                (FlagPermissionMixin, _base_permission()),
                {"__module__": __name__, "__doc__": "DRF permission: ``flag_key`` must be on."},
            )
            _cache[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    FlagPermission: type
