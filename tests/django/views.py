"""Views of the test project: each one exercises one surface of ``flagkit_django``."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import View
from django.views.generic import TemplateView

from flagkit_django import get_client
from flagkit_django.decorators import flag_required
from flagkit_django.middleware import RequestFlags
from flagkit_django.mixins import FlagRequiredMixin

WATCHED = ("staff-feature", "beta-feature", "rollout-50", "new-checkout", "nl-only")


def _flags(request: HttpRequest) -> RequestFlags:
    flags = request.flags  # type: ignore[attr-defined]
    assert isinstance(flags, RequestFlags)
    return flags


def _report(request: HttpRequest) -> dict[str, Any]:
    flags = _flags(request)
    client = get_client()
    context = flags.context
    return {
        "user_id": context.user_id,
        "user_key": context.user_key,
        "anonymous": context.anonymous,
        "custom": context.custom,
        "country": context.country,
        "ip": context.ip,
        "user_agent": context.user_agent,
        "email": context.email,
        "private": sorted(context.private_attributes),
        "flags": {key: flags.is_enabled(key) for key in WATCHED},
        # A plain client lookup without a context: the middleware's scope supplies the user.
        "plain": {key: client.get_boolean_value(key, False) for key in WATCHED},
        "rollout_variation": flags.evaluate("rollout-50").variation_id,
    }


def whoami(request: HttpRequest) -> JsonResponse:
    """The request's context and flags as JSON."""
    return JsonResponse(_report(request))


async def awhoami(request: HttpRequest) -> JsonResponse:
    """``whoami`` as an async view."""
    return JsonResponse(_report(request))


def plain_only(request: HttpRequest) -> JsonResponse:
    """Only a plain ``get_client()`` lookup (no ``request.flags``): the scope is the user."""
    client = get_client()
    return JsonResponse({key: client.get_boolean_value(key, False) for key in WATCHED})


def no_flags(request: HttpRequest) -> HttpResponse:
    """Evaluates nothing (no anonymous cookie must be set)."""
    return HttpResponse("ok")


def memo(request: HttpRequest) -> JsonResponse:
    """Evaluates the same flag twice and reports both values."""
    flags = _flags(request)
    first = flags.value("banner-text", "none")
    second = flags.value("banner-text", "none")
    return JsonResponse({"first": first, "second": second})


def tags_page(request: HttpRequest) -> HttpResponse:
    """Renders the template-tag page."""
    return render(request, "tags.html", {"key_var": "new-checkout", "neg_var": "!maintenance"})


def processor_page(request: HttpRequest) -> HttpResponse:
    """Renders the context-processor page."""
    return render(request, "processor.html")


def jinja_page(request: HttpRequest) -> HttpResponse:
    """Renders the Jinja2 page."""
    return render(request, "page.jinja", using="jinja2")


def track_view(request: HttpRequest) -> HttpResponse:
    """Tracks one event for the request's user."""
    _flags(request).track("checkout_clicked", {"step": 2})
    return HttpResponse("tracked")


@flag_required("new-checkout")
def checkout(request: HttpRequest) -> HttpResponse:
    """Guarded by ``new-checkout`` (404 when off)."""
    return HttpResponse("new checkout")


@flag_required("new-checkout", redirect_to="home")
def checkout_redirect(request: HttpRequest) -> HttpResponse:
    """Guarded by ``new-checkout`` (redirect to the ``home`` URL name when off)."""
    return HttpResponse("new checkout")


@flag_required("new-checkout", redirect_to="/elsewhere/")
def checkout_redirect_url(request: HttpRequest) -> HttpResponse:
    """Guarded by ``new-checkout`` (redirect to a URL when off)."""
    return HttpResponse("new checkout")


@flag_required("!maintenance")
def shop(request: HttpRequest) -> HttpResponse:
    """Only reachable while ``maintenance`` is off."""
    return HttpResponse("shop open")


@flag_required("new-checkout")
async def acheckout(request: HttpRequest) -> HttpResponse:
    """Async view guarded by ``new-checkout``."""
    return HttpResponse("async new checkout")


@flag_required("staff-feature")
async def astaff(request: HttpRequest) -> HttpResponse:
    """Async view guarded by a targeted flag (needs the user's context)."""
    return HttpResponse("async staff")


def home(request: HttpRequest) -> HttpResponse:
    """The redirect target."""
    return HttpResponse("home")


class CheckoutView(FlagRequiredMixin, TemplateView):
    """Class-based view guarded by ``new-checkout``."""

    flag_key = "new-checkout"
    template_name = "checkout.html"


class RedirectingCheckoutView(FlagRequiredMixin, View):
    """Class-based view redirecting to ``home`` when ``new-checkout`` is off."""

    flag_key = "new-checkout"
    flag_redirect_to = "home"

    def get(self, request: HttpRequest) -> HttpResponse:
        """The guarded page."""
        return HttpResponse("cbv new checkout")


class AsyncCheckoutView(FlagRequiredMixin, View):
    """Async class-based view guarded by ``new-checkout``."""

    flag_key = "new-checkout"

    async def get(self, request: HttpRequest) -> HttpResponse:
        """The guarded page."""
        return HttpResponse("async cbv new checkout")


class MissingKeyView(FlagRequiredMixin, View):
    """Misconfigured: no ``flag_key``."""

    def get(self, request: HttpRequest) -> HttpResponse:
        """Never reached."""
        return HttpResponse("unreachable")
