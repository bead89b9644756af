"""FlagKit SDK for Python (the public surface is assembled by the core client work)."""

__version__ = "1.1.0"
