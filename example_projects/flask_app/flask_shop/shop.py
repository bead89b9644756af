"""The shop's views; each shows one way of reading flags with ``flagkit_flask``.

- ``home``: the ``{% flag %}`` block and the ``flag_value()`` global in templates;
- ``add_to_cart`` / ``checkout``: ``flagkit.value`` / ``flagkit.is_enabled`` in Python (a
  number flag caps the cart, a boolean picks the checkout, a JSON flag lists its steps, a
  string one colours a button) and ``flagkit.track("purchase", ...)``;
- ``buy_now``: ``@flag_required`` (a prerequisite flag); ``beta``: ``@flag_required`` with
  a redirect; the ``staff`` blueprint: ``guard_blueprint``;
- ``flag_table``: every flag's value and reason for the current user.

The forms have no CSRF token to keep the example short; a real app adds one (Flask-WTF).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from flagkit_flask import flag_required, guard_blueprint
from flask_shop.catalog import BY_SLUG, CURRENCY, PRODUCTS, Product
from flask_shop.extensions import flagkit

bp = Blueprint("shop", __name__)
staff_bp = Blueprint("staff", __name__, url_prefix="/staff")
# Every view of the staff blueprint needs the staff-tools flag (404 otherwise).
guard_blueprint(staff_bp, "staff-tools")

DEFAULT_MAX_CART_ITEMS = 5
DEFAULT_CHECKOUT = {"steps": ["cart", "shipping", "payment"], "expressCheckout": False}


def _cart() -> list[str]:
    return [slug for slug in session.get("cart", []) if slug in BY_SLUG]


def _cart_lines(slugs: list[str]) -> tuple[list[dict[str, Any]], Decimal]:
    lines: dict[str, dict[str, Any]] = {}
    for slug in slugs:
        line = lines.setdefault(slug, {"product": BY_SLUG[slug], "quantity": 0})
        line["quantity"] += 1
    return list(lines.values()), sum((BY_SLUG[s].price for s in slugs), Decimal("0"))


def _track_purchase(products: list[Product], checkout: str) -> None:
    total = sum((p.price for p in products), Decimal("0"))
    flagkit.track(
        "purchase",
        {
            "amount": float(total),
            "currency": CURRENCY,
            "items": len(products),
            "checkout": checkout,
            "site": "flask",
        },
    )


@bp.get("/")
def home() -> str:
    """Product list; the template reads the flags."""
    return render_template("home.html", products=PRODUCTS, cart_size=len(_cart()))


@bp.post("/cart/add/<slug>")
def add_to_cart(slug: str) -> Response:
    """Add a product; the ``max-cart-items`` number flag caps the cart."""
    if slug not in BY_SLUG:
        abort(404)
    limit = int(flagkit.value("max-cart-items", DEFAULT_MAX_CART_ITEMS))
    cart = _cart()
    if len(cart) >= limit:
        flash(f"Your cart is limited to {limit} items.")
    else:
        cart.append(slug)
        session["cart"] = cart
        flash(f"Added {BY_SLUG[slug].name} to your cart.")
    return redirect(url_for("shop.cart"))


@bp.get("/cart")
def cart() -> str:
    """The cart and its total."""
    lines, total = _cart_lines(_cart())
    limit = flagkit.value("max-cart-items", DEFAULT_MAX_CART_ITEMS)
    return render_template(
        "cart.html", lines=lines, total=total, currency=CURRENCY, max_items=limit
    )


@bp.route("/checkout", methods=["GET", "POST"])
def checkout() -> str | Response:
    """The new checkout (``new-checkout`` on: 30% rollout) or the classic one."""
    new = flagkit.is_enabled("new-checkout")
    slugs = _cart()
    if request.method == "POST":
        if not slugs:
            flash("Your cart is empty.")
            return redirect(url_for("shop.cart"))
        _track_purchase([BY_SLUG[s] for s in slugs], "new" if new else "classic")
        session["cart"] = []
        flash("Thank you for your order! (tracked as a 'purchase' event)")
        return redirect(url_for("shop.home"))
    lines, total = _cart_lines(slugs)
    return render_template(
        "checkout_new.html" if new else "checkout_classic.html",
        lines=lines,
        total=total,
        currency=CURRENCY,
        config=flagkit.value("checkout-config", DEFAULT_CHECKOUT),
        button_color=flagkit.value("checkout-button-color", "blue"),
    )


@bp.post("/buy/<slug>")
@flag_required("one-click-buy")
def buy_now(slug: str) -> Response:
    """One-click purchase; 404 unless ``one-click-buy`` is on (it needs ``new-checkout``)."""
    product = BY_SLUG.get(slug)
    if product is None:
        abort(404)
    _track_purchase([product], "one-click")
    flash(f"Bought {product.name} with one click.")
    return redirect(url_for("shop.home"))


@bp.get("/beta")
@flag_required("beta-dashboard", redirect_to="shop.home")
def beta() -> str:
    """The beta dashboard: only for the ``beta-testers`` segment (others go home)."""
    return render_template("beta.html")


@bp.get("/flags")
@bp.get("/flags/")  # both spellings answer (no redirect), as in the Django shop
def flag_table() -> str:
    """Every flag's value, reason, variation and rule for the current user."""
    rows = []
    for key in sorted(flagkit.client.get_all_flag_keys()):
        result = flagkit.evaluate(key)
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
    context = flagkit.context
    context_json = json.dumps(
        context.to_dict(strip_private=False) if context is not None else None,
        indent=2,
        sort_keys=True,
    )
    return render_template("flags.html", rows=rows, context_json=context_json)


@staff_bp.get("/")
def staff_tools() -> str:
    """Staff tools (the whole blueprint is guarded by ``staff-tools``)."""
    changes = list(current_app.extensions["flask_shop"]["changes"])
    return render_template("staff.html", changes=changes)


@bp.get("/health")
def health() -> tuple[dict[str, Any], int]:
    """Readiness probe: 200 once the app's FlagKit client has loaded its flags, else 503.

    ``make demo`` waits for it before printing the URLs; a load balancer can use it too.
    """
    client = flagkit.client
    ready = client.is_ready()
    body = {"flagkit": {"ready": ready, "flags": len(client.get_all_flag_keys())}}
    return body, 200 if ready else 503
