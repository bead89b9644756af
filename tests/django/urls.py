"""URLs of the test project."""

from __future__ import annotations

from django.urls import path

from tests.django import views

urlpatterns = [
    path("", views.home, name="home"),
    path("whoami/", views.whoami, name="whoami"),
    path("awhoami/", views.awhoami, name="awhoami"),
    path("plain/", views.plain_only, name="plain"),
    path("no-flags/", views.no_flags, name="no-flags"),
    path("memo/", views.memo, name="memo"),
    path("tags/", views.tags_page, name="tags"),
    path("processor/", views.processor_page, name="processor"),
    path("jinja/", views.jinja_page, name="jinja"),
    path("track/", views.track_view, name="track"),
    path("checkout/", views.checkout, name="checkout"),
    path("checkout-redirect/", views.checkout_redirect, name="checkout-redirect"),
    path("checkout-redirect-url/", views.checkout_redirect_url, name="checkout-redirect-url"),
    path("shop/", views.shop, name="shop"),
    path("acheckout/", views.acheckout, name="acheckout"),
    path("astaff/", views.astaff, name="astaff"),
    path("cbv/", views.CheckoutView.as_view(), name="cbv"),
    path("cbv-redirect/", views.RedirectingCheckoutView.as_view(), name="cbv-redirect"),
    path("acbv/", views.AsyncCheckoutView.as_view(), name="acbv"),
    path("cbv-missing/", views.MissingKeyView.as_view(), name="cbv-missing"),
]
