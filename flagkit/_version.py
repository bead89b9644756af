"""The SDK version, in a module of its own so any submodule can import it without cycles."""

__version__ = "1.1.0"
