"""HTTP transport: the only place that talks to httpx.

:class:`HttpClient` (retries, circuit breaker, key rotation, request signing, SSE lines),
its :class:`HttpConfig`, and the resilience pieces it is built from.
"""

from flagkit.http.circuit_breaker import CircuitBreaker, CircuitBreakerStats, CircuitState
from flagkit.http.http_client import (
    EventStream,
    HttpClient,
    HttpConfig,
    UsageMetrics,
    error_from_response,
    iter_lines,
    parse_retry_after,
    parse_usage_headers,
)
from flagkit.http.retry import backoff_delay, call_with_retry, is_retryable, normalize_attempts

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
