"""End to end: issue 5's security features through a real ``FlagKitClient``.

Every test drives a client over real HTTP on 127.0.0.1 — the local server
(``flagkit.testing.FlagKitServer``, with ``verify_signatures=True`` where signing matters)
or a small TLS server with a self-signed certificate — and looks at what arrived on the
server, what was written to disk and what was logged. Nothing is mocked. The unit tests of
each part live in ``test_security*.py``, ``test_storage*.py``, ``test_http_signing.py`` and
``test_signing.py``; this file proves the parts are wired together as issue 5 demands.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import http.server
import ipaddress
import json
import logging
import ssl
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from flagkit import (
    AuthenticationError,
    BootstrapConfig,
    BootstrapVerificationOptions,
    ConfigurationError,
    EvaluationContext,
    EvaluationJitterConfig,
    EvaluationReason,
    FlagKitClient,
    FlagKitError,
    FlagKitOptions,
    NetworkError,
    SecurityError,
    StorageError,
)
from flagkit.client import ClientState
from flagkit.testing import FlagKitServer, RecordedRequest
from flagkit.utils.security import create_bootstrap_signature
from flagkit.utils.signing import canonical_json, key_id, sign_body
from tests.support.clients import loopback_client

PRIMARY = "sdk_primary_0123456789abcdef"
SECONDARY = "sdk_secondary_fedcba9876543210"
STRANGER = "sdk_stranger_5555555555555555"
KEYS_BY_ID = {key_id(PRIMARY): PRIMARY, key_id(SECONDARY): SECONDARY}


def make_client(base_url: str, **overrides: Any) -> FlagKitClient:
    """A client for loopback tests: no streaming or polling, manual flushes, fast retries."""
    return loopback_client(base_url, **{"api_key": PRIMARY, "enable_polling": False, **overrides})


def signed_with(request: RecordedRequest) -> str | None:
    """The configured key whose HMAC over ``"{ts}.{raw body}"`` is the request's signature."""
    headers = request.headers
    key = KEYS_BY_ID.get(headers.get("X-Key-Id", ""))
    if key is None or "X-Signature" not in headers:
        return None
    expected = sign_body(request.body.decode("ascii"), key, int(headers["X-Timestamp"]))
    return key if expected == headers["X-Signature"] else None


# -- 1. request signing against a verifying server ----------------------------------------


def test_signed_batches_are_accepted_before_during_and_after_key_rotation() -> None:
    """A verifying server accepts every batch; a 401 mid-life moves signing to the new key."""
    with FlagKitServer(
        flags={"a": True}, api_keys=[PRIMARY, SECONDARY], verify_signatures=True
    ) as server:
        client = make_client(server.base_url, secondary_api_key=SECONDARY)
        client.initialize()

        client.track("before-rotation", {"n": 1})
        assert client.flush(timeout=5).ok
        assert not client.is_in_key_rotation()

        server.inject_fault("events", statuses=[401], count=1)  # the primary key is revoked
        client.track("during-rotation", {"n": 2})
        assert client.flush(timeout=5).ok
        assert client.is_in_key_rotation()

        client.track("after-rotation", {"n": 3, "note": "café"})
        assert client.flush(timeout=5).ok

        recorded = [e["eventType"] for e in server.events(session_id=client.session_id)]
        assert recorded == ["before-rotation", "during-rotation", "after-rotation"]
        batches = server.requests_to("events")
        assert [(r.status, r.headers["X-Key-Id"]) for r in batches] == [
            (200, "sdk_prim"),
            (401, "sdk_prim"),
            (200, "sdk_seco"),  # the resend: new key, signed again with it
            (200, "sdk_seco"),
        ]
        assert [r.headers["X-API-Key"] == SECONDARY for r in batches] == [False, False, True, True]
        for request in batches:
            # The signature covers the exact bytes sent, which are the canonical JSON.
            assert signed_with(request) == KEYS_BY_ID[request.headers["X-Key-Id"]]
            assert request.body.decode("ascii") == canonical_json(request.json())


