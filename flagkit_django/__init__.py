"""Django integration for FlagKit."""
