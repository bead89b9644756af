"""Every Python sample of the published README runs as written against the local server.

The samples below are copied verbatim from the published FlagKit Python README. Before a
sample runs, only these mechanical substitutions are applied (each is asserted to match):

- the placeholder API keys (``"sdk_..."``, ``"sdk_your_api_key"``, ``"sdk_primary_key"``)
  become the local server's key, and ``local_port=PORT`` is added to (or replaces the port
  of) the ``FlagKit.initialize`` / ``FlagKitOptions`` call, so the client talks to
  ``flagkit serve`` on loopback instead of api.flagkit.dev;
- ``"/path/to/storage"`` becomes a temporary directory.

Minimal completions, for fragments that are not complete Python on their own:

- ``if client.has_flag(...):`` and ``if client.is_ready():`` are followed only by a
  ``# ...`` comment; ``pass`` is added under them;
- samples that use ``client`` or ``options`` without creating them get the client of the
  "Or create a client directly" sample (``FlagKitClient(FlagKitOptions(...))`` initialized);
- names a sample uses without importing (``SecurityError``, ``EvaluationContext``) come
  from the README's own imports in other samples;
- the two samples that call ``FlagKit.initialize`` twice ("Local Development",
  "Testing") are run as two parts with ``FlagKit.close()`` between them, since the second
  call raises ``INIT_ALREADY_INITIALIZED`` by design.

Two tests at the end write samples out by hand for what a healthy local server cannot show as
written: the error-handling sample against an unreachable server, and cache encryption, event
persistence and key rotation with a storage path and a primary key the server refuses.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flagkit import (
    ErrorSanitizationConfig,
    FlagKit,
    FlagKitClient,
    FlagKitError,
    FlagKitOptions,
    InitializationError,
    NetworkError,
    SecurityError,
)
from flagkit.testing import FlagKitServer

SERVER_KEY = "sdk_readme_samples_key"
SECONDARY_KEY = "sdk_secondary_key"
SERVER_FLAGS: dict[str, Any] = {
    "dark-mode": True,
    "welcome-message": "Welcome back!",
    "max-items": 25,
    "feature-config": {"layout": "grid"},
    "feature-flag": True,
    "button-text": "Buy now",
    "rate-limit": 50,
    "config": {"enabled": True},
    "my-flag": True,
}


@pytest.fixture(scope="module")
def server() -> Iterator[FlagKitServer]:
    """The local FlagKit server every sample talks to."""
    with FlagKitServer(flags=SERVER_FLAGS, api_keys=[SERVER_KEY, SECONDARY_KEY]) as running:
        yield running


@pytest.fixture
def namespace(server: FlagKitServer) -> Iterator[dict[str, Any]]:
    """Globals for a sample: the README's imports; clients left open are closed after."""
    ns: dict[str, Any] = {"__name__": "readme_sample"}
    exec("from flagkit import *", ns)  # the names the README imports across its samples
    yield ns
    for value in list(ns.values()):
        if isinstance(value, FlagKitClient):
            value.close()


@pytest.fixture
def direct_client(server: FlagKitServer, namespace: dict[str, Any]) -> FlagKitClient:
    """The README's "Or create a client directly" client, for samples that use ``client``."""
    options = FlagKitOptions(api_key=SERVER_KEY, local_port=server.port)
    client = FlagKitClient(options)
    client.initialize()
    namespace.update(client=client, options=options)
    return client


def adapt(sample: str, *replacements: tuple[str, str]) -> str:
    """Dedent ``sample`` and apply each (old, new) replacement, which must occur."""
    code = textwrap.dedent(sample)
    for old, new in replacements:
        assert old in code, f"substitution target {old!r} not in the sample"
        code = code.replace(old, new)
    return code


def run(code: str, namespace: dict[str, Any], name: str) -> None:
    exec(compile(code, f"<README: {name}>", "exec"), namespace)


