"""The demo shop app: products, a cart, two checkouts, and pages guarded by flags."""
