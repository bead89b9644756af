"""django-waffle's flags, switches and samples as FlagKit flags.

The conversion keeps waffle's meaning wherever FlagKit's model can express it, and
reports each place where it cannot (:class:`Finding`), so nothing is dropped silently:

- a flag with ``everyone`` on or off is a simple flag with that value;
- otherwise a targeted boolean flag: listed users are ``targets``; ``languages``,
  ``authenticated``, ``staff``, ``superusers`` and ``groups`` are rules on the context the
  FlagKit middleware builds (``custom.language``, ``anonymous``, ``custom.is_staff``,
  ``custom.is_superuser``, ``custom.groups``); each serves ``on``, so their order does not
  matter, and ``percent`` becomes the fallthrough: a rollout by user id (anonymous
  visitors by their anonymous key) — deterministic per user, where waffle draws at random
  and remembers the draw in a cookie;
- a switch is a simple boolean flag;
- a sample is a rollout over the ``waffle_sample`` context attribute, which the
  compatibility layer's ``sample_is_active`` fills with a random value per call.

Used by ``manage.py flagkit_import_waffle``; it reads the models through waffle's own
model getters (custom models included) and imports waffle only when called.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from ._keys import waffle_key

__all__ = ["Finding", "ImportResult", "convert"]

ON_OFF: Final = [{"id": "on", "value": True}, {"id": "off", "value": False}]
SAMPLE_ATTRIBUTE: Final = "waffle_sample"

# The fields of waffle's own models; any other field of a custom model is reported.
_FLAG_FIELDS: Final = frozenset(
    {
        "id", "name", "everyone", "percent", "testing", "superusers", "staff",
        "authenticated", "languages", "rollout", "note", "created", "modified",
        "groups", "users",
    }
)  # fmt: skip
_SWITCH_FIELDS: Final = frozenset({"id", "name", "active", "note", "created", "modified"})
_SAMPLE_FIELDS: Final = frozenset({"id", "name", "percent", "note", "created", "modified"})


@dataclass(frozen=True)
class Finding:
    """One thing the import could not carry over exactly (``loss``) or changed on purpose
    (a note): which waffle object, which field, and what was done."""

    kind: str  # "flag", "switch" or "sample"
    name: str
    field: str
    action: str
    loss: bool

    def __str__(self) -> str:
        label = "LOSS" if self.loss else "note"
        return f"{label}: {self.kind} {self.name!r}, {self.field}: {self.action}"


@dataclass
class ImportResult:
    """The FlagKit flags, in waffle's order (flags, switches, samples), and the findings."""

    flags: list[dict[str, Any]] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @property
    def losses(self) -> list[Finding]:
        return [f for f in self.findings if f.loss]

    def document(self) -> dict[str, Any]:
        """A flags file for ``flagkit serve`` holding the imported flags."""
        return {"environment": "imported-from-django-waffle", "flags": self.flags}


def _weights(percent: Any) -> list[dict[str, Any]]:
    # waffle keeps one decimal (12.5 %); FlagKit weights are 1/100000 units.
    on = max(0, min(100_000, round(float(percent) * 1000)))
    return [{"variation": "on", "weight": on}, {"variation": "off", "weight": 100_000 - on}]


def _note(obj: Any) -> dict[str, Any]:
    note = str(getattr(obj, "note", "") or "").strip()
    return {"description": note} if note else {}


def _extra_fields(obj: Any, known: frozenset[str]) -> list[str]:
    names = {f.name for f in obj._meta.get_fields() if not f.auto_created or f.concrete}
    return sorted(names - known)


