"""The statistics of experiment results, with the standard library only (``math``).

The local server stays free of third-party packages, so the distributions it needs are
implemented here from their textbook definitions:

- the standard normal (``math.erfc``; quantiles from :class:`statistics.NormalDist`);
- Student's t: its CDF through the regularized incomplete beta function
  ``I_x(a, b)`` (a Lentz continued fraction), its quantile by bisection on the CDF;
- chi-square: its survival function through the regularized upper incomplete gamma
  function ``Q(k/2, x/2)`` (series below ``a + 1``, continued fraction above).

On top of them: the Wilson score interval of a proportion, the two-proportion z-test
(pooled standard error) with the unpooled Wald interval of the difference, the t interval
of a mean, Welch's t-test and its interval, the delta-method interval of a relative lift,
and Pearson's chi-square goodness-of-fit test. ``tests/server/test_experiment_stats.py``
checks every one against ``scipy.stats``/``statsmodels`` to 1e-6. All functions are pure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final

__all__ = [
    "Z_95",
    "Lift",
    "MeanSummary",
    "chi_square_sf",
    "chi_square_test",
    "mean_summary",
    "normal_sf",
    "normal_sf2",
    "proportion_lift",
    "regularized_beta",
    "student_t_cdf",
    "student_t_ppf",
    "student_t_sf2",
    "welch_lift",
    "wilson_interval",
]

#: The two-sided 95% quantile of the standard normal, 1.959963984540054.
Z_95: Final = NormalDist().inv_cdf(0.975)
_EPS: Final = 1e-16
_TINY: Final = 1e-300
_MAX_ITERATIONS: Final = 100_000


# --------------------------------------------------------------------------------------
# special functions
# --------------------------------------------------------------------------------------


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of ``I_x(a, b)`` (modified Lentz's method)."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _MAX_ITERATIONS):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h


def regularized_beta(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)`` for ``a, b > 0``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    # The fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry
    # I_x(a, b) = 1 - I_{1-x}(b, a) on the other side.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, 1.0 - x) / b


def student_t_cdf(t: float, df: float) -> float:
    """``P(T <= t)`` for Student's t with ``df > 0`` degrees of freedom."""
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * regularized_beta(df / (df + t * t), df / 2.0, 0.5)
    return 1.0 - tail if t > 0 else tail


def student_t_sf2(t: float, df: float) -> float:
    """The two-sided tail ``P(|T| >= |t|)`` (computed directly, so tiny p keep precision)."""
    if math.isinf(t):
        return 0.0
    return regularized_beta(df / (df + t * t), df / 2.0, 0.5)


def student_t_ppf(p: float, df: float) -> float:
    """The quantile of Student's t: the ``t`` with ``student_t_cdf(t, df) == p``."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p!r}")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -student_t_ppf(1.0 - p, df)
    low, high = 0.0, 1.0
    while student_t_cdf(high, df) < p:
        low, high = high, high * 2.0
    for _ in range(200):  # bisection to the last bit
        mid = (low + high) / 2.0
        if mid in (low, high):
            break
        if student_t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
    return (low + high) / 2.0


def _gamma_series(a: float, x: float) -> float:
    """The regularized lower incomplete gamma ``P(a, x)`` by its series (x < a + 1)."""
    term = total = 1.0 / a
    ap = a
    for _ in range(_MAX_ITERATIONS):
        ap += 1.0
        term *= x / ap
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _gamma_continued_fraction(a: float, x: float) -> float:
    """The regularized upper incomplete gamma ``Q(a, x)`` by its continued fraction."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITERATIONS):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = b + an / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi_square_sf(x: float, df: int) -> float:
    """``P(X >= x)`` for chi-square with ``df >= 1`` degrees of freedom."""
    if x <= 0.0:
        return 1.0
    if math.isinf(x):
        return 0.0
    a, half = df / 2.0, x / 2.0
    if half < a + 1.0:
        return 1.0 - _gamma_series(a, half)
    return _gamma_continued_fraction(a, half)


def normal_sf2(z: float) -> float:
    """The two-sided tail ``P(|Z| >= |z|)`` of the standard normal."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def normal_sf(z: float) -> float:
    """``P(Z >= z)`` of the standard normal."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


# --------------------------------------------------------------------------------------
# tests and intervals
# --------------------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (``(0, 0)`` when ``n`` is 0)."""
    if n <= 0:
        return (0.0, 0.0)
    p = successes / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Lift:
    """A variation against control: absolute and relative difference, 95% intervals, p.

    ``relative`` and ``relative_ci`` are None when the control's value is 0 (a relative
    change of nothing is undefined).
    """

    absolute: float
    absolute_ci: tuple[float, float]
    relative: float | None
    relative_ci: tuple[float, float] | None
    p: float


