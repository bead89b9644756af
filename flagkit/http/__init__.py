"""HTTP transport: the only place that talks to httpx.

:class:`HttpClient` (retries, circuit breaker, key rotation, request signing, deadlines,
size limits), its :class:`HttpConfig`, the status table (:mod:`flagkit.http.responses`),
SSE framing (:mod:`flagkit.http.sse`) and the resilience pieces it is built from.
"""

from flagkit.http.circuit_breaker import CircuitBreaker, CircuitBreakerStats, CircuitState
from flagkit.http.http_client import HttpClient, HttpConfig
from flagkit.http.responses import (
    UsageMetrics,
    error_from_response,
    parse_retry_after,
    parse_usage_headers,
)
from flagkit.http.retry import backoff_delay, call_with_retry, is_retryable, normalize_attempts
from flagkit.http.sse import EventStream, iter_lines

__all__ = [
    "CircuitBreaker",
    "CircuitBreakerStats",
    "CircuitState",
    "EventStream",
    "HttpClient",
    "HttpConfig",
    "UsageMetrics",
    "backoff_delay",
    "call_with_retry",
    "error_from_response",
    "is_retryable",
    "iter_lines",
    "normalize_attempts",
    "parse_retry_after",
    "parse_usage_headers",
]
