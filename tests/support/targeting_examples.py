"""The flags file of docs/targeting.md and the outcome tables documented next to it.

Shared by ``tests/core/targeting/test_targeting_documents.py`` (evaluated in process) and
``tests/core/targeting/test_targeting_e2e.py`` (through a real server and client).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from flagkit.types.context import EvaluationContext
from flagkit.types.flag import EvaluationReason

__all__ = ["DOCS", "DOCUMENTED", "Row", "ctx", "example_document"]

R = EvaluationReason
DOCS = Path(__file__).resolve().parents[2] / "docs"


def example_document() -> dict[str, Any]:
    """The flags file shown in docs/targeting.md (the JSON block after the marker)."""
    text = (DOCS / "targeting.md").read_text("utf-8")
    match = re.search(r"<!-- example-flags-file -->\s*```json\n(.*?)\n```", text, re.S)
    assert match is not None
    doc: dict[str, Any] = json.loads(match.group(1))
    return doc


def ctx(**fields: Any) -> EvaluationContext:
    """A context from wire-style keyword names."""
    names = {"userId": "user_id", "userKey": "user_key", "userAgent": "user_agent"}
    return EvaluationContext(**{names.get(k, k): v for k, v in fields.items()})


# The tables of docs/targeting.md: (flag, context, value, reason, variation, rule, segment).
Row = tuple[str, EvaluationContext | None, Any, R, str | None, str | None, str | None]
DOCUMENTED: list[Row] = [
    ("new-checkout", ctx(userId="user-1"), True, R.TARGET_MATCH, "on", None, None),
    (
        "new-checkout",
        ctx(userId="user-2", country="NL", custom={"plan": "pro"}),
        False,
        R.TARGET_MATCH,
        "off",
        None,
        None,
    ),
    ("new-checkout", ctx(userId="user-7"), True, R.SEGMENT_MATCH, "on", "beta", "beta-testers"),
    (
        "new-checkout",
        ctx(userId="user-20", email="ann@beta.example.com"),
        True,
        R.SEGMENT_MATCH,
        "on",
        "beta",
        "beta-testers",
    ),
    (
        "new-checkout",
        ctx(userId="user-21", country="NL", custom={"plan": "pro"}),
        True,
        R.RULE_MATCH,
        "on",
        "nl-pro",
        None,
    ),
    (
        "new-checkout",
        ctx(userId="user-1", userAgent="LegacyApp/3.1"),
        False,
        R.PREREQUISITE_FAILED,
        "off",
        None,
        None,
    ),
    (
        "new-checkout",
        ctx(userId="user-22", custom={"appVersion": "1.9.3"}),
        False,
        R.RULE_MATCH,
        "off",
        "old-app",
        None,
    ),
    ("new-checkout", ctx(userId="user-41"), True, R.FALLTHROUGH, "on", None, None),
    ("new-checkout", ctx(userId="user-40"), False, R.FALLTHROUGH, "off", None, None),
    (
        "new-checkout",
        ctx(userKey="anon-42", anonymous=True),
        False,
        R.FALLTHROUGH,
        "off",
        None,
        None,
    ),
    ("new-checkout", None, False, R.FALLTHROUGH, None, None, None),
    ("maintenance-mode", ctx(userId="user-1"), False, R.CACHED, None, None, None),
    (
        "checkout-api",
        ctx(userAgent="LegacyApp/3.1"),
        "v1",
        R.RULE_MATCH,
        "v1",
        "legacy-clients",
        None,
    ),
    ("checkout-api", ctx(userId="user-1"), "v2", R.FALLTHROUGH, "v2", None, None),
    (
        "pricing-page",
        ctx(userId="u", country="DE", custom={"seats": 120, "companyId": "acme"}),
        "modern",
        R.RULE_MATCH,
        "modern",
        "large-accounts",
        None,
    ),
    (
        "pricing-page",
        ctx(userId="u", country="US", custom={"seats": 120, "companyId": "globex"}),
        "bold",
        R.FALLTHROUGH,
        "bold",
        None,
        None,
    ),
    (
        "pricing-page",
        ctx(userId="u", custom={"signupDate": "2025-03-01T09:30:00+01:00"}),
        "bold",
        R.RULE_MATCH,
        "bold",
        "new-signups",
        None,
    ),
    (
        "pricing-page",
        ctx(userId="u", custom={"companyId": "initech"}),
        "classic",
        R.FALLTHROUGH,
        "classic",
        None,
        None,
    ),
    ("holiday-banner", ctx(userId="user-1"), "", R.FLAG_DISABLED, "none", None, None),
]