class _Converter:
    def __init__(self, user_id_attribute: str) -> None:
        self.user_id_attribute = user_id_attribute
        self.result = ImportResult()
        self._keys: dict[str, tuple[str, str]] = {}

    def report(self, kind: str, name: str, field: str, action: str, *, loss: bool) -> None:
        self.result.findings.append(Finding(kind, name, field, action, loss))

    def key(self, kind: str, name: str) -> str | None:
        key = waffle_key(name)
        if key != name:
            self.report(
                kind, name, "name", f"not a valid FlagKit key; imported as {key!r}", loss=True
            )
        previous = self._keys.get(key)
        if previous is not None:
            self.report(
                kind,
                name,
                "name",
                f"its key {key!r} is already taken by {previous[0]} {previous[1]!r}; "
                "not imported (rename one of them in waffle first)",
                loss=True,
            )
            return None
        self._keys[key] = (kind, name)
        return key

    def extra(self, kind: str, obj: Any, known: frozenset[str]) -> None:
        for name in _extra_fields(obj, known):
            self.report(
                kind,
                obj.name,
                name,
                "field of a custom model with no FlagKit equivalent; ignored",
                loss=True,
            )

    def flag(self, flag: Any) -> None:
        key = self.key("flag", flag.name)
        if key is None:
            return
        self.extra("flag", flag, _FLAG_FIELDS)
        base = {"key": key, "flagType": "boolean", **_note(flag)}
        if flag.everyone is not None:
            self.result.flags.append({**base, "value": bool(flag.everyone)})
            return
        if flag.testing:
            self.report(
                "flag", flag.name, "testing",
                "testing mode (dwft_ query string and cookie) has no FlagKit equivalent; "
                "use flagkit_django.testing.override_flags in tests instead",
                loss=True,
            )  # fmt: skip
        if flag.rollout:
            self.report(
                "flag", flag.name, "rollout",
                "rollout mode's cookie handling has no equivalent; the percentage is a "
                "deterministic rollout per user, which never flips back",
                loss=True,
            )  # fmt: skip
        rules: list[dict[str, Any]] = []

        def rule(rule_id: str, attribute: str, values: list[Any]) -> None:
            clause = {"attribute": attribute, "op": "in", "values": values}
            rules.append({"id": rule_id, "clauses": [clause], "variation": "on"})

        languages = [x.strip() for x in str(flag.languages or "").split(",") if x.strip()]
        if languages:
            rule("languages", "language", languages)
        if flag.authenticated:
            rule("authenticated", "anonymous", [False])
        if flag.staff:
            rule("staff", "is_staff", [True])
        if flag.superusers:
            rule("superusers", "is_superuser", [True])
        groups = sorted(str(g.name) for g in flag.groups.all())
        if groups:
            rule("groups", "groups", groups)
        users = [str(getattr(u, self.user_id_attribute)) for u in flag.users.all()]
        out: dict[str, Any] = {**base, "value": False, "variations": ON_OFF}
        if users:
            out["targets"] = [{"variation": "on", "values": sorted(users)}]
        if rules:
            out["rules"] = rules
        if flag.percent is not None and float(flag.percent) > 0:
            out["fallthrough"] = {"rollout": {"variations": _weights(flag.percent)}}
            self.report(
                "flag", flag.name, "percent",
                f"{flag.percent} % as a rollout by user id: the same users stay in, on "
                "every device, unlike waffle's random per-browser cookie",
                loss=False,
            )  # fmt: skip
        else:
            out["fallthrough"] = {"variation": "off"}
        self.result.flags.append(out)

    def switch(self, switch: Any) -> None:
        key = self.key("switch", switch.name)
        if key is None:
            return
        self.extra("switch", switch, _SWITCH_FIELDS)
        self.result.flags.append(
            {"key": key, "flagType": "boolean", "value": bool(switch.active), **_note(switch)}
        )

    def sample(self, sample: Any) -> None:
        key = self.key("sample", sample.name)
        if key is None:
            return
        self.extra("sample", sample, _SAMPLE_FIELDS)
        rollout = {"bucketBy": SAMPLE_ATTRIBUTE, "variations": _weights(sample.percent)}
        self.result.flags.append(
            {
                "key": key,
                "flagType": "boolean",
                "value": False,
                "variations": ON_OFF,
                "fallthrough": {"rollout": rollout},
                **_note(sample),
            }
        )
        self.report(
            "sample", sample.name, "percent",
            f"{sample.percent} % over the {SAMPLE_ATTRIBUTE!r} context attribute: random per "
            "call through waffle_compat.sample_is_active; FlagKit's own API, without that "
            "attribute, buckets by user id instead",
            loss=False,
        )  # fmt: skip


def convert(
    flags: Iterable[Any],
    switches: Iterable[Any],
    samples: Iterable[Any],
    *,
    user_id_attribute: str = "pk",
) -> ImportResult:
    """Convert waffle model instances (any objects with their fields) to FlagKit flags."""
    converter = _Converter(user_id_attribute)
    for flag in flags:
        converter.flag(flag)
    for switch in switches:
        converter.switch(switch)
    for sample in samples:
        converter.sample(sample)
    return converter.result