def test_tampered_batch_is_rejected_with_403_signature_invalid() -> None:
    """Replaying a recorded signature with a changed body or timestamp is refused with 403."""
    with FlagKitServer(flags={"a": True}, api_keys=[PRIMARY], verify_signatures=True) as server:
        client = make_client(server.base_url)
        client.initialize()
        client.track("purchase", {"amount": 10})
        assert client.flush(timeout=5).ok
        [original] = server.requests_to("events")
        assert original.status == 200
        headers = {
            name: original.headers[name]
            for name in ("Content-Type", "X-API-Key", "X-Signature", "X-Timestamp", "X-Key-Id")
        }
        body = original.body.decode("ascii")
        assert '"amount":10' in body
        tampered = body.replace('"amount":10', '"amount":99999')
        url = f"{server.base_url}/sdk/events/batch"

        with httpx.Client(timeout=5) as http:
            forged = http.post(url, content=tampered.encode(), headers=headers)
            assert forged.status_code == 403
            assert forged.json()["error"] == "SECURITY_SIGNATURE_INVALID"

            shifted = {**headers, "X-Timestamp": str(int(headers["X-Timestamp"]) + 1)}
            moved = http.post(url, content=original.body, headers=shifted)
            assert moved.status_code == 403
            assert moved.json()["error"] == "SECURITY_SIGNATURE_INVALID"

            # Control: the untouched request still verifies, so the 403s came from the edits.
            replay = http.post(url, content=original.body, headers=headers)
            assert replay.status_code == 200
        amounts = [e["eventData"]["amount"] for e in server.events(event_type="purchase")]
        assert amounts == [10]  # the replay is a duplicate eventId; the forgery never landed


@pytest.mark.parametrize("verifying", [True, False], ids=["verifying-server", "plain-server"])
def test_unsigned_batches_are_refused_only_by_a_verifying_server(verifying: bool) -> None:
    """``enable_request_signing=False`` sends no signature: 403 when verified, else accepted."""
    with FlagKitServer(
        flags={"a": True}, api_keys=[PRIMARY, SECONDARY], verify_signatures=verifying
    ) as server:
        client = make_client(
            server.base_url, enable_request_signing=False, secondary_api_key=SECONDARY
        )
        client.initialize()
        client.track("purchase", {"amount": 1})
        result = client.flush(timeout=5)
        [first, *_] = server.requests_to("events")
        assert "X-Signature" not in first.headers and "X-Key-Id" not in first.headers
        if verifying:
            assert isinstance(result.error, SecurityError)  # a refused signature, not key
            assert result.error.code == "SECURITY_SIGNATURE_INVALID"
            assert result.error.status_code == 403
            # A refused signature is permanent for that batch: dropped and counted, not retried.
            assert result.pending == 0 and client.event_stats.rejected == 1
            assert server.events() == []
            assert not client.is_in_key_rotation()  # a 403 never triggers rotation
        else:
            assert result.ok
            assert [e["eventType"] for e in server.events()] == ["purchase"]


# -- 2. rotation on 401: exactly one resend --------------------------------------------------


def test_rotation_on_401_resends_exactly_once_and_reports_rotation() -> None:
    """A 401 for the primary key gives one resend with the secondary key, then nothing else."""
    with FlagKitServer(flags={"a": "on"}, api_keys=[SECONDARY], verify_signatures=True) as server:
        client = make_client(server.base_url, secondary_api_key=SECONDARY, retries=3)
        client.initialize()
        assert [(r.endpoint, r.status, r.headers["X-API-Key"]) for r in server.requests] == [
            ("init", 401, PRIMARY),
            ("init", 200, SECONDARY),
        ]
        assert client.is_in_key_rotation()
        assert client.get_string_value("a", "off") == "on"

        client.track("purchase", {"amount": 1})
        assert client.flush(timeout=5).ok
        [batch] = server.requests_to("events")
        assert (batch.status, batch.headers["X-API-Key"]) == (200, SECONDARY)
        assert signed_with(batch) == SECONDARY
        assert len(server.requests) == 3  # no loop, no switching back


def test_rotation_never_loops_when_both_keys_are_rejected() -> None:
    """Two rejected keys cost two requests, raise AUTH_INVALID_KEY and stop the client."""
    with FlagKitServer(flags={"a": True}, api_keys=[STRANGER]) as server:
        client = make_client(server.base_url, secondary_api_key=SECONDARY, retries=3)
        with pytest.raises(AuthenticationError) as info:
            client.initialize()
        assert info.value.code == "AUTH_INVALID_KEY"
        assert [r.headers["X-API-Key"] for r in server.requests] == [PRIMARY, SECONDARY]
        assert client.state is ClientState.FAILED
        assert client.refresh() is False
        assert len(server.requests) == 2

        alone = make_client(server.base_url, retries=3)  # no secondary key: no resend at all
        server.clear_requests()
        with pytest.raises(AuthenticationError):
            alone.initialize()
        assert len(server.requests) == 1
        assert not alone.is_in_key_rotation()


