"""URLs of the shop app."""

from __future__ import annotations

from django.urls import path

from shop import views

urlpatterns = [
    path("", views.home, name="home"),
    path("cart/", views.cart, name="cart"),
    path("cart/add/<slug:slug>/", views.add_to_cart, name="add-to-cart"),
    path("checkout/", views.checkout, name="checkout"),
    path("buy/<slug:slug>/", views.buy_now, name="buy-now"),
    path("beta/", views.beta, name="beta"),
    path("staff/", views.StaffToolsView.as_view(), name="staff-tools"),
    path("flags/", views.flag_table, name="flags"),
    path("flags", views.flag_table),  # both spellings answer (no redirect), as in the Flask shop
    path("about/", views.about, name="about"),
    path("health/", views.health, name="health"),
]
