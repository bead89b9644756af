"""The core samples of the published README, run as written against the local server.

The only change to each sample is where it connects: ``local_port=`` the test server's port
(the README's own "Local Development" way) and an API key the server accepts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from flagkit import (
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
from flagkit.testing import FlagKitServer
from flagkit.utils.security import create_bootstrap_signature

API_KEY = "sdk_your_api_key"
FLAGS = {
    "dark-mode": True,
    "welcome-message": "Welcome back!",
    "max-items": 25,
    "feature-config": {"layout": "grid"},
    "feature-flag": True,
    "button-text": "Buy",
    "rate-limit": 500,
    "config": {"enabled": True},
    "my-flag": False,
}


@pytest.fixture(scope="module")
def server() -> Iterator[FlagKitServer]:
    with FlagKitServer(
        flags=FLAGS,
        api_keys=[API_KEY, "sdk_secondary_key"],
    ) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _close_default_client() -> Iterator[None]:
    yield
    FlagKit.close()


def test_quick_start(server: FlagKitServer) -> None:
    """README "Quick Start": initialize, identify, typed getters, evaluate, track, close."""
    client = FlagKit.initialize(
        api_key=API_KEY,
        local_port=server.port,
        polling_interval=30,  # seconds
        cache_ttl=300,  # seconds
    )
    client.wait_for_ready()
    client.identify("user-123", {"plan": "premium"})
    dark_mode = client.get_boolean_value("dark-mode", default=False)
    welcome_message = client.get_string_value("welcome-message", default="Hello!")
    max_items = client.get_number_value("max-items", default=10)
    config = client.get_json_value("feature-config", default={})
    result = client.evaluate("dark-mode")
    print(f"Value: {result.value}, Reason: {result.reason}")
    client.track("button_clicked", {"button": "signup"})
    client.flush()
    session = client.session_id
    client.close()

    assert (dark_mode, welcome_message, max_items, config) == (
        True,
        "Welcome back!",
        25.0,
        {"layout": "grid"},
    )
    assert str(result.reason) == "CACHED"
    assert server.events("button_clicked", session_id=session)[0]["eventData"] == {
        "button": "signup"
    }


def test_initialization_with_every_published_keyword(server: FlagKitServer) -> None:
    """README "Initialization": the factory with the documented keywords, then a client."""
    ready = threading.Event()
    client = FlagKit.initialize(
        api_key=API_KEY,
        local_port=server.port,
        polling_interval=30.0,
        enable_polling=True,
        cache_enabled=True,
        cache_ttl=300.0,
        offline=False,
        timeout=5.0,
        retries=3,
        bootstrap={"flag": True},
        debug=False,
        on_ready=lambda: ready.set(),
        on_error=lambda e: print(f"Error: {e}"),
        on_update=lambda flags: print(f"Updated: {len(flags)} flags"),
    )
    assert ready.wait(5)
    assert client.get_boolean_value("flag", default=False) is True
    FlagKit.close()

    options = FlagKitOptions(api_key=API_KEY, local_port=server.port)
    client = FlagKitClient(options)
    client.initialize()
    assert client.is_ready()
    client.close()


def test_flag_evaluation_context_and_lifecycle(server: FlagKitServer) -> None:
    """README "Flag Evaluation", "Context Management", "Event Tracking" and "Lifecycle"."""
    options = FlagKitOptions(api_key=API_KEY, local_port=server.port)
    with FlagKitClient(options) as client:
        client.initialize()
        enabled = client.get_boolean_value("feature-flag", default=False)
        variant = client.get_string_value("button-text", default="Click")
        limit = client.get_number_value("rate-limit", default=100)
        config = client.get_json_value("config", default={"enabled": False})
        result = client.evaluate("feature-flag")
        all_results = client.evaluate_all()
        assert client.has_flag("my-flag")
        keys = client.get_all_flag_keys()
        assert (enabled, variant, limit, config) == (True, "Buy", 500.0, {"enabled": True})
        assert (result.flag_key, result.value, result.enabled, result.version) == (
            "feature-flag",
            True,
            True,
            1,
        )
        assert set(all_results) == set(keys) == set(FLAGS)

        context = EvaluationContext(
            user_id="user-123",
            email="user@example.com",
            country="US",
            custom={"plan": "premium", "beta_tester": True},
            private_attributes=["email"],
        )
        client.set_context(context)
        assert client.get_context() == context
        client.clear_context()
        client.identify("user-123", {"email": "user@example.com"})
        client.reset()
        value = client.get_boolean_value(
            "feature-flag", default=False, context=EvaluationContext(user_id="other-user")
        )
        assert value is True

        client.track("purchase", {"amount": 99.99, "currency": "USD", "product_id": "prod-123"})
        client.flush()
        assert client.is_ready()
        assert client.wait_for_ready()
        client.refresh()


def test_error_handling_sample_catches_an_unreachable_server(tmp_path: Path) -> None:
    """README "Error Handling": a recoverable NetworkError reaches the ``except`` clauses."""
    with FlagKitServer(flags={}) as gone:
        port = gone.port
    caught: list[str] = []
    try:
        FlagKit.initialize(api_key=API_KEY, local_port=port, timeout=0.5, retries=1)
    except InitializationError as e:
        caught.append(f"init {e.code}")
    except SecurityError as e:
        caught.append(f"security {e.code}")
    except NetworkError as e:
        if e.recoverable:
            caught.append(f"network {e.code}")
    except FlagKitError as e:
        caught.append(f"other {e.code} {e.to_dict()}")
    assert caught and caught[0].startswith("network ")
    assert not FlagKit.is_initialized()


def test_offline_mode_and_testing_samples() -> None:
    """README "Offline Mode" and "Testing": bootstrap values without any network."""
    client = FlagKit.initialize(api_key="sdk_test", offline=True, bootstrap={"feature-flag": True})
    client.wait_for_ready()
    assert client.get_boolean_value("feature-flag", default=False) is True
    FlagKit.close()

    bootstrap = create_bootstrap_signature(flags={"feature-flag": True}, api_key="sdk_test")
    client = FlagKit.initialize(api_key="sdk_test", offline=True, bootstrap=bootstrap)
    assert client.get_boolean_value("feature-flag", default=False) is True


def test_security_samples(server: FlagKitServer, caplog: pytest.LogCaptureFixture) -> None:
    """README "Security Features": strict PII, signing off, signed bootstrap, jitter, sanitizing."""
    client = FlagKitClient(api_key=API_KEY, local_port=server.port, strict_pii_mode=True)
    with pytest.raises(SecurityError):
        client.identify("user-123", {"email": "user@example.com"})
    context = EvaluationContext(
        user_id="user-123", email="user@example.com", private_attributes=["email"]
    )
    client.set_context(context)
    client.close()

    unsigned = FlagKitClient(api_key=API_KEY, local_port=server.port, enable_request_signing=False)
    unsigned.initialize()
    unsigned.close()

    bootstrap = create_bootstrap_signature(
        flags={"feature-a": True, "feature-b": "value"}, api_key=API_KEY
    )
    verified = FlagKitClient(
        api_key=API_KEY,
        local_port=server.port,
        bootstrap=bootstrap,
        bootstrap_verification=BootstrapVerificationOptions(
            enabled=True, max_age=86400000, on_failure="error"
        ),
    )
    assert verified.get_string_value("feature-b", "") == "value"
    verified.close()

    jittered = FlagKitClient(
        api_key=API_KEY,
        local_port=server.port,
        evaluation_jitter=EvaluationJitterConfig(enabled=True, min_ms=5, max_ms=15),
        error_sanitization=ErrorSanitizationConfig(enabled=True, preserve_original=False),
    )
    jittered.initialize()
    assert jittered.get_boolean_value("dark-mode", default=False) is True
    jittered.close()


def test_encryption_persistence_and_key_rotation_samples(
    server: FlagKitServer,
    tmp_path: Path,
) -> None:
    """README "Cache Encryption", "Event Persistence" and "Key Rotation"."""
    client = FlagKit.initialize(
        api_key=API_KEY,
        local_port=server.port,
        encrypt_cache=True,
        cache_storage_path=str(tmp_path / "cache"),
        persist_events=True,
        event_storage_path=str(tmp_path / "events"),
        max_persisted_events=10000,
        persistence_flush_interval=1000,
    )
    client.track("purchase", {"amount": 1})
    assert client.flush(timeout=5).pending == 0
    FlagKit.close()
    assert any((tmp_path / "cache").iterdir())

    rotating = FlagKit.initialize(
        api_key="sdk_primary_key",
        secondary_api_key="sdk_secondary_key",
        key_rotation_grace_period=300.0,
        local_port=server.port,
    )
    assert rotating.is_in_key_rotation()
    assert rotating.get_boolean_value("dark-mode", default=False) is True
    logging.getLogger("flagkit").debug("rotation sample done")