def test_grace_period_only_drives_is_in_key_rotation() -> None:
    """With a zero grace period the client still uses the secondary key, but reports no rotation."""
    with FlagKitServer(flags={"a": True}, api_keys=[SECONDARY]) as server:
        client = make_client(
            server.base_url, secondary_api_key=SECONDARY, key_rotation_grace_period=0.0
        )
        client.initialize()
        assert not client.is_in_key_rotation()
        assert client.refresh() is True
        client.track("purchase", {"amount": 1})
        assert client.flush(timeout=5).ok
        keys = [r.headers["X-API-Key"] for r in server.requests]
        assert keys[0] == PRIMARY
        assert set(keys[1:]) == {SECONDARY}


# -- 3. bootstrap verification through the client --------------------------------------------

BOOT_FLAGS: dict[str, Any] = {"beta-banner": True, "theme": "dark"}
DAY_MS = 86_400_000


def _bootstrap(attack: str) -> tuple[BootstrapConfig, str]:
    """A bootstrap that fails verification for ``PRIMARY``, and the failure's reason."""
    now = time.time_ns() // 1_000_000
    if attack == "forged":  # signed by someone without the client's key
        return create_bootstrap_signature(BOOT_FLAGS, STRANGER), "mismatch"
    if attack == "expired":
        return create_bootstrap_signature(BOOT_FLAGS, PRIMARY, timestamp=now - DAY_MS - 60_000), (
            "expired"
        )
    assert attack == "future"
    return create_bootstrap_signature(BOOT_FLAGS, PRIMARY, timestamp=now + 600_000), "future"


ATTACKS = ["forged", "expired", "future"]


@pytest.mark.parametrize("attack", ATTACKS)
def test_bad_bootstrap_with_on_failure_error_fails_construction(attack: str) -> None:
    """``on_failure="error"``: the constructor raises SECURITY_BOOTSTRAP_VERIFICATION_FAILED."""
    bootstrap, reason = _bootstrap(attack)
    with pytest.raises(SecurityError) as info:
        FlagKitClient(
            api_key=PRIMARY,
            offline=True,
            bootstrap=bootstrap,
            bootstrap_verification=BootstrapVerificationOptions(on_failure="error"),
        )
    assert info.value.code == "SECURITY_BOOTSTRAP_VERIFICATION_FAILED"
    assert (info.value.details or {}).get("reason") == reason
    assert PRIMARY not in str(info.value) and PRIMARY not in repr(info.value)


