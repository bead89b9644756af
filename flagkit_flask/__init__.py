"""Flask integration for FlagKit."""
