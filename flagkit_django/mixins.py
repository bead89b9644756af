"""Class-based view mixins: ``FlagRequiredMixin``.

::

    from django.views.generic import TemplateView
    from flagkit_django.mixins import FlagRequiredMixin

    class CheckoutView(FlagRequiredMixin, TemplateView):
        flag_key = "new-checkout"          # "!key" negates
        flag_redirect_to = None            # or a URL name / URL: redirect instead of 404
        template_name = "checkout.html"
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest

from flagkit.web.request_flags import check_flag_key
from flagkit_django.decorators import flag_denied_response
from flagkit_django.middleware import get_request_flags

__all__ = ["FlagRequiredMixin"]


class FlagRequiredMixin:
    """Dispatch only when ``flag_key`` is on for the request's user; else 404 or redirect.

    Put it first in the bases so the check runs before the view's own ``dispatch``. Async
    views (``view_is_async``) are supported. Raises ``ImproperlyConfigured`` when
    ``flag_key`` is not set.
    """

    flag_key: str | None = None
    flag_redirect_to: str | None = None

    def get_flag_key(self) -> str:
        """The flag to check (override for a dynamic key)."""
        if not self.flag_key:
            raise ImproperlyConfigured(
                f"{type(self).__name__} is missing flag_key (the flag that guards the view)"
            )
        try:
            return check_flag_key(self.flag_key, f"{type(self).__name__}.flag_key")
        except ValueError as exc:
            raise ImproperlyConfigured(str(exc)) from None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        """Check the flag, then continue with the view's ``dispatch``."""
        key = self.get_flag_key()
        parent = super().dispatch  # type: ignore[misc]
        if getattr(type(self), "view_is_async", False) or iscoroutinefunction(parent):
            return self._adispatch(parent, key, request, *args, **kwargs)
        if get_request_flags(request).is_enabled(key):
            return parent(request, *args, **kwargs)
        return flag_denied_response(key, self.flag_redirect_to)

    async def _adispatch(
        self, parent: Any, key: str, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> Any:
        flags = get_request_flags(request)
        await flags.aprepare()
        if flags.is_enabled(key):
            return await parent(request, *args, **kwargs)
        return flag_denied_response(key, self.flag_redirect_to)
