"""Views of the demo shop; each shows one way of reading flags with ``flagkit_django``.

- ``home``: template tags (``{% flag %}``, ``{% flag_value %}``) and the context processor;
- ``add_to_cart`` / ``checkout``: ``request.flags`` in Python (a number flag caps the cart,
  a boolean picks the checkout, a JSON flag lists its steps, a string one colours a button)
  and ``request.flags.track("purchase", ...)``;
- ``buy_now``: ``@flag_required`` (a prerequisite flag);
- ``beta``: ``@flag_required`` with a redirect; ``StaffToolsView``: ``FlagRequiredMixin``;
- ``flag_table``: every flag's value and reason for the current user;
- ``about``: the Jinja2 helpers.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView

from flagkit_django import get_client
from flagkit_django.decorators import flag_required
from flagkit_django.mixins import FlagRequiredMixin
from shop import receivers
from shop.catalog import BY_SLUG, CURRENCY, PRODUCTS, Product

DEFAULT_MAX_CART_ITEMS = 5
DEFAULT_CHECKOUT = {"steps": ["cart", "shipping", "payment"], "expressCheckout": False}


def _cart(request: HttpRequest) -> list[str]:
    cart = request.session.get("cart", [])
    return [slug for slug in cart if slug in BY_SLUG]


def _cart_lines(slugs: list[str]) -> tuple[list[dict[str, Any]], Decimal]:
    lines: dict[str, dict[str, Any]] = {}
    for slug in slugs:
        product = BY_SLUG[slug]
        line = lines.setdefault(slug, {"product": product, "quantity": 0})
        line["quantity"] += 1
    total = sum((BY_SLUG[slug].price for slug in slugs), Decimal("0"))
    return list(lines.values()), total


def _track_purchase(request: HttpRequest, products: list[Product], checkout: str) -> None:
    total = sum((p.price for p in products), Decimal("0"))
    request.flags.track(
        "purchase",
        {
            "amount": float(total),
            "currency": CURRENCY,
            "items": len(products),
            "checkout": checkout,
            "site": "django",
        },
    )


def home(request: HttpRequest) -> HttpResponse:
    """Product list; the template reads the flags with tags."""
    return render(
        request, "shop/home.html", {"products": PRODUCTS, "cart_size": len(_cart(request))}
    )


@require_POST
def add_to_cart(request: HttpRequest, slug: str) -> HttpResponse:
    """Add a product; the ``max-cart-items`` number flag caps the cart."""
    if slug not in BY_SLUG:
        raise Http404("no such product")
    limit = int(request.flags.value("max-cart-items", DEFAULT_MAX_CART_ITEMS))
    cart = _cart(request)
    if len(cart) >= limit:
        messages.warning(request, f"Your cart is limited to {limit} items.")
    else:
        cart.append(slug)
        request.session["cart"] = cart
        messages.success(request, f"Added {BY_SLUG[slug].name} to your cart.")
    return redirect("cart")


def cart(request: HttpRequest) -> HttpResponse:
    """The cart and its total."""
    lines, total = _cart_lines(_cart(request))
    limit = request.flags.value("max-cart-items", DEFAULT_MAX_CART_ITEMS)
    return render(
        request,
        "shop/cart.html",
        {"lines": lines, "total": total, "currency": CURRENCY, "max_items": limit},
    )


def checkout(request: HttpRequest) -> HttpResponse:
    """The new checkout (``new-checkout`` on: 30% rollout) or the classic one."""
    flags = request.flags
    new = flags.is_enabled("new-checkout")
    slugs = _cart(request)
    if request.method == "POST":
        if not slugs:
            messages.warning(request, "Your cart is empty.")
            return redirect("cart")
        _track_purchase(request, [BY_SLUG[s] for s in slugs], "new" if new else "classic")
        request.session["cart"] = []
        messages.success(request, "Thank you for your order! (tracked as a 'purchase' event)")
        return redirect("home")
    lines, total = _cart_lines(slugs)
    context = {
        "lines": lines,
        "total": total,
        "currency": CURRENCY,
        "config": flags.value("checkout-config", DEFAULT_CHECKOUT),
        "button_color": flags.value("checkout-button-color", "blue"),
    }
    template = "shop/checkout_new.html" if new else "shop/checkout_classic.html"
    return render(request, template, context)


@require_POST
@flag_required("one-click-buy")
def buy_now(request: HttpRequest, slug: str) -> HttpResponse:
    """One-click purchase; 404 unless ``one-click-buy`` is on (it needs ``new-checkout``)."""
    product = BY_SLUG.get(slug)
    if product is None:
        raise Http404("no such product")
    _track_purchase(request, [product], "one-click")
    messages.success(request, f"Bought {product.name} with one click.")
    return redirect("home")


@flag_required("beta-dashboard", redirect_to="home")
def beta(request: HttpRequest) -> HttpResponse:
    """The beta dashboard: only for the ``beta-testers`` segment (others go home)."""
    return render(request, "shop/beta.html")


class StaffToolsView(FlagRequiredMixin, TemplateView):
    """Staff tools (404 unless ``staff-tools`` is on): the flag changes this process saw."""

    flag_key = "staff-tools"
    template_name = "shop/staff.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """Add the recent flag changes logged by ``shop.receivers``."""
        data = super().get_context_data(**kwargs)
        data["changes"] = receivers.recent_changes()
        return data


def flag_table(request: HttpRequest) -> HttpResponse:
    """Every flag's value, reason, variation and rule for the current user."""
    flags = request.flags
    rows = []
    for key in sorted(flags.client.get_all_flag_keys()):
        result = flags.evaluate(key)
        rows.append(
            {
                "key": key,
                "value": json.dumps(result.value),
                "reason": str(result.reason),
                "variation": result.variation_id or "",
                "rule": result.rule_id or "",
                "segment": result.segment_id or "",
                "version": result.version,
            }
        )
    context_json = json.dumps(flags.context.to_dict(strip_private=False), indent=2, sort_keys=True)
    return render(request, "shop/flags.html", {"rows": rows, "context_json": context_json})


def about(request: HttpRequest) -> HttpResponse:
    """A page rendered with Jinja2 (``flagkit.flag`` / ``flagkit.value``)."""
    return render(request, "shop/about.jinja", using="jinja2")


def health(request: HttpRequest) -> JsonResponse:
    """Readiness probe: 200 once the FlagKit client has loaded its flags, else 503.

    ``make demo`` waits for it before printing the URLs; a load balancer can use it too.
    """
    client = get_client()
    ready = client.is_ready()
    body = {"flagkit": {"ready": ready, "flags": len(client.get_all_flag_keys())}}
    return JsonResponse(body, status=200 if ready else 503)
