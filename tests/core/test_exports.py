"""The public surface: ``__all__`` lists exactly the public names; importing starts nothing."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import textwrap
import types

import pytest

import flagkit
import flagkit.types


def public_names(module: types.ModuleType) -> set[str]:
    """Names a user can import from ``module``: no ``_`` prefix, no submodules."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


@pytest.mark.parametrize("module", [flagkit, flagkit.types], ids=lambda m: m.__name__)
def test_all_lists_exactly_the_public_names(module: types.ModuleType) -> None:
    """Nothing public is missing from __all__ and nothing in it is private or absent."""
    exported = set(module.__all__)
    assert exported - {"__version__"} == public_names(module)
    assert all(hasattr(module, name) for name in exported)


def test_all_is_sorted_without_duplicates() -> None:
    """One sorted __all__, each name once."""
    assert list(flagkit.__all__) == sorted(flagkit.__all__)
    assert len(set(flagkit.__all__)) == len(flagkit.__all__)


def test_readme_imports_work() -> None:
    """Every import the published README shows resolves to our objects."""
    from flagkit import (
        BootstrapConfig,
        BootstrapVerificationOptions,
        ErrorSanitizationConfig,
        EvaluationContext,
        EvaluationJitterConfig,
        FlagKit,
        FlagKitClient,
        FlagKitError,
        FlagKitOptions,
        InitializationError,
        NetworkError,
        SecurityError,
    )
    from flagkit.utils.security import create_bootstrap_signature

    assert FlagKit.__module__ == "flagkit.flagkit"
    assert FlagKitClient.__module__ == "flagkit.client"
    assert FlagKitOptions.__module__ == "flagkit.types.config"
    assert issubclass(InitializationError, FlagKitError)
    assert issubclass(NetworkError, FlagKitError) and issubclass(SecurityError, FlagKitError)
    assert callable(create_bootstrap_signature)
    for cls in (
        BootstrapConfig,
        BootstrapVerificationOptions,
        ErrorSanitizationConfig,
        EvaluationContext,
        EvaluationJitterConfig,
    ):
        assert isinstance(cls, type)


def test_error_classes_and_codes_are_exported() -> None:
    """Every error a caller may catch, and the code table, come from the top level."""
    for name in (
        "FlagKitError",
        "InitializationError",
        "ConfigurationError",
        "AuthenticationError",
        "NetworkError",
        "CircuitOpenError",
        "EvaluationError",
        "SecurityError",
        "EventError",
        "StorageError",
    ):
        cls = getattr(flagkit, name)
        assert issubclass(cls, flagkit.FlagKitError)
    assert flagkit.ErrorCode.INIT_NOT_INITIALIZED == "INIT_NOT_INITIALIZED"


def test_version_matches_the_installed_distribution() -> None:
    """flagkit.__version__ is the packaged version (1.1.0)."""
    assert flagkit.__version__ == "1.1.0"
    assert importlib.metadata.version("flagkit") == flagkit.__version__


def test_importing_flagkit_starts_nothing_and_pulls_in_no_framework() -> None:
    """A fresh interpreter importing flagkit loads neither Django nor Flask, starts no thread,
    and leaves the 'flagkit' logger untouched."""
    code = textwrap.dedent(
        """
        import json, logging, sys, threading
        import flagkit
        from flagkit import FlagKit
        log = logging.getLogger("flagkit")
        print(json.dumps({
            "django": sorted(m for m in sys.modules if m == "django" or m.startswith("django.")),
            "flask": sorted(m for m in sys.modules if m == "flask" or m.startswith("flask.")),
            "threads": [t.name for t in threading.enumerate()],
            "handlers": len(log.handlers),
            "level": log.level,
            "instance": FlagKit.get_instance() is None,
        }))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    report = json.loads(out.stdout)
    assert report == {
        "django": [],
        "flask": [],
        "threads": ["MainThread"],
        "handlers": 0,
        "level": 0,
        "instance": True,
    }
