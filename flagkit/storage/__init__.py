"""Pluggable storage for the persisted flag cache."""
