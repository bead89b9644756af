"""Experiment statistics of the local server against independent references, to 1e-6.

Each data set is sent as real events (``$exposure`` and ``purchase``) to a running
server's ``POST /sdk/events/batch``; the report of ``GET /admin/experiments/{flag}`` is then
compared with what ``scipy.stats`` and ``statsmodels`` (test-only dependencies) compute
from the same per-user data: Wilson intervals, the pooled two-proportion z-test and the
Wald interval of the difference, the t interval of a mean, Welch's t-test and its
interval, and the chi-square SRM test. The stdlib special functions are also checked
directly over a grid, including extreme degrees of freedom.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import scipy.stats as ss
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from flagkit.server import FlagKitServer
from flagkit.server import stats as fs

TOL = 1e-6
Z = 1.959963984540054


def close(actual: float | None, expected: float) -> bool:
    """Equal to 1e-6 (absolute, or relative for large numbers)."""
    assert actual is not None
    return math.isclose(actual, float(expected), rel_tol=TOL, abs_tol=TOL)


def experiment_flag(key: str, weights: dict[str, int]) -> dict[str, Any]:
    """A string flag splitting everyone by ``weights``, marked as an experiment."""
    return {
        "key": key,
        "flagType": "string",
        "value": "control",
        "variations": [{"id": v, "value": v} for v in weights],
        "fallthrough": {
            "rollout": {"variations": [{"variation": v, "weight": w} for v, w in weights.items()]}
        },
        "experiment": {
            "control": next(iter(weights)),
            "metrics": [{"event": "purchase", "kind": "numeric", "valueField": "amount"}],
        },
    }


@dataclass
class DataSet:
    """Per variation, per user: the amounts of the user's purchases after exposure."""

    name: str
    weights: dict[str, int]
    users: dict[str, list[list[float]]]

    def conversions(self, variation: str) -> tuple[int, int]:
        """(converted users, exposed users) of ``variation``."""
        rows = self.users[variation]
        return sum(1 for r in rows if r), len(rows)

    def totals(self, variation: str) -> list[float]:
        """Each exposed user's summed amount (0 without a purchase)."""
        return [math.fsum(r) for r in self.users[variation]]


def generate(name: str, sizes: dict[str, int], rates: dict[str, float], seed: int) -> DataSet:
    """Users per variation; each converts with its variation's rate, buying 1-3 times."""
    rnd = random.Random(seed)
    users: dict[str, list[list[float]]] = {}
    for variation, n in sizes.items():
        rows = []
        for _ in range(n):
            if rnd.random() < rates[variation]:
                rows.append([round(rnd.uniform(5, 80), 2) for _ in range(rnd.randint(1, 3))])
            else:
                rows.append([])
        users[variation] = rows
    share = 100_000 // len(sizes)
    weights = {v: share for v in sizes}
    weights[next(iter(sizes))] += 100_000 - share * len(sizes)
    return DataSet(name, weights, users)


DATA_SETS = [
    generate("small", {"blue": 12, "green": 15}, {"blue": 0.3, "green": 0.5}, 1),
    generate(
        "large",
        {"blue": 20_000, "green": 20_500, "orange": 19_800},
        {"blue": 0.10, "green": 0.12, "orange": 0.10},
        2,
    ),
    generate("zero conversions", {"blue": 300, "green": 280}, {"blue": 0.0, "green": 0.05}, 3),
    generate("unequal n", {"blue": 900, "green": 150}, {"blue": 0.2, "green": 0.3}, 4),
]


def events_of(data: DataSet, flag_key: str) -> list[dict[str, Any]]:
    """The wire events of ``data``: one exposure per user, then its purchases; plus a
    purchase by each converting user *before* its exposure (which must not count)."""
    events: list[dict[str, Any]] = []
    for variation, rows in data.users.items():
        for i, purchases in enumerate(rows):
            key = f"{flag_key}-{variation}-{i}"
            context = {"userKey": key, "anonymous": True}
            events.append(
                {
                    "eventType": "$exposure",
                    "eventId": str(uuid.uuid4()),
                    "timestamp": "2026-01-01T10:00:00.000000+00:00",
                    "context": context,
                    "eventData": {
                        "flagKey": flag_key,
                        "variationId": variation,
                        "flagVersion": 1,
                        "ruleId": None,
                        "contextKey": key,
                    },
                }
            )
            for minute, amount in enumerate(purchases):
                events.append(
                    {
                        "eventType": "purchase",
                        "eventId": str(uuid.uuid4()),
                        "timestamp": f"2026-01-01T10:{minute + 1:02d}:00.000000+00:00",
                        "context": context,
                        "eventData": {"amount": amount},
                    }
                )
            if i % 3 == 0:  # before the exposure: ignored
                events.append(
                    {
                        "eventType": "purchase",
                        "eventId": str(uuid.uuid4()),
                        "timestamp": "2026-01-01T09:00:00.000000+00:00",
                        "context": context,
                        "eventData": {"amount": 1000.0},
                    }
                )
    return events


