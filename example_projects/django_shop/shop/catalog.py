"""The products of the demo shop (fixed; a real shop keeps them in the database)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Product:
    """A product for sale."""

    slug: str
    name: str
    price: Decimal


PRODUCTS: tuple[Product, ...] = (
    Product("rocket-socks", "Rocket socks", Decimal("9.50")),
    Product("flag-mug", "Feature-flag mug", Decimal("12.00")),
    Product("rollout-hoodie", "Rollout hoodie", Decimal("39.00")),
)
BY_SLUG = {product.slug: product for product in PRODUCTS}
CURRENCY = "EUR"
