"""Beta distribution helpers in plain math/numpy (no scipy): CDF, quantiles, posterior summary.

The regularized incomplete beta I_x(a, b) is evaluated with the Lentz continued fraction
(Numerical Recipes 6.4), using the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) so the fraction is
always evaluated where it converges fast. Quantiles are found by bisection on that CDF.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from routerapp.engine.errors import InvalidEvidence
from routerapp.engine.types import MAX_EVIDENCE

_TINY = 1e-300
_EPS = 1e-15
# Above this total count the continued fraction needs ~sqrt(a+b) terms per evaluation; a Beta
# that concentrated is normal to well below 1e-9, so the quantile uses Cornish-Fisher instead.
_EXACT_LIMIT = 1e6


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _continued_fraction(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 100_000):
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


def beta_cdf(x: float, a: float, b: float) -> float:
    """Regularized incomplete beta I_x(a, b), the CDF of Beta(a, b) at x."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log1p(-x) - _log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _continued_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _continued_fraction(b, a, 1.0 - x) / b


def beta_cdf_array(
    x: NDArray[np.float64], a: NDArray[np.float64], b: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Vectorised `beta_cdf` over broadcast arrays (used by the prior solver)."""
    x, a, b = np.broadcast_arrays(
        np.asarray(x, dtype=float), np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    )
    inside = (x > 0.0) & (x < 1.0)
    xc = np.clip(x, 1e-300, 1.0 - 1e-16)
    flip = xc >= (a + 1.0) / (a + b + 2.0)
    # Evaluate the fraction on the side where it converges, then undo the flip.
    aa_, bb_, xx = np.where(flip, b, a), np.where(flip, a, b), np.where(flip, 1.0 - xc, xc)
    qab, qap, qam = aa_ + bb_, aa_ + 1.0, aa_ - 1.0
    c = np.ones_like(xx)
    d = 1.0 - qab * xx / qap
    d = 1.0 / np.where(np.abs(d) > _TINY, d, _TINY)
    h = d.copy()
    for m in range(1, 5000):
        m2 = 2 * m
        for numerator in (
            m * (bb_ - m) * xx / ((qam + m2) * (aa_ + m2)),
            -(aa_ + m) * (qab + m) * xx / ((aa_ + m2) * (qap + m2)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / np.where(np.abs(d) > _TINY, d, _TINY)
            c = 1.0 + numerator / c
            c = np.where(np.abs(c) > _TINY, c, _TINY)
            delta = d * c
            h *= delta
        if np.max(np.abs(delta - 1.0)) < 1e-12:
            break
    log_front = (
        aa_ * np.log(xx) + bb_ * np.log1p(-xx) - (_lgamma(aa_) + _lgamma(bb_) - _lgamma(aa_ + bb_))
    )
    value = np.exp(log_front) * h / aa_
    value = np.where(flip, 1.0 - value, value)
    return np.where(inside, np.clip(value, 0.0, 1.0), np.where(x >= 1.0, 1.0, 0.0))


_lgamma_vec = np.frompyfunc(math.lgamma, 1, 1)


def _lgamma(values: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(_lgamma_vec(values), dtype=float)


def beta_quantile(q: float, a: float, b: float) -> float:
    """x such that I_x(a, b) = q, by bisection (exact to ~1e-12) below `_EXACT_LIMIT`."""
    if q <= 0.0:
        return 0.0
    if q >= 1.0:
        return 1.0
    if a + b > _EXACT_LIMIT:
        return _cornish_fisher_quantile(q, a, b)
    low, high = 0.0, 1.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if beta_cdf(middle, a, b) < q:
            low = middle
        else:
            high = middle
        if high - low < 1e-13:
            break
    return 0.5 * (low + high)


def _normal_quantile(q: float) -> float:
    # Bisection on erf is plenty fast for the two calls per summary.
    low, high = -40.0, 40.0
    for _ in range(200):
        middle = 0.5 * (low + high)
        if 0.5 * math.erfc(-middle / math.sqrt(2.0)) < q:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


def _cornish_fisher_quantile(q: float, a: float, b: float) -> float:
    total = a + b
    mean = a / total
    variance = a * b / (total * total * (total + 1.0))
    skew = 2.0 * (b - a) * math.sqrt(total + 1.0) / ((total + 2.0) * math.sqrt(a * b))
    z = _normal_quantile(q)
    z_adjusted = z + (z * z - 1.0) * skew / 6.0
    return min(1.0, max(0.0, mean + z_adjusted * math.sqrt(variance)))


def posterior_summary(alpha: float, beta: float) -> tuple[float, float, float]:
    """Mean and equal-tailed 95% credible interval of Beta(alpha, beta).

    >>> [round(v, 4) for v in posterior_summary(1.0, 1.0)]
    [0.5, 0.025, 0.975]
    """
    for name, value in (("alpha", alpha), ("beta", beta)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0.0):
            raise InvalidEvidence(
                f"posterior_summary: {name} must be a positive number, got {value!r}"
            )
        if value > MAX_EVIDENCE:
            raise InvalidEvidence(f"posterior_summary: {name}={value!r} exceeds {MAX_EVIDENCE:g}")
    mean = alpha / (alpha + beta)
    return mean, beta_quantile(0.025, alpha, beta), beta_quantile(0.975, alpha, beta)