@pytest.fixture(scope="module")
def server() -> Iterator[FlagKitServer]:
    """One server for the module, keeping enough events for the large data set."""
    flags = [experiment_flag(f"exp-{i}", d.weights) for i, d in enumerate(DATA_SETS)]
    with FlagKitServer(flags=flags, max_events=500_000, dedup_window=500_000) as srv:
        with httpx.Client(headers={"X-API-Key": srv.api_key}, timeout=60) as http:
            for i, data in enumerate(DATA_SETS):
                events = events_of(data, f"exp-{i}")
                for start in range(0, len(events), 5000):
                    batch = {"events": events[start : start + 5000]}
                    answer = http.post(f"{srv.base_url}/sdk/events/batch", json=batch)
                    assert answer.status_code == 200 and answer.json()["errors"] == 0
        yield srv


def fetch_report(server: FlagKitServer, index: int, **params: str) -> dict[str, Any]:
    """The report of data set ``index`` from the admin API."""
    answer = httpx.get(
        f"{server.base_url}/admin/experiments/exp-{index}",
        params=params,
        headers={"Authorization": f"Bearer {server.admin_token}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    return report


@pytest.mark.parametrize("index", range(len(DATA_SETS)), ids=[d.name for d in DATA_SETS])
def test_conversion_report_matches_statsmodels(server: FlagKitServer, index: int) -> None:
    """Rates, Wilson intervals, the z-test p, the Wald interval of the difference and the
    SRM chi-square equal the references; purchases before exposure are not counted."""
    data = DATA_SETS[index]
    report = fetch_report(server, index, metric="purchase")
    assert report["metric"] == {"event": "purchase", "kind": "conversion", "valueField": None}
    control = next(iter(data.users))
    x_c, n_c = data.conversions(control)
    by_id = {v["id"]: v for v in report["variations"]}
    assert [v["id"] for v in report["variations"]] == list(data.users)
    for variation in data.users:
        x, n = data.conversions(variation)
        got = by_id[variation]
        assert (got["exposed"], got["converted"]) == (n, x)
        assert close(got["rate"], x / n)
        low, high = proportion_confint(x, n, alpha=0.05, method="wilson")
        assert close(got["ci"][0], low) and close(got["ci"][1], high)
        if variation == control:
            assert got["lift"] is None
            continue
        lift = got["lift"]
        _z, p = proportions_ztest([x, x_c], [n, n_c])
        assert close(lift["p"], p)
        low, high = confint_proportions_2indep(x, n, x_c, n_c, method="wald", compare="diff")
        assert close(lift["absolute"], x / n - x_c / n_c)
        assert close(lift["absoluteCi"][0], low) and close(lift["absoluteCi"][1], high)
        if x_c:
            p_t, p_c = x / n, x_c / n_c
            assert close(lift["relative"], p_t / p_c - 1)
            # delta method, in its textbook form: se(r) = sqrt(var_t + r^2 var_c) / p_c
            ratio = p_t / p_c
            se = math.sqrt(p_t * (1 - p_t) / n + ratio**2 * p_c * (1 - p_c) / n_c) / p_c
            assert close(lift["relativeCi"][0], ratio - 1 - Z * se)
            assert close(lift["relativeCi"][1], ratio - 1 + Z * se)
        else:
            assert lift["relative"] is None and lift["relativeCi"] is None
    observed = [len(rows) for rows in data.users.values()]
    expected = [sum(observed) * data.weights[v] / 100_000 for v in data.users]
    chi2, p = ss.chisquare(observed, expected)
    assert close(report["srm"]["chi2"], chi2) and close(report["srm"]["p"], p)
    assert report["srm"]["flagged"] is bool(p < 0.001)


@pytest.mark.parametrize("index", range(len(DATA_SETS)), ids=[d.name for d in DATA_SETS])
def test_numeric_report_matches_scipy(server: FlagKitServer, index: int) -> None:
    """Means per exposed user, their t intervals, Welch's p and interval equal scipy's."""
    data = DATA_SETS[index]
    report = fetch_report(server, index)  # the flag's configured metric: numeric amount
    assert report["metric"] == {"event": "purchase", "kind": "numeric", "valueField": "amount"}
    control = next(iter(data.users))
    by_id = {v["id"]: v for v in report["variations"]}
    base = data.totals(control)
    for variation in data.users:
        values = data.totals(variation)
        got = by_id[variation]
        mean = math.fsum(values) / len(values)
        assert close(got["mean"], mean)
        if any(v != values[0] for v in values):
            low, high = ss.t.interval(0.95, len(values) - 1, loc=mean, scale=ss.sem(values))
            assert close(got["meanCi"][0], low) and close(got["meanCi"][1], high)
        else:  # no variance: the interval is the point
            assert got["meanCi"] == [mean, mean]
        if variation == control:
            assert got["lift"] is None
            continue
        lift = got["lift"]
        if any(v != base[0] for v in base):
            result = ss.ttest_ind(values, base, equal_var=False)
            interval = result.confidence_interval(0.95)
            assert close(lift["p"], result.pvalue)
            assert close(lift["absoluteCi"][0], interval.low)
            assert close(lift["absoluteCi"][1], interval.high)
            m_c = math.fsum(base) / len(base)
            assert close(lift["relative"], mean / m_c - 1)
        else:  # a control without any purchase: only the treatment varies
            result = ss.ttest_1samp(values, 0.0)
            assert close(lift["p"], result.pvalue)
            assert lift["relative"] is None
        assert close(lift["absolute"], mean - math.fsum(base) / len(base))


def test_srm_uses_the_configured_weights() -> None:
    """A 20/80 split with 20/80 exposures passes; the same users against a 50/50 split
    are flagged; chi2 and p equal scipy's for both."""
    observed = {"a": 205, "b": 795}
    splits = (({"a": 20_000, "b": 80_000}, False), ({"a": 50_000, "b": 50_000}, True))
    for weights, flagged in splits:
        flag = experiment_flag("split", weights)
        events = []
        for variation, count in observed.items():
            for i in range(count):
                events.append(
                    {
                        "eventType": "$exposure",
                        "eventId": str(uuid.uuid4()),
                        "timestamp": "2026-01-01T10:00:00Z",
                        "context": {"userId": f"{variation}{i}"},
                        "eventData": {"flagKey": "split", "variationId": variation},
                    }
                )
        with FlagKitServer(flags=[flag]) as srv:
            httpx.post(
                f"{srv.base_url}/sdk/events/batch",
                json={"events": events},
                headers={"X-API-Key": srv.api_key},
            ).raise_for_status()
            report = httpx.get(
                f"{srv.base_url}/admin/experiments/split?metric=purchase",
                headers={"Authorization": f"Bearer {srv.admin_token}"},
            ).json()
        total = sum(weights.values())
        expected = [1000 * weights[v] / total for v in observed]
        chi2, p = ss.chisquare(list(observed.values()), expected)
        srm = report["srm"]
        assert close(srm["chi2"], chi2) and close(srm["p"], p)
        assert srm["flagged"] is flagged
        assert srm["expected"] == pytest.approx(dict(zip(observed, expected, strict=True)))


# --------------------------------------------------------------------------------------
# the special functions themselves
# --------------------------------------------------------------------------------------

DEGREES = [1, 2, 3.5, 7, 30, 250.25, 10_000, 2_000_000]
T_VALUES = [-60.0, -4.0, -1.0, -0.1, 0.0, 0.3, 1.96, 3.0, 12.0]


@pytest.mark.parametrize("df", DEGREES)
def test_student_t_matches_scipy(df: float) -> None:
    """CDF, two-sided tail and the 97.5% quantile of Student's t equal scipy's."""
    for t in T_VALUES:
        assert close(fs.student_t_cdf(t, df), ss.t.cdf(t, df))
        assert close(fs.student_t_sf2(t, df), 2 * ss.t.sf(abs(t), df))
    for p in (0.6, 0.975, 0.999):
        assert close(fs.student_t_ppf(p, df), ss.t.ppf(p, df))
        assert close(fs.student_t_ppf(1 - p, df), ss.t.ppf(1 - p, df))


@pytest.mark.parametrize("k", [1, 2, 3, 10, 50])
def test_chi_square_matches_scipy(k: int) -> None:
    """The chi-square survival function equals scipy's on both sides of its mean."""
    for x in (0.001, 0.5, 1.0, k - 0.5, k + 3.0, 4.0 * k, 60.0, 400.0):
        assert close(fs.chi_square_sf(x, k), ss.chi2.sf(x, k))


def test_regularized_beta_matches_scipy() -> None:
    """I_x(a, b) equals scipy.special.betainc across both branches of the fraction."""
    from scipy.special import betainc

    for a, b in ((0.5, 0.5), (1, 3), (2.5, 0.5), (40, 60), (500, 0.5)):
        for x in (0.0, 1e-6, 0.1, 0.45, 0.5, 0.9, 0.999999, 1.0):
            assert close(fs.regularized_beta(x, a, b), betainc(a, b, x))


def test_no_variance_and_empty_groups_have_defined_answers() -> None:
    """Nobody converting in either group gives p = 1 (no evidence of a difference)
    rather than a division by zero; a certain mismatch (a variation exposed although its
    weight is 0) is flagged with p = 0; an empty group has no lift."""
    lift = fs.proportion_lift(0, 100, 0, 120)
    assert lift is not None and lift.p == 1.0 and lift.absolute == 0.0
    assert lift.relative is None
    assert fs.chi_square_test([10, 5], [15.0, 0.0]) == (None, 0.0)
    assert fs.proportion_lift(3, 0, 1, 10) is None
    assert fs.wilson_interval(0, 0) == (0.0, 0.0)
