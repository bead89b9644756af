"""Public-API usage that must type-check under ``mypy --strict`` (never executed).

``tests/core/test_typing_api.py`` runs mypy on this file. Lines marked
``# type: ignore[<code>]`` are mistakes mypy must catch: with ``warn_unused_ignores`` (part
of ``--strict``) an ignore that is not needed is itself an error, so each marks a check that
works.
"""

from __future__ import annotations

import logging
from typing import Any

from typing_extensions import assert_type

from flagkit import (
    AuthenticationError,
    BootstrapConfig,
    BootstrapVerificationOptions,
    CircuitBreakerOptions,
    ConfigurationError,
    ErrorSanitizationConfig,
    EvaluationContext,
    EvaluationJitterConfig,
    EvaluationReason,
    EvaluationResult,
    FlagKit,
    FlagKitClient,
    FlagKitError,
    FlagKitOptions,
    FlagState,
    InitializationError,
    NetworkError,
    RetryOptions,
    SecurityError,
    StreamingOptions,
)
from flagkit.utils.security import create_bootstrap_signature


def on_update(flags: list[FlagState]) -> None:
    print(len(flags))


def options_usage() -> FlagKitOptions:
    options = FlagKitOptions(
        api_key="sdk_abc",
        secondary_api_key="sdk_def",
        key_rotation_grace_period=300.0,
        base_url="https://api.flagkit.dev/api/v1",
        local_port=None,
        polling_interval=30,
        enable_polling=True,
        cache_enabled=True,
        cache_ttl=300.0,
        encrypt_cache=False,
        offline=False,
        timeout=5.0,
        retries=3,
        retry=RetryOptions(base_delay=0.5),
        circuit_breaker=CircuitBreakerOptions(failure_threshold=3),
        streaming=StreamingOptions(enabled=False),
        logger=logging.getLogger("app"),
        bootstrap={"flag": True},
        bootstrap_verification=BootstrapVerificationOptions(on_failure="error"),
        on_ready=lambda: None,
        on_error=lambda exc: print(exc),
        on_update=on_update,
        debug=False,
        evaluation_jitter=EvaluationJitterConfig(enabled=True, min_ms=5, max_ms=15),
        error_sanitization=ErrorSanitizationConfig(preserve_original=False),
    )
    assert_type(options.resolved_base_url, str)
    assert_type(FlagKitOptions.option_names(), frozenset[str])
    FlagKitOptions.from_mapping({"API_KEY": "sdk_abc", "POLLING_INTERVAL": "10"})
    FlagKitOptions(api_key="sdk_abc", timeout="5")  # type: ignore[arg-type]
    FlagKitOptions(api_key="sdk_abc", no_such_option=1)  # type: ignore[call-arg]
    return options


def factory_usage() -> None:
    client = FlagKit.initialize(
        api_key="sdk_...",
        polling_interval=30,
        cache_ttl=300,
        local_port=8200,
        strict_pii_mode=True,
        bootstrap=create_bootstrap_signature(flags={"a": True}, api_key="sdk_..."),
        bootstrap_verification=BootstrapVerificationOptions(max_age=86_400_000),
    )
    assert_type(client, FlagKitClient)
    FlagKit.initialize(api_key="sdk_...", polling_interval="30")  # type: ignore[arg-type]
    FlagKit.initialize(api_key="sdk_...", poling_interval=30)  # type: ignore[call-arg]
    assert_type(FlagKit.get_instance(), FlagKitClient | None)
    assert_type(FlagKit.get_client(), FlagKitClient)
    assert_type(FlagKit.is_initialized(), bool)
    assert_type(FlagKit.get_boolean_value("f", default=False), bool)
    assert_type(FlagKit.get_string_value("f", default="x"), str)
    assert_type(FlagKit.get_number_value("f", default=10), float)
    assert_type(FlagKit.get_json_value("f", default={}), dict[str, Any])
    assert_type(FlagKit.evaluate("f"), EvaluationResult[Any])
    FlagKit.identify("user-1", {"plan": "pro"})
    FlagKit.track("clicked", {"button": "signup"})
    FlagKit.flush()
    FlagKit.close()


def client_usage(options: FlagKitOptions) -> None:
    with FlagKitClient(options) as client:
        client.initialize()
        assert_type(client.is_ready(), bool)
        assert_type(client.wait_for_ready(timeout=1.0), bool)
        assert_type(client.get_boolean_value("dark-mode", default=False), bool)
        assert_type(client.get_string_value("welcome", default="Hello!"), str)
        assert_type(client.get_number_value("max-items", default=10), float)
        assert_type(client.get_json_value("config", default={"enabled": False}), dict[str, Any])
        result = client.evaluate("dark-mode")
        assert_type(result, EvaluationResult[Any])
        assert_type(result.reason, EvaluationReason)
        assert_type(result.version, int)
        assert_type(client.evaluate_all(), dict[str, EvaluationResult[Any]])
        assert_type(client.has_flag("f"), bool)
        assert_type(client.get_all_flag_keys(), list[str])
        context = EvaluationContext(
            user_id="u", custom={"plan": "pro"}, private_attributes=["email"]
        )
        client.set_context(context)
        client.get_boolean_value("f", default=False, context=EvaluationContext(user_id="other"))
        client.identify("user-123", {"plan": "premium"})
        client.track("purchase", {"amount": 99.99})
        client.reset()
        client.refresh()
        client.get_boolean_value("f", default="no")  # type: ignore[arg-type]
    BootstrapConfig(flags={"a": 1}, signature=None, timestamp=None)


def error_usage() -> None:
    try:
        FlagKit.initialize(api_key="sdk_...")
    except ConfigurationError as exc:
        assert_type(exc.option, str)
    except InitializationError as exc:
        assert_type(exc.code, str)
    except AuthenticationError as exc:
        assert_type(exc.recoverable, bool)
    except SecurityError as exc:
        assert_type(exc.to_dict(), dict[str, Any])
    except NetworkError as exc:
        assert_type(exc.retry_after, int | None)
    except FlagKitError as exc:
        assert_type(exc.numeric_code, int)
