"""The FlagKit error-code table (docs/protocol.md §13.2).

Each code has a number, a default message and whether it is recoverable: whether a later
attempt may succeed (the condition can pass), as opposed to a mistake or a refusal that
stays until someone changes the configuration. The first load of a client retries every
recoverable failure; only a rejected key or a refused signature is permanent for it.

Five codes are ours, numbered in the free range of their category (docs/protocol.md
§20.9): ``INIT_NOT_INITIALIZED`` (1006), ``NETWORK_CIRCUIT_OPEN`` (1309),
``NETWORK_UNEXPECTED_STATUS`` (1310: a 3xx/4xx answer that is neither a key rejection nor
a rate limit, e.g. 404 or 409 from a proxy or a deploy in progress),
``NETWORK_RESPONSE_TOO_LARGE`` (1311: a body or stream event over the size limits of
docs/security.md "Limits") and ``SECURITY_SIGNATURE_INVALID`` (1706).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class ErrorDefinition:
    """One row of the error-code table."""

    code: str
    numeric_code: int
    message: str
    recoverable: bool


ERROR_CODES: Final[dict[str, ErrorDefinition]] = {
    d.code: d
    for d in (
        ErrorDefinition("INIT_FAILED", 1000, "SDK initialization failed", False),
        ErrorDefinition("INIT_TIMEOUT", 1001, "Initialization timed out", True),
        ErrorDefinition("INIT_INVALID_CONFIG", 1002, "Invalid SDK configuration", False),
        ErrorDefinition("INIT_MISSING_API_KEY", 1003, "API key is required", False),
        ErrorDefinition("INIT_INVALID_BASE_URL", 1004, "Invalid base URL format", False),
        ErrorDefinition("INIT_ALREADY_INITIALIZED", 1005, "SDK already initialized", False),
        ErrorDefinition("INIT_NOT_INITIALIZED", 1006, "SDK not initialized", False),
        ErrorDefinition("AUTH_INVALID_KEY", 1100, "Invalid API key", False),
        ErrorDefinition("AUTH_EXPIRED_KEY", 1101, "API key has expired", False),
        ErrorDefinition("AUTH_REVOKED_KEY", 1102, "API key has been revoked", False),
        ErrorDefinition(
            "AUTH_INSUFFICIENT_PERMISSIONS", 1103, "API key lacks the required permissions", False
        ),
        ErrorDefinition("AUTH_RATE_LIMITED", 1104, "Too many requests", True),
        ErrorDefinition("AUTH_PROJECT_MISMATCH", 1105, "API key belongs to another project", False),
        ErrorDefinition(
            "AUTH_ENVIRONMENT_MISMATCH", 1106, "API key belongs to another environment", False
        ),
        ErrorDefinition("AUTH_IP_RESTRICTED", 1107, "Caller IP address is not allowed", False),
        ErrorDefinition("AUTH_ORGANIZATION_REQUIRED", 1108, "Token lacks an organization", False),
        ErrorDefinition("AUTH_SUBSCRIPTION_SUSPENDED", 1109, "Subscription suspended", False),
        ErrorDefinition("EVAL_FLAG_NOT_FOUND", 1200, "Flag not found", False),
        ErrorDefinition("EVAL_FLAG_DISABLED", 1201, "Flag is disabled", False),
        ErrorDefinition("EVAL_TYPE_MISMATCH", 1202, "Flag value has another type", False),
        ErrorDefinition("EVAL_INVALID_CONTEXT", 1203, "Invalid evaluation context", False),
        ErrorDefinition("EVAL_RULE_ERROR", 1204, "Targeting rule evaluation failed", True),
        ErrorDefinition("EVAL_SEGMENT_ERROR", 1205, "Segment evaluation failed", True),
        ErrorDefinition("EVAL_DEFAULT_USED", 1206, "Default value returned", False),
        ErrorDefinition("EVAL_CACHED_VALUE", 1207, "Cached value returned", False),
        ErrorDefinition("EVAL_STALE_VALUE", 1208, "Stale value returned", False),
        ErrorDefinition("NETWORK_ERROR", 1300, "Network request failed", True),
        ErrorDefinition("NETWORK_TIMEOUT", 1301, "Request timed out", True),
        ErrorDefinition("NETWORK_DNS_ERROR", 1302, "Name resolution failed", True),
        ErrorDefinition("NETWORK_CONNECTION_REFUSED", 1303, "Connection refused", True),
        ErrorDefinition("NETWORK_SSL_ERROR", 1304, "TLS/SSL failure", False),
        ErrorDefinition("NETWORK_OFFLINE", 1305, "No network connectivity", True),
        ErrorDefinition("NETWORK_SERVER_ERROR", 1306, "Server error", True),
        ErrorDefinition("NETWORK_INVALID_RESPONSE", 1307, "Malformed response from server", True),
        ErrorDefinition("NETWORK_SERVICE_UNAVAILABLE", 1308, "Service unavailable", True),
        ErrorDefinition(
            "NETWORK_CIRCUIT_OPEN", 1309, "Circuit breaker is open; request not sent", True
        ),
        ErrorDefinition(
            "NETWORK_UNEXPECTED_STATUS", 1310, "Server answered with an unexpected status", True
        ),
        ErrorDefinition(
            "NETWORK_RESPONSE_TOO_LARGE", 1311, "Response exceeds the size limit", True
        ),
        ErrorDefinition("CACHE_READ_ERROR", 1400, "Cache read failed", True),
        ErrorDefinition("CACHE_WRITE_ERROR", 1401, "Cache write failed", True),
        ErrorDefinition("CACHE_EXPIRED", 1402, "Cache expired", True),
        ErrorDefinition("CACHE_CORRUPT", 1403, "Cache data is corrupt", True),
        ErrorDefinition("CACHE_STORAGE_FULL", 1404, "Storage quota exceeded", True),
        ErrorDefinition("EVENT_SEND_FAILED", 1500, "Event delivery failed", True),
        ErrorDefinition("EVENT_INVALID_TYPE", 1501, "Invalid event type", False),
        ErrorDefinition("EVENT_INVALID_DATA", 1502, "Invalid event data", False),
        ErrorDefinition("EVENT_QUEUE_FULL", 1503, "Event queue is full", True),
        ErrorDefinition("EVENT_BATCH_PARTIAL", 1504, "Part of an event batch failed", True),
        ErrorDefinition("CONFIG_INVALID_OPTION", 1600, "Invalid option", False),
        ErrorDefinition("CONFIG_MISSING_REQUIRED", 1601, "Required option missing", False),
        ErrorDefinition("CONFIG_TYPE_ERROR", 1602, "Option has the wrong type", False),
        ErrorDefinition("CONFIG_DEPRECATED", 1603, "Option is deprecated", False),
        ErrorDefinition(
            "SECURITY_LOCAL_PORT_IN_PRODUCTION",
            1700,
            "local_port must not be used in production",
            False,
        ),
        ErrorDefinition("SECURITY_PII_DETECTED", 1701, "Potential PII detected", False),
        ErrorDefinition("SECURITY_SIGNATURE_FAILED", 1702, "Could not sign the request", True),
        ErrorDefinition("SECURITY_ENCRYPTION_FAILED", 1703, "Cache encryption failed", True),
        ErrorDefinition("SECURITY_DECRYPTION_FAILED", 1704, "Cache decryption failed", True),
        ErrorDefinition(
            "SECURITY_BOOTSTRAP_VERIFICATION_FAILED",
            1705,
            "Bootstrap signature verification failed",
            False,
        ),
        ErrorDefinition("SECURITY_SIGNATURE_INVALID", 1706, "Signature is invalid", False),
        ErrorDefinition("STREAMING_TOKEN_INVALID", 1800, "Stream token invalid", True),
        ErrorDefinition("STREAMING_TOKEN_EXPIRED", 1801, "Stream token expired", True),
        ErrorDefinition(
            "STREAMING_SUBSCRIPTION_SUSPENDED", 1802, "Streaming blocked by subscription", False
        ),
        ErrorDefinition("STREAMING_CONNECTION_LIMIT", 1803, "Too many stream connections", True),
        ErrorDefinition("STREAMING_UNAVAILABLE", 1804, "Streaming not available", True),
        ErrorDefinition("INTERNAL_ERROR", 1900, "Internal SDK error", False),
        ErrorDefinition("INTERNAL_STATE_ERROR", 1901, "Inconsistent internal state", False),
        ErrorDefinition("UNKNOWN_ERROR", 1999, "Unknown error", False),
    )
}


class ErrorCode:
    """String constants for every error code, e.g. ``ErrorCode.AUTH_INVALID_KEY``."""

    INIT_FAILED: Final = "INIT_FAILED"
    INIT_TIMEOUT: Final = "INIT_TIMEOUT"
    INIT_INVALID_CONFIG: Final = "INIT_INVALID_CONFIG"
    INIT_MISSING_API_KEY: Final = "INIT_MISSING_API_KEY"
    INIT_INVALID_BASE_URL: Final = "INIT_INVALID_BASE_URL"
    INIT_ALREADY_INITIALIZED: Final = "INIT_ALREADY_INITIALIZED"
    INIT_NOT_INITIALIZED: Final = "INIT_NOT_INITIALIZED"
    AUTH_INVALID_KEY: Final = "AUTH_INVALID_KEY"
    AUTH_EXPIRED_KEY: Final = "AUTH_EXPIRED_KEY"
    AUTH_REVOKED_KEY: Final = "AUTH_REVOKED_KEY"
    AUTH_INSUFFICIENT_PERMISSIONS: Final = "AUTH_INSUFFICIENT_PERMISSIONS"
    AUTH_RATE_LIMITED: Final = "AUTH_RATE_LIMITED"
    AUTH_PROJECT_MISMATCH: Final = "AUTH_PROJECT_MISMATCH"
    AUTH_ENVIRONMENT_MISMATCH: Final = "AUTH_ENVIRONMENT_MISMATCH"
    AUTH_IP_RESTRICTED: Final = "AUTH_IP_RESTRICTED"
    AUTH_ORGANIZATION_REQUIRED: Final = "AUTH_ORGANIZATION_REQUIRED"
    AUTH_SUBSCRIPTION_SUSPENDED: Final = "AUTH_SUBSCRIPTION_SUSPENDED"
    EVAL_FLAG_NOT_FOUND: Final = "EVAL_FLAG_NOT_FOUND"
    EVAL_FLAG_DISABLED: Final = "EVAL_FLAG_DISABLED"
    EVAL_TYPE_MISMATCH: Final = "EVAL_TYPE_MISMATCH"
    EVAL_INVALID_CONTEXT: Final = "EVAL_INVALID_CONTEXT"
    EVAL_RULE_ERROR: Final = "EVAL_RULE_ERROR"
    EVAL_SEGMENT_ERROR: Final = "EVAL_SEGMENT_ERROR"
    EVAL_DEFAULT_USED: Final = "EVAL_DEFAULT_USED"
    EVAL_CACHED_VALUE: Final = "EVAL_CACHED_VALUE"
    EVAL_STALE_VALUE: Final = "EVAL_STALE_VALUE"
    NETWORK_ERROR: Final = "NETWORK_ERROR"
    NETWORK_TIMEOUT: Final = "NETWORK_TIMEOUT"
    NETWORK_DNS_ERROR: Final = "NETWORK_DNS_ERROR"
    NETWORK_CONNECTION_REFUSED: Final = "NETWORK_CONNECTION_REFUSED"
    NETWORK_SSL_ERROR: Final = "NETWORK_SSL_ERROR"
    NETWORK_OFFLINE: Final = "NETWORK_OFFLINE"
    NETWORK_SERVER_ERROR: Final = "NETWORK_SERVER_ERROR"
    NETWORK_INVALID_RESPONSE: Final = "NETWORK_INVALID_RESPONSE"
    NETWORK_SERVICE_UNAVAILABLE: Final = "NETWORK_SERVICE_UNAVAILABLE"
    NETWORK_CIRCUIT_OPEN: Final = "NETWORK_CIRCUIT_OPEN"
    NETWORK_UNEXPECTED_STATUS: Final = "NETWORK_UNEXPECTED_STATUS"
    NETWORK_RESPONSE_TOO_LARGE: Final = "NETWORK_RESPONSE_TOO_LARGE"
    CACHE_READ_ERROR: Final = "CACHE_READ_ERROR"
    CACHE_WRITE_ERROR: Final = "CACHE_WRITE_ERROR"
    CACHE_EXPIRED: Final = "CACHE_EXPIRED"
    CACHE_CORRUPT: Final = "CACHE_CORRUPT"
    CACHE_STORAGE_FULL: Final = "CACHE_STORAGE_FULL"
    EVENT_SEND_FAILED: Final = "EVENT_SEND_FAILED"
    EVENT_INVALID_TYPE: Final = "EVENT_INVALID_TYPE"
    EVENT_INVALID_DATA: Final = "EVENT_INVALID_DATA"
    EVENT_QUEUE_FULL: Final = "EVENT_QUEUE_FULL"
    EVENT_BATCH_PARTIAL: Final = "EVENT_BATCH_PARTIAL"
    CONFIG_INVALID_OPTION: Final = "CONFIG_INVALID_OPTION"
    CONFIG_MISSING_REQUIRED: Final = "CONFIG_MISSING_REQUIRED"
    CONFIG_TYPE_ERROR: Final = "CONFIG_TYPE_ERROR"
    CONFIG_DEPRECATED: Final = "CONFIG_DEPRECATED"
    SECURITY_LOCAL_PORT_IN_PRODUCTION: Final = "SECURITY_LOCAL_PORT_IN_PRODUCTION"
    SECURITY_PII_DETECTED: Final = "SECURITY_PII_DETECTED"
    SECURITY_SIGNATURE_FAILED: Final = "SECURITY_SIGNATURE_FAILED"
    SECURITY_ENCRYPTION_FAILED: Final = "SECURITY_ENCRYPTION_FAILED"
    SECURITY_DECRYPTION_FAILED: Final = "SECURITY_DECRYPTION_FAILED"
    SECURITY_BOOTSTRAP_VERIFICATION_FAILED: Final = "SECURITY_BOOTSTRAP_VERIFICATION_FAILED"
    SECURITY_SIGNATURE_INVALID: Final = "SECURITY_SIGNATURE_INVALID"
    STREAMING_TOKEN_INVALID: Final = "STREAMING_TOKEN_INVALID"
    STREAMING_TOKEN_EXPIRED: Final = "STREAMING_TOKEN_EXPIRED"
    STREAMING_SUBSCRIPTION_SUSPENDED: Final = "STREAMING_SUBSCRIPTION_SUSPENDED"
    STREAMING_CONNECTION_LIMIT: Final = "STREAMING_CONNECTION_LIMIT"
    STREAMING_UNAVAILABLE: Final = "STREAMING_UNAVAILABLE"
    INTERNAL_ERROR: Final = "INTERNAL_ERROR"
    INTERNAL_STATE_ERROR: Final = "INTERNAL_STATE_ERROR"
    UNKNOWN_ERROR: Final = "UNKNOWN_ERROR"


def is_retryable_code(code: str) -> bool:
    """Whether errors with ``code`` are recoverable; unknown codes are not."""
    definition = ERROR_CODES.get(code)
    return definition is not None and definition.recoverable


def numeric_code(code: str) -> int:
    """The number of ``code``; raises ``KeyError`` for an unknown code."""
    return ERROR_CODES[code].numeric_code
