"""Experiment results as text for ``flagkit experiments`` (docs/experiments.md).

Formats the JSON answers of ``GET /admin/experiments[/{flag}]``: a table of experiments,
and a report that puts the sample-ratio check before any result, so a broken split is
read before a lift.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["list_lines", "report_lines"]


def list_lines(experiments: list[dict[str, Any]]) -> list[str]:
    """The experiments of ``GET /admin/experiments`` as a table."""
    if not experiments:
        return [
            "(no experiments: mark a flag with an 'experiment' object, see docs/experiments.md)"
        ]
    rows = [("FLAG", "CONTROL", "EXPOSED USERS", "PER VARIATION", "METRICS")]
    for exp in experiments:
        per = ", ".join(f"{vid} {n}" for vid, n in exp["exposures"].items())
        metrics = ", ".join(
            m["event"] + (f" ({m['valueField']})" if m["kind"] == "numeric" else "")
            for m in exp["metrics"]
        )
        rows.append((exp["flag"], exp["control"], str(exp["exposedUsers"]), per, metrics or "-"))
    return _table(rows)


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as left-aligned columns (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip() for row in rows]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _points(value: float | None) -> str:
    """A difference of two rates, in percentage points."""
    return "-" if value is None else f"{value * 100:+.2f} pp"


def _signed_pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:+.1f}%"


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.4g}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _interval(ci: list[float] | None, fmt: Callable[[float | None], str]) -> str:
    return "-" if ci is None else f"[{fmt(ci[0])}, {fmt(ci[1])}]"


def _p_value(p: float) -> str:
    return f"{p:.4f}" if p >= 0.0001 else f"{p:.2e}"


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as text: the sample-ratio check first, then the results."""
    metric = report["metric"]
    numeric = metric["kind"] == "numeric"
    what = f"{metric['event']} ({'mean ' + metric['valueField'] if numeric else 'conversion'})"
    lines = [f"Experiment {report['flag']}: control {report['control']!r}, metric {what}", ""]
    srm = report["srm"]
    chi2 = "certain" if srm["chi2"] is None else f"{srm['chi2']:.3f}"
    if srm["flagged"]:
        lines.append(
            f"SAMPLE RATIO MISMATCH: chi2 {chi2}, p {_p_value(srm['p'])} < {srm['threshold']}."
        )
        lines.append(
            "  The split did not expose users in the configured proportions: the results "
            "below are not trustworthy until you find the cause."
        )
    else:
        lines.append(
            f"Sample ratio check: OK (chi2 {chi2}, p {_p_value(srm['p'])}; "
            f"flagged below {srm['threshold']})"
        )
    rows = [("  VARIATION", "EXPECTED", "OBSERVED")]
    rows += [
        (f"  {vid}", f"{srm['expected'].get(vid, 0.0):.1f}", str(observed))
        for vid, observed in srm["observed"].items()
    ]
    lines += _table(rows)
    multi = report["excludedMultiExposed"]
    lines.append(f"Excluded: {multi} user(s) exposed to more than one variation")
    if report.get("eventsDropped"):
        lines.append(
            f"Warning: the server dropped {report['eventsDropped']} older events (memory "
            "bound); these results cover only the events still kept"
        )
    lines.append("")
    header = ["VARIATION", "EXPOSED", "CONVERTED", "RATE", "95% CI"]
    if numeric:
        header += ["MEAN", "95% CI"]
    header += ["LIFT", "95% CI", "RELATIVE", "95% CI", "P"]
    results: list[list[str]] = [header]
    fmt = _signed if numeric else _points
    for v in report["variations"]:
        row = [v["id"], str(v["exposed"]), str(v["converted"]), _pct(v["rate"])]
        row.append(_interval(v["ci"], _pct))
        if numeric:
            row += [_num(v.get("mean")), _interval(v.get("meanCi"), _num)]
        lift = v["lift"]
        if lift is None:
            row += ["(control)" if v["id"] == report["control"] else "-", "", "", "", ""]
        else:
            row += [
                fmt(lift["absolute"]),
                _interval(lift["absoluteCi"], fmt),
                _signed_pct(lift["relative"]),
                _interval(lift["relativeCi"], _signed_pct),
                _p_value(lift["p"]),
            ]
        results.append(row)
    lines += _table(results)
    lines.append("")
    lines.append(
        "P: two-sided, "
        + ("Welch's t-test" if numeric else "two-proportion z-test")
        + "; decide the sample size before looking (docs/experiments.md, caveats)."
    )
    return lines