def _relative(
    treatment: float, control: float, var_t: float, var_c: float, z: float
) -> tuple[float | None, tuple[float, float] | None]:
    """Relative lift ``t / c - 1`` and its delta-method interval:
    ``Var(t/c) ~ Var(t)/c**2 + t**2 Var(c)/c**4`` (valid when ``t`` is 0 too)."""
    if control == 0:
        return None, None
    ratio = treatment / control
    se = math.sqrt(var_t / control**2 + treatment**2 * var_c / control**4)
    return ratio - 1.0, (ratio - 1.0 - z * se, ratio - 1.0 + z * se)


def proportion_lift(x_t: int, n_t: int, x_c: int, n_c: int, z: float = Z_95) -> Lift | None:
    """Treatment ``x_t / n_t`` against control ``x_c / n_c``.

    p: the two-proportion z-test with the pooled standard error (1.0 when nobody or
    everybody converted in both, where the test has no variance). The absolute interval is
    the unpooled Wald interval of the difference. None when either group is empty.
    """
    if n_t <= 0 or n_c <= 0:
        return None
    p_t, p_c = x_t / n_t, x_c / n_c
    pooled = (x_t + x_c) / (n_t + n_c)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    p_value = 1.0 if se_pooled == 0 else normal_sf2((p_t - p_c) / se_pooled)
    var_t, var_c = p_t * (1 - p_t) / n_t, p_c * (1 - p_c) / n_c
    diff = p_t - p_c
    half = z * math.sqrt(var_t + var_c)
    relative, relative_ci = _relative(p_t, p_c, var_t, var_c, z)
    return Lift(diff, (diff - half, diff + half), relative, relative_ci, p_value)


@dataclass(frozen=True)
class MeanSummary:
    """A sample's size, mean, variance (n - 1) and the t interval of the mean."""

    n: int
    mean: float
    variance: float
    ci: tuple[float, float]


def mean_summary(values: list[float], confidence: float = 0.95) -> MeanSummary:
    """Mean of ``values`` with its Student-t interval (a point interval below two values)."""
    n = len(values)
    if n == 0:
        return MeanSummary(0, 0.0, 0.0, (0.0, 0.0))
    mean = math.fsum(values) / n
    if n < 2:
        return MeanSummary(n, mean, 0.0, (mean, mean))
    variance = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    half = student_t_ppf(0.5 + confidence / 2, n - 1) * math.sqrt(variance / n)
    return MeanSummary(n, mean, variance, (mean - half, mean + half))


def welch_lift(treatment: MeanSummary, control: MeanSummary, z: float = Z_95) -> Lift | None:
    """Welch's t-test of two means, its interval of the difference (Welch-Satterthwaite
    degrees of freedom) and the delta-method interval of the relative lift (normal
    quantile ``z``). None when either sample has fewer than two values; p is 1.0 and the
    interval a point when both samples have no variance."""
    if treatment.n < 2 or control.n < 2:
        return None
    var_t, var_c = treatment.variance / treatment.n, control.variance / control.n
    diff = treatment.mean - control.mean
    se = math.sqrt(var_t + var_c)
    relative, relative_ci = _relative(treatment.mean, control.mean, var_t, var_c, z)
    if se == 0:
        p_value = 1.0 if diff == 0 else 0.0
        return Lift(diff, (diff, diff), relative, relative_ci, p_value)
    df = (var_t + var_c) ** 2 / (var_t**2 / (treatment.n - 1) + var_c**2 / (control.n - 1))
    t = diff / se
    half = student_t_ppf(0.975, df) * se
    return Lift(diff, (diff - half, diff + half), relative, relative_ci, student_t_sf2(t, df))


def chi_square_test(observed: list[int], expected: list[float]) -> tuple[float | None, float]:
    """Pearson's goodness-of-fit test: ``(chi2, p)`` over ``len(observed) - 1`` degrees
    of freedom. A category expected never (weight 0) but observed makes the mismatch
    certain: ``(None, 0.0)``. Categories expected never and never observed are left out.
    With fewer than two categories left there is nothing to test: ``(0.0, 1.0)``."""
    pairs = []
    for obs, exp in zip(observed, expected, strict=True):
        if exp <= 0:
            if obs > 0:
                return None, 0.0
            continue
        pairs.append((obs, exp))
    if len(pairs) < 2:
        return 0.0, 1.0
    chi2 = math.fsum((obs - exp) ** 2 / exp for obs, exp in pairs)
    return chi2, chi_square_sf(chi2, len(pairs) - 1)
