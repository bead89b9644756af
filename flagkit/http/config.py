"""The settings of one :class:`~flagkit.http.HttpClient`, taken from a client's
already validated ``FlagKitOptions`` (options are validated once, where they are defined).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flagkit._version import __version__
from flagkit.errors.sanitizer import mask_api_key
from flagkit.types.config import CircuitBreakerOptions, FlagKitOptions, RetryOptions

__all__ = ["HttpConfig"]


def _sdk_version() -> str:
    return __version__


@dataclass(frozen=True, kw_only=True)
class HttpConfig:
    """Settings of one :class:`HttpClient`, taken from already validated ``FlagKitOptions``
    (the client builds it; options are validated once, where they are defined).

    >>> HttpConfig(base_url="http://127.0.0.1:8200/api/v1", api_key="sdk_example_key").timeout
    5.0
    """

    base_url: str
    api_key: str = field(repr=False)
    secondary_api_key: str | None = field(default=None, repr=False)
    key_rotation_grace_period: float = 300.0
    timeout: float = 5.0
    retries: int = 3
    enable_request_signing: bool = True
    retry: RetryOptions = field(default_factory=RetryOptions)
    circuit_breaker: CircuitBreakerOptions = field(default_factory=CircuitBreakerOptions)
    sdk_version: str = field(default_factory=_sdk_version)

    @classmethod
    def from_options(cls, options: FlagKitOptions, sdk_version: str) -> HttpConfig:
        """The HTTP settings of a client's (validated) options."""
        return cls(
            base_url=options.resolved_base_url,
            api_key=options.api_key,
            secondary_api_key=options.secondary_api_key,
            key_rotation_grace_period=options.key_rotation_grace_period,
            timeout=options.timeout,
            retries=options.retries,
            enable_request_signing=options.enable_request_signing,
            retry=options.retry,
            circuit_breaker=options.circuit_breaker,
            sdk_version=sdk_version,
        )

    def __repr__(self) -> str:
        # mask_api_key: a short key (sdk_...) would otherwise show whole as its key id.
        secondary = mask_api_key(self.secondary_api_key) if self.secondary_api_key else None
        return (
            f"HttpConfig(base_url={self.base_url!r}, api_key={mask_api_key(self.api_key)!r}, "
            f"secondary_api_key={secondary!r}, timeout={self.timeout!r}, "
            f"retries={self.retries!r}, enable_request_signing={self.enable_request_signing!r})"
        )