@pytest.mark.parametrize("attack", ATTACKS)
def test_bad_bootstrap_with_on_failure_warn_is_served_with_a_warning(
    attack: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``on_failure="warn"`` (the default): a warning names the reason; the flags are served."""
    bootstrap, reason = _bootstrap(attack)
    with caplog.at_level(logging.WARNING, logger="flagkit"):
        client = make_client("http://127.0.0.1:9/api/v1", offline=True, bootstrap=bootstrap)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"verification failed ({reason})" in m for m in warnings), warnings
    assert not any(PRIMARY in m for m in warnings)
    client.initialize()
    assert client.get_boolean_value("beta-banner", False) is True
    assert client.get_string_value("theme", "light") == "dark"


@pytest.mark.parametrize("attack", ATTACKS)
def test_bad_bootstrap_with_on_failure_ignore_is_discarded(attack: str) -> None:
    """``on_failure="ignore"``: the flags are dropped, unknown to has_flag() and lookups."""
    bootstrap, _ = _bootstrap(attack)
    client = make_client(
        "http://127.0.0.1:9/api/v1",
        offline=True,
        bootstrap=bootstrap,
        bootstrap_verification=BootstrapVerificationOptions(on_failure="ignore"),
    )
    client.initialize()
    assert not client.has_flag("beta-banner") and not client.has_flag("theme")
    assert client.get_all_flag_keys() == []
    result = client.evaluate("theme", default="light")
    assert (result.value, result.reason) == ("light", EvaluationReason.FLAG_NOT_FOUND)


def test_valid_signed_bootstrap_is_served_in_strictest_mode() -> None:
    """A ``create_bootstrap_signature`` bootstrap passes ``on_failure="error"`` and is served."""
    client = make_client(
        "http://127.0.0.1:9/api/v1",
        offline=True,
        bootstrap=create_bootstrap_signature(flags=BOOT_FLAGS, api_key=PRIMARY),
        bootstrap_verification=BootstrapVerificationOptions(on_failure="error"),
    )
    client.initialize()
    assert client.has_flag("beta-banner")
    assert client.get_boolean_value("beta-banner", False) is True
    assert client.get_string_value("theme", "light") == "dark"


# -- 4. cache encryption ---------------------------------------------------------------------

SECRET_FLAGS: dict[str, Any] = {
    "vault-door-code": "correct-horse-battery-staple",
    "launch-budget": 31337,
}
PLAINTEXTS = ("vault-door-code", "correct-horse-battery-staple", "launch-budget", "31337")


def _cache_file(directory: Path) -> Path:
    [path] = [p for p in directory.rglob("*") if p.is_file()]
    return path


def test_encrypted_cache_hides_flags_survives_outages_and_rejects_tampering(
    tmp_path: Path,
) -> None:
    """The cache file is ciphertext; it serves a restart offline; tampering is reported, fixed."""
    cache = str(tmp_path / "cache")
    with FlagKitServer(flags=SECRET_FLAGS, api_keys=[PRIMARY]) as server:
        writer = make_client(server.base_url, cache_storage_path=cache, encrypt_cache=True)
        writer.initialize()
        writer.close()
        dead_url = server.base_url
    path = _cache_file(tmp_path / "cache")
    raw = path.read_bytes()
    for text in (*PLAINTEXTS, PRIMARY):
        assert text.encode() not in raw, text
    assert set(json.loads(raw)) == {"iv", "data", "tag", "version"}

    # Restart with the server gone: the last-known values are served.
    offline = make_client(dead_url, cache_storage_path=cache, encrypt_cache=True, retries=1)
    with pytest.raises(NetworkError):
        offline.initialize()
    assert offline.get_string_value("vault-door-code", "") == "correct-horse-battery-staple"
    assert offline.get_number_value("launch-budget", 0.0) == 31337.0
    offline.close()

    # Flip one ciphertext bit: reported through on_error, not served, not fatal.
    blob = json.loads(raw)
    data = bytearray(base64.b64decode(blob["data"]))
    data[0] ^= 0x01
    blob["data"] = base64.b64encode(bytes(data)).decode("ascii")
    path.write_text(json.dumps(blob))
    errors: list[Exception] = []
    new_flags = {**SECRET_FLAGS, "vault-door-code": "new-code"}
    with FlagKitServer(flags=new_flags, api_keys=[PRIMARY]) as server2:
        server2_url = server2.base_url
        reader = make_client(
            server2.base_url,
            cache_storage_path=cache,
            encrypt_cache=True,
            on_error=errors.append,
        )
        assert reader.get_string_value("vault-door-code", "default") == "default"
        reader.initialize()
        assert reader.wait_for_callbacks(5)
        assert [type(e) for e in errors] == [StorageError]
        assert isinstance(errors[0], FlagKitError)
        assert errors[0].code == "SECURITY_DECRYPTION_FAILED"
        assert reader.get_string_value("vault-door-code", "") == "new-code"
        # The successful load replaced the tampered file (before any close()).
        assert path.read_bytes() != json.dumps(blob).encode()
        reader.close()

    # A file written under another API key is refused (the key derives the AES key).
    foreign_errors: list[Exception] = []
    foreign = make_client(
        server2_url,
        api_key=STRANGER,
        offline=True,
        cache_storage_path=cache,
        encrypt_cache=True,
        on_error=foreign_errors.append,
    )
    assert foreign.get_string_value("vault-door-code", "default") == "default"
    foreign.initialize()
    assert foreign.wait_for_callbacks(5)
    assert [getattr(e, "code", None) for e in foreign_errors] == ["SECURITY_DECRYPTION_FAILED"]

    # ...while the owner of the replaced file reads it back, server down.
    owner = make_client(server2_url, cache_storage_path=cache, encrypt_cache=True)
    assert owner.get_string_value("vault-door-code", "") == "new-code"


# -- 5. PII through the client ---------------------------------------------------------------

PII_FLAGS: list[dict[str, Any]] = [
    {
        "key": "staff-tools",
        "flagType": "boolean",
        "value": False,
        "variations": [{"id": "on", "value": True}, {"id": "off", "value": False}],
        "rules": [
            {
                "id": "staff",
                "clauses": [{"attribute": "email", "op": "endsWith", "values": ["@corp.example"]}],
                "variation": "on",
            }
        ],
        "fallthrough": {"variation": "off"},
    }
]

# (which call, its argument(s), the finding it must report) — by field name, then by value
PII_CALLS: list[tuple[str, Any, str]] = [
    ("identify-name", ("user-1", {"email": "n/a"}), "email (name)"),
    ("identify-value", ("user-1", {"contact": "ann@example.com"}), "custom.contact (value: email)"),
    (
        "set_context-name",
        EvaluationContext(user_id="user-1", custom={"phone_number": "n/a"}),
        "custom.phone_number (name)",
    ),
    (
        "set_context-value",
        EvaluationContext(user_id="user-1", custom={"note": "+31 6 1234 5678"}),
        "custom.note (value: phone)",
    ),
    ("track-name", {"password": "n/a"}, "password (name)"),
    ("track-value", {"paid_with": "4111 1111 1111 1111"}, "paid_with (value: card)"),
]
PII_VALUES = ("ann@example.com", "1234 5678", "4111 1111 1111 1111")


def _call(client: FlagKitClient, name: str, argument: Any) -> None:
    if name.startswith("identify"):
        client.identify(*argument)
    elif name.startswith("set_context"):
        client.set_context(argument)
    else:
        client.track("checkout", argument)


def test_pii_by_name_and_value_is_warned_about_by_default(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Lenient mode logs one warning per finding, naming the field and kind, never the value."""
    with FlagKitServer(flags={"a": True}, api_keys=[PRIMARY]) as server:
        client = make_client(server.base_url)
        client.initialize()
        with caplog.at_level(logging.WARNING):
            for name, argument, _finding in PII_CALLS:
                _call(client, name, argument)
            assert client.flush(timeout=5).ok  # event data is scanned as the batch is built
        messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        for name, _argument, finding in PII_CALLS:
            assert any("PII" in m and finding in m for m in messages), (name, messages)
        for value in PII_VALUES:
            assert not any(value in m for m in messages)
        assert len(server.events(event_type="checkout")) == 2  # lenient: still delivered


def test_pii_in_strict_mode_raises_before_anything_changes() -> None:
    """``strict_pii_mode=True``: each call raises SECURITY_PII_DETECTED and nothing is queued."""
    with FlagKitServer(flags={"a": True}, api_keys=[PRIMARY]) as server:
        client = make_client(server.base_url, strict_pii_mode=True)
        client.initialize()
        baseline = EvaluationContext(user_id="user-0")
        client.set_context(baseline)
        for name, argument, finding in PII_CALLS:
            with pytest.raises(SecurityError) as info:
                _call(client, name, argument)
            assert info.value.code == "SECURITY_PII_DETECTED", name
            assert finding in str(info.value)
            assert not any(value in str(info.value) for value in PII_VALUES)
        assert client.get_context() == baseline
        assert client.event_stats.accepted == 0
        client.track("harmless", {"amount": 1})
        assert client.flush(timeout=5).ok
        assert [e["eventType"] for e in server.events()] == ["harmless"]


def test_private_attributes_are_allowed_used_locally_and_never_sent() -> None:
    """Private attributes pass strict mode, drive local targeting and never reach the server."""
    with FlagKitServer(flags=PII_FLAGS, api_keys=[PRIMARY]) as server:
        client = make_client(server.base_url, strict_pii_mode=True)
        client.initialize()
        client.set_context(
            EvaluationContext(
                user_id="user-9",
                email="ann@corp.example",
                custom={"phone": "+31 6 1234 5678", "plan": "pro"},
                private_attributes=["email", "custom.phone"],
            )
        )
        assert client.get_boolean_value("staff-tools", False) is True  # email used locally
        client.identify("user-9", {"email": "ann@corp.example", "private_attributes": ["email"]})
        client.track("purchase", {"amount": 5})
        assert client.flush(timeout=5).ok

        [purchase] = server.events(event_type="purchase")
        assert purchase["context"]["userId"] == "user-9"
        assert purchase["context"]["custom"] == {"plan": "pro"}
        assert "email" not in purchase["context"]
        for request in server.requests:
            wire = request.body + request.raw_query.encode() + repr(dict(request.headers)).encode()
            assert b"ann@corp.example" not in wire
            assert b"1234 5678" not in wire


# -- 6. no API key in logs, reprs or errors --------------------------------------------------


def _log_text(records: list[logging.LogRecord]) -> str:
    parts: list[str] = []
    for record in records:
        parts.append(record.getMessage())
        parts.append(repr(record.args))
        parts.append(record.exc_text or "")
        parts.append(record.stack_info or "")
        if record.exc_info and record.exc_info[1] is not None:
            parts.extend(traceback.format_exception(*record.exc_info))
    return "\n".join(parts)


def _assert_no_key(text: str, *keys: str) -> None:
    for key in keys:
        assert key not in text
        assert key[8:] not in text  # not even the secret part after the key id


@pytest.mark.parametrize(
    ("primary", "secondary"),
    [
        (PRIMARY, SECONDARY),
        # Keys the log redactor's pattern cannot recognise: only "never logged" keeps them out.
        ("sdk_Life.Cycle+Primary/0001", "sdk_Life.Cycle+Second/0002"),
    ],
    ids=["plain-keys", "keys-the-redactor-misses"],
)
def test_whole_client_lifetime_logs_no_api_key(
    primary: str, secondary: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Init, a 401 with rotation, events, server errors and close log no API key anywhere."""
    caplog.set_level(logging.DEBUG)
    errors: list[Exception] = []
    with FlagKitServer(flags={"a": True}, api_keys=[secondary], verify_signatures=True) as server:
        client = make_client(
            server.base_url,
            api_key=primary,
            secondary_api_key=secondary,
            debug=True,
            on_error=errors.append,
        )
        client.initialize()  # 401, rotation, resend
        client.identify("user-1", {"plan": "pro"})
        client.track("purchase", {"amount": 1})
        assert client.flush(timeout=5).ok

        server.inject_fault("events", statuses=[500, 500])
        client.track("purchase", {"amount": 2})
        failed = client.flush(timeout=2)
        assert failed.error is not None
        errors.append(failed.error)
        server.inject_fault("updates", statuses=[503, 503])
        assert client.refresh() is False
        assert client.last_error is not None
        errors.append(client.last_error)
        server.clear_faults()

        stranger = make_client(server.base_url, api_key=STRANGER, secondary_api_key=primary)
        with pytest.raises(AuthenticationError) as info:
            stranger.initialize()
        errors.append(info.value)
        reprs = [repr(client), repr(client.options), repr(stranger), repr(stranger.options)]
        client.close()
        stranger.close()
        assert client.wait_for_callbacks(5)

    text = _log_text(caplog.records)
    # The capture really saw the lifetime: rotation (by key id), debug traffic, the errors.
    assert f"{key_id(primary)} was rejected" in text
    assert "POST /sdk/events/batch -> 200" in text
    assert "NETWORK_SERVER_ERROR" in text
    _assert_no_key(text, primary, secondary, STRANGER)
    error_texts = [
        f"{e}\n{e!r}\n{e.to_dict() if isinstance(e, FlagKitError) else ''}" for e in errors
    ]
    assert len(errors) >= 3
    _assert_no_key("\n".join(error_texts + reprs), primary, secondary, STRANGER)


# -- 7. local port, plain http, TLS ----------------------------------------------------------


def test_local_port_in_production_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """``local_port`` with ENVIRONMENT=production raises SECURITY_LOCAL_PORT_IN_PRODUCTION."""
    for name in ("PYTHON_ENV", "NODE_ENV", "ENV", "ENVIRONMENT"):
        monkeypatch.delenv(name, raising=False)
    allowed = FlagKitClient(api_key=PRIMARY, local_port=8200, offline=True)
    assert allowed.options.resolved_base_url == "http://localhost:8200/api/v1"
    allowed.close()

    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(SecurityError) as info:
        FlagKitClient(api_key=PRIMARY, local_port=8200)
    assert info.value.code == "SECURITY_LOCAL_PORT_IN_PRODUCTION"
    assert "ENVIRONMENT" in str(info.value)


def test_plain_http_to_a_remote_host_needs_allow_insecure_http() -> None:
    """``http://`` to a non-local host is a ConfigurationError unless explicitly allowed."""
    with pytest.raises(ConfigurationError) as info:
        FlagKitClient(api_key=PRIMARY, base_url="http://flags.example.com/api/v1")
    assert info.value.option == "base_url"
    assert "allow_insecure_http" in str(info.value)
    options = FlagKitOptions(
        PRIMARY, base_url="http://flags.example.com/api/v1", allow_insecure_http=True
    )
    assert options.resolved_base_url == "http://flags.example.com/api/v1"


def test_non_ascii_api_key_is_refused_at_construction() -> None:
    """A key that cannot travel in an HTTP header fails at construction, not on first use."""
    with pytest.raises(ConfigurationError) as info:
        FlagKitClient(api_key="sdk_ключ_секрет_1234567", offline=True)
    assert info.value.option == "api_key"
    assert "ASCII" in str(info.value)
    assert "секрет" not in str(info.value)


class _TlsFlagsHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with an empty ``/sdk/init`` body and counts the requests."""

    hits: list[str]

    def do_GET(self) -> None:
        self.server.hits.append(self.headers.get("X-API-Key", ""))  # type: ignore[attr-defined]
        body = json.dumps({"flags": [], "environmentId": "env"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr log."""


@contextlib.contextmanager
def _self_signed_https_server(tmp_path: Path) -> Iterator[tuple[int, Path, list[str]]]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate: (port, cert, X-API-Keys)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "cert.pem"
    key_path = tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TlsFlagsHandler)
    httpd.daemon_threads = True
    hits: list[str] = []
    httpd.hits = hits  # type: ignore[attr-defined]
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, name="tls-test-server", daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1], cert_path, hits
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_https_keeps_certificate_verification_on(tmp_path: Path) -> None:
    """An untrusted certificate fails with NETWORK_SSL_ERROR before the API key is sent."""
    with _self_signed_https_server(tmp_path) as (port, cert_path, hits):
        client = make_client(f"https://127.0.0.1:{port}/api/v1", retries=1)
        with pytest.raises(NetworkError) as info:
            client.initialize()
        assert info.value.code == "NETWORK_SSL_ERROR"
        assert hits == []  # no request got through, so no key left the process
        # Control: the server works for a client that trusts its certificate.
        trusting = ssl.create_default_context(cafile=str(cert_path))
        answer = httpx.get(f"https://127.0.0.1:{port}/api/v1/sdk/init", verify=trusting)
        assert answer.status_code == 200 and hits == [""]


