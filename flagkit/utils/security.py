"""Security helpers in one import: PII detection, bootstrap signatures, production checks.

The README and the docs import from here (``from flagkit.utils.security import
create_bootstrap_signature``); the code lives in one module per concern:

- :mod:`flagkit.utils.pii`: :func:`is_potential_pii_field`, :func:`detect_pii_value`,
  :func:`find_pii`, :class:`PiiChecker`.
- :mod:`flagkit.utils.bootstrap`: :func:`create_bootstrap_signature`,
  :func:`verify_bootstrap_signature`, :func:`apply_bootstrap_verification`.
- :mod:`flagkit.utils.platform`: :func:`is_production_environment`.
"""

from __future__ import annotations

from flagkit.utils.bootstrap import (
    apply_bootstrap_verification,
    create_bootstrap_signature,
    verify_bootstrap_signature,
)
from flagkit.utils.logger import AnyLogger
from flagkit.utils.pii import (
    PII_PATTERNS,
    PiiChecker,
    detect_pii_value,
    find_pii,
    is_potential_pii_field,
)
from flagkit.utils.platform import PRODUCTION_ENV_VARS, is_production_environment

__all__ = [
    "PII_PATTERNS",
    "PRODUCTION_ENV_VARS",
    "AnyLogger",
    "PiiChecker",
    "apply_bootstrap_verification",
    "create_bootstrap_signature",
    "detect_pii_value",
    "find_pii",
    "is_potential_pii_field",
    "is_production_environment",
    "verify_bootstrap_signature",
]