def to_server(server: FlagKitServer, placeholder: str = '"sdk_..."') -> tuple[str, str]:
    """The substitution pointing an initialize/options call at the local server."""
    return (f"api_key={placeholder}", f'api_key="{SERVER_KEY}", local_port={server.port}')


# --- samples, verbatim ----------------------------------------------------------------------

QUICK_START = """
from flagkit import FlagKit

# Initialize the SDK
client = FlagKit.initialize(
    api_key="sdk_your_api_key",
    polling_interval=30,  # seconds
    cache_ttl=300,        # seconds
)

# Wait for initialization
client.wait_for_ready()

# Identify a user
client.identify("user-123", {"plan": "premium"})

# Evaluate flags
dark_mode = client.get_boolean_value("dark-mode", default=False)
welcome_message = client.get_string_value("welcome-message", default="Hello!")
max_items = client.get_number_value("max-items", default=10)
config = client.get_json_value("feature-config", default={})

# Get full evaluation details
result = client.evaluate("dark-mode")
print(f"Value: {result.value}, Reason: {result.reason}")

# Track custom events
client.track("button_clicked", {"button": "signup"})

# Cleanup when done
client.close()
"""

INITIALIZATION = """
from flagkit import FlagKit, FlagKitClient, FlagKitOptions

# Using the static factory (recommended for single client)
client = FlagKit.initialize(
    api_key="sdk_...",              # Required
    base_url="https://api.flagkit.dev/api/v1",  # Optional
    polling_interval=30.0,          # Seconds between polls
    enable_polling=True,            # Enable background polling
    cache_enabled=True,             # Enable local caching
    cache_ttl=300.0,                # Cache TTL in seconds
    offline=False,                  # Offline mode
    timeout=5.0,                    # Request timeout in seconds
    retries=3,                      # Number of retries
    bootstrap={"flag": True},       # Initial flag values
    debug=False,                    # Enable debug logging
    on_ready=lambda: print("Ready!"),
    on_error=lambda e: print(f"Error: {e}"),
    on_update=lambda flags: print(f"Updated: {len(flags)} flags"),
)

# Or create a client directly
options = FlagKitOptions(api_key="sdk_...")
client = FlagKitClient(options)
client.initialize()
"""

FLAG_EVALUATION = """
# Boolean flags
enabled = client.get_boolean_value("feature-flag", default=False)

# String flags
variant = client.get_string_value("button-text", default="Click")

# Number flags
limit = client.get_number_value("rate-limit", default=100)

# JSON flags
config = client.get_json_value("config", default={"enabled": False})

# Full evaluation result
result = client.evaluate("feature-flag")
# result.flag_key, result.value, result.enabled, result.reason, result.version

# Evaluate all flags
all_results = client.evaluate_all()

# Check flag existence
if client.has_flag("my-flag"):
    # ...

# Get all flag keys
keys = client.get_all_flag_keys()
"""

CONTEXT_MANAGEMENT = """
from flagkit import EvaluationContext

# Set global context
context = EvaluationContext(
    user_id="user-123",
    email="user@example.com",
    country="US",
    custom={"plan": "premium", "beta_tester": True},
    private_attributes=["email"],  # Not sent to server
)
client.set_context(context)

# Get current context
current = client.get_context()

# Clear context
client.clear_context()

# Identify user (shorthand)
client.identify("user-123", {"email": "user@example.com"})

# Reset to anonymous
client.reset()

# Pass context to evaluation
result = client.get_boolean_value(
    "feature-flag",
    default=False,
    context=EvaluationContext(user_id="other-user"),
)
"""

EVENT_TRACKING = """
# Track custom event
client.track("purchase", {
    "amount": 99.99,
    "currency": "USD",
    "product_id": "prod-123",
})

# Force flush pending events
client.flush()
"""

LIFECYCLE = """
# Check if SDK is ready
if client.is_ready():
    # ...

# Wait for ready (blocks until initialized)
client.wait_for_ready()

# Force refresh flags from server
client.refresh()

# Close SDK and cleanup
client.close()

# Using context manager
with FlagKitClient(options) as client:
    client.initialize()
    # Use client...
# Automatically closed
"""

