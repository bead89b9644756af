"""A view that evaluates through OpenFeature's API inside a Django request."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from openfeature import api


def checkout(request: HttpRequest) -> HttpResponse:
    enabled = api.get_client().get_boolean_value("staff-checkout", False)
    return HttpResponse("new" if enabled else "old")


urlpatterns = [path("checkout/", checkout)]
