"""``@flag_required`` on sync and async views, ``FlagRequiredMixin`` and the DRF permission."""

from __future__ import annotations

import asyncio
import importlib
import sys
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, RequestFactory

from flagkit.testing import FlagKitServer
from flagkit_django.decorators import flag_required
from flagkit_django.testing import override_flags
from tests.django.async_login import alogin


@pytest.fixture
def offline(settings: Any) -> None:
    """Offline client; flags come from overrides."""
    settings.FLAGKIT = {"OFFLINE": True, "BOOTSTRAP": {"new-checkout": True, "maintenance": False}}


def test_flag_required_allows_when_on(offline: None, client: Client) -> None:
    """The view runs when the flag is on."""
    response = client.get("/checkout/")
    assert response.status_code == 200
    assert response.content == b"new checkout"


def test_flag_required_404_when_off(offline: None, client: Client) -> None:
    """The view is a 404 when the flag is off or missing."""
    with override_flags({"new-checkout": False}):
        assert client.get("/checkout/").status_code == 404


def test_flag_required_redirects_to_a_url_name(offline: None, client: Client) -> None:
    """``redirect_to`` names a URL pattern: a 302 to it when off."""
    with override_flags({"new-checkout": False}):
        response = client.get("/checkout-redirect/")
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_flag_required_redirects_to_a_url(offline: None, client: Client) -> None:
    """``redirect_to`` may be a plain URL."""
    with override_flags({"new-checkout": False}):
        response = client.get("/checkout-redirect-url/")
    assert response.status_code == 302
    assert response["Location"] == "/elsewhere/"
    assert client.get("/checkout-redirect-url/").content == b"new checkout"


def test_flag_required_negation(offline: None, client: Client) -> None:
    """``!key`` lets the view run only while the flag is off."""
    assert client.get("/shop/").content == b"shop open"
    with override_flags({"maintenance": True}):
        assert client.get("/shop/").status_code == 404


def test_flag_required_keeps_the_view_identity() -> None:
    """The decorator keeps the view's name and docstring, and rejects an empty key."""

    @flag_required("x")
    def my_view(request: HttpRequest) -> HttpResponse:
        """My docstring."""
        return HttpResponse()

    assert my_view.__name__ == "my_view"
    assert my_view.__doc__ == "My docstring."
    with pytest.raises(ValueError, match="needs a flag key such as"):
        flag_required("!")


def test_async_view_through_the_asgi_handler(offline: None) -> None:
    """An ``async def`` view guarded by a flag: 200 when on, 404 when off (ASGI stack)."""

    async def run() -> tuple[int, bytes, int]:
        client = AsyncClient()
        on = await client.get("/acheckout/")
        with override_flags({"new-checkout": False}):
            off = await client.get("/acheckout/")
        return on.status_code, on.content, off.status_code

    assert asyncio.run(run()) == (200, b"async new checkout", 404)


def test_async_view_called_directly(offline: None, rf: RequestFactory) -> None:
    """The async wrapper works without the middleware (it prepares the context itself)."""
    from tests.django.views import acheckout

    request = rf.get("/acheckout/")
    request.user = AnonymousUser()
    response = asyncio.run(acheckout(request))
    assert response.content == b"async new checkout"
    assert asyncio.iscoroutinefunction(acheckout)


@pytest.mark.django_db(transaction=True)
def test_async_view_targets_the_user(live: FlagKitServer, users: dict[str, User]) -> None:
    """A targeted flag on an async view evaluates for the logged-in user (async queries)."""

    async def run() -> tuple[int, int]:
        staff, regular = AsyncClient(), AsyncClient()
        await alogin(staff, users["staff"])
        await alogin(regular, users["regular"])
        return (await staff.get("/astaff/")).status_code, (
            await regular.get("/astaff/")
        ).status_code

    assert asyncio.run(run()) == (200, 404)


def test_mixin_allows_and_denies(offline: None, client: Client) -> None:
    """FlagRequiredMixin: the class-based view renders when on, 404 when off."""
    assert client.get("/cbv/").content.strip() == b"cbv new checkout"
    with override_flags({"new-checkout": False}):
        assert client.get("/cbv/").status_code == 404


def test_mixin_redirects(offline: None, client: Client) -> None:
    """``flag_redirect_to`` redirects instead of 404."""
    assert client.get("/cbv-redirect/").content == b"cbv new checkout"
    with override_flags({"new-checkout": False}):
        response = client.get("/cbv-redirect/")
    assert (response.status_code, response["Location"]) == (302, "/")


def test_mixin_on_an_async_view(offline: None) -> None:
    """The mixin works on async class-based views."""

    async def run() -> tuple[bytes, int]:
        client = AsyncClient()
        on = await client.get("/acbv/")
        with override_flags({"new-checkout": False}):
            off = await client.get("/acbv/")
        return on.content, off.status_code

    assert asyncio.run(run()) == (b"async cbv new checkout", 404)


def test_mixin_without_flag_key(offline: None, client: Client) -> None:
    """A mixin without ``flag_key`` is a configuration error, not a silent pass."""
    with pytest.raises(ImproperlyConfigured, match="MissingKeyView is missing flag_key"):
        client.get("/cbv-missing/")


def test_permissions_module_imports_without_drf() -> None:
    """The DRF module imports without DRF; the DRF class explains what is missing."""
    assert importlib.util.find_spec("rest_framework") is None
    module = importlib.import_module("flagkit_django.permissions")
    with pytest.raises(ImportError, match="pip install djangorestframework"):
        module.FlagPermission  # noqa: B018
    with pytest.raises(ImportError, match="needs Django REST framework"):
        module.flag_permission("beta-api")
    assert "rest_framework" not in sys.modules


def test_permission_logic(offline: None, rf: RequestFactory) -> None:
    """FlagPermissionMixin allows when the flag is on, for DRF-wrapped and plain requests."""
    from flagkit_django.permissions import FlagPermissionMixin

    class Beta(FlagPermissionMixin):
        flag_key = "new-checkout"

    class Wrapped:  # the shape of rest_framework.request.Request
        def __init__(self, request: HttpRequest) -> None:
            self._request = request

    request = rf.get("/")
    request.user = AnonymousUser()
    assert Beta().has_permission(request, None) is True
    assert Beta().has_object_permission(Wrapped(request), None, object()) is True
    other = rf.get("/")
    other.user = AnonymousUser()
    with override_flags({"new-checkout": False}):
        assert Beta().has_permission(Wrapped(other), None) is False

    class Unset(FlagPermissionMixin):
        pass

    with pytest.raises(ValueError, match="flag_key needs a flag key"):
        Unset().has_permission(request, None)
