"""Utilities: logging, security helpers, validation, platform detection."""