ERROR_HANDLING = """
from flagkit import FlagKitError, InitializationError, NetworkError

try:
    client = FlagKit.initialize(api_key="sdk_...")
except InitializationError as e:
    print(f"Failed to initialize: {e.code} - {e}")
except NetworkError as e:
    if e.recoverable:
        # Retry logic
        pass
except FlagKitError as e:
    print(f"Error [{e.code}]: {e}")
    print(f"Recoverable: {e.recoverable}")
    print(f"Details: {e.to_dict()}")
"""

LOCAL_DEVELOPMENT_1 = """
# Connect to local FlagKit server at http://localhost:8200/api/v1
client = FlagKit.initialize(
    api_key="sdk_...",
    local_port=8200,
)
"""

LOCAL_DEVELOPMENT_2 = """
# Or use a custom port
client = FlagKit.initialize(
    api_key="sdk_...",
    local_port=3000,  # Uses http://localhost:3000/api/v1
)
"""

OFFLINE_MODE = """
# Start in offline mode
client = FlagKit.initialize(
    api_key="sdk_...",
    offline=True,
    bootstrap={"feature-flag": True},
)

# Uses bootstrap values without network requests
value = client.get_boolean_value("feature-flag", default=False)
"""

PII_DETECTION = """
# Enable strict PII mode - raises errors instead of warnings
client = FlagKit.initialize(
    api_key="sdk_...",
    strict_pii_mode=True,
)

# Attributes containing PII will raise SecurityError
try:
    client.identify("user-123", {"email": "user@example.com"})  # PII detected!
except SecurityError as e:
    print(f"PII error: {e}")

# Use private attributes to mark fields as intentionally containing PII
context = EvaluationContext(
    user_id="user-123",
    email="user@example.com",
    private_attributes=["email"],  # Marks email as intentionally private
)
client.set_context(context)  # No error - email marked as private
"""

REQUEST_SIGNING = """
# Enabled by default, can be disabled if needed
client = FlagKit.initialize(
    api_key="sdk_...",
    enable_request_signing=False,  # Disable signing
)
"""

BOOTSTRAP_VERIFICATION = """
from flagkit import BootstrapConfig, BootstrapVerificationOptions
from flagkit.utils.security import create_bootstrap_signature

# Create signed bootstrap data
bootstrap = create_bootstrap_signature(
    flags={"feature-a": True, "feature-b": "value"},
    api_key="sdk_your_api_key",
)

# Use signed bootstrap with verification
client = FlagKit.initialize(
    api_key="sdk_...",
    bootstrap=bootstrap,
    bootstrap_verification=BootstrapVerificationOptions(
        enabled=True,
        max_age=86400000,  # 24 hours in milliseconds
        on_failure="error",  # "warn" (default), "error", or "ignore"
    ),
)
"""

CACHE_ENCRYPTION = """
client = FlagKit.initialize(
    api_key="sdk_...",
    encrypt_cache=True,
)
"""

EVALUATION_JITTER = """
from flagkit import EvaluationJitterConfig

client = FlagKit.initialize(
    api_key="sdk_...",
    evaluation_jitter=EvaluationJitterConfig(
        enabled=True,
        min_ms=5,
        max_ms=15,
    ),
)
"""

ERROR_SANITIZATION = """
from flagkit import ErrorSanitizationConfig

client = FlagKit.initialize(
    api_key="sdk_...",
    error_sanitization=ErrorSanitizationConfig(
        enabled=True,
        preserve_original=False,  # Set True to keep original for debugging
    ),
)
# Errors will have paths, IPs, API keys, and emails redacted
"""

EVENT_PERSISTENCE = """
client = FlagKit.initialize(
    api_key="sdk_...",
    persist_events=True,
    event_storage_path="/path/to/storage",  # Optional, defaults to temp dir
    max_persisted_events=10000,             # Optional, default 10000
    persistence_flush_interval=1000,        # Optional, default 1000ms
)
"""

