"""Flags served by the loopback ``FlagKitServer`` in the Django tests (targeting model of
``docs/targeting.md``)."""

from __future__ import annotations

from typing import Any

ON_OFF = [{"id": "on", "value": True}, {"id": "off", "value": False}]


def _targeted(key: str, **fields: Any) -> dict[str, Any]:
    return {
        "key": key,
        "flagType": "boolean",
        "value": False,
        "enabled": True,
        "variations": ON_OFF,
        "offVariation": "off",
        "fallthrough": {"variation": "off"},
        **fields,
    }


FLAGS: list[dict[str, Any]] = [
    {"key": "new-checkout", "flagType": "boolean", "value": True, "enabled": True},
    {"key": "maintenance", "flagType": "boolean", "value": False, "enabled": True},
    {"key": "banner-text", "flagType": "string", "value": "Spring sale", "enabled": True},
    {"key": "html-text", "flagType": "string", "value": "<b>bold</b>", "enabled": True},
    {"key": "max-items", "flagType": "number", "value": 25, "enabled": True},
    _targeted(
        "staff-feature",
        rules=[
            {
                "id": "staff-only",
                "clauses": [{"attribute": "is_staff", "op": "equals", "values": [True]}],
                "variation": "on",
            }
        ],
    ),
    _targeted(
        "beta-feature",
        rules=[
            {
                "id": "beta-group",
                "clauses": [{"attribute": "groups", "op": "in", "values": ["beta"]}],
                "variation": "on",
            }
        ],
    ),
    _targeted(
        "rollout-50",
        fallthrough={
            "rollout": {
                "variations": [
                    {"variation": "on", "weight": 50000},
                    {"variation": "off", "weight": 50000},
                ]
            }
        },
    ),
    _targeted(
        "nl-only",
        rules=[
            {
                "id": "dutch",
                "clauses": [{"attribute": "country", "op": "in", "values": ["NL"]}],
                "variation": "on",
            }
        ],
    ),
]