def test_https_to_a_plain_http_server_fails_instead_of_downgrading() -> None:
    """An https base URL never falls back to plain http, even on loopback."""
    with FlagKitServer(flags={"a": True}, api_keys=[PRIMARY]) as server:
        client = make_client(f"https://127.0.0.1:{server.port}/api/v1", retries=1)
        with pytest.raises(NetworkError) as info:
            client.initialize()
        assert info.value.code in ("NETWORK_SSL_ERROR", "NETWORK_ERROR")
        assert client.get_boolean_value("a", False) is False
        assert server.requests_to("init") == []


# -- 8. evaluation jitter --------------------------------------------------------------------


def test_evaluation_jitter_delays_every_evaluation_and_keeps_values() -> None:
    """With jitter on, N evaluations take at least N * min_ms and return the right values."""
    client = make_client(
        "http://127.0.0.1:9/api/v1",
        offline=True,
        bootstrap={"a": True, "s": "text", "n": 3},
        evaluation_jitter=EvaluationJitterConfig(enabled=True, min_ms=2, max_ms=4),
    )
    client.initialize()
    rounds = 10
    started = time.perf_counter()
    for _ in range(rounds):
        assert client.get_boolean_value("a", False) is True
        assert client.get_string_value("s", "") == "text"
        assert client.get_number_value("n", 0.0) == 3.0
        assert client.evaluate("a").value is True
        assert client.get_boolean_value("missing", True) is True
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert elapsed_ms >= rounds * 5 * 2  # 5 evaluations per round, each >= min_ms

    started = time.perf_counter()
    assert set(client.evaluate_all()) == {"a", "s", "n"}
    assert (time.perf_counter() - started) * 1000 >= 2