KEY_ROTATION = """
client = FlagKit.initialize(
    api_key="sdk_primary_key",
    secondary_api_key="sdk_secondary_key",
    key_rotation_grace_period=300.0,  # 5 minutes
)
# SDK will automatically failover to secondary key on 401 errors
"""

ERROR_HANDLING_2 = """
from flagkit import (
    FlagKitError,
    InitializationError,
    NetworkError,
    SecurityError,
)

try:
    client = FlagKit.initialize(api_key="sdk_...")
except InitializationError as e:
    print(f"Failed to initialize: {e.code} - {e}")
except SecurityError as e:
    print(f"Security error: {e.code} - {e}")
except NetworkError as e:
    if e.recoverable:
        # Retry logic
        pass
except FlagKitError as e:
    print(f"Error [{e.code}]: {e}")
    print(f"Recoverable: {e.recoverable}")
    print(f"Details: {e.to_dict()}")
"""

TESTING_1 = """
# Use offline mode with bootstrap values
client = FlagKit.initialize(
    api_key="sdk_test",
    offline=True,
    bootstrap={"feature-flag": True},
)
client.wait_for_ready()
"""

TESTING_2 = """
# With signed bootstrap for verification testing
from flagkit.utils.security import create_bootstrap_signature

bootstrap = create_bootstrap_signature(
    flags={"feature-flag": True},
    api_key="sdk_test",
)
client = FlagKit.initialize(
    api_key="sdk_test",
    offline=True,
    bootstrap=bootstrap,
)
"""

COMPLETE_FRAGMENT = ("    # ...\n", "    pass  # ...\n")


# --- the tests ------------------------------------------------------------------------------


def test_quick_start(
    server: FlagKitServer, namespace: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Quick Start: initialize, identify, typed getters, evaluate, track, close."""
    run(adapt(QUICK_START, to_server(server, '"sdk_your_api_key"')), namespace, "Quick Start")
    assert namespace["dark_mode"] is True
    assert namespace["welcome_message"] == "Welcome back!"
    assert namespace["max_items"] == 25.0
    assert namespace["config"] == {"layout": "grid"}
    assert "Value: True, Reason: " in capsys.readouterr().out
    assert str(namespace["result"].reason) == "CACHED"
    session = namespace["client"].session_id
    assert server.events("button_clicked", session_id=session)[0]["eventData"] == {
        "button": "signup"
    }
    assert not namespace["client"].is_ready()  # closed by the sample


def test_initialization(
    server: FlagKitServer, namespace: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """API Reference / Initialization: the factory with every shown option, then a direct
    client."""
    code = adapt(INITIALIZATION, to_server(server))
    run(code, namespace, "Initialization")
    singleton = FlagKit.get_client()
    assert singleton.is_ready() and singleton.get_boolean_value("dark-mode", default=False)
    assert singleton.get_boolean_value("flag", default=False) is True  # from the bootstrap
    assert singleton.wait_for_callbacks(5)
    assert "Ready!" in capsys.readouterr().out  # on_ready ran
    assert singleton.options.resolved_base_url == f"http://localhost:{server.port}/api/v1"
    direct = namespace["client"]
    assert direct is not singleton and direct.is_ready()


def test_flag_evaluation(namespace: dict[str, Any], direct_client: FlagKitClient) -> None:
    """Flag Evaluation: each getter, evaluate, evaluate_all, has_flag, get_all_flag_keys."""
    run(adapt(FLAG_EVALUATION, COMPLETE_FRAGMENT), namespace, "Flag Evaluation")
    assert namespace["enabled"] is True
    assert namespace["variant"] == "Buy now"
    assert namespace["limit"] == 50.0
    assert namespace["config"] == {"enabled": True}
    result = namespace["result"]
    assert (result.flag_key, result.value, result.enabled, result.version) == (
        "feature-flag",
        True,
        True,
        1,
    )
    assert set(namespace["all_results"]) == set(namespace["keys"]) == set(SERVER_FLAGS)
    assert direct_client.has_flag("my-flag")


def test_context_management(namespace: dict[str, Any], direct_client: FlagKitClient) -> None:
    """Context Management: set/get/clear context, identify, reset, per-call context."""
    run(CONTEXT_MANAGEMENT, namespace, "Context Management")
    current = namespace["current"]
    assert current.user_id == "user-123" and current.custom["plan"] == "premium"
    assert current == namespace["context"]
    assert namespace["result"] is True


def test_event_tracking(
    server: FlagKitServer, namespace: dict[str, Any], direct_client: FlagKitClient
) -> None:
    """Event Tracking: track() then flush() delivers the event to the server."""
    run(EVENT_TRACKING, namespace, "Event Tracking")
    events = server.wait_for_events(1, event_type="purchase")
    assert any(e.get("eventData", {}).get("product_id") == "prod-123" for e in events)


def test_lifecycle(namespace: dict[str, Any], direct_client: FlagKitClient) -> None:
    """Lifecycle: is_ready, wait_for_ready, refresh, close, and the context manager."""
    assert direct_client.is_ready() and direct_client.wait_for_ready()
    run(adapt(LIFECYCLE, COMPLETE_FRAGMENT), namespace, "Lifecycle")
    assert not direct_client.is_ready()  # closed by the sample
    managed = namespace["client"]
    assert managed is not direct_client and not managed.is_ready()  # closed on exit


@pytest.mark.parametrize(
    ("name", "sample"), [("Error Handling", ERROR_HANDLING), ("Error Handling 2", ERROR_HANDLING_2)]
)
def test_error_handling(
    server: FlagKitServer,
    namespace: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    name: str,
    sample: str,
) -> None:
    """Error Handling: against a healthy server the try block succeeds and prints nothing."""
    run(adapt(sample, to_server(server)), namespace, name)
    assert capsys.readouterr().out == ""
    assert FlagKit.get_client().is_ready()


def test_error_handling_sample_catches_an_unreachable_server() -> None:
    """README "Error Handling": a recoverable NetworkError reaches the ``except`` clauses."""
    with FlagKitServer(flags={}) as gone:
        port = gone.port
    caught: list[str] = []
    try:
        FlagKit.initialize(api_key=SERVER_KEY, local_port=port, timeout=0.5, retries=1)
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


def test_local_development(server: FlagKitServer, namespace: dict[str, Any]) -> None:
    """Local Development: local_port points the client at http://localhost:{port}/api/v1."""
    for part, sample, port in (
        ("Local Development 1", LOCAL_DEVELOPMENT_1, "local_port=8200"),
        ("Local Development 2", LOCAL_DEVELOPMENT_2, "local_port=3000"),
    ):
        code = adapt(
            sample,
            ('api_key="sdk_..."', f'api_key="{SERVER_KEY}"'),
            (port, f"local_port={server.port}"),
        )
        run(code, namespace, part)
        client = FlagKit.get_client()
        assert client.is_ready()
        assert client.options.resolved_base_url == f"http://localhost:{server.port}/api/v1"
        FlagKit.close()


def test_offline_mode(server: FlagKitServer, namespace: dict[str, Any]) -> None:
    """Offline Mode: bootstrap values, and not one request reaches the server."""
    before = len(server.requests)
    run(adapt(OFFLINE_MODE, to_server(server)), namespace, "Offline Mode")
    assert namespace["value"] is True
    namespace["client"].close()
    assert len(server.requests) == before


def test_pii_detection(
    server: FlagKitServer, namespace: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """PII Detection: strict mode raises SecurityError for an e-mail attribute; a private one
    is accepted."""
    run(adapt(PII_DETECTION, to_server(server)), namespace, "PII Detection")
    assert "PII error: " in capsys.readouterr().out
    context = namespace["client"].get_context()
    assert context is not None and context.email == "user@example.com"


def test_bootstrap_signature_verification(server: FlagKitServer, namespace: dict[str, Any]) -> None:
    """Bootstrap Signature Verification: a signed bootstrap passes on_failure="error"."""
    code = adapt(
        BOOTSTRAP_VERIFICATION,
        ('api_key="sdk_your_api_key"', f'api_key="{SERVER_KEY}"'),
        to_server(server),
    )
    run(code, namespace, "Bootstrap Signature Verification")
    client = namespace["client"]
    assert client.is_ready()
    assert client.get_boolean_value("feature-a", default=False) is True
    assert client.get_string_value("feature-b", default="") == "value"


@pytest.mark.parametrize(
    ("name", "sample", "applied"),
    [
        ("Request Signing", REQUEST_SIGNING, lambda o: o.enable_request_signing is False),
        ("Cache Encryption", CACHE_ENCRYPTION, lambda o: o.encrypt_cache is True),
        ("Evaluation Jitter", EVALUATION_JITTER, lambda o: o.evaluation_jitter.enabled),
        (
            "Error Sanitization",
            ERROR_SANITIZATION,
            lambda o: o.error_sanitization == ErrorSanitizationConfig(preserve_original=False),
        ),
    ],
)
def test_option_samples(
    server: FlagKitServer,
    namespace: dict[str, Any],
    name: str,
    sample: str,
    applied: Callable[[FlagKitOptions], bool],
) -> None:
    """Security option samples: each initializes a ready client with the option applied."""
    run(adapt(sample, to_server(server)), namespace, name)
    client = namespace["client"]
    assert client.is_ready()
    assert client.get_boolean_value("dark-mode", default=False) is True
    assert applied(client.options)


def test_event_persistence(
    server: FlagKitServer, namespace: dict[str, Any], tmp_path: Path
) -> None:
    """Event Persistence: the client starts with persistence in the given directory."""
    code = adapt(EVENT_PERSISTENCE, to_server(server), ('"/path/to/storage"', repr(str(tmp_path))))
    run(code, namespace, "Event Persistence")
    client = namespace["client"]
    assert client.is_ready()
    assert client.options.persist_events and client.options.event_storage_path == str(tmp_path)
    client.track("persisted_event")
    client.close()
    assert server.wait_for_events(1, event_type="persisted_event")


def test_key_rotation(server: FlagKitServer, namespace: dict[str, Any]) -> None:
    """Key Rotation: a primary and a secondary key are accepted and the client loads."""
    run(adapt(KEY_ROTATION, to_server(server, '"sdk_primary_key"')), namespace, "Key Rotation")
    client = namespace["client"]
    assert client.is_ready()
    assert client.options.secondary_api_key == SECONDARY_KEY


def test_testing_samples(server: FlagKitServer, namespace: dict[str, Any]) -> None:
    """Testing: offline bootstrap, then a signed offline bootstrap; no request is sent."""
    before = len(server.requests)
    run(TESTING_1, namespace, "Testing 1")
    assert namespace["client"].get_boolean_value("feature-flag", default=False) is True
    FlagKit.close()
    run(TESTING_2, namespace, "Testing 2")
    assert namespace["client"].get_boolean_value("feature-flag", default=False) is True
    assert len(server.requests) == before


def test_encrypted_cache_persisted_events_and_key_failover(
    server: FlagKitServer, tmp_path: Path
) -> None:
    """README "Cache Encryption", "Event Persistence" and "Key Rotation" written out in full:
    the cache lands on disk, persisted events are flushed, a refused primary fails over."""
    client = FlagKit.initialize(
        api_key=SERVER_KEY,
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
        api_key="sdk_primary_key",  # not a key the server accepts: the secondary takes over
        secondary_api_key=SECONDARY_KEY,
        key_rotation_grace_period=300.0,
        local_port=server.port,
    )
    assert rotating.is_in_key_rotation()
    assert rotating.get_boolean_value("dark-mode", default=False) is True
